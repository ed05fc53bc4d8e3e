// A leaked C++ object (definitely lost) whose std::string member (40 characters: too long for
// the small-string buffer, so 41 bytes on the heap) and std::vector<int> member (100 ints =
// 400 bytes) are only reachable from it: indirectly lost.
// expect definitely_lost 64 1
// expect indirectly_lost 441 2
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost make_session
// expect leak-function indirectly_lost make_session
#include <string>
#include <vector>

#include "fixture.h"

struct Session {
    std::string name;
    std::vector<int> data;
    long id;
};

NOINLINE Session *make_session(long id) {
    Session *s = new Session{std::string(40, 'n'), std::vector<int>(100, 7), id};
    escape(s);
    return s;
}

NOINLINE void drop_session() { lose(make_session(5)); }

int main() {
    static_assert(sizeof(Session) == 64, "Session is 64 bytes with libstdc++");
    drop_session();
    scrub_stack();
    return 0;
}
