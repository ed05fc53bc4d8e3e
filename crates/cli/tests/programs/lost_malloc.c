// One block from malloc whose only pointer is dropped: the simplest definite leak.
// expect definitely_lost 4096 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost process_request
#include <stdlib.h>

#include "fixture.h"

NOINLINE void process_request(size_t size) {
    char *buffer = malloc(size);
    memset(buffer, 'r', size);
    lose(buffer);
}

int main(void) {
    process_request(4096);
    scrub_stack();
    return 0;
}
