// Leaks, then ends with _exit(3): no atexit handlers run, and the exit code is kept.
// expect definitely_lost 123 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_before_exit
// expect exit-code 3
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

NOINLINE void leak_before_exit(void) {
    char *p = malloc(123);
    memset(p, 0, 123);
    lose(p);
}

int main(void) {
    leak_before_exit();
    scrub_stack();
    _exit(3);
}
