// A work queue whose length rises and falls with the load (two waves of load in four
// seconds): bounded, never growing.
// growing none
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct job { struct job *next; char payload[240]; };
static struct job *queue_head, *queue_tail;
static long queue_length;

__attribute__((noinline)) static void enqueue(long id) {
    struct job *j = malloc(sizeof *j);
    memset(j->payload, (int)id, sizeof j->payload);
    j->next = NULL;
    if (queue_tail) queue_tail->next = j; else queue_head = j;
    queue_tail = j;
    queue_length++;
}

__attribute__((noinline)) static void dequeue(void) {
    struct job *j = queue_head;
    if (!j) return;
    queue_head = j->next;
    if (!queue_head) queue_tail = NULL;
    free(j);
    queue_length--;
}

int main(void) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long tick = 0;; tick++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double t = (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
        if (t >= 4.0) break;
        /* load follows a wave: arrivals exceed service in the first half of each period */
        double load = sin(t * 3.14159265 / 1.0);
        int arrivals = load > 0 ? 3 : 1;
        for (int i = 0; i < arrivals; i++) enqueue(tick);
        for (int i = 0; i < 2 && queue_length > 0; i++) dequeue();
        usleep(500);
    }
    while (queue_length > 0) dequeue();
    return 0;
}
