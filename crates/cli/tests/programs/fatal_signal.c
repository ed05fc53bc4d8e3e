// Leaks, then writes through a null pointer: the process dies by SIGSEGV (11) and the leak is
// still reported. (memcheck also prints an "Invalid write" error, which is not a leak.)
// expect definitely_lost 222 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_before_crash
// expect signal 11
#include <stdlib.h>

#include "fixture.h"

static int *volatile nowhere;

NOINLINE void leak_before_crash(void) {
    char *p = malloc(222);
    memset(p, 0, 222);
    lose(p);
}

NOINLINE void crash(void) { *nowhere = 42; }

int main(void) {
    leak_before_crash();
    scrub_stack();
    crash();
    return 0;
}
