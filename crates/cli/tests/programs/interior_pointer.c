// The only pointer to a block points 10 bytes into it (not to its start), from a global:
// memcheck calls such a block possibly lost. The offset and the zeroed contents are chosen so
// that none of memcheck's heuristics (stdstring, length64, newarray, multipleinheritance)
// applies, and the block stays "possibly lost" rather than "reachable via heuristic".
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 100 1
// expect still_reachable 0 0
// expect leak-function possibly_lost keep_middle
#include <stdlib.h>

#include "fixture.h"

static char *volatile middle;

NOINLINE void keep_middle(void) {
    char *p = calloc(1, 100);
    middle = p + 10;
}

int main(void) {
    keep_middle();
    scrub_stack();
    return 0;
}
