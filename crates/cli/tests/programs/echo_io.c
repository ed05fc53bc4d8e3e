// Pass-through: prints its arguments to stdout one per line between brackets, copies stdin to
// stdout, and writes a fixed line to stderr. Plain read/write: no stdio buffers.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// args first "second arg" ''
#include <string.h>
#include <unistd.h>

static void put(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            _exit(90);
        s += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        put(1, "arg[", 4);
        put(1, argv[i], strlen(argv[i]));
        put(1, "]\n", 2);
    }
    char buf[4096];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0)
        put(1, buf, (size_t)n);
    put(2, "echo_io: stderr line\n", 21);
    return 0;
}
