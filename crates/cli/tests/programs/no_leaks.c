// Allocates and frees with every allocator function: nothing is left at exit.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

NOINLINE void churn(void) {
    for (int i = 1; i <= 100; i++) {
        char *a = malloc((size_t)i * 10);
        char *b = calloc((size_t)i, 8);
        a = realloc(a, (size_t)i * 20);
        escape(a);
        escape(b);
        free(a);
        free(b);
    }
    void *c = NULL;
    if (posix_memalign(&c, 128, 1024) == 0)
        free(c);
    char *d = strdup("temporary");
    escape(d);
    free(d);
}

int main(void) {
    churn();
    scrub_stack();
    return 0;
}
