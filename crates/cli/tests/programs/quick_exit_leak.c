// Ends with quick_exit(4): the at_quick_exit handlers run (the last registered first), atexit
// handlers and destructors do not, and the exit code is kept. A 135-byte block was lost before;
// leak_in_handler (registered last, so run first) loses a 246-byte block of its own, and
// keep_in_handler keeps a 357-byte block in a global (still reachable). The atexit handler that
// would free it (and exit with 99) never runs.
// expect definitely_lost 381 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 357 1
// expect leak-function definitely_lost leak_before_quick_exit
// expect leak-function definitely_lost leak_in_handler
// expect leak-function still_reachable keep_in_handler
// expect exit-code 4
#include <stdlib.h>

#include "fixture.h"

static void *volatile kept;
static void *volatile leaked;

NOINLINE void leak_before_quick_exit(void) {
    char *p = malloc(135);
    memset(p, 0, 135);
    lose(p);
}

NOINLINE void keep_in_handler(void) {
    char *p = malloc(357);
    memset(p, 0, 357);
    kept = p;
    scrub_stack();
}

NOINLINE void leak_in_handler(void) {
    char *p = malloc(246);
    memset(p, 0, 246);
    lose(p);
    scrub_stack();
}

static void free_everything(void) {
    free(kept);
    kept = NULL;
    exit(99); /* would change the exit code, had it run */
}

int main(void) {
    leak_before_quick_exit();
    if (at_quick_exit(keep_in_handler) != 0 || at_quick_exit(leak_in_handler) != 0 ||
        atexit(free_everything) != 0)
        return 1;
    scrub_stack();
    quick_exit(4);
}
