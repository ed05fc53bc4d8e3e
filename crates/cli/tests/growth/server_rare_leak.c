// A busy server loop with heavy malloc/free churn on several sites, and one rare path that
// loses 64 bytes every 1000 requests. Only that site grows.
// growing log_rare_error
// not-growing parse_request build_response
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *volatile sink;

__attribute__((noinline)) static char *parse_request(long id) {
    char *request = malloc(128 + id % 256);
    memset(request, 'r', 128);
    return request;
}

__attribute__((noinline)) static char *build_response(const char *request) {
    char *response = malloc(256);
    memcpy(response, request, 128);
    return response;
}

__attribute__((noinline)) static void log_rare_error(long id) {
    char *message = malloc(64);
    memset(message, (int)id, 64);
    sink = message; /* the pointer is dropped: 64 bytes lost */
    sink = NULL;
}

__attribute__((noinline)) static void handle(long id) {
    char *request = parse_request(id);
    char *response = build_response(request);
    if (id % 1000 == 999) log_rare_error(id);
    free(response);
    free(request);
}

int main(void) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long id = 0;; id++) {
        handle(id);
        if (id % 64 == 0) {
            usleep(100);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec >= 4) break;
        }
    }
    return 0;
}
