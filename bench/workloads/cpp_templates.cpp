// cpp-templates: allocations whose stacks go through template instantiations, std::function
// and libstdc++'s own code (std::sort, std::map, std::vector, std::make_shared).
//
//   cpp_templates ITERATIONS
//
// Each iteration descends a recursive template, Level<12, V>::run -> Level<11, V'>::run ->
// ... -> Level<0, V''>::run, where every level has two instantiations (V = 0 or 1, distinct
// code) and the level above calls the one that a bit of the iteration's route says: the
// route is one of 32 fixed 13-bit masks (bit 12 picks Level<12>'s own instantiation), drawn
// by a xorshift PRNG at each iteration, so 32 distinct chains of 13 template frames. The
// bottom calls, through a std::function, one of four callbacks drawn by the PRNG:
//   0: std::make_shared<Payload> (a string past the small-string buffer and a vector<int>),
//      stored in a 512-slot ring of shared_ptr (the displaced one is freed);
//   1: a std::vector<std::string> grown by push_back of 1..48 strings of 24..64 chars
//      (the vector reallocates as it grows), then dropped;
//   2: insertion of a key string into a std::map<std::string, int> (a node and the key),
//      which is trimmed to 2048 entries by erasing its first element;
//   3: std::sort of a vector of 8..32 strings with a comparator that builds two temporary
//      key strings past the small-string buffer (sort_key), so that allocations happen
//      inside std::__introsort_loop / __unguarded_partition / the comparator.
// About 138 allocations per iteration (operator new and libstdc++'s string growth, counted
// with bench/fpwalk.c), most of them in the strings. Nothing is leaked.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#define NOINLINE __attribute__((noinline))

struct Payload {
    std::string name;
    std::vector<int> values;
    Payload(std::string n, int k) : name(std::move(n)), values(static_cast<size_t>(k), k) {}
};

struct Ctx {
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    uint64_t sum = 0;
    std::vector<std::shared_ptr<Payload>> ring = std::vector<std::shared_ptr<Payload>>(512);
    unsigned pos = 0;
    std::map<std::string, int> index;
    std::vector<std::function<uint64_t(Ctx &, uint64_t)>> callbacks;

    uint64_t next() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    }
};

static const char *const WORDS[] = {
    "alpha-centauri-observatory", "bravo-logistics-warehouse", "charlie-payment-gateway",
    "delta-inventory-service", "echo-notification-broker", "foxtrot-session-cache",
    "golf-recommendation-engine", "hotel-reservation-ledger",
};

NOINLINE static std::string make_text(uint64_t r, size_t min_len) {
    std::string s = WORDS[r % 8];
    s += '/';
    s += std::to_string(r % 100003);
    while (s.size() < min_len) s += WORDS[(r >> 8) % 8];
    return s;
}

static uint64_t do_shared(Ctx &c, uint64_t i) {
    uint64_t r = c.next();
    auto p = std::make_shared<Payload>(make_text(r, 24), static_cast<int>(4 + r % 24));
    uint64_t v = p->name.size() + p->values.size();
    c.ring[c.pos++ % c.ring.size()] = std::move(p);
    return v + i;
}

static uint64_t do_vector(Ctx &c, uint64_t i) {
    uint64_t r = c.next();
    std::vector<std::string> v;
    unsigned n = 1 + static_cast<unsigned>(r % 48);
    for (unsigned k = 0; k < n; k++) v.push_back(make_text(r + k, 24 + (k * 7) % 40));
    return v.size() + v.back().size() + i;
}

static uint64_t do_map(Ctx &c, uint64_t i) {
    uint64_t r = c.next();
    c.index.emplace(make_text(r, 28), static_cast<int>(i));
    if (c.index.size() > 2048) c.index.erase(c.index.begin());
    return c.index.size();
}

NOINLINE static std::string sort_key(const std::string &s) {
    return s.substr(s.size() / 3) + "#key-suffix";
}

static uint64_t do_sort(Ctx &c, uint64_t i) {
    uint64_t r = c.next();
    std::vector<std::string> v;
    unsigned n = 8 + static_cast<unsigned>(r % 25);
    v.reserve(n);
    for (unsigned k = 0; k < n; k++) v.push_back(make_text(r * 31 + k, 20));
    std::sort(v.begin(), v.end(), [](const std::string &a, const std::string &b) {
        // temporary keys past the small-string buffer: allocations inside std::sort's frames
        return sort_key(a) < sort_key(b);
    });
    return v.front().size() + n + i;
}

template <int N, int V>
struct Level {
    NOINLINE static uint64_t run(Ctx &c, uint64_t i, unsigned route);
};

template <int V>
struct Level<0, V> {
    NOINLINE static uint64_t run(Ctx &c, uint64_t i, unsigned route) {
        uint64_t r = c.next();
        uint64_t v = c.callbacks[(r >> 40) % c.callbacks.size()](c, i + V);
        __asm__ volatile("" : "+r"(v));
        return v ^ (route + V);
    }
};

template <int N, int V>
uint64_t Level<N, V>::run(Ctx &c, uint64_t i, unsigned route) {
    // the branch of the level below is chosen at run time among two instantiations
    uint64_t v = (route >> (N - 1)) & 1 ? Level<N - 1, 1>::run(c, i + N * 2 + V, route)
                                        : Level<N - 1, 0>::run(c, i + N * 3 + V, route);
    __asm__ volatile("" : "+r"(v));
    return v * (2 * N + 1 + V);
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
    if (iterations < 1) {
        std::fprintf(stderr, "usage: cpp_templates ITERATIONS\n");
        return 2;
    }
    Ctx c;
    c.callbacks.emplace_back(do_shared);
    c.callbacks.emplace_back(do_vector);
    c.callbacks.emplace_back(do_map);
    c.callbacks.emplace_back(do_sort);
    unsigned routes[32];
    for (unsigned &r : routes) r = static_cast<unsigned>(c.next() >> 51);  // 13 bits
    for (long i = 0; i < iterations; i++) {
        unsigned route = routes[(c.next() >> 20) % 32];
        uint64_t v = route & 0x1000 ? Level<12, 1>::run(c, static_cast<uint64_t>(i), route)
                                    : Level<12, 0>::run(c, static_cast<uint64_t>(i), route);
        c.sum += v;
    }
    std::printf("cpp-templates: %ld iterations, %zu map entries, checksum %llu\n", iterations,
                c.index.size(), static_cast<unsigned long long>(c.sum));
    return 0;
}
