/* fpwalk: the floor of stack capture, a frame-pointer walk on every allocation (issue 14).
 *
 *   LD_PRELOAD=bench-bin/libfpwalk.so FPWALK_STATS=FILE PROGRAM ARGS
 *
 * A small LD_PRELOAD shim: it interposes malloc, calloc, realloc and free, forwards them to
 * glibc's own __libc_malloc, __libc_calloc, __libc_realloc and __libc_free (no dlsym, so
 * no bootstrap problem), and on every allocation (malloc, calloc, realloc to a non-zero
 * size) walks the frame-pointer chain from its own frame: each frame's return address goes
 * into a thread-local buffer and is folded into a hash (so that the walk cannot be
 * optimised away). The walk is bounded: at most 256 frames, and each next frame pointer
 * must be above the current one, 8-aligned, within 8 MiB of the first frame and below the
 * top of the thread's stack (read once per thread with pthread_getattr_np), so a frame
 * without a frame pointer (glibc's, libstdc++'s: Debian builds them without) ends it rather
 * than crashing it. It records nothing else: no table, no file during the run. Counters
 * (allocations, frames) are thread-local, added atomically to the totals when the thread
 * exits (a pthread key's destructor) and, for the main thread, at process exit; a
 * destructor then writes `allocations=N frames=M hash=H` to the file named by FPWALK_STATS,
 * if set. frames / allocations is the mean depth of the stacks a frame-pointer unwinder sees
 * in that program.
 *
 * Build: gcc -O2 -shared -fPIC -o libfpwalk.so fpwalk.c (bench/run.py does). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_FRAMES 256
#define MAX_SPAN (8u << 20)

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define TLS __thread __attribute__((tls_model("initial-exec")))

/* per thread: 0 not set up, 1 setting up (allocations meanwhile are not walked), 2 walking,
 * 3 done (its counters were added to the totals: the thread is exiting) */
static TLS int tl_state;
static TLS uintptr_t tl_stack_top;
static TLS uint64_t tl_allocations, tl_frames, tl_hash;
static TLS uintptr_t tl_buf[MAX_FRAMES];

static int ready; /* set by the constructor: before it, nothing is walked */
static pthread_key_t key;
static uint64_t total_allocations, total_frames, total_hash;

static void add_to_totals(void) {
    __atomic_fetch_add(&total_allocations, tl_allocations, __ATOMIC_RELAXED);
    __atomic_fetch_add(&total_frames, tl_frames, __ATOMIC_RELAXED);
    __atomic_fetch_xor(&total_hash, tl_hash, __ATOMIC_RELAXED);
    tl_allocations = tl_frames = tl_hash = 0;
}

static void thread_exit(void *unused) {
    (void)unused;
    add_to_totals();
    tl_state = 3;
}

__attribute__((noinline)) static int setup_thread(void) {
    tl_state = 1;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    /* the main thread's reads /proc/self/maps, which allocates: those are not walked */
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0)
            tl_stack_top = (uintptr_t)addr + size;
        pthread_attr_destroy(&attr);
    }
    if (!tl_stack_top) {
        tl_state = 3; /* no bounds: never walk on this thread */
        return 0;
    }
    pthread_setspecific(key, (void *)1);
    tl_state = 2;
    return 1;
}

/* Always inlined into the entry points, so that frame 0 is the interposed function's own
 * frame and the first return address is into its caller. */
static inline __attribute__((always_inline)) void walk(void) {
    if (__builtin_expect(tl_state != 2, 0)) {
        if (!ready || tl_state != 0 || !setup_thread()) return;
    }
    uintptr_t *fp = __builtin_frame_address(0);
    uintptr_t limit = (uintptr_t)fp + MAX_SPAN;
    if (limit > tl_stack_top) limit = tl_stack_top;
    uint64_t h = tl_hash;
    unsigned n = 0;
    while (n < MAX_FRAMES) {
        uintptr_t ret = fp[1];
        tl_buf[n++] = ret;
        h = (h ^ ret) * 0x100000001b3ull;
        uintptr_t up = fp[0];
        if (up <= (uintptr_t)fp || (up & 7) || up + 16 > limit) break;
        fp = (uintptr_t *)up;
    }
    tl_hash = h;
    tl_allocations++;
    tl_frames += n;
}

void *malloc(size_t size) {
    walk();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    walk();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    if (size) walk();
    return __libc_realloc(p, size);
}

void free(void *p) {
    __libc_free(p);
}

__attribute__((constructor)) static void init(void) {
    if (pthread_key_create(&key, thread_exit) == 0) ready = 1;
}

__attribute__((destructor)) static void fini(void) {
    /* the buffer is read here, so its stores are not dead */
    tl_hash ^= tl_buf[0] ^ tl_buf[1];
    if (tl_state == 2) thread_exit(NULL);
    ready = 0;
    const char *path = getenv("FPWALK_STATS");
    if (!path || !*path) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "allocations=%llu frames=%llu hash=%llx\n",
            (unsigned long long)__atomic_load_n(&total_allocations, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&total_frames, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&total_hash, __ATOMIC_RELAXED));
    fclose(f);
}
