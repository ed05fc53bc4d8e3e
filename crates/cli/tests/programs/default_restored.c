// CPython, after an uncaught KeyboardInterrupt, sets SIGINT back to SIG_DFL with sigaction
// and raises it, so that its parent sees it die by SIGINT. Here the program's own SIGINT
// handler runs once, the default is restored, and a second SIGINT ends the process by
// signal 2: the leak is reported.
// expect definitely_lost 100 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_before_signal
// expect signal 2
#include <signal.h>
#include <stdlib.h>

#include "fixture.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signal) {
    (void)signal;
    interrupted = 1;
}

NOINLINE void leak_before_signal(void) {
    char *p = malloc(100);
    memset(p, 'b', 100);
    lose(p);
}

int main(void) {
    struct sigaction action, current;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = on_interrupt;
    sigaction(SIGINT, &action, NULL);
    raise(SIGINT);
    if (!interrupted)
        return 98;
    action.sa_handler = SIG_DFL;
    struct sigaction previous;
    sigaction(SIGINT, &action, &previous);
    sigaction(SIGINT, NULL, &current);
    if (previous.sa_handler != on_interrupt || current.sa_handler != SIG_DFL)
        return 97;
    leak_before_signal();
    scrub_stack();
    raise(SIGINT);
    return 95;
}
