// The workload of crates/cli/tests/agent_hooks.rs: every allocation function the agent hooks,
// on four threads at once, and the agent's counters of allocations made from inside a hook
// (read through the test functions the agent exports) at three moments:
//   at start: ...            (the main thread's stack capture is set up)
//   after thread set-up: ... (each of the four threads made its first allocation)
//   after workload: ...      (the four threads ran the whole workload)
//   after self-check: ...    (the agent allocated once each way inside a hook's section)
// each as "through_malloc=N from_agent_heap=M". Exits 2 if the agent is not loaded.
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

typedef void (*read_counters_fn)(unsigned long long *, unsigned long long *);
typedef void (*self_check_fn)(void);

static pthread_barrier_t set_up, counted;

static void *churn(void *arg) {
  long seed = (long)arg;
  // This thread's first allocation: its stack capture is set up. (Through a volatile, or the
  // compiler drops the malloc/free pair.)
  void *volatile first = malloc(8);
  free(first);
  pthread_barrier_wait(&set_up);
  pthread_barrier_wait(&counted);
  for (int i = 0; i < 20000; i++) {
    size_t n = 16 + (size_t)((seed * 7919 + i * 104729) % 2000);
    void *a = malloc(n);
    void *b = calloc(4, n);
    a = realloc(a, n * 3);
    void *c = memalign(64, n);
    void *d = nullptr;
    if (posix_memalign(&d, 128, n) != 0) d = nullptr;
    void *e = aligned_alloc(256, 512);
    void *f = valloc(n);
    char *g = new char[n];
    std::unique_ptr<std::string> h(new std::string(n, 'x'));
    std::vector<int> v(n % 64 + 1, 1);
    memset(a, 1, n);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    delete[] g;
    if (i % 1000 == 0) a = realloc(nullptr, n), a = realloc(a, 0);
  }
  return nullptr;
}

int main() {
  read_counters_fn read_counters =
      (read_counters_fn)dlsym(RTLD_DEFAULT, "leakscope_test_allocations_in_hooks");
  self_check_fn self_check = (self_check_fn)dlsym(RTLD_DEFAULT, "leakscope_test_allocate_inside_a_hook");
  if (!read_counters || !self_check) {
    fprintf(stderr, "the agent is not loaded\n");
    return 2;
  }
  unsigned long long through_malloc = 0, from_agent_heap = 0;
  read_counters(&through_malloc, &from_agent_heap);
  printf("at start: through_malloc=%llu from_agent_heap=%llu\n", through_malloc, from_agent_heap);
  pthread_barrier_init(&set_up, nullptr, 5);
  pthread_barrier_init(&counted, nullptr, 5);
  pthread_t threads[4];
  for (long t = 0; t < 4; t++) pthread_create(&threads[t], nullptr, churn, (void *)(t + 1));
  pthread_barrier_wait(&set_up);
  read_counters(&through_malloc, &from_agent_heap);
  printf("after thread set-up: through_malloc=%llu from_agent_heap=%llu\n", through_malloc,
         from_agent_heap);
  pthread_barrier_wait(&counted);
  for (int t = 0; t < 4; t++) pthread_join(threads[t], nullptr);
  read_counters(&through_malloc, &from_agent_heap);
  printf("after workload: through_malloc=%llu from_agent_heap=%llu\n", through_malloc, from_agent_heap);
  self_check();
  read_counters(&through_malloc, &from_agent_heap);
  printf("after self-check: through_malloc=%llu from_agent_heap=%llu\n", through_malloc, from_agent_heap);
  return 0;
}
