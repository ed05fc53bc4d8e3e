// Roots in a large anonymous mapping of which only a few pages were ever written, as managed
// runtimes leave their heaps (the JVM commits its initial heap and touches a fraction). Two
// blocks are pointed at from two written pages (the last word of one, the first word of the
// other), so they are still reachable. A third block's only pointer was on a page given back
// with MADV_DONTNEED (it reads as zeros again), so it is definitely lost.
// expect definitely_lost 100 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 300 2
// expect leak-function definitely_lost pointer_on_discarded_page
#include <stdlib.h>
#include <sys/mman.h>

#include "fixture.h"

#define PAGE 4096
#define LEN (64 << 20)

static char *volatile region;

NOINLINE void pointer_on_page(size_t page, size_t offset, size_t size) {
    void *p = malloc(size);
    memset(p, 'r', size);
    *(void **)(region + page * PAGE + offset) = p;
}

NOINLINE void pointer_on_discarded_page(void) {
    void *p = malloc(100);
    memset(p, 'd', 100);
    *(void **)(region + 7000 * PAGE) = p;
    madvise(region + 7000 * PAGE, PAGE, MADV_DONTNEED);
}

int main(void) {
    region = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        return 99;
    pointer_on_page(1000, PAGE - 8, 100);
    pointer_on_page(5000, 0, 200);
    pointer_on_discarded_page();
    scrub_stack();
    return 0;
}
