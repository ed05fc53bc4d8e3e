# A bounded memo: functools.lru_cache(maxsize=2000) on a function called with ever-new keys.
# The cache fills in about half a second, then evicts an entry for every one it adds: the cached
# results' memory rises, then stays flat. A plateau, not a leak.
# expect growing none
# expect not-growing render cached-site
import functools
import sys
import time

CAPACITY = 2000


@functools.lru_cache(maxsize=CAPACITY)
def render(key):
    return ("item-%d|" % key) * 20  # cached-site


def serve(first, count):
    total = 0
    for key in range(first, first + count):
        total += len(render(key))
    return total


def main(seconds):
    time.sleep(0.3)
    deadline = time.monotonic() + seconds
    key = 0
    while time.monotonic() < deadline:
        serve(key, 40)
        key += 40
        time.sleep(0.01)
    info = render.cache_info()
    print("lru_plateau: %d calls, %d cached" % (info.misses + info.hits, info.currsize))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
