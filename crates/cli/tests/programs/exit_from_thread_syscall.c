// A second thread calls exit(6) while the main thread is blocked in a read() system call on a
// pipe that no one writes to (the thread first waits until /proc shows main in it). The main
// thread's live frame holds the only pointer to a 176-byte block (still reachable); the
// exiting thread leaked a 704-byte block.
// The 272-byte possibly-lost block is the dynamic thread vector of the thread that called exit,
// alive at exit (see live_thread_stack.c).
// expect definitely_lost 704 1
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 176 1
// expect leak-function definitely_lost leak_in_worker
// expect leak-function still_reachable read_holding
// expect leak-function possibly_lost _dl_allocate_tls
// expect exit-code 6
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"

NOINLINE void leak_in_worker(void) {
    char *p = malloc(704);
    memset(p, 'w', 704);
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

static void *worker(void *arg) {
    (void)arg;
    leak_in_worker();
    wait_for_main_in_syscall(SYS_read);
    scrub_stack();
    exit(6);
    return NULL;
}

NOINLINE int read_holding(void) {
    void *volatile held = malloc(176);
    memset(held, 'r', 176);
    int fds[2];
    if (pipe(fds) != 0)
        return 98;
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    scrub_stack();
    char byte;
    while (read(fds[0], &byte, 1) != 0) {
    }
    return 0;
}

int main(void) {
    int rc = read_holding();
    scrub_stack();
    return rc;
}
