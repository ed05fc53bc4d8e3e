// A second thread blocks every signal with a raw rt_sigprocmask system call (glibc's
// sigprocmask and pthread_sigmask leave its two internal signals, 32 and 33, unblocked; the raw
// call blocks everything but SIGKILL and SIGSTOP) and then waits in a raw read system call on a
// pipe that no one writes to, holding the only pointer to an 888-byte block in a volatile local
// of a live frame. main then returns. The thread cannot be stopped by any signal, so a tool
// that stops threads with one cannot take its registers or its stack pointer; memcheck (which
// runs every thread itself) counts its stack above its stack pointer: the block is still
// reachable. leakscope must say that it could not stop the thread, and still find the block on
// that thread's stack: scrub_stack runs on the thread before it blocks, so everything below its
// stack pointer is zero, and reading the thread's whole stack finds what memcheck finds.
// A 999-byte block was lost before. The 272-byte possibly-lost block is the thread's dynamic
// thread vector (see live_thread_stack.c).
// expect definitely_lost 999 1
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 888 1
// expect leak-function definitely_lost lose_one
// expect leak-function still_reachable block_everything_and_wait
// expect leak-function possibly_lost _dl_allocate_tls
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"

static int pipe_fds[2];
static sem_t blocked;

NOINLINE void lose_one(void) {
    char *p = malloc(999);
    memset(p, 9, 999);
    lose(p);
}

NOINLINE void block_everything_and_wait(void) {
    void *volatile held = malloc(888);
    memset(held, 8, 888);
    unsigned long all = ~0UL;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, sizeof all);
    scrub_stack();
    sem_post(&blocked);
    char byte;
    while (syscall(SYS_read, pipe_fds[0], &byte, 1) != 0) {
    }
    fixture_sink = NULL; /* no tail call */
}

static void *worker(void *arg) {
    (void)arg;
    block_everything_and_wait();
    return NULL;
}

NOINLINE int start_worker(void) {
    if (pipe(pipe_fds) != 0)
        return 2;
    sem_init(&blocked, 0, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 3;
    while (sem_wait(&blocked) != 0) {
    }
    return 0;
}

int main(void) {
    lose_one();
    int rc = start_worker();
    scrub_stack();
    return rc;
}
