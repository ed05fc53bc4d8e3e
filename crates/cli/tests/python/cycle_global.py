# Reference cycles kept alive by a global: each iteration makes a pair of nodes that point at
# each other and appends one of them to a module-level list. The garbage collector cannot
# free them, because they are reachable, so the pairs grow at the line that creates them.
# The same loop also makes a pair that nothing outside the cycle points to: the collector
# frees those, and their line does not grow.
# expect growing make_kept_pair growing-site
# expect growing-frames step main
# expect not-growing make_garbage_pair collected-site
import sys
import time

KEPT = []  # one node of every kept pair


class Node:
    __slots__ = ("peer", "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10")


def make_kept_pair():
    a, b = Node(), Node()  # growing-site
    a.peer = b
    b.peer = a
    return a


def make_garbage_pair():
    a, b = Node(), Node()  # collected-site
    a.peer = b
    b.peer = a


def step(count):
    for _ in range(count):
        KEPT.append(make_kept_pair())
        make_garbage_pair()


def main(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step(200)
        time.sleep(0.005)
    print("cycle_global: kept %d cycles" % len(KEPT))


main(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
