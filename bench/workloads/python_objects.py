"""python-objects: build and drop many small Python objects (tuples, dicts, lists, strings)
with CPython's default allocator (pymalloc, no PYTHONMALLOC): the object allocations that
only a tool hooking the PEP 445 domains sees one by one (malloc sees pymalloc's arenas).

    python3 python_objects.py ROUNDS

Each round makes 100 items. An item is a dict holding a tuple (int, str, float), a list of
small strs and ints, a str built by formatting and one built by join, and a nested dict; a
few temporaries (a slice, a joined key, a tuple of lengths) are made and dropped while it is
checked: about 24 allocations per item (7M in 3000 rounds). A ring of 16384 slots is the
working set (about 15 MiB of live objects): each new item replaces the oldest, which is
freed then, so the live set stays bounded. Every 32nd item also leaves a key string and a
small tuple in a history list that is never emptied: the growth, about 3 items per round.
The checksum depends on every item, not on string hashes (they are randomised per run)."""

import sys

RING = 16384
KEEP_EVERY = 32


def make_item(i):
    name = "obj-%d-%s" % (i, "x" * (i % 13))
    pair = (i, name, i * 0.5)
    values = [str(i % 97), i % 89, "v%d" % (i % 31), i & 0xFF]
    label = "/".join(("item", name[:8], str(i % 7)))
    return {
        "pair": pair,
        "values": values,
        "label": label,
        "meta": {"n": len(values), "even": i % 2 == 0, "tag": name[-4:]},
    }


def check(item):
    pair, values = item["pair"], item["values"]
    head = values[:2]
    key = item["label"] + ":" + pair[1]
    sizes = (len(key), len(head), item["meta"]["n"])
    return sizes[0] + sizes[1] * 3 + sizes[2] + (pair[0] & 7)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ring = [None] * RING
    history = []
    total = 0
    i = 0
    for _ in range(rounds):
        for _ in range(100):
            item = make_item(i)
            total += check(item)
            ring[i % RING] = item  # the item it replaces is freed here
            if i % KEEP_EVERY == 0:
                history.append((item["label"] + "#" + str(i), item["pair"][0]))
            i += 1
    live = sum(1 for x in ring if x is not None)
    print("python-objects: %d rounds, %d items, %d live, %d kept, checksum %d"
          % (rounds, i, live, len(history), total))


if __name__ == "__main__":
    main()
