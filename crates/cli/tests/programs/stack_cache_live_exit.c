// A second thread is started first and stays alive (blocked in pause()) until the end. Then a
// thread ends (joined) and leaves the only pointer to a 616-byte block at the bottom of an
// 8 KiB volatile array in a popped frame of its stack; glibc keeps that stack, with the ended
// thread's dynamic thread vector, in its cache for reuse; main returns. memcheck runs libc's
// cleanup (__libc_freeres) anyway, once the other threads are gone: it unmaps the cached stack
// and frees the ended thread's vector. So the 616-byte block is definitely lost, and the one
// possibly-lost 272-byte block is the live thread's dynamic thread vector (see
// live_thread_stack.c). A tool that cannot run that cleanup while a thread lives must leave
// out what it would have freed, and not read a cached stack as a root.
// expect definitely_lost 616 1
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 0 0
// expect leak-function definitely_lost leave_stale_pointer
// expect leak-function possibly_lost _dl_allocate_tls
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

static sem_t sleeping;

NOINLINE void leave_stale_pointer(size_t size) {
    void *volatile area[1024];
    memset((void *)area, 0, sizeof area);
    char *p = malloc(size);
    memset(p, 6, size);
    area[0] = p; /* the lowest address of the area: deeper than the thread's exit path reaches */
    escape((const void *)area);
    fixture_sink = NULL; /* no tail call */
}

static void *ending(void *arg) {
    (void)arg;
    leave_stale_pointer(616);
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    scrub_stack();
    sem_post(&sleeping);
    for (;;)
        pause();
    return NULL;
}

NOINLINE int run_threads(void) {
    pthread_t ended, alive;
    sem_init(&sleeping, 0, 0);
    if (pthread_create(&alive, NULL, sleeper, NULL) != 0)
        return 2;
    while (sem_wait(&sleeping) != 0) {
    }
    if (pthread_create(&ended, NULL, ending, NULL) != 0 || pthread_join(ended, NULL) != 0)
        return 3;
    return 0;
}

int main(void) {
    int rc = run_threads();
    scrub_stack();
    return rc;
}
