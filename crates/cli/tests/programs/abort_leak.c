// Leaks, then calls abort(): the process dies by SIGABRT (6) and the leak is still reported.
// No stdio is used: after a fatal signal memcheck does not run libc's cleanup (__libc_freeres).
// expect definitely_lost 321 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_before_abort
// expect signal 6
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_before_abort(void) {
    char *p = malloc(321);
    memset(p, 0, 321);
    lose(p);
}

int main(void) {
    leak_before_abort();
    scrub_stack();
    abort();
}
