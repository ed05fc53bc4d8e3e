// makecontext/swapcontext coroutines whose stacks are heap blocks (256 KiB each), as in
// LeakSanitizer's swapcontext test. The program exits while one coroutine is suspended.
// - The live coroutine allocates a 2000-byte block, keeps its only pointer in a volatile local
//   of its own frame and switches back to main, never to be resumed. Its stack block stays
//   reachable from a global (and from its saved context), and the pointer lies above the
//   coroutine's saved stack pointer: the 262144-byte stack and the 2000-byte block are still
//   reachable.
// - The dead coroutine allocates a 3000-byte block, keeps its only pointer in its own frame,
//   and returns (its context's uc_link resumes main); main frees its stack: the block is
//   definitely lost.
// Every switch goes through main (never from one heap stack straight to the other): valgrind
// tells a stack switch from a large frame by the distance the stack pointer jumps.
// expect definitely_lost 3000 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 264144 2
// expect leak-function definitely_lost leak_in_coroutine
// expect leak-function still_reachable hold_in_coroutine
// expect leak-function still_reachable run_coroutines
#include <stdlib.h>
#include <ucontext.h>

#include "fixture.h"

#define STACK_SIZE (256 * 1024)

static ucontext_t main_context, live_context, dead_context;
static void *volatile live_stack;

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x33, size);
    escape(p);
    return p;
}

NOINLINE void hold_in_coroutine(void) {
    void *volatile held = make_block(2000);
    escape((const void *)&held);
    scrub_stack();
    swapcontext(&live_context, &main_context);
    abort(); /* never resumed */
}

static void live_body(void) { hold_in_coroutine(); }

NOINLINE void leak_in_coroutine(void) {
    void *volatile held = make_block(3000);
    escape((const void *)&held);
    scrub_stack();
    fixture_sink = NULL; /* no tail call */
}

static void dead_body(void) { leak_in_coroutine(); }

NOINLINE int start(ucontext_t *context, void *stack, void (*body)(void)) {
    if (getcontext(context) != 0)
        return 2;
    context->uc_stack.ss_sp = stack;
    context->uc_stack.ss_size = STACK_SIZE;
    context->uc_link = &main_context;
    makecontext(context, body, 0);
    return swapcontext(&main_context, context) == 0 ? 0 : 3;
}

NOINLINE int run_coroutines(void) {
    live_stack = malloc(STACK_SIZE);
    int rc = start(&live_context, live_stack, live_body);
    if (rc != 0)
        return rc;
    void *dead_stack = malloc(STACK_SIZE);
    rc = start(&dead_context, dead_stack, dead_body);
    free(dead_stack);
    return rc;
}

int main(void) {
    int rc = run_coroutines();
    scrub_stack();
    return rc;
}
