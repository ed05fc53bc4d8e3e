// Throws and catches exceptions (the exception objects and their message strings are freed).
// libstdc++ allocates an emergency pool for exceptions at start-up; memcheck frees it at exit
// (through __gnu_cxx::__freeres), so it must not be reported either.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
#include <stdexcept>
#include <string>

#include "fixture.h"

NOINLINE void fail(int i) {
    throw std::runtime_error("failure number " + std::to_string(i) +
                             " with a message long enough to be on the heap");
}

NOINLINE int try_all() {
    int caught = 0;
    for (int i = 0; i < 10; i++) {
        try {
            fail(i);
        } catch (const std::exception &e) {
            escape(e.what());
            caught++;
        }
    }
    return caught;
}

int main() {
    int caught = try_all();
    scrub_stack();
    return caught == 10 ? 0 : 1;
}
