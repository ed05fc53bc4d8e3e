// A thread that is alive at exit, stopped with a stale pointer just below its stack pointer.
// The worker calls leave_stale_pointer, which keeps the only pointer to a 432-byte block in a
// volatile local and returns; the worker then calls wait_in_leaf, an assembly leaf function
// without a frame that sets `waiting` and loops on the pause system call. So the thread's stack
// pointer stays 8 bytes below the worker's, and the stale pointer lies in the popped frame of
// leave_stale_pointer, less than 128 bytes below it: in the red zone. memcheck marks the red
// zone below the new stack pointer undefined at every call and return, so the block is
// definitely lost (see fatal_signal_stale.c for the same case on a fatal signal).
// The 272-byte possibly-lost block is the thread's dynamic thread vector (see
// live_thread_stack.c).
// expect definitely_lost 432 1
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 0 0
// expect leak-function definitely_lost leave_stale_pointer
// expect leak-function possibly_lost _dl_allocate_tls
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "fixture.h"

volatile int waiting;

NOINLINE void leave_stale_pointer(void) {
    void *volatile slot = malloc(432);
    memset(slot, 4, 432);
    escape(slot);
    scrub_stack();
    fixture_sink = NULL; /* no tail call: scrub_stack must not run over this frame */
}

/* void wait_in_leaf(void): never returns. */
void wait_in_leaf(void);
__asm__(".text\n"
        ".globl wait_in_leaf\n"
        ".type wait_in_leaf, @function\n"
        "wait_in_leaf:\n"
        "    .cfi_startproc\n"
        "    movl $1, waiting(%rip)\n"
        "1:  movl $34, %eax\n" /* pause */
        "    syscall\n"
        "    jmp 1b\n"
        "    .cfi_endproc\n"
        ".size wait_in_leaf, .-wait_in_leaf\n");

static void *worker(void *arg) {
    (void)arg;
    scrub_stack();
    leave_stale_pointer();
    wait_in_leaf();
    return NULL;
}

NOINLINE int start_worker(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    while (!waiting)
        sched_yield();
    return 0;
}

int main(void) {
    int rc = start_worker();
    scrub_stack();
    return rc;
}
