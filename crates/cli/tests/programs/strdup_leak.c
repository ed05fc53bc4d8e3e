// A lost strdup copy: 39 characters plus the terminating NUL.
// expect definitely_lost 40 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost copy_name
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static const char *volatile name = "a name of exactly thirty-nine bytes....";

NOINLINE void copy_name(void) {
    char *copy = strdup(name);
    lose(copy);
}

int main(void) {
    copy_name();
    scrub_stack();
    return 0;
}
