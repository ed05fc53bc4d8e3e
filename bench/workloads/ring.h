/* What the C churn workloads share (churn.c, outer_chain.c, random_depth.c): the per-thread
 * state with its xorshift generator and its ring of long-lived blocks, the size
 * distribution, and the two blocks the bottom of outer_chain's and random_depth's stacks
 * makes per iteration. */
#ifndef BENCH_RING_H
#define BENCH_RING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RING 256
#define NOINLINE __attribute__((noinline))

struct state {
    uint64_t rng;
    void *ring[RING];
    size_t ring_size[RING];
    unsigned pos;
    uint64_t sum;
};

static inline uint64_t next(struct state *s) {
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* 16..512 bytes, small sizes more common (as in real programs). */
static inline size_t pick_size(struct state *s) {
    uint64_t r = next(s);
    size_t size = 16 + (r & 0x1f0);
    if (r & 0x30000) size = 16 + ((r >> 20) & 0x70);
    return size;
}

/* Two blocks from one malloc call, inlined into the caller (so that the call site, and the
 * stack that reaches it, are the caller's): the first touched and freed at once, the second
 * put in the ring, displacing (and freeing) the block of RING iterations before. */
static inline __attribute__((always_inline)) uint64_t two_blocks(struct state *s, uint64_t i,
                                                                 uint64_t v) {
    for (int k = 0; k < 2; k++) {
        size_t n = pick_size(s);
        char *p = malloc(n);
        if (!p) abort();
        if (k == 0) {
            memset(p, (int)i, n);
            v += (uint64_t)(unsigned char)p[n / 2];
            free(p);
        } else {
            p[0] = (char)i;
            p[n - 1] = (char)v;
            unsigned slot = s->pos++ % RING;
            free(s->ring[slot]);
            s->ring[slot] = p;
        }
    }
    return v;
}

#endif
