// A lost calloc block: its size is count * size.
// expect definitely_lost 800 1
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost make_table
#include <stdlib.h>

#include "fixture.h"

NOINLINE void make_table(size_t count) {
    long *table = calloc(count, sizeof(long));
    table[count - 1] = 1;
    lose(table);
}

int main(void) {
    make_table(100);
    scrub_stack();
    return 0;
}
