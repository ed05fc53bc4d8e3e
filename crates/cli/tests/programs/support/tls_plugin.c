/* The shared library that dlopen_tls.c loads: a __thread pointer variable, so that the library
 * has a TLS segment of its own, allocated by ld.so on each thread's first access (dynamic TLS,
 * from __tls_get_addr, because the library is loaded after start-up). */
#include <stdlib.h>
#include <string.h>

__thread void *plugin_slot;

__attribute__((noipa)) void plugin_tls_keep(size_t size) {
    char *p = malloc(size);
    memset(p, 't', size);
    plugin_slot = p;
}
