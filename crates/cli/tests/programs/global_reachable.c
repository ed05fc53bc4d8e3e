// A block whose only pointer is kept in a global variable until exit: still reachable.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 500 1
// expect leak-function still_reachable init_cache
#include <stdlib.h>

#include "fixture.h"

static void *volatile cache;

NOINLINE void init_cache(void) {
    cache = malloc(500);
    memset(cache, 0, 500);
}

int main(void) {
    init_cache();
    scrub_stack();
    return 0;
}
