// A live heap block with a PROT_NONE page in its middle, as in valgrind's leak-segv-jmp and
// LeakSanitizer's leak_check_segv tests: the scan must not fault on it, and must skip the
// unreadable page as memcheck does. The 16384-byte block (4 pages, page-aligned) stays
// reachable from a global. Its page 1 is made PROT_NONE after a pointer to a 111-byte block
// was stored there: memcheck does not read that page, so the 111-byte block is definitely
// lost. Its page 2 (readable) holds the only pointer to a 222-byte block: still reachable.
// Outside the heap, an anonymous mapping made PROT_NONE and one made write-only (PROT_WRITE,
// shown as "-w-p") each hold the only pointer to a block (333 and 444 bytes): memcheck scans
// only readable mappings, so both are definitely lost.
// Totals: definitely lost 111 + 333 + 444 = 888 in 3; still reachable 16384 + 222 = 16606 in 2.
// expect definitely_lost 888 3
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 16606 2
// expect leak-function definitely_lost hide_behind_prot_none
// expect leak-function definitely_lost hide_in_mapping
// expect leak-function still_reachable build_guarded_block
#include <stdlib.h>
#include <sys/mman.h>

#include "fixture.h"

#define PAGE 4096

static char *volatile guarded;

NOINLINE void *make_block(size_t size) {
    char *p = malloc(size);
    memset(p, 0x5a, size);
    escape(p);
    return p;
}

NOINLINE void hide_behind_prot_none(char *page) {
    void *p = make_block(111);
    *(void *volatile *)(page + 64) = p;
}

NOINLINE void build_guarded_block(void) {
    void *b = NULL;
    if (posix_memalign(&b, PAGE, 4 * PAGE) != 0)
        abort();
    memset(b, 0, 4 * PAGE);
    char *block = b;
    hide_behind_prot_none(block + PAGE);
    *(void *volatile *)(block + 2 * PAGE + 8) = make_block(222);
    if (mprotect(block + PAGE, PAGE, PROT_NONE) != 0)
        abort();
    guarded = block;
}

NOINLINE void hide_in_mapping(size_t size, int prot) {
    char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        abort();
    *(void *volatile *)(m + 128) = make_block(size);
    if (mprotect(m, 2 * PAGE, prot) != 0)
        abort();
}

int main(void) {
    build_guarded_block();
    hide_in_mapping(333, PROT_NONE);
    hide_in_mapping(444, PROT_WRITE);
    scrub_stack();
    return 0;
}
