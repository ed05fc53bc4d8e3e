// Threads that have ended leave their stacks behind, with whatever they left in them. Two
// threads each keep the only pointer to a block (616 and 727 bytes) at the bottom of an 8 KiB
// volatile array of a frame, return from it and end: the functions that end a thread run in
// shallower frames and do not overwrite it. The first runs on a stack the program mapped
// itself (pthread_attr_setstack) and is joined: its stack stays mapped to the end. The second
// runs on a stack of glibc's and is detached; main waits until its /proc/self/task entry is
// gone, then returns. glibc keeps the stacks of ended threads for reuse, but libc's cleanup at
// exit (__libc_freeres, which memcheck runs) unmaps them. Either way the pointers lie in popped
// frames of stacks that no thread runs on: memcheck counts neither, so both blocks are
// definitely lost (and, the threads being gone, glibc has freed their dynamic thread vectors).
// A scan that reads the program's mapping as a plain root, with no stack pointer in it, finds
// the first pointer.
// expect definitely_lost 1343 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leave_stale_pointer
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"

#define STACK_SIZE (256 * 1024)

NOINLINE void leave_stale_pointer(size_t size) {
    void *volatile area[1024];
    memset((void *)area, 0, sizeof area);
    char *p = malloc(size);
    memset(p, 6, size);
    area[0] = p; /* the lowest address of the area: deeper than the thread's exit path reaches */
    escape((const void *)area);
    fixture_sink = NULL; /* no tail call */
}

static volatile int detached_tid;

static void *worker(void *arg) {
    if ((size_t)arg == 727)
        detached_tid = (int)syscall(SYS_gettid);
    leave_stale_pointer((size_t)arg);
    return NULL;
}

/* Has the thread with this id ended? (Its /proc/self/task entry is gone.) */
NOINLINE int thread_gone(int tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", tid);
    return access(path, F_OK) != 0;
}

NOINLINE int run_threads(void) {
    pthread_t joined, detached;
    pthread_attr_t own;
    pthread_attr_init(&own);
    void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED || pthread_attr_setstack(&own, stack, STACK_SIZE) != 0)
        return 1;
    if (pthread_create(&joined, &own, worker, (void *)616) != 0)
        return 2;
    if (pthread_join(joined, NULL) != 0)
        return 3;
    if (pthread_create(&detached, NULL, worker, (void *)727) != 0)
        return 4;
    if (pthread_detach(detached) != 0)
        return 5;
    for (int tries = 0; detached_tid == 0 || !thread_gone(detached_tid); tries++) {
        if (tries == 5000)
            return 6;
        usleep(1000);
    }
    return 0;
}

int main(void) {
    int rc = run_threads();
    scrub_stack();
    return rc;
}
