// parse_config() allocates a buffer and returns early on invalid input without freeing it;
// the program then reports the error with exit code 1.
// expect definitely_lost 256 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost parse_config
// expect exit-code 1
// args not-a-number
#include <stdlib.h>

#include "fixture.h"

NOINLINE int parse_config(const char *text) {
    char *buffer = malloc(256);
    strncpy(buffer, text, 255);
    buffer[255] = '\0';
    escape(buffer);
    if (buffer[0] < '0' || buffer[0] > '9')
        return -1; /* the bug: buffer is not freed on this path */
    int value = atoi(buffer);
    free(buffer);
    return value;
}

int main(int argc, char **argv) {
    int rc = parse_config(argc > 1 ? argv[1] : "42") < 0 ? 1 : 0;
    scrub_stack();
    return rc;
}
