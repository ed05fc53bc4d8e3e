// Runs a shell that prints its LD_PRELOAD between brackets and waits for it: a tool that
// preloads an agent into this program must not leak the preload into the programs it runs.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t pid = fork();
    if (pid < 0)
        return 99;
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "echo \"[$LD_PRELOAD]\"", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 98;
}
