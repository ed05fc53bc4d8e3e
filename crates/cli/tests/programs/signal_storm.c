// Signals keep arriving while the process exits, and so while the scan stops its threads: an
// interval timer raises SIGALRM every 100 microseconds (process-directed: any thread may take
// it), and a sender thread sends SIGUSR1 to main and to two worker threads, and queues
// real-time signals (SIGRTMIN + 1) to them, in a loop. One worker spins, one sleeps in
// nanosleep (interrupted again and again), and the handlers only count. Once every thread has
// taken signals, main calls exit while the storm goes on.
// A 1234-byte block was lost and a 4321-byte block kept in a global before the storm began.
// The three 272-byte possibly-lost blocks are the dynamic thread vectors of the three threads
// alive at exit (see live_thread_stack.c).
// expect definitely_lost 1234 1
// expect indirectly_lost 0 0
// expect possibly_lost 816 3
// expect still_reachable 4321 1
// expect leak-function definitely_lost lose_one
// expect leak-function still_reachable keep_one
// expect leak-function possibly_lost _dl_allocate_tls
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "fixture.h"

static void *volatile kept;
static volatile sig_atomic_t taken[3]; /* signals taken by main, the spinner, the sleeper */
static pthread_t targets[3];
static volatile int started;

static void on_signal(int signal) {
    (void)signal;
    pthread_t self = pthread_self();
    for (int i = 0; i < 3; i++)
        if (started >= 3 && pthread_equal(self, targets[i]))
            taken[i]++;
}

NOINLINE void lose_one(void) {
    char *p = malloc(1234);
    memset(p, 1, 1234);
    lose(p);
}

NOINLINE void keep_one(void) {
    char *p = malloc(4321);
    memset(p, 2, 4321);
    kept = p;
}

static void *spinner(void *arg) {
    (void)arg;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (volatile unsigned long n = 0;; n++) {
    }
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        struct timespec t = {0, 50 * 1000};
        nanosleep(&t, NULL);
    }
    return NULL;
}

static void *sender(void *arg) {
    (void)arg;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (unsigned n = 0;; n++) {
        pthread_t target = targets[n % 3];
        pthread_kill(target, SIGUSR1);
        union sigval value = {.sival_int = (int)n};
        pthread_sigqueue(target, SIGRTMIN + 1, value);
        sched_yield();
    }
    return NULL;
}

NOINLINE int start_storm(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGALRM, &action, NULL) != 0 || sigaction(SIGUSR1, &action, NULL) != 0 ||
        sigaction(SIGRTMIN + 1, &action, NULL) != 0)
        return 2;
    targets[0] = pthread_self();
    pthread_t thread;
    if (pthread_create(&targets[1], NULL, spinner, NULL) != 0 ||
        pthread_create(&targets[2], NULL, sleeper, NULL) != 0)
        return 3;
    struct itimerval every = {{0, 100}, {0, 100}};
    if (setitimer(ITIMER_REAL, &every, NULL) != 0)
        return 4;
    if (pthread_create(&thread, NULL, sender, NULL) != 0)
        return 5;
    while (started < 3 || taken[0] < 20 || taken[1] < 20 || taken[2] < 20)
        sched_yield();
    return 0;
}

int main(void) {
    lose_one();
    keep_one();
    scrub_stack();
    int rc = start_storm();
    scrub_stack();
    exit(rc);
}
