// cpp-containers: churn of std::map<std::string, ...>, std::vector, std::string and
// std::shared_ptr, as a C++ service keeps an index of records.
//
//   cpp_containers ROUNDS
//
// Each round inserts 1000 records (key strings longer than the small-string buffer, a
// vector of tags, a shared_ptr'd payload shared with a second index), looks some up,
// erases half of them and rebuilds a summary string; the index keeps at most 20000
// records, so memory stays bounded. Nothing is leaked.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct Payload {
    std::string name;
    std::vector<int> values;
    explicit Payload(std::string n) : name(std::move(n)), values(8, 1) {}
};

struct Record {
    std::vector<std::string> tags;
    std::shared_ptr<Payload> payload;
};

using Index = std::map<std::string, Record>;

__attribute__((noinline)) static std::string make_key(unsigned long round, unsigned long i) {
    std::string key = "customer/";
    key += std::to_string(round % 97);
    key += "/order-number-";
    key += std::to_string(i * 2654435761UL % 1000003UL);
    return key;
}

__attribute__((noinline)) static Record make_record(unsigned long i) {
    Record r;
    r.tags.reserve(2);
    r.tags.emplace_back("priority-customer-tag-" + std::to_string(i % 7));
    if (i % 3 == 0) r.tags.emplace_back("region-europe-west-" + std::to_string(i % 5));
    r.payload = std::make_shared<Payload>("payload for record number " + std::to_string(i));
    r.payload->values.push_back(static_cast<int>(i));
    return r;
}

__attribute__((noinline)) static void insert_round(Index &index,
                                                   std::unordered_map<unsigned long, std::shared_ptr<Payload>> &by_id,
                                                   unsigned long round) {
    for (unsigned long i = 0; i < 1000; i++) {
        unsigned long id = round * 1000 + i;
        Record r = make_record(id);
        by_id[id % 4096] = r.payload;
        index[make_key(round, id)] = std::move(r);
    }
}

__attribute__((noinline)) static size_t lookup_round(const Index &index, unsigned long round) {
    size_t found = 0;
    for (unsigned long i = 0; i < 500; i++) {
        unsigned long id = round * 1000 + i * 2;
        auto it = index.find(make_key(round, id));
        if (it != index.end()) found += it->second.tags.size();
    }
    return found;
}

__attribute__((noinline)) static void erase_round(Index &index, unsigned long round) {
    size_t target = index.size() > 20000 ? index.size() - 20000 : 0;
    auto it = index.begin();
    for (unsigned long i = 0; it != index.end() && (i < 500 || target > 0); i++) {
        if ((i + round) % 2 == 0 || target > 0) {
            it = index.erase(it);
            if (target > 0) target--;
        } else {
            ++it;
        }
    }
}

__attribute__((noinline)) static std::string summary(const Index &index) {
    std::string out;
    std::vector<std::string> parts;
    unsigned n = 0;
    for (const auto &entry : index) {
        if (++n > 64) break;
        parts.push_back(entry.first + "=" + entry.second.payload->name);
    }
    for (const auto &p : parts) {
        out += p;
        out += ';';
    }
    return out;
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200;
    Index index;
    std::unordered_map<unsigned long, std::shared_ptr<Payload>> by_id;
    size_t found = 0, chars = 0;
    for (unsigned long round = 0; round < rounds; round++) {
        insert_round(index, by_id, round);
        found += lookup_round(index, round);
        erase_round(index, round);
        chars += summary(index).size();
    }
    std::printf("cpp-containers: %lu rounds, %zu records left, %zu found, %zu chars\n", rounds,
                index.size(), found, chars);
    return 0;
}
