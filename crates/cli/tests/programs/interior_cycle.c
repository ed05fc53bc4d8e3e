// Interior pointers between blocks, as in valgrind's leak-cycle and leak-cases tests:
// - two 48-byte blocks linked into a cycle by interior pointers only (each points 16 bytes into
//   the other), with no pointer from outside: memcheck finds interior pointers when it follows a
//   lost block's contents too, so one block leads the cycle (definitely lost) and the other is
//   indirectly lost (both are 48 bytes, so the totals do not depend on which leads);
// - a global points 8 bytes into a 40-byte block (possibly lost), which holds a pointer to the
//   start of a 24-byte block: what is reached only from a possibly lost block is possibly lost,
//   start pointer or not;
// - a global points to the start of a 32-byte block (still reachable), which points 24 bytes
//   into a 56-byte block: an interior pointer from a reachable block makes it possibly lost.
// The zeroed contents and the offsets keep memcheck's heuristics out (see interior_pointer.c).
// Totals: possibly lost 40 + 24 + 56 = 120 in 3.
// expect definitely_lost 48 1
// expect indirectly_lost 48 1
// expect possibly_lost 120 3
// expect still_reachable 32 1
// expect leak-function definitely_lost make_interior_cycle
// expect leak-function indirectly_lost make_interior_cycle
// expect leak-function possibly_lost chain_from_interior
// expect leak-function possibly_lost interior_from_reachable
// expect leak-function still_reachable interior_from_reachable
#include <stdlib.h>

#include "fixture.h"

static void *volatile into_middle;
static void *volatile at_start;

NOINLINE void make_interior_cycle(void) {
    char *a = calloc(1, 48);
    char *b = calloc(1, 48);
    *(void **)(a + 8) = b + 16;
    *(void **)(b + 32) = a + 16;
    escape(a);
    escape(b);
    lose(a);
    lose(b);
}

NOINLINE void chain_from_interior(void) {
    char *p = calloc(1, 40);
    char *q = calloc(1, 24);
    *(void **)(p + 16) = q;
    escape(p);
    escape(q);
    into_middle = p + 8;
}

NOINLINE void interior_from_reachable(void) {
    char *r = calloc(1, 32);
    char *s = calloc(1, 56);
    *(void **)(r + 8) = s + 24;
    escape(r);
    escape(s);
    at_start = r;
}

int main(void) {
    make_interior_cycle();
    chain_from_interior();
    interior_from_reachable();
    scrub_stack();
    return 0;
}
