// A block grown by realloc (16 -> 1000 bytes, through 200) and then lost: only the final size
// counts, and the stack is the one of the last realloc.
// expect definitely_lost 1000 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost grow_buffer
#include <stdlib.h>

#include "fixture.h"

NOINLINE char *start_buffer(void) {
    char *p = malloc(16);
    memset(p, 'a', 16);
    return p;
}

NOINLINE void grow_buffer(char *p) {
    p = realloc(p, 200);
    escape(p);
    p = realloc(p, 1000);
    memset(p, 'b', 1000);
    lose(p);
}

int main(void) {
    grow_buffer(start_buffer());
    scrub_stack();
    return 0;
}
