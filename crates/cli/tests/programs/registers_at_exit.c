// The main thread calls exit while the only pointers to six blocks (101 to 106 bytes) are in
// its six callee-saved registers (rbx, rbp, r12, r13, r14, r15), as in LeakSanitizer's
// use_registers test for the thread that exits. exit_holding is written in assembly so that no
// stack slot holds a copy: it calls make_block six times, moves each result into one of the
// registers, clears the caller-saved ones and calls exit. The functions of exit that use those
// registers save them in their live frames first (the rest stay in the registers): memcheck
// finds all six blocks, still reachable.
// Totals: still reachable 101 + ... + 106 = 621 in 6.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 621 6
// expect leak-function still_reachable make_block
// expect leak-function still_reachable exit_holding
#include <stdlib.h>

#include "fixture.h"

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x22, size);
    escape(p);
    return p;
}

/* void exit_holding(void): never returns. */
void exit_holding(void);
#define TAKE(size, reg) "    movl $" #size ", %edi\n    call make_block\n    movq %rax, %" #reg "\n"
__asm__(".text\n"
        ".globl exit_holding\n"
        ".type exit_holding, @function\n"
        "exit_holding:\n"
        "    .cfi_startproc\n"
        "    subq $8, %rsp\n"
        "    .cfi_adjust_cfa_offset 8\n"
        TAKE(101, rbx) TAKE(102, rbp) TAKE(103, r12) TAKE(104, r13) TAKE(105, r14) TAKE(106, r15)
        "    xorl %eax, %eax\n"
        "    xorl %ecx, %ecx\n"
        "    xorl %edx, %edx\n"
        "    xorl %esi, %esi\n"
        "    xorl %r8d, %r8d\n"
        "    xorl %r9d, %r9d\n"
        "    xorl %r10d, %r10d\n"
        "    xorl %r11d, %r11d\n"
        "    xorl %edi, %edi\n"
        "    call exit\n"
        "    .cfi_endproc\n"
        ".size exit_holding, .-exit_holding\n");

int main(void) {
    scrub_stack();
    exit_holding();
}
