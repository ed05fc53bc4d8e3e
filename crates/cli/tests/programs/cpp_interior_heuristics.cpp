// memcheck's interior-pointer heuristics (--leak-check-heuristics=all, its default), as in
// valgrind's leak_cpp_interior test: a block whose only pointer points inside it is possibly
// lost, unless the pointer is one that C++ code makes as a matter of course. Each block below is
// kept only by a global that points into it:
// - newarray: new Counted[5] of a class with a destructor returns the block + 8 (the first word
//   holds the element count, 5): 48 bytes, still reachable;
// - multipleinheritance: a Right* to a Both (derived from Left and Right, both with virtual
//   functions) points at the Right part, 16 bytes in, where a second vtable pointer lies:
//   40 bytes, still reachable;
// - length64: the block + 8, when the first word holds the size of the rest (48): 56 bytes,
//   still reachable;
// - stdstring: the block + 24, when the block starts as the old (copy-on-write) std::string
//   representation does: length 5, capacity 30, reference count 0, then the characters, and
//   the block is 24 + capacity + 1 = 55 bytes: still reachable;
// - none: 16 bytes into a zeroed 64-byte block: possibly lost.
// Totals: still reachable 48 + 40 + 56 + 55 = 199 in 4 (memcheck adds "of which reachable via
// heuristic" lines that repeat them).
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 64 1
// expect still_reachable 199 4
// expect leak-function still_reachable keep_array
// expect leak-function still_reachable keep_right
// expect leak-function still_reachable keep_length_prefixed
// expect leak-function still_reachable keep_cow_string
// expect leak-function possibly_lost keep_plain_interior
#include <cstdint>
#include <cstdlib>

#include "fixture.h"

struct Counted {
    long value = 1;
    ~Counted() { fixture_sink = this; }
};

struct Left {
    virtual ~Left() {}
    long a = 1;
};

struct Right {
    virtual ~Right() {}
    long b = 2;
};

struct Both : Left, Right {
    long c = 3;
};

static Counted *volatile array_kept;
static Right *volatile right_kept;
static char *volatile length_kept;
static char *volatile string_kept;
static char *volatile plain_kept;

NOINLINE void keep_array() {
    Counted *a = new Counted[5];
    escape(a);
    array_kept = a;
}

NOINLINE void keep_right() {
    Both *b = new Both;
    escape(b);
    right_kept = b;
}

NOINLINE void keep_length_prefixed() {
    uint64_t *b = static_cast<uint64_t *>(malloc(8 + 48));
    b[0] = 48;
    memset(b + 1, 0, 48);
    escape(b);
    length_kept = reinterpret_cast<char *>(b + 1);
}

NOINLINE void keep_cow_string() {
    const size_t capacity = 30;
    uint64_t *b = static_cast<uint64_t *>(malloc(24 + capacity + 1));
    b[0] = 5;        /* length */
    b[1] = capacity; /* capacity */
    b[2] = 0;        /* reference count */
    memcpy(b + 3, "hello", 6);
    escape(b);
    string_kept = reinterpret_cast<char *>(b + 3);
}

NOINLINE void keep_plain_interior() {
    char *p = static_cast<char *>(calloc(1, 64));
    escape(p);
    plain_kept = p + 16;
}

int main() {
    static_assert(sizeof(Both) == 40, "Both is 40 bytes with the Itanium C++ ABI");
    keep_array();
    keep_right();
    keep_length_prefixed();
    keep_cow_string();
    keep_plain_interior();
    scrub_stack();
    return 0;
}
