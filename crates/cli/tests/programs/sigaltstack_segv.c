// The program's own SIGSEGV handler runs on an alternate signal stack (sigaltstack, 64 KiB in
// .bss), resets SIGSEGV to its default action and raises it again from inside the handler
// (SA_NODEFER): the process dies by signal 11 while its only thread runs on the alternate
// stack, as crash reporters do. At that moment:
// - a 999-byte block was lost before anything else (definitely lost);
// - hold_and_crash's live frame on the thread's own stack, above the faulting stack pointer,
//   holds the only pointer to a 555-byte block: still reachable;
// - leave_stale_pointer, called by hold_and_crash just before the fault, left the only pointer
//   to a 777-byte block in its popped frame, about 32 KiB below the faulting stack pointer:
//   memcheck marks popped frames unaddressable and switching to the alternate stack does not
//   change that, so the block is definitely lost. (A scan that finds no stack pointer inside
//   the thread's stack, because the thread runs on the alternate stack, must not read the
//   thread's whole stack.)
// No stdio: after a fatal signal memcheck does not run libc's cleanup.
// Totals: definitely lost 999 + 777 = 1776 in 2; still reachable 555 in 1.
// expect definitely_lost 1776 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 555 1
// expect leak-function definitely_lost lose_first
// expect leak-function definitely_lost leave_stale_pointer
// expect leak-function still_reachable hold_and_crash
// expect signal 11
#include <signal.h>
#include <stdlib.h>

#include "fixture.h"

static int *volatile nowhere;
static char alternate_stack[64 * 1024];

static void on_segv(int signal) {
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal, &fallback, NULL);
    raise(signal);
}

NOINLINE void lose_first(void) {
    char *p = malloc(999);
    memset(p, 1, 999);
    lose(p);
}

NOINLINE int install_handler(void) {
    stack_t alternate;
    memset(&alternate, 0, sizeof alternate);
    alternate.ss_sp = alternate_stack;
    alternate.ss_size = sizeof alternate_stack;
    if (sigaltstack(&alternate, NULL) != 0)
        return 2;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_segv;
    action.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGSEGV, &action, NULL) == 0 ? 0 : 3;
}

NOINLINE void leave_stale_pointer(void) {
    void *volatile area[4096];
    memset((void *)area, 0, sizeof area);
    char *p = malloc(777);
    memset(p, 7, 777);
    area[0] = p;
    escape((const void *)area);
    scrub_stack();
    fixture_sink = NULL; /* no tail call */
}

NOINLINE void crash(void) { *nowhere = 42; }

NOINLINE void hold_and_crash(void) {
    void *volatile held = malloc(555);
    memset(held, 5, 555);
    leave_stale_pointer();
    crash();
    fixture_sink = NULL; /* no tail call */
}

int main(void) {
    lose_first();
    scrub_stack();
    if (install_handler() != 0)
        return 1;
    hold_and_crash();
    return 0;
}
