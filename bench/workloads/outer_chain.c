/* outer-chain: malloc/free churn at the bottom of a 17-level chain of distinct noinline
 * functions whose OUTER levels change from one iteration to the next.
 *
 *   outer_chain ITERATIONS
 *
 * The chain is level_01 (outermost, called by run) -> level_02 -> ... -> level_17 -> leaf.
 * Six levels, 01, 03, 05, 08, 11 and 14, come in two variants (level_NN_a, level_NN_b:
 * distinct functions, distinct constants, so that they are not merged); at each iteration a
 * xorshift PRNG draws 6 bits, one per variant level, and the level above calls the variant
 * its bit says. So the stack changes at random outer and middle levels while the innermost
 * frames (level_15 .. level_17, leaf) stay the same, and exactly 2^6 = 64 distinct stacks
 * reach the one malloc call in the leaf. Each iteration the leaf makes two blocks of
 * 16..512 bytes from that call: the first is touched and freed at once, the second goes into
 * a 256-slot ring, displacing (and freeing) the block of 256 iterations earlier. 2 mallocs
 * and 2 frees per iteration; nothing is leaked (the ring is emptied at the end). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

NOINLINE static uint64_t leaf(struct state *s, uint64_t i, unsigned bits) {
    return two_blocks(s, i, bits); /* the one allocation call site: 64 stacks reach it */
}

/* A level with one variant, calling the next level's single function. The work after the
 * call keeps it from being a tail call (a sibling call would drop the frame). */
#define LEVEL(name, callee, k)                                                  \
    NOINLINE static uint64_t name(struct state *s, uint64_t i, unsigned bits) { \
        uint64_t r = callee(s, i + (k), bits);                                  \
        __asm__ volatile("" : "+r"(r));                                         \
        return r ^ (k);                                                         \
    }

/* A level that calls the next level's variant a or b, as bit `b` of `bits` says. */
#define LEVEL_TO2(name, callee, b, k)                                           \
    NOINLINE static uint64_t name(struct state *s, uint64_t i, unsigned bits) { \
        uint64_t r = (bits >> (b)) & 1 ? callee##_b(s, i + (k), bits)           \
                                       : callee##_a(s, i + (k), bits);          \
        __asm__ volatile("" : "+r"(r));                                         \
        return r ^ (k);                                                         \
    }

LEVEL(level_17, leaf, 17)
LEVEL(level_16, level_17, 16)
LEVEL(level_15, level_16, 15)
LEVEL(level_14_a, level_15, 140)
LEVEL(level_14_b, level_15, 141)
LEVEL_TO2(level_13, level_14, 5, 13)
LEVEL(level_12, level_13, 12)
LEVEL(level_11_a, level_12, 110)
LEVEL(level_11_b, level_12, 111)
LEVEL_TO2(level_10, level_11, 4, 10)
LEVEL(level_09, level_10, 9)
LEVEL(level_08_a, level_09, 80)
LEVEL(level_08_b, level_09, 81)
LEVEL_TO2(level_07, level_08, 3, 7)
LEVEL(level_06, level_07, 6)
LEVEL(level_05_a, level_06, 50)
LEVEL(level_05_b, level_06, 51)
LEVEL_TO2(level_04, level_05, 2, 4)
LEVEL(level_03_a, level_04, 30)
LEVEL(level_03_b, level_04, 31)
LEVEL_TO2(level_02, level_03, 1, 2)
LEVEL(level_01_a, level_02, 100)
LEVEL(level_01_b, level_02, 101)

NOINLINE static uint64_t run(struct state *s, long iterations) {
    for (long i = 0; i < iterations; i++) {
        unsigned bits = (unsigned)(next(s) >> 58); /* 6 bits: one per variant level */
        uint64_t r = bits & 1 ? level_01_b(s, (uint64_t)i, bits)
                              : level_01_a(s, (uint64_t)i, bits);
        s->sum += r;
    }
    return s->sum;
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 1000000;
    if (iterations < 1) {
        fprintf(stderr, "usage: outer_chain ITERATIONS\n");
        return 2;
    }
    struct state *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->rng = 0x9e3779b97f4a7c15ull;
    uint64_t sum = run(s, iterations);
    for (unsigned k = 0; k < RING; k++) free(s->ring[k]);
    free(s);
    printf("outer-chain: %ld iterations, 64 stacks, checksum %llu\n", iterations,
           (unsigned long long)sum);
    return 0;
}
