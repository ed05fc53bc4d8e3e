// A SIGSEGV that the program survives, as in valgrind's leak-segv-jmp test: probe(3) recurses
// down to probe(0), each frame allocating a block of 200 + depth bytes whose only pointer is a
// volatile local of that frame; probe(0) reads a PROT_NONE page, and the program's SIGSEGV
// handler siglongjmps back to catch_fault, popping the handler's frame and the 4 probe frames:
// their blocks are definitely lost. A 2048-byte block kept in a global is still reachable. The
// program then exits normally. (memcheck also prints an "Invalid read" error, which is not a
// leak.) No stdio, so that the exit code alone says the fault was caught.
// Totals: definitely lost 200 + 201 + 202 + 203 = 806 in 4.
// expect definitely_lost 806 4
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 2048 1
// expect leak-function definitely_lost probe
// expect leak-function still_reachable keep_one
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "fixture.h"

static sigjmp_buf back;
static volatile char *forbidden;
static void *volatile kept;

static void on_segv(int signal) {
    (void)signal;
    siglongjmp(back, 1);
}

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x55, size);
    escape(p);
    return p;
}

NOINLINE void keep_one(void) { kept = make_block(2048); }

NOINLINE int probe(int depth) {
    void *volatile mine = make_block(200 + depth);
    escape((const void *)&mine);
    if (depth == 0) {
        scrub_stack();
        return forbidden[100];
    }
    int r = probe(depth - 1);
    fixture_sink = NULL; /* no tail call */
    return r;
}

NOINLINE int catch_fault(void) {
    forbidden = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (forbidden == MAP_FAILED)
        return 2;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_segv;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0)
        return 3;
    if (sigsetjmp(back, 1) == 0) {
        probe(3);
        return 4; /* not reached */
    }
    return 0;
}

int main(void) {
    keep_one();
    int rc = catch_fault();
    scrub_stack();
    return rc;
}
