// Loads a shared library with dlopen (its path is the first argument), calls a function in it
// that leaks, and keeps the library loaded so that its frames can be named.
// The 4 still-reachable blocks are ld.so's own records of the loaded library (its link_map, a
// copy of its path, its origin directory, its version table), reachable from ld.so's globals.
// Three of them hold the path, so their sizes grow with it: 3 * (len + 1) + 1296 bytes with
// Debian 12's glibc. The harness therefore always passes a path of exactly 200 bytes
// ({shared-lib} is padded to that length): 3 * 201 + 1296 = 1899.
// expect definitely_lost 777 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 1899 4
// expect leak-function definitely_lost plugin_leak
// shared-lib support/plugin.c
// args {shared-lib}
// build-extra -ldl
#include <dlfcn.h>
#include <stdlib.h>

#include "fixture.h"

NOINLINE int call_plugin(const char *path) {
    void *handle = dlopen(path, RTLD_NOW);
    if (handle == NULL)
        return 2;
    void (*leak)(void) = (void (*)(void))dlsym(handle, "plugin_leak");
    if (leak == NULL)
        return 3;
    leak();
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 1;
    int rc = call_plugin(argv[1]);
    scrub_stack();
    return rc;
}
