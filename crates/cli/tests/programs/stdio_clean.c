// Uses stdio (printf to a buffered stdout, fprintf to stderr, a line read from stdin if any):
// libc's stdio buffers are freed at exit by __libc_freeres under memcheck and must not be
// reported. Nothing else is allocated.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
#include <stdio.h>

#include "fixture.h"

NOINLINE void chatter(void) {
    char line[128];
    for (int i = 0; i < 50; i++)
        printf("line %d of buffered output\n", i);
    fprintf(stderr, "a message on stderr\n");
    if (fgets(line, sizeof line, stdin) != NULL)
        printf("read: %s", line);
    fflush(stdout);
}

int main(void) {
    chatter();
    scrub_stack();
    return 0;
}
