/* measure: run a command and write its wall time and resource usage to a file.
 *
 *   measure RESULT_FILE TIMEOUT_SECONDS PROGRAM [ARGS...]
 *
 * bench/run.py starts every measured run through this small program rather than forking
 * Python itself: Linux counts the RSS high-water mark of the process image that exec
 * replaced into ru_maxrss, so a child forked from the 18 MiB Python interpreter would report
 * at least 18 MiB whatever it ran. Forked from this helper, the floor is about 1 MiB.
 *
 * The child gets a process group of its own; at the timeout, or when this helper gets SIGINT
 * or SIGTERM, the whole group is killed.
 * RESULT_FILE receives one line:
 *   wall_seconds wait_status maxrss_kib user_seconds system_seconds timed_out
 * where maxrss_kib is wait4's ru_maxrss: the peak RSS of the largest single process of the
 * tree (the child, or any descendant that was waited for). The helper exits 0 when it
 * measured, whatever the child did; 3 when it could not. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static volatile pid_t child;

static void on_alarm(int sig) {
    if (sig == SIGALRM) timed_out = 1;
    /* SIGALRM: the timeout; SIGINT, SIGTERM: the runner is being stopped. The child has a
     * process group of its own, so it would not get the terminal's ^C: stop it here. */
    if (child > 0) kill(-child, SIGKILL);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: measure RESULT_FILE TIMEOUT_SECONDS PROGRAM [ARGS...]\n");
        return 3;
    }
    const char *result = argv[1];
    unsigned timeout = (unsigned)strtoul(argv[2], NULL, 10);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    double start = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 3;
    }
    if (pid == 0) {
        setpgid(0, 0);
        execvp(argv[3], argv + 3);
        fprintf(stderr, "measure: cannot run %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here, so that a kill at once finds the group */
    child = pid;
    if (timeout > 0) alarm(timeout);
    int status = 0;
    struct rusage ru;
    for (;;) {
        pid_t r = wait4(pid, &status, 0, &ru);
        if (r == pid) break;
        if (r < 0 && errno == EINTR) continue;
        perror("measure: wait4");
        return 3;
    }
    double wall = now() - start;
    alarm(0);

    FILE *f = fopen(result, "w");
    if (!f) {
        perror("measure: result file");
        return 3;
    }
    fprintf(f, "%.6f %d %ld %.6f %.6f %d\n", wall, status, ru.ru_maxrss,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, (int)timed_out);
    if (fclose(f) != 0) {
        perror("measure: result file");
        return 3;
    }
    return 0;
}
