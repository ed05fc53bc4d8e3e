// C++ operator new and operator new[]: a lost object (32 bytes) and a lost array of 100 ints.
// expect definitely_lost 432 2
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost leak_object
// expect leak-function definitely_lost leak_array
#include "fixture.h"

struct Widget {
    long id;
    long size;
    double weight;
    Widget *next;
};

NOINLINE void leak_object(long id) {
    Widget *w = new Widget{id, 2, 3.0, nullptr};
    escape(w);
    lose(w);
}

NOINLINE void leak_array(int n) {
    int *a = new int[n];
    for (int i = 0; i < n; i++)
        a[i] = i;
    escape(a);
    lose(a);
}

int main() {
    static_assert(sizeof(Widget) == 32, "Widget is 32 bytes");
    leak_object(1);
    leak_array(100);
    scrub_stack();
    return 0;
}
