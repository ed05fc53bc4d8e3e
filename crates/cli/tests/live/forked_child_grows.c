// The process forks; the child keeps every block it allocates for about 3 seconds (a growing
// site, still reachable at its end) while the parent only waits. The child's own report must
// have its own timeline of snapshots taken while it ran, and find its site growing.
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *kept[300]; // not static: the compiler must keep the stores

__attribute__((noinline)) static void child_work(int i) {
    kept[i] = malloc(1000);
    memset(kept[i], i, 1000);
}

int main(void) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        for (int i = 0; i < 300; i++) {
            child_work(i);
            struct timespec pause = {0, 10 * 1000 * 1000};
            while (nanosleep(&pause, &pause) != 0) {
            }
        }
        exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
