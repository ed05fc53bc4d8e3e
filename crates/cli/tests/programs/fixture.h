/* Shared helpers for the C and C++ fixtures (not a fixture itself: it has no `expect` lines).
 *
 * The rules that keep every expectation identical at -O0 and -O2, and stable under valgrind:
 *  - allocations happen in NOINLINE helpers, never in main, so that no stale copy of a pointer
 *    sits in main's frame (which the frames of exit() later reuse without initialising);
 *  - a pointer is "lost" by storing it into a volatile global and overwriting it (the compiler
 *    must keep the allocation, because the pointer escapes through the volatile store);
 *  - before the process ends, scrub_stack() overwrites the dead stack below the caller and
 *    clears the caller-saved registers, so that no stale pointer keeps a lost block reachable.
 */
#ifndef LEAKSCOPE_FIXTURE_H
#define LEAKSCOPE_FIXTURE_H

#include <stddef.h>
#include <string.h>

#if defined(__clang__)
#define NOINLINE __attribute__((noinline, used))
#else
/* noipa: no inlining, no cloning (no `.constprop.0` names), no interprocedural shortcuts. */
#define NOINLINE __attribute__((noipa, used))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Where pointers go to escape the optimiser. Overwriting it loses the previous value. */
static void *volatile fixture_sink;

/* Make the optimiser believe that p is read and its memory written. */
static inline void escape(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* Lose the only copy of p. */
static inline void lose(void *p) {
    fixture_sink = p;
    fixture_sink = NULL;
}

/* Overwrite the dead stack below the caller and the caller-saved registers. */
NOINLINE static void scrub_stack(void) {
    volatile char area[64 * 1024];
    memset((char *)area, 0, sizeof area);
    escape((const void *)area);
#if defined(__x86_64__)
    __asm__ volatile("xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\t"
                     "xor %%esi, %%esi\n\txor %%edi, %%edi\n\txor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\txor %%r11d, %%r11d"
                     :
                     :
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
