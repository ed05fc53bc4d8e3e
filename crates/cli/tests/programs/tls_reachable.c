// A block whose only pointer is kept in a thread-local variable of the main thread: the TLS
// block is a root, so the block is still reachable.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 300 1
// expect leak-function still_reachable init_tls
#include <stdlib.h>

#include "fixture.h"

static __thread void *volatile tls_slot;

NOINLINE void init_tls(void) {
    tls_slot = malloc(300);
    memset(tls_slot, 0, 300);
}

int main(void) {
    init_tls();
    scrub_stack();
    return 0;
}
