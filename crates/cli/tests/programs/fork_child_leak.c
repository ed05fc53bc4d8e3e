// The process forks; the child leaks a block and exits, the parent waits for it and leaks
// nothing. The child's leaks are reported separately (memcheck prints one summary per pid).
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect child definitely_lost 100 1
// expect child indirectly_lost 0 0
// expect child possibly_lost 0 0
// expect child still_reachable 0 0
// expect child leak-function definitely_lost child_work
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

NOINLINE void child_work(void) {
    char *p = malloc(100);
    memset(p, 'c', 100);
    lose(p);
}

int main(void) {
    pid_t pid = fork();
    if (pid < 0)
        return 99;
    if (pid == 0) {
        child_work();
        scrub_stack();
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    scrub_stack();
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 98;
}
