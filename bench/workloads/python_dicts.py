"""python-dicts: build and drop dicts and lists (run with PYTHONMALLOC=malloc, so that
every object allocation goes through malloc).

    python3 python_dicts.py ROUNDS

Each round builds 200 small records (dicts of str/int/list values), indexes them in a
dict by key, groups them into lists, serialises a few into strings, and drops it all.
A small cache (at most 5000 entries) survives across rounds."""

import sys


def make_record(i):
    return {
        "id": i,
        "name": "user-%d" % i,
        "email": "user%d@example.test" % (i % 1000),
        "tags": ["t%d" % (i % 7), "g%d" % (i % 11)],
        "score": (i * 37) % 101,
    }


def group(records):
    groups = {}
    for r in records:
        groups.setdefault(r["score"] % 10, []).append(r)
    return groups


def render(records):
    return ";".join("%s=%s" % (r["name"], ",".join(r["tags"])) for r in records[:20])


def run_round(round_no, cache):
    base = round_no * 200
    records = [make_record(base + i) for i in range(200)]
    index = {r["name"]: r for r in records}
    groups = group(records)
    text = render(records)
    hits = sum(1 for i in range(0, 200, 3) if ("user-%d" % (base + i)) in index)
    cache[base % 5000] = {"text": text[:40], "groups": len(groups)}
    if len(cache) > 5000:
        cache.clear()
    return hits + len(text)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    cache = {}
    total = 0
    for r in range(rounds):
        total += run_round(r, cache)
    print("python-dicts: %d rounds, checksum %d" % (rounds, total))


if __name__ == "__main__":
    main()
