// An LRU cache with a fixed capacity: it fills in the first half second, then evicts as
// much as it inserts. A plateau, not a leak.
// growing none
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAPACITY 1000
struct node { long key; char value[200]; struct node *prev, *next; };
static struct node *head, *tail;
static int size;

__attribute__((noinline)) static void lru_put(long key) {
    struct node *n = malloc(sizeof *n);
    n->key = key;
    memset(n->value, (int)key, sizeof n->value);
    n->prev = NULL;
    n->next = head;
    if (head) head->prev = n;
    head = n;
    if (!tail) tail = n;
    if (++size > CAPACITY) {
        struct node *old = tail;
        tail = old->prev;
        tail->next = NULL;
        free(old);
        size--;
    }
}

int main(void) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long key = 0;; key++) {
        lru_put(key);
        usleep(key < CAPACITY ? 300 : 1000);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 4) break;
    }
    return 0;
}
