/* The program `cargo xtask demo` runs under leakscope.
 *
 * A tiny request handler with two real bugs: an error path that returns without freeing the
 * request's buffer (definitely lost), and a session list whose head is dropped, taking three
 * nodes with it (one definitely lost, two indirectly lost). The cache is still referenced
 * from a global at exit (still reachable).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    char name[24];
};

static char *cache[4];

static int handle_request(int id) {
    char *buffer = malloc(256);
    snprintf(buffer, 256, "request %d", id);
    if (id % 3 == 0) {
        return -1; /* bug: the error path forgets free(buffer) */
    }
    free(buffer);
    return 0;
}

static struct node *open_sessions(int count) {
    struct node *head = NULL;
    for (int i = 0; i < count; i++) {
        struct node *n = calloc(1, sizeof *n);
        snprintf(n->name, sizeof n->name, "session-%d", i);
        n->next = head;
        head = n;
    }
    return head;
}

int main(void) {
    int failures = 0;
    for (int id = 1; id <= 10; id++) {
        failures += handle_request(id) != 0;
    }
    struct node *sessions = open_sessions(3);
    printf("handled 10 requests, %d failed; first session: %s\n", failures, sessions->name);
    sessions = NULL; /* bug: the list is dropped without being freed */
    for (int i = 0; i < 4; i++) {
        cache[i] = strdup("cached value");
    }
    return 0;
}
