# Run by the real-program suite (tests/real_programs.rs) with python3, natively and under
# leakscope; its output must be the same.
import collections
import hashlib
import json
import re
import sqlite3
import threading
import zlib

words = "the quick brown fox jumps over the lazy dog the end".split()
print(sorted(collections.Counter(words).items()))

objects = []
for i in range(200_000):
    objects.append({"id": i, "name": f"item-{i}", "tags": [i % 7, i % 11]})
    if len(objects) > 5000:
        objects = []

print("sha256:", hashlib.sha256(b"leakscope").hexdigest())
data = b"abc" * (1 << 18)
print("zlib round trip:", zlib.decompress(zlib.compress(data, 6)) == data)
text = json.dumps([{"i": i, "sq": i * i} for i in range(1000)])
print("json", len(text), sum(o["sq"] for o in json.loads(text)))
print(re.findall(r"(\w)o(\w)", "foo bar boz dog log"))

db = sqlite3.connect(":memory:")
db.execute("create table t (k integer primary key, v text)")
db.executemany("insert into t values (?, ?)", ((i, str(i * 3)) for i in range(1000)))
print("sqlite", db.execute("select count(*), sum(length(v)) from t").fetchone())

results = [0] * 4
def work(n):
    results[n] = sum(i * i for i in range(n * 10000, (n + 1) * 10000))
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", results)
