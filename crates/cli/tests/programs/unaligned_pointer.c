// Pointers stored at addresses that are not multiples of 8, as in LeakSanitizer's use_unaligned
// test (with its default, use_unaligned=0): memcheck reads memory only as aligned 8-byte words,
// so it never sees them. The only pointer to a 72-byte block lies 4 bytes into a global
// (packed) structure, and the only pointer to an 88-byte block lies 3 bytes into a reachable
// 64-byte heap block: both are definitely lost; the 64-byte block is still reachable.
// expect definitely_lost 160 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 64 1
// expect leak-function definitely_lost store_unaligned_in_global
// expect leak-function definitely_lost store_unaligned_in_block
#include <stdint.h>
#include <stdlib.h>

#include "fixture.h"

static struct __attribute__((packed, aligned(8))) {
    uint32_t tag;
    void *pointer; /* at offset 4 */
} volatile packed;

static char *volatile holder;

NOINLINE void store_unaligned_in_global(void) {
    void *p = calloc(1, 72);
    escape(p);
    packed.tag = 1;
    packed.pointer = p;
}

NOINLINE void store_unaligned_in_block(void) {
    char *block = calloc(1, 64);
    void *p = calloc(1, 88);
    escape(p);
    memcpy(block + 3, &p, sizeof p);
    escape(block);
    holder = block;
}

int main(void) {
    store_unaligned_in_global();
    store_unaligned_in_block();
    scrub_stack();
    return 0;
}
