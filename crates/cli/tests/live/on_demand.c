// Loses one block, then waits (up to 20 s) until the file named by its first argument
// disappears, so that a test can ask for a live scan while it runs. Its sleeps restart after
// the agent's stop signal interrupts them.
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void *volatile pointer;

__attribute__((noinline)) static void lose_it(void) {
    pointer = malloc(4096);
    memset(pointer, 7, 4096);
    pointer = NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    lose_it();
    for (int i = 0; i < 2000 && access(argv[1], F_OK) == 0; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        while (nanosleep(&pause, &pause) != 0) {
        }
    }
    return 0;
}
