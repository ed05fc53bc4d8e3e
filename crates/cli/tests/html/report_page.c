// The HTML report's scenario: for about 2 seconds a session table grows without bound
// (`remember_session`, 256 bytes every 2 ms), a request buffer is made and freed each time
// (`handle_request`, 4096 bytes), and every 100th request loses its 100-byte header
// (`parse_header`): 10 blocks, 1,000 bytes definitely lost. A forked child loses 64 bytes
// (`child_leak`) and exits, so the page has two processes.
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../programs/fixture.h"

struct session {
    struct session *next;
    char data[248];
};
static struct session *sessions;

NOINLINE static void remember_session(int id) {
    struct session *s = malloc(sizeof *s);
    memset(s->data, id, sizeof s->data);
    s->next = sessions;
    sessions = s;
}

NOINLINE static void parse_header(int id) {
    char *header = malloc(100);
    memset(header, id, 100);
    lose(header);
}

NOINLINE static void handle_request(int id) {
    char *buffer = malloc(4096);
    memset(buffer, id, 4096);
    if (id % 100 == 0) parse_header(id);
    free(buffer);
}

NOINLINE static void child_leak(void) {
    char *block = malloc(64);
    memset(block, 7, 64);
    lose(block);
}

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        child_leak();
        scrub_stack();
        _exit(0);
    }
    for (int id = 0; id < 1000; id++) {
        remember_session(id);
        handle_request(id);
        struct timespec pause = {0, 2 * 1000 * 1000};
        while (nanosleep(&pause, &pause) != 0) {
        }
    }
    waitpid(child, NULL, 0);
    scrub_stack();
    return 0;
}
