/* The shared library that dlclose_leak.c loads and unloads. */
#include <stdlib.h>
#include <string.h>

void *volatile unload_sink;
void *volatile unload_cache;

/* Leaks a block: once the library is unloaded, the innermost frame of its stack lies in code
 * that is no longer mapped. */
__attribute__((noipa)) void unload_leak(void) {
    char *p = malloc(888);
    memset(p, 'u', 888);
    unload_sink = p;
    unload_sink = NULL;
}

/* Keeps a block in the library's own global: reachable while the library is loaded, lost when
 * its data segment is unmapped. */
__attribute__((noipa)) void unload_cache_fill(void) {
    char *p = malloc(999);
    memset(p, 'c', 999);
    unload_cache = p;
}
