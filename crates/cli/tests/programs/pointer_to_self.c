// Blocks whose only pointers come from themselves, as in LeakSanitizer's pointer_to_self test:
// a 64-byte block holding a pointer to its own start, and a 96-byte block holding a pointer
// into its own middle. A block does not keep itself alive: both are definitely lost (each is
// the leader of a clique of one, and a leader is never counted as indirectly lost by itself).
// expect definitely_lost 160 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost point_at_start
// expect leak-function definitely_lost point_at_middle
#include <stdlib.h>

#include "fixture.h"

NOINLINE void point_at_start(void) {
    void **p = calloc(1, 64);
    p[3] = p;
    escape(p);
    lose(p);
}

NOINLINE void point_at_middle(void) {
    char *p = calloc(1, 96);
    *(void **)(p + 8) = p + 40;
    escape(p);
    lose(p);
}

int main(void) {
    point_at_start();
    point_at_middle();
    scrub_stack();
    return 0;
}
