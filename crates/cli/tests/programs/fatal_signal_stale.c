// A lost block, then a fatal SIGSEGV right after a call returned: the process dies by signal
// 11, and memcheck reports the block definitely lost. leak_into_dead_frame keeps the only
// pointer to its 333-byte block in a volatile local and returns; main then calls crash, which
// writes through a null pointer. The stale pointer is still in leak_into_dead_frame's popped
// frame, 16 to 24 bytes below crash's stack pointer: inside the 128-byte red zone below the
// interrupted stack pointer. memcheck does not count it: at every call and return it marks the
// red zone below the new stack pointer undefined (VEX's ABI hint), so only what a leaf function
// stores into its red zone after its last call is a root. (scrub_stack runs first, clears the
// caller-saved registers, and wipes the stack below leak_into_dead_frame, never its own frame.)
// expect definitely_lost 333 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_into_dead_frame
// expect signal 11
#include <stdlib.h>

#include "fixture.h"

static int *volatile nowhere;

NOINLINE void leak_into_dead_frame(void) {
    void *volatile slot = malloc(333);
    memset(slot, 0, 333);
    escape(slot);
    scrub_stack();
    fixture_sink = NULL; /* no tail call: scrub_stack must not run over this frame */
}

NOINLINE void crash(void) { *nowhere = 42; }

int main(void) {
    scrub_stack();
    leak_into_dead_frame();
    crash();
    return 0;
}
