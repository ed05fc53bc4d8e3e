// 100 000 blocks of 16 bytes lost from one call site.
// expect definitely_lost 1600000 100000
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_small
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_small(long i) {
    long *p = malloc(16);
    p[0] = i;
    p[1] = 0;
    lose(p);
}

NOINLINE void leak_lots(long n) {
    for (long i = 0; i < n; i++)
        leak_small(i);
}

int main(void) {
    leak_lots(100000);
    scrub_stack();
    return 0;
}
