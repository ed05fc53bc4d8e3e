// A service that loses one 64-byte block every 20 ms (its last pointer overwritten) for about
// 3 seconds, while two other threads keep a large, changing, fully reachable structure: a
// table of pointers grown and shrunk with realloc, and a linked list rebuilt all the time.
// Live scans must see the lost bytes grow, and must never call the reachable blocks lost.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int running = 1;
static void **table;
static size_t table_len;

struct node {
    struct node *next;
    char payload[40];
};
static struct node *list;
static void *volatile newest; // the only pointer to the newest lost block

__attribute__((noinline)) static void *lose_one(void) {
    void *p = malloc(64);
    memset(p, 1, 64);
    return p;
}

static void *table_churn(void *arg) {
    (void)arg;
    unsigned seed = 1;
    while (running) {
        size_t want = 1 + (rand_r(&seed) % 4096);
        for (size_t i = want; i < table_len; i++) free(table[i]);
        void **grown = realloc(table, want * sizeof *table);
        if (!grown) abort();
        for (size_t i = table_len; i < want; i++) grown[i] = malloc(24);
        table = grown;
        table_len = want;
    }
    return NULL;
}

static void *list_churn(void *arg) {
    (void)arg;
    while (running) {
        for (int i = 0; i < 1000; i++) {
            struct node *n = malloc(sizeof *n);
            n->next = list;
            list = n;
        }
        while (list) {
            struct node *next = list->next;
            free(list);
            list = next;
        }
    }
    return NULL;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, table_churn, NULL);
    pthread_create(&b, NULL, list_churn, NULL);
    for (int i = 0; i < 150; i++) {
        newest = lose_one(); // the previous block's only pointer is gone
        struct timespec pause = {0, 20 * 1000 * 1000};
        while (nanosleep(&pause, &pause) != 0) {
        }
    }
    running = 0;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    for (size_t i = 0; i < table_len; i++) free(table[i]);
    free(table);
    return 0;
}
