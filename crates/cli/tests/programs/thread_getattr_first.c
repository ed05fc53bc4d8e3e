// Threads whose first allocation is the one glibc's pthread_getattr_np makes for itself, as
// every JVM thread's is (os::current_stack_base). pthread_getattr_np holds the thread's lock
// while it allocates, so an agent that asks it for the thread's stack from inside that
// allocation waits forever. Each of the three threads then leaks 48 bytes.
// expect definitely_lost 144 3
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_after_getattr
// build-extra -pthread
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_after_getattr(void) {
    char *p = malloc(48);
    memset(p, 'g', 48);
    lose(p);
}

static void *worker(void *arg) {
    (void)arg;
    pthread_attr_t attr;
    void *stack;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        abort();
    pthread_attr_getstack(&attr, &stack, &size);
    escape(stack);
    pthread_attr_destroy(&attr);
    leak_after_getattr();
    scrub_stack();
    return NULL;
}

int main(void) {
    for (int i = 0; i < 3; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker, NULL) != 0)
            return 99;
        pthread_join(thread, NULL);
    }
    scrub_stack();
    return 0;
}
