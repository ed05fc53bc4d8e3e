// Edge cases of realloc and free: realloc(p, 0) frees p (glibc returns NULL), free(NULL) does
// nothing, realloc(NULL, n) is malloc(n); only that last block is lost.
// expect definitely_lost 48 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost edge_cases
#include <stdlib.h>

#include "fixture.h"

static volatile size_t zero = 0;

NOINLINE void edge_cases(void) {
    char *p = malloc(64);
    memset(p, 0, 64);
    escape(p);
    p = realloc(p, zero);
    if (p != NULL)
        free(p);
    free(NULL);
    char *q = realloc(NULL, 48);
    memset(q, 0, 48);
    lose(q);
}

int main(void) {
    edge_cases();
    scrub_stack();
    return 0;
}
