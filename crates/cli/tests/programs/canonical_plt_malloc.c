// A position-dependent executable (-no-pie) that takes malloc's address in its code: the linker
// then gives malloc's undefined symbol the address of the executable's PLT entry (a canonical
// PLT entry, so that malloc has one address everywhere), and dlsym(RTLD_DEFAULT, "malloc")
// returns that entry, in the executable. The program does not define malloc: the entry jumps
// to the agent's, and every allocation is tracked (node 20's official binary is built so).
// expect definitely_lost 40 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost allocate_through_pointer
// build-extra -no-pie -fno-pic
#include <stdlib.h>

#include "fixture.h"

static void *(*volatile allocate)(size_t);

NOINLINE void allocate_through_pointer(void) {
    char *p = allocate(40);
    memset(p, 'p', 40);
    lose(p);
}

int main(void) {
    allocate = malloc;
    allocate_through_pointer();
    scrub_stack();
    return 0;
}
