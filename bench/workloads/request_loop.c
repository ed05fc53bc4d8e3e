/* request-loop: a server-style loop with a small leak.
 *
 *   request_loop REQUESTS
 *
 * Each request is formatted as HTTP/1.1 text, parsed into a request structure (method,
 * path, query parameters and headers, each a strdup'd or malloc'd string in a list),
 * routed, answered with a response built in a growing buffer (realloc), and freed.
 * Every 1000th request leaks its 64-byte "session" block: a leak checker must report
 * REQUESTS/1000 blocks of 64 bytes, definitely lost, from make_session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

struct pair {
    char *key;
    char *value;
    struct pair *next;
};

struct request {
    char *method;
    char *path;
    struct pair *query;
    struct pair *headers;
    char *body;
};

struct buffer {
    char *data;
    size_t len, cap;
};

static const char *const paths[] = {"/api/users", "/api/orders", "/static/app.js",
                                    "/api/items/search", "/health", "/api/cart"};
static const char *const agents[] = {"curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)",
                                     "python-requests/2.31", "Go-http-client/1.1"};

NOINLINE static char *copy_range(const char *start, size_t len) {
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, start, len);
    s[len] = 0;
    return s;
}

NOINLINE static struct pair *new_pair(const char *k, size_t klen, const char *v,
                                      size_t vlen, struct pair *next) {
    struct pair *p = malloc(sizeof *p);
    if (!p) abort();
    p->key = copy_range(k, klen);
    p->value = copy_range(v, vlen);
    p->next = next;
    return p;
}

NOINLINE static void free_pairs(struct pair *p) {
    while (p) {
        struct pair *next = p->next;
        free(p->key);
        free(p->value);
        free(p);
        p = next;
    }
}

NOINLINE static struct pair *parse_query(const char *q, const char *end) {
    struct pair *list = NULL;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (!amp) amp = end;
        const char *eq = memchr(q, '=', (size_t)(amp - q));
        if (eq)
            list = new_pair(q, (size_t)(eq - q), eq + 1, (size_t)(amp - eq - 1), list);
        q = amp + 1;
    }
    return list;
}

NOINLINE static struct pair *parse_header(const char *line, size_t len, struct pair *list) {
    const char *colon = memchr(line, ':', len);
    if (!colon) return list;
    const char *v = colon + 1;
    while (v < line + len && *v == ' ') v++;
    return new_pair(line, (size_t)(colon - line), v, (size_t)(line + len - v), list);
}

NOINLINE static struct request *parse_request(const char *text) {
    struct request *r = calloc(1, sizeof *r);
    if (!r) abort();
    const char *sp = strchr(text, ' ');
    r->method = copy_range(text, (size_t)(sp - text));
    const char *target = sp + 1;
    const char *sp2 = strchr(target, ' ');
    const char *qm = memchr(target, '?', (size_t)(sp2 - target));
    r->path = copy_range(target, (size_t)((qm ? qm : sp2) - target));
    if (qm) r->query = parse_query(qm + 1, sp2);
    const char *line = strstr(sp2, "\r\n") + 2;
    for (;;) {
        const char *eol = strstr(line, "\r\n");
        if (!eol || eol == line) {
            if (eol) r->body = strdup(eol + 2);
            break;
        }
        r->headers = parse_header(line, (size_t)(eol - line), r->headers);
        line = eol + 2;
    }
    return r;
}

NOINLINE static void free_request(struct request *r) {
    free(r->method);
    free(r->path);
    free_pairs(r->query);
    free_pairs(r->headers);
    free(r->body);
    free(r);
}

NOINLINE static void append(struct buffer *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) abort();
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

NOINLINE static void append_str(struct buffer *b, const char *s) { append(b, s, strlen(s)); }

NOINLINE static char *format_request(unsigned long i) {
    char line[512];
    int n = snprintf(line, sizeof line,
                     "%s %s?id=%lu&page=%lu&sort=name HTTP/1.1\r\n"
                     "Host: example.test\r\nUser-Agent: %s\r\nAccept: */*\r\n"
                     "X-Request-Id: req-%08lx\r\nContent-Length: 13\r\n\r\n"
                     "{\"k\":\"v%03lu\"}",
                     (i % 5 == 0) ? "POST" : "GET", paths[i % 6], i, i % 17, agents[i % 4],
                     i, i % 1000);
    return copy_range(line, (size_t)n);
}

NOINLINE static void *make_session(unsigned long i) {
    char *session = malloc(64);
    if (!session) abort();
    snprintf(session, 64, "session-%lu", i);
    return session;
}

static void *volatile sink;

NOINLINE static char *build_response(const struct request *r, unsigned long i) {
    struct buffer b = {0};
    append_str(&b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"path\":\"");
    append_str(&b, r->path);
    append_str(&b, "\",\"params\":{");
    for (const struct pair *p = r->query; p; p = p->next) {
        append_str(&b, "\"");
        append_str(&b, p->key);
        append_str(&b, "\":\"");
        append_str(&b, p->value);
        append_str(&b, p->next ? "\"," : "\"");
    }
    append_str(&b, "},\"headers\":[");
    for (const struct pair *p = r->headers; p; p = p->next) {
        char *h = malloc(strlen(p->key) + strlen(p->value) + 8);
        if (!h) abort();
        sprintf(h, "\"%s=%s\"%s", p->key, p->value, p->next ? "," : "");
        append_str(&b, h);
        free(h);
    }
    append_str(&b, "]}");
    if (i % 1000 == 999) {
        /* The leak: the session is made, and its only pointer is overwritten. */
        sink = make_session(i);
        sink = NULL;
    }
    return b.data;
}

NOINLINE static size_t handle(unsigned long i) {
    char *text = format_request(i);
    struct request *r = parse_request(text);
    char *response = build_response(r, i);
    size_t n = strlen(response);
    free(response);
    free_request(r);
    free(text);
    return n;
}

int main(int argc, char **argv) {
    unsigned long requests = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    size_t bytes = 0;
    for (unsigned long i = 0; i < requests; i++) bytes += handle(i);
    printf("request-loop: %lu requests, %zu response bytes, %lu leaked sessions\n", requests,
           bytes, requests / 1000);
    return 0;
}
