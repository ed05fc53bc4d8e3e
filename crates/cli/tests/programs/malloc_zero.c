// malloc(0) returns a unique pointer to a block of size 0; losing it is a leak of 0 bytes in
// 1 block, which memcheck counts.
// expect definitely_lost 0 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_nothing
#include <stdlib.h>

#include "fixture.h"

static volatile size_t zero = 0;

NOINLINE void leak_nothing(void) { lose(malloc(zero)); }

int main(void) {
    leak_nothing();
    scrub_stack();
    return 0;
}
