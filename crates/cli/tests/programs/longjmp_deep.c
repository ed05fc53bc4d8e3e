// longjmp out of deep frames that allocated: descend(7) recurses down to descend(0), each frame
// allocating a block of 100 + depth bytes whose only pointer is a volatile local of that frame,
// and the frames of even depth also a block of 1000 + depth bytes kept in a global array.
// descend(0) longjmps back to jump_out's setjmp: the 8 frames are gone, their blocks definitely
// lost (memcheck marks the stack that longjmp pops unaddressable); the 4 kept blocks are still
// reachable.
// Totals: definitely lost 100 + ... + 107 = 828 in 8; still reachable 1000 + 1002 + 1004 + 1006
// = 4012 in 4.
// expect definitely_lost 828 8
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 4012 4
// expect leak-function definitely_lost descend
// expect leak-function still_reachable descend
// expect leak-function definitely_lost jump_out
#include <setjmp.h>
#include <stdlib.h>

#include "fixture.h"

static jmp_buf back;
static void *volatile kept[4];

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x44, size);
    escape(p);
    return p;
}

NOINLINE void descend(int depth) {
    void *volatile mine = make_block(100 + depth);
    escape((const void *)&mine);
    if (depth % 2 == 0)
        kept[depth / 2] = make_block(1000 + depth);
    if (depth == 0) {
        scrub_stack();
        longjmp(back, 1);
    }
    descend(depth - 1);
    fixture_sink = NULL; /* no tail call */
}

NOINLINE int jump_out(void) {
    if (setjmp(back) == 0) {
        descend(7);
        return 1; /* not reached */
    }
    return 0;
}

int main(void) {
    int rc = jump_out();
    scrub_stack();
    return rc;
}
