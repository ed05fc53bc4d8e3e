// A second thread leaks a block and is joined before main returns.
// expect definitely_lost 2048 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_in_worker
// build-extra -pthread
#include <pthread.h>
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_in_worker(void) {
    char *p = malloc(2048);
    memset(p, 'w', 2048);
    lose(p);
}

static void *worker(void *arg) {
    (void)arg;
    leak_in_worker();
    scrub_stack();
    return NULL;
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    pthread_join(thread, NULL);
    scrub_stack();
    return 0;
}
