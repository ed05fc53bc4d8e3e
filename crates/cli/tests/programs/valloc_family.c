// The older allocator entry points, each block lost: valloc (100), memalign (200),
// reallocarray(NULL, 10, 30) (300, a fresh block) and reallocarray on a 10-byte block grown
// to 20 * 5 (100). The requested sizes are reported, not the alignment padding.
// pvalloc is not here: valgrind 3.19 does not support it ("Program aborting because of call to
// pvalloc"), so no expectation for it can be verified against memcheck.
// expect definitely_lost 700 4
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_valloc
// expect leak-function definitely_lost leak_memalign
// expect leak-function definitely_lost leak_reallocarray_new
// expect leak-function definitely_lost leak_reallocarray_grow
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_valloc(void) { lose(valloc(100)); }

NOINLINE void leak_memalign(void) { lose(memalign(32, 200)); }

NOINLINE void leak_reallocarray_new(void) { lose(reallocarray(NULL, 10, 30)); }

NOINLINE void leak_reallocarray_grow(void) {
    char *p = malloc(10);
    memset(p, 0, 10);
    escape(p);
    lose(reallocarray(p, 20, 5));
}

int main(void) {
    leak_valloc();
    leak_memalign();
    leak_reallocarray_new();
    leak_reallocarray_grow();
    scrub_stack();
    return 0;
}
