/* random-depth: allocation at the bottom of a recursion of random depth through three
 * mutually recursive noinline functions, so that the stacks differ in depth and in the order
 * of their frames from one allocation to the next.
 *
 *   random_depth ITERATIONS
 *
 * At each iteration a xorshift PRNG picks a depth of 4..48 and one of 128 paths, made once
 * at start-up: a path says, level by level, which of rec_a, rec_b and rec_c the level above
 * calls next. The recursion goes down that path to the depth drawn, and the bottom makes two
 * blocks of 16..512 bytes from one malloc call: the first is touched and freed at once, the
 * second goes into a 256-slot ring, displacing (and freeing) the block of 256 iterations
 * earlier. So there are at most 45 x 128 = 5760 distinct stacks (a stack of one path is a
 * prefix of the deeper stacks of the same path), at depths of 4..48 recursion frames plus
 * main and run; 2 mallocs and 2 frees per iteration. Nothing is leaked. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define PATHS 128
#define MIN_DEPTH 4
#define MAX_DEPTH 48

static unsigned char paths[PATHS][MAX_DEPTH];

NOINLINE static uint64_t bottom(struct state *s, uint64_t i) {
    return two_blocks(s, i, i); /* the one allocation call site */
}

static uint64_t rec_a(struct state *s, const unsigned char *path, unsigned depth, uint64_t i);
static uint64_t rec_b(struct state *s, const unsigned char *path, unsigned depth, uint64_t i);
static uint64_t rec_c(struct state *s, const unsigned char *path, unsigned depth, uint64_t i);

/* The next level: the bottom at depth 0, else the function the path names. */
static inline uint64_t descend(struct state *s, const unsigned char *path, unsigned depth,
                               uint64_t i) {
    if (depth == 0) return bottom(s, i);
    switch (path[0]) {
    case 0: return rec_a(s, path + 1, depth - 1, i);
    case 1: return rec_b(s, path + 1, depth - 1, i);
    default: return rec_c(s, path + 1, depth - 1, i);
    }
}

/* The work after the call keeps it from being a tail call; the constants keep the three
 * functions distinct (not merged). */
#define REC(name, k)                                                                    \
    NOINLINE static uint64_t name(struct state *s, const unsigned char *path,          \
                                  unsigned depth, uint64_t i) {                         \
        uint64_t r = descend(s, path, depth, i + (k));                                  \
        __asm__ volatile("" : "+r"(r));                                                 \
        return r * 3 + (k);                                                             \
    }

REC(rec_a, 1)
REC(rec_b, 2)
REC(rec_c, 3)

NOINLINE static uint64_t run(struct state *s, long iterations) {
    for (long i = 0; i < iterations; i++) {
        uint64_t r = next(s);
        unsigned depth = MIN_DEPTH + (unsigned)((r >> 8) % (MAX_DEPTH - MIN_DEPTH + 1));
        const unsigned char *path = paths[(r >> 32) % PATHS];
        /* the first recursion frame is path[0]'s function, as every level below it */
        s->sum += descend(s, path, depth, (uint64_t)i);
    }
    return s->sum;
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 1000000;
    if (iterations < 1) {
        fprintf(stderr, "usage: random_depth ITERATIONS\n");
        return 2;
    }
    struct state *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->rng = 0x2545f4914f6cdd1dull;
    for (unsigned p = 0; p < PATHS; p++)
        for (unsigned d = 0; d < MAX_DEPTH; d++) paths[p][d] = (unsigned char)(next(s) % 3);
    uint64_t sum = run(s, iterations);
    for (unsigned k = 0; k < RING; k++) free(s->ring[k]);
    free(s);
    printf("random-depth: %ld iterations, depth %d..%d, checksum %llu\n", iterations,
           MIN_DEPTH, MAX_DEPTH, (unsigned long long)sum);
    return 0;
}
