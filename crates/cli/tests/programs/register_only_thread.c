// The only pointer to a block is in a callee-saved register (r12) of a second thread that is
// still running (spinning) when main calls exit, as in LeakSanitizer's use_registers test:
// registers are roots, so memcheck counts the 555-byte block as still reachable. The thread
// reaches its spin loop through hold_in_register, written in assembly so that no compiler can
// leave a copy of the pointer in a stack slot: it calls make_block, moves the result into r12,
// clears rax, sets `parked` and spins. The copies left inside make_block and malloc lie below
// the thread's stack pointer (dead frames), which memcheck does not scan.
// The 272-byte possibly-lost block is glibc's dynamic thread vector of the live thread (see
// live_thread_stack.c).
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 272 1
// expect still_reachable 555 1
// expect leak-function still_reachable make_block
// expect leak-function still_reachable hold_in_register
// expect leak-function possibly_lost _dl_allocate_tls
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "fixture.h"

volatile int parked;

NOINLINE void *make_block(void) {
    char *p = malloc(555);
    memset(p, 0x11, 555);
    escape(p);
    return p;
}

/* void hold_in_register(void): never returns. */
void hold_in_register(void);
__asm__(".text\n"
        ".globl hold_in_register\n"
        ".type hold_in_register, @function\n"
        "hold_in_register:\n"
        "    .cfi_startproc\n"
        "    subq $8, %rsp\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    call make_block\n"
        "    movq %rax, %r12\n"
        "    xorl %eax, %eax\n"
        "    xorl %ecx, %ecx\n"
        "    xorl %edx, %edx\n"
        "    xorl %esi, %esi\n"
        "    xorl %edi, %edi\n"
        "    xorl %r8d, %r8d\n"
        "    xorl %r9d, %r9d\n"
        "    xorl %r10d, %r10d\n"
        "    xorl %r11d, %r11d\n"
        "    movl $1, parked(%rip)\n"
        "1:  pause\n"
        "    jmp 1b\n"
        "    .cfi_endproc\n"
        ".size hold_in_register, .-hold_in_register\n");

static void *worker(void *arg) {
    (void)arg;
    scrub_stack();
    hold_in_register();
    return NULL;
}

NOINLINE int start_worker(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 99;
    while (!parked)
        sched_yield();
    return 0;
}

int main(void) {
    int rc = start_worker();
    scrub_stack();
    exit(rc);
}
