// Loads a library with dlopen (its path is the first argument), calls two of its functions,
// then unloads it with dlclose before exiting. unload_leak leaks an 888-byte block: its
// allocation stack begins in code that is no longer mapped at exit, so memcheck, which drops
// a library's debug information when it is unmapped, prints "???" for that frame; the frames
// of the program below it (call_and_close, main) keep their names. unload_cache_fill keeps a
// 999-byte block in a global of the library: reachable while the library is loaded, definitely
// lost once dlclose unmaps the library's data segment.
// ld.so frees its records of the library on dlclose: none is left (compare dlopen_leak.c).
// expect definitely_lost 1887 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost call_and_close
// shared-lib support/unload_plugin.c
// args {shared-lib}
// build-extra -ldl
#include <dlfcn.h>
#include <stdlib.h>

#include "fixture.h"

NOINLINE int call_and_close(const char *path) {
    void *handle = dlopen(path, RTLD_NOW);
    if (handle == NULL)
        return 2;
    void (*leak)(void) = (void (*)(void))dlsym(handle, "unload_leak");
    void (*fill)(void) = (void (*)(void))dlsym(handle, "unload_cache_fill");
    if (leak == NULL || fill == NULL)
        return 3;
    leak();
    fill();
    if (dlclose(handle) != 0)
        return 4;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 1;
    int rc = call_and_close(argv[1]);
    scrub_stack();
    return rc;
}
