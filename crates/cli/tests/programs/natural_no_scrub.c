// A program written as people write them, without fixture.h: pointers live in locals of main
// and of returned-from functions, nothing scrubs the stack, and main returns normally. Stale
// copies of lost pointers stay in popped frames; memcheck does not count them (that memory is
// undefined once the stack grows over it again), and neither may leakscope. The request buffer
// leaks on the error path (3 of 10 requests), the session list head is dropped (1 definite, 2
// indirect), and the config stays reachable from a global.
// expect definitely_lost 800 4
// expect indirectly_lost 64 2
// expect possibly_lost 0 0
// expect still_reachable 40 1
// expect leak-function definitely_lost handle_request
// expect leak-function indirectly_lost open_sessions
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    char name[24];
};

char *config;

static int handle_request(int id) {
    char *buffer = malloc(256);
    snprintf(buffer, 256, "request %d", id);
    if (id % 3 == 0) {
        return -1; /* the error path forgets free(buffer) */
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
    sessions = NULL;
    config = malloc(40);
    strcpy(config, "verbose=1");
    puts(config);
    return 0;
}
