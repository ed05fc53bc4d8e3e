/* churn: malloc/free churn of mixed small sizes (16..512 bytes) through a chain of 15
 * distinct noinline functions, on N threads that each do the same amount of work.
 *
 *   churn THREADS ITERATIONS
 *
 * Each iteration descends the chain (chain_01 -> ... -> chain_15 -> leaf) and the leaf
 * makes a short-lived block (freed at once) and a longer-lived one that goes into a
 * per-thread ring of 256 slots, displacing (and freeing) the block allocated 256 steps
 * earlier. Every 8th iteration the leaf also reallocs its ring block, and the chain is
 * entered through one of two tops so that the program has a few distinct stacks.
 * Nothing is leaked: the rings are emptied at the end. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

NOINLINE static uint64_t leaf(struct state *s, uint64_t i) {
    size_t a = pick_size(s);
    char *tmp = malloc(a);
    if (!tmp) abort();
    memset(tmp, (int)i, a);
    uint64_t v = (uint64_t)tmp[a / 2];
    free(tmp);

    size_t b = pick_size(s);
    unsigned slot = s->pos++ % RING;
    free(s->ring[slot]);
    char *keep = malloc(b);
    if (!keep) abort();
    keep[0] = (char)i;
    keep[b - 1] = (char)v;
    if ((i & 7) == 0) {
        size_t c = pick_size(s);
        keep = realloc(keep, c);
        if (!keep) abort();
        b = c;
    }
    s->ring[slot] = keep;
    s->ring_size[slot] = b;
    return v + (uint64_t)keep[0];
}

/* Each link does a little work after the call so that the compiler cannot turn the call
 * into a jump (a sibling call would drop the frame). */
#define LINK(name, callee, k)                                            \
    NOINLINE static uint64_t name(struct state *s, uint64_t i) {        \
        uint64_t r = callee(s, i + (k));                                 \
        __asm__ volatile("" : "+r"(r));                                  \
        return r ^ (k);                                                  \
    }

LINK(chain_15, leaf, 15)
LINK(chain_14, chain_15, 14)
LINK(chain_13, chain_14, 13)
LINK(chain_12, chain_13, 12)
LINK(chain_11, chain_12, 11)
LINK(chain_10, chain_11, 10)
LINK(chain_09, chain_10, 9)
LINK(chain_08, chain_09, 8)
LINK(chain_07, chain_08, 7)
LINK(chain_06, chain_07, 6)
LINK(chain_05, chain_06, 5)
LINK(chain_04, chain_05, 4)
LINK(chain_03, chain_04, 3)
LINK(chain_02, chain_03, 2)
LINK(chain_01, chain_02, 1)
LINK(top_a, chain_01, 21)
LINK(top_b, chain_03, 22)

struct job {
    long iterations;
    unsigned seed;
    uint64_t result;
};

NOINLINE static void *worker(void *arg) {
    struct job *job = arg;
    struct state *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->rng = 0x9e3779b97f4a7c15ull * (job->seed + 1);
    for (long i = 0; i < job->iterations; i++) {
        if ((i & 3) == 3)
            s->sum += top_b(s, (uint64_t)i);
        else
            s->sum += top_a(s, (uint64_t)i);
    }
    for (unsigned k = 0; k < RING; k++) free(s->ring[k]);
    job->result = s->sum;
    free(s);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    long iterations = argc > 2 ? atol(argv[2]) : 1000000;
    if (threads < 1 || threads > 64 || iterations < 1) {
        fprintf(stderr, "usage: churn THREADS ITERATIONS\n");
        return 2;
    }
    struct job jobs[64];
    pthread_t ids[64];
    for (int t = 0; t < threads; t++) {
        jobs[t].iterations = iterations;
        jobs[t].seed = (unsigned)t;
        if (threads == 1) {
            worker(&jobs[t]);
        } else if (pthread_create(&ids[t], NULL, worker, &jobs[t]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    uint64_t total = 0;
    for (int t = 0; t < threads; t++) {
        if (threads > 1) pthread_join(ids[t], NULL);
        total += jobs[t].result;
    }
    printf("churn: %d thread(s) x %ld iterations, checksum %llu\n", threads, iterations,
           (unsigned long long)total);
    return 0;
}
