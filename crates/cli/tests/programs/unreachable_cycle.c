// Two blocks pointing at each other and at nothing else, with no pointer from outside.
// memcheck makes one of them the leader of the cycle (definitely lost) and the other
// indirectly lost; both are 32 bytes, so the totals do not depend on which one leads.
// expect definitely_lost 32 1
// expect indirectly_lost 32 1
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost make_cycle
// expect leak-function indirectly_lost make_cycle
#include <stdlib.h>

#include "fixture.h"

struct ring {
    struct ring *next;
    long payload[3];
};

NOINLINE void make_cycle(void) {
    struct ring *a = malloc(sizeof *a);
    struct ring *b = malloc(sizeof *b);
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    a->next = b;
    b->next = a;
    escape(a);
    lose(a);
}

int main(void) {
    make_cycle();
    scrub_stack();
    return 0;
}
