// Dynamic TLS, as in LeakSanitizer's use_tls_dynamic test: a library loaded with dlopen (its path
// is the first argument) has a __thread pointer, and both the main thread and a second thread
// store a block in it (plugin_tls_keep, in the library). The second thread is still alive
// (blocked in pause()) at exit.
// What memcheck reports, block by block:
// - the main thread's 1111-byte block: still reachable. ld.so allocates the library's TLS
//   block (8 bytes: the one pointer) with malloc on a thread's first access (__tls_get_addr),
//   and records it in the thread's dynamic thread vector. The main thread's vector was
//   allocated at start-up by ld.so's own allocator, outside the heap: it is a root, so the
//   8-byte TLS block and the 1111-byte block are still reachable;
// - the second thread's 2222-byte block: possibly lost. Its dynamic thread vector is a heap
//   block, possibly lost as for every live thread (the thread control block holds only an
//   interior pointer to it, see live_thread_stack.c), and here 288 bytes, not 272: glibc sizes
//   it (highest TLS module id + 16) * 16, and the library is TLS module 2 (libc is 1). What is
//   reached from a possibly lost block is possibly lost too: its 8-byte TLS block and the
//   2222-byte block are;
// - ld.so's 4 still-reachable blocks for the loaded library (see dlopen_leak.c): 1923 bytes,
//   not 1899, because the library's version table (96 bytes, not 72) has one more entry: it
//   needs GLIBC_2.3 from ld.so, for __tls_get_addr.
// Totals: possibly lost 288 + 8 + 2222 = 2518 in 3; still reachable 8 + 1111 + 1923 = 3042
// in 6.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 2518 3
// expect still_reachable 3042 6
// expect leak-function still_reachable plugin_tls_keep
// expect leak-function possibly_lost plugin_tls_keep
// expect leak-function possibly_lost __tls_get_addr
// expect leak-function still_reachable __tls_get_addr
// expect leak-function possibly_lost _dl_allocate_tls
// shared-lib support/tls_plugin.c
// args {shared-lib}
// build-extra -ldl
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

static void (*keep)(size_t);
static sem_t stored;

static void *worker(void *arg) {
    (void)arg;
    keep(2222);
    scrub_stack();
    sem_post(&stored);
    for (;;)
        pause();
    return NULL;
}

NOINLINE int load_and_keep(const char *path) {
    void *handle = dlopen(path, RTLD_NOW);
    if (handle == NULL)
        return 2;
    keep = (void (*)(size_t))dlsym(handle, "plugin_tls_keep");
    if (keep == NULL)
        return 3;
    keep(1111);
    return 0;
}

NOINLINE int start_worker(void) {
    pthread_t thread;
    sem_init(&stored, 0, 0);
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    while (sem_wait(&stored) != 0) {
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 1;
    int rc = load_and_keep(argv[1]);
    if (rc == 0)
        rc = start_worker();
    scrub_stack();
    return rc;
}
