// 100,000 blocks lost from 100,000 distinct stacks: block i is allocated under a chain of 17
// calls, each of which is `left` or `right` as bit k of i says (so no two blocks share a
// stack). 16 bytes each: 1,600,000 bytes in 100,000 blocks, definitely lost.
#include <stdlib.h>
#include <string.h>

#include "../programs/fixture.h"

NOINLINE static void leaf(long i) {
    long *p = malloc(16);
    p[0] = i;
    p[1] = 0;
    lose(p);
}

static void step(long i, int level);

NOINLINE static void left(long i, int level) {
    step(i, level + 1);
    __asm__ volatile("" ::: "memory"); // not a tail call: each level keeps its frame
}

NOINLINE static void right(long i, int level) {
    step(i, level + 1);
    __asm__ volatile("" ::: "memory");
}

NOINLINE static void step(long i, int level) {
    if (level == 17) {
        leaf(i);
    } else if ((i >> level) & 1) {
        right(i, level);
    } else {
        left(i, level);
    }
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    for (long i = 0; i < 100000; i++) step(i, 0);
    scrub_stack();
    return 0;
}
