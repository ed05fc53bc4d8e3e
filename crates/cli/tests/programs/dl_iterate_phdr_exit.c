// main returns while a second thread is inside a dl_iterate_phdr callback (blocked in pause()
// there), so that the thread holds ld.so's lock on the list of loaded objects until the end.
// Nothing in exit needs that lock (its destructor pass takes another one): natively and under
// memcheck the process ends at once. A tool must not call dl_iterate_phdr (or anything else
// that takes the loader's locks) on its exit path, or it waits forever.
// A 1357-byte block was lost and a 2468-byte block is kept by the callback's live frame (still
// reachable). The 272-byte possibly-lost block is the thread's dynamic thread vector (see
// live_thread_stack.c).
// expect definitely_lost 1357 1
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 2468 1
// expect leak-function definitely_lost lose_one
// expect leak-function still_reachable hold_in_callback
// expect leak-function possibly_lost _dl_allocate_tls
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

static sem_t inside;

NOINLINE void lose_one(void) {
    char *p = malloc(1357);
    memset(p, 1, 1357);
    lose(p);
}

NOINLINE int hold_in_callback(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info;
    (void)size;
    (void)data;
    void *volatile held = malloc(2468);
    memset(held, 2, 2468);
    scrub_stack();
    sem_post(&inside);
    for (;;)
        pause();
    return 0;
}

static void *worker(void *arg) {
    (void)arg;
    dl_iterate_phdr(hold_in_callback, NULL);
    return NULL;
}

NOINLINE int start_worker(void) {
    sem_init(&inside, 0, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 2;
    while (sem_wait(&inside) != 0) {
    }
    return 0;
}

int main(void) {
    lose_one();
    int rc = start_worker();
    scrub_stack();
    return rc;
}
