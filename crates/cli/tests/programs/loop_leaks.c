// Ten leaks from the same call site in a loop: one loss record of 10 blocks.
// expect definitely_lost 640 10
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_one
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_one(int i) {
    int *p = malloc(64);
    p[0] = i;
    lose(p);
}

NOINLINE void leak_many(int n) {
    for (int i = 0; i < n; i++)
        leak_one(i);
}

int main(void) {
    leak_many(10);
    scrub_stack();
    return 0;
}
