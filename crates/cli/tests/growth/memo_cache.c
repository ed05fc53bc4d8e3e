// An unbounded memo cache keyed by request id: every request's result is kept forever.
// growing memoize cache_grow
// not-growing handle_request
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct entry { long key; char value[184]; struct entry *next; };
static struct entry **buckets;
static size_t bucket_count = 64, entries;

__attribute__((noinline)) static void cache_grow(void) {
    size_t count = bucket_count * 2;
    struct entry **fresh = calloc(count, sizeof *fresh);
    for (size_t i = 0; i < bucket_count; i++) {
        for (struct entry *e = buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = fresh[e->key % count];
            fresh[e->key % count] = e;
        }
    }
    free(buckets);
    buckets = fresh;
    bucket_count = count;
}

__attribute__((noinline)) static void memoize(long key, const char *value) {
    struct entry *e = malloc(sizeof *e);
    e->key = key;
    strncpy(e->value, value, sizeof e->value - 1);
    e->value[sizeof e->value - 1] = 0;
    e->next = buckets[key % bucket_count];
    buckets[key % bucket_count] = e;
    if (++entries > bucket_count * 2) cache_grow();
}

__attribute__((noinline)) static void handle_request(long id) {
    char *scratch = malloc(512);
    memset(scratch, 'x', 511);
    scratch[511] = 0;
    memoize(id, scratch + (id % 300));
    free(scratch);
}

int main(void) {
    buckets = calloc(bucket_count, sizeof *buckets);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long id = 0;; id++) {
        handle_request(id);
        usleep(500);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 4) break;
    }
    return 0;
}
