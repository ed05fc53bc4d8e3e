// posix_memalign and aligned_alloc: the requested sizes are reported, not the padding.
// expect definitely_lost 1512 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_posix_memalign
// expect leak-function definitely_lost leak_aligned_alloc
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_posix_memalign(void) {
    void *p = NULL;
    if (posix_memalign(&p, 64, 1000) != 0)
        abort();
    memset(p, 1, 1000);
    lose(p);
}

NOINLINE void leak_aligned_alloc(void) {
    void *p = aligned_alloc(256, 512);
    if (p == NULL)
        abort();
    memset(p, 2, 512);
    lose(p);
}

int main(void) {
    leak_posix_memalign();
    leak_aligned_alloc();
    scrub_stack();
    return 0;
}
