// Thread-local roots of a thread that is still alive (blocked in pause()) at exit, as in
// LeakSanitizer's use_tls_static and use_tls_pthread_specific_static/dynamic tests:
// - a __thread pointer of the program holds a 1100-byte block: the thread's static TLS lies
//   in its stack mapping, above its stack pointer, so it is a root: still reachable;
// - a pthread_setspecific value of the first key holds a 1200-byte block: glibc keeps the
//   values of the first 32 keys inside the thread descriptor (also in the stack mapping): still
//   reachable;
// - the value of a 41st key holds a 1300-byte block: glibc keeps the values of keys 32 and up
//   in second-level arrays it allocates with calloc (32 entries of 16 bytes: a 512-byte block)
//   and points to from the thread descriptor: the 512-byte array and the 1300-byte block are
//   still reachable.
// The possibly-lost block is the thread's dynamic thread vector (see live_thread_stack.c):
// 288 bytes, not 272, because the program has a TLS segment of its own (module 1; libc is 2).
// Totals: still reachable 1100 + 1200 + 512 + 1300 = 4112 in 4.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 288 1
// expect still_reachable 4112 4
// expect leak-function still_reachable keep_in_thread_locals
// expect leak-function possibly_lost _dl_allocate_tls
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

#define KEYS 41

static __thread void *volatile static_slot;
static pthread_key_t keys[KEYS];
static sem_t stored;

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x66, size);
    escape(p);
    return p;
}

NOINLINE void keep_in_thread_locals(void) {
    static_slot = make_block(1100);
    pthread_setspecific(keys[0], make_block(1200));
    pthread_setspecific(keys[KEYS - 1], make_block(1300));
}

static void *worker(void *arg) {
    (void)arg;
    keep_in_thread_locals();
    scrub_stack();
    sem_post(&stored);
    for (;;)
        pause();
    return NULL;
}

NOINLINE int start_worker(void) {
    for (int i = 0; i < KEYS; i++)
        if (pthread_key_create(&keys[i], NULL) != 0)
            return 2;
    sem_init(&stored, 0, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 3;
    while (sem_wait(&stored) != 0) {
    }
    return 0;
}

int main(void) {
    int rc = start_worker();
    scrub_stack();
    return rc;
}
