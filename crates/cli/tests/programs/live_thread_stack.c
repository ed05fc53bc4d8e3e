// The only pointer to a block is a volatile local on the stack of a second thread, which is
// still alive (blocked in pause()) when main returns: thread stacks are roots, so the block is
// still reachable.
// The 272-byte possibly-lost block is glibc's, not ours: pthread_create allocates the thread's
// dynamic thread vector (allocate_dtv, calloc in ld.so) and keeps only dtv + 1 (an interior
// pointer, 16 bytes in) in the thread control block; while the thread lives, memcheck finds
// only that interior pointer. (For a joined thread, libc's cleanup at exit frees it.)
// Its stack is checked through _dl_allocate_tls, ld.so's exported name: the pthread_create
// frame has aliases (memcheck prints pthread_create@@GLIBC_2.34, others __pthread_create_2_1).
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 700 1
// expect leak-function still_reachable hold_on_stack
// expect leak-function possibly_lost _dl_allocate_tls
// build-extra -pthread
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

static sem_t stored;

NOINLINE void hold_on_stack(void) {
    void *volatile held = malloc(700);
    memset(held, 0, 700);
    sem_post(&stored);
    for (;;)
        pause();
}

static void *worker(void *arg) {
    (void)arg;
    hold_on_stack();
    return NULL;
}

int main(void) {
    pthread_t thread;
    sem_init(&stored, 0, 0);
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    while (sem_wait(&stored) != 0) {
    }
    scrub_stack();
    return 0;
}
