// Which memory outside the heap memcheck takes as roots, as in LeakSanitizer's
// use_globals_initialized and use_globals_uninitialized tests, with memory that is not writable:
// memcheck scans the mappings that are readable and writable, whatever their kind.
// - a pointer in an initialized global (.data) to a 555-byte block, one in an uninitialized
//   global (.bss) to a 666-byte block, and one in a shared anonymous mapping (MAP_SHARED) to a
//   444-byte block: still reachable;
// - a pointer in a page of .bss that the program then made read-only (mprotect PROT_READ) to a
//   111-byte block, one in an anonymous mapping made read-only to a 222-byte block, and one in
//   an anonymous mapping made readable and executable to a 333-byte block: not scanned, so
//   definitely lost.
// Totals: definitely lost 111 + 222 + 333 = 666 in 3; still reachable 444 + 555 + 666 = 1665
// in 3.
// expect definitely_lost 666 3
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 1665 3
// expect leak-function definitely_lost keep_in_readonly_page
// expect leak-function definitely_lost keep_in_mapping
// expect leak-function still_reachable keep_in_mapping
// expect leak-function still_reachable keep_in_globals
#include <stdlib.h>
#include <sys/mman.h>

#include "fixture.h"

/* Exactly one page of .bss, alone on its page. */
static void *volatile readonly_page[4096 / sizeof(void *)] __attribute__((aligned(4096)));
void *volatile initialized_global = (void *)1;
void *volatile uninitialized_global;

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x77, size);
    escape(p);
    return p;
}

NOINLINE void keep_in_readonly_page(void) {
    readonly_page[3] = make_block(111);
    if (mprotect((void *)readonly_page, sizeof readonly_page, PROT_READ) != 0)
        abort();
}

NOINLINE void keep_in_mapping(size_t size, int flags, int prot) {
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        abort();
    *(void *volatile *)(m + 8) = make_block(size);
    if (mprotect(m, 4096, prot) != 0)
        abort();
}

NOINLINE void keep_in_globals(void) {
    initialized_global = make_block(555);
    uninitialized_global = make_block(666);
}

int main(void) {
    keep_in_readonly_page();
    keep_in_mapping(222, MAP_PRIVATE, PROT_READ);
    keep_in_mapping(333, MAP_PRIVATE, PROT_READ | PROT_EXEC);
    keep_in_mapping(444, MAP_SHARED, PROT_READ | PROT_WRITE);
    keep_in_globals();
    scrub_stack();
    return 0;
}
