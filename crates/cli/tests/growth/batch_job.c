// A batch job that loads 512 MiB, uses it, frees it, then goes on working with little memory.
// High use is not a leak.
// growing none
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS 512
static char *chunks[CHUNKS];
void *volatile sink;

__attribute__((noinline)) static void load(void) {
    for (int i = 0; i < CHUNKS; i++) {
        chunks[i] = malloc(1 << 20);
        memset(chunks[i], i, 1 << 20);
        if (i % 64 == 0) usleep(50000);
    }
}

__attribute__((noinline)) static void release(void) {
    for (int i = 0; i < CHUNKS; i++) free(chunks[i]);
}

__attribute__((noinline)) static void small_work(int i) {
    char *p = malloc(64 + i % 64);
    sink = p;
    free(p);
}

int main(void) {
    usleep(300000);
    load();
    usleep(500000);
    release();
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0;; i++) {
        small_work(i);
        usleep(200);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 3) break;
    }
    return 0;
}
