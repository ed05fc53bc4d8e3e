/* The shared library that dlopen_leak.c loads (built by the harness with -shared -fPIC). */
#include <stdlib.h>
#include <string.h>

void *volatile plugin_sink;

__attribute__((noipa)) void plugin_leak(void) {
    char *p = malloc(777);
    memset(p, 'p', 777);
    plugin_sink = p;
    plugin_sink = NULL;
}
