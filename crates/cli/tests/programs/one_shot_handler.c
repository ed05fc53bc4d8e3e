// Node.js handles SIGINT and SIGTERM with a one-shot handler (SA_RESETHAND: the kernel resets
// the action to the default as it runs it) that restores the terminal and raises the signal
// again. Here the handler leaks a block and raises SIGTERM: the process dies by SIGTERM (15),
// and both leaks are reported. sigaction tells the program its own handler and flags back.
// expect definitely_lost 300 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_in_handler
// expect leak-function definitely_lost leak_before_signal
// expect signal 15
#include <signal.h>
#include <stdlib.h>

#include "fixture.h"

NOINLINE void leak_in_handler(void) {
    char *p = malloc(200);
    memset(p, 'h', 200);
    lose(p);
}

NOINLINE void leak_before_signal(void) {
    char *p = malloc(100);
    memset(p, 'b', 100);
    lose(p);
}

static void on_terminate(int signal) {
    leak_in_handler();
    scrub_stack();
    raise(signal); // blocked while the handler runs: delivered when it returns
}

int main(void) {
    struct sigaction action, current;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = on_terminate;
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGTERM, NULL, &current);
    if (current.sa_handler != on_terminate || !(current.sa_flags & SA_RESETHAND))
        return 96;
    leak_before_signal();
    scrub_stack();
    raise(SIGTERM);
    return 95;
}
