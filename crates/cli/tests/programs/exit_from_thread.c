// A second thread calls exit(5) while the main thread is blocked in pthread_join on it (the
// thread first waits until /proc shows main in the futex system call). The exiting thread
// leaked a 640-byte block and keeps a 320-byte block in a volatile local of a live frame (its
// stack is a root: still reachable); main's frame, blocked in pthread_join, holds the only
// pointer to a 160-byte block (still reachable too).
// The 272-byte possibly-lost block is the dynamic thread vector of the thread that called exit,
// alive at exit (see live_thread_stack.c).
// expect definitely_lost 640 1
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 480 2
// expect leak-function definitely_lost leak_in_worker
// expect leak-function still_reachable exit_holding
// expect leak-function still_reachable join_holding
// expect leak-function possibly_lost _dl_allocate_tls
// expect exit-code 5
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"

NOINLINE void leak_in_worker(void) {
    char *p = malloc(640);
    memset(p, 'w', 640);
    lose(p);
}

/* Wait (at most about 2 s) until the main thread is blocked in system call `number`, as
 * /proc/self/task/<pid>/syscall shows it. */
NOINLINE void wait_for_main_in_syscall(long number) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)getpid());
    for (int tries = 0; tries < 2000; tries++) {
        char text[32] = {0};
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, text, sizeof text - 1);
            close(fd);
            if (n > 0 && text[0] >= '0' && text[0] <= '9' && atol(text) == number)
                return;
        }
        usleep(1000);
    }
}

NOINLINE void exit_holding(void) {
    void *volatile held = malloc(320);
    memset(held, 'h', 320);
    scrub_stack();
    exit(5);
}

static void *worker(void *arg) {
    (void)arg;
    leak_in_worker();
    wait_for_main_in_syscall(SYS_futex);
    exit_holding();
    return NULL;
}

NOINLINE int join_holding(void) {
    void *volatile held = malloc(160);
    memset(held, 'j', 160);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    scrub_stack();
    pthread_join(thread, NULL);
    return 0;
}

int main(void) {
    int rc = join_holding();
    scrub_stack();
    return rc;
}
