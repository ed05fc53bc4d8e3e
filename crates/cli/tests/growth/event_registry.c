// An event registry that adds a listener per session and never removes it, while the session
// objects themselves are freed. The listener site grows; the session site does not.
// growing add_listener
// not-growing open_session
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct listener { void (*callback)(void *); void *context; struct listener *next; };
struct session { long id; char buffer[400]; };
static struct listener *listeners;

static void on_event(void *context) { (void)context; }

__attribute__((noinline)) static void add_listener(struct session *s) {
    struct listener *l = malloc(sizeof *l);
    l->callback = on_event;
    l->context = s; /* dangles once the session is closed: never removed */
    l->next = listeners;
    listeners = l;
}

__attribute__((noinline)) static struct session *open_session(long id) {
    struct session *s = malloc(sizeof *s);
    s->id = id;
    memset(s->buffer, 0, sizeof s->buffer);
    return s;
}

int main(void) {
    struct session *open[32] = {0};
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long id = 0;; id++) {
        struct session *s = open_session(id);
        add_listener(s);
        free(open[id % 32]); /* a session lives for 32 more sessions, then closes */
        open[id % 32] = s;
        usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 4) break;
    }
    return 0;
}
