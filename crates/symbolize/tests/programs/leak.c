/* Symbolization fixture: two allocating call paths, one of them through a function that is
 * always inlined. The comments after each call name the line for the tests; keep them unique.
 * noipa keeps GCC from cloning or specializing the functions at -O2, so their names stay. */
#include <stdlib.h>
#include <string.h>

__attribute__((noipa)) char *process_request(size_t size) {
    char *buffer = malloc(size); /* @malloc */
    if (buffer != NULL)
        buffer[0] = 'x';
    return buffer;
}

static inline __attribute__((always_inline)) char *make_copy(const char *text) {
    char *copy = strdup(text); /* @strdup */
    if (copy != NULL)
        copy[0] = 'L';
    return copy;
}

__attribute__((noipa)) char *copy_name(const char *name) {
    char *copy = make_copy(name); /* @make_copy */
    if (copy != NULL)
        copy[1] = 'e';
    return copy;
}

int main(void) {
    char *request = process_request(4096); /* @process_request */
    char *name = copy_name("leak"); /* @copy_name */
    return request != NULL && name != NULL ? 0 : 1;
}
