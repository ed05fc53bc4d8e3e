# A bounded memo: functools.lru_cache(maxsize=2000) on a function called with ever-new keys.
# The cache fills over the first fifth of the run, at most 0.8 s (paced by the clock, so that a
# loaded machine fills it just as soon), then evicts an entry for every one it adds: the cached
# results' memory rises, then stays flat. A plateau, not a leak.
# expect growing none
# expect not-growing render cached-site
# expect plateau render cached-site
import functools
import sys
import time

CAPACITY = 2000


@functools.lru_cache(maxsize=CAPACITY)
def render(key):
    return ("item-%08d|" % key) * 20  # cached-site


def serve(first, count):
    total = 0
    for key in range(first, first + count):
        total += len(render(key))
    return total


def main(seconds):
    fill_s = min(0.8, seconds / 5)
    time.sleep(0.3)
    start = time.monotonic()
    deadline = start + seconds
    key = 0
    while time.monotonic() < deadline:
        # While filling, as many new keys as bring the cache to its share of the fill time.
        filled = CAPACITY * min(1.0, (time.monotonic() - start) / fill_s)
        batch = max(40, int(filled) - key) if key < CAPACITY else 40
        serve(key, batch)
        key += batch
        time.sleep(0.01)
    info = render.cache_info()
    print("lru_plateau: %d calls, %d cached" % (info.misses + info.hits, info.currsize))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
