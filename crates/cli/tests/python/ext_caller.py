# A Python program whose C extension (leaky_ext.c) leaks: load_plugin calls
# leaky_ext.leak_bytes(12345) three times from one line, and each call mallocs 12345 bytes
# and loses the pointer; configure calls leaky_ext.keep_bytes(777), whose block the
# extension keeps in a static. At exit the three lost blocks are one definitely-lost loss
# record with the C function and its Python caller in its stack; the kept block is still
# reachable.
# needs leaky_ext
# expect lost definitely_lost 37035 3 leak_bytes load_plugin leak-site
# expect reachable keep_bytes configure keep-site
import sys

import leaky_ext

LEAK_SIZE = 12345
KEEP_SIZE = 777


def load_plugin():
    for _ in range(3):
        leaky_ext.leak_bytes(LEAK_SIZE)  # leak-site


def configure():
    leaky_ext.keep_bytes(KEEP_SIZE)  # keep-site


def main():
    load_plugin()
    configure()
    print("ext_caller: leaked 3 x %d bytes, kept %d" % (LEAK_SIZE, KEEP_SIZE))


main()
