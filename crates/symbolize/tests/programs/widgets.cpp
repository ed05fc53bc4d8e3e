// Symbolization fixture for C++: a namespaced method that allocates with new[] and new, so
// that its frames carry demangled names and libstdc++'s operator new sits below them.
#include <cstddef>

namespace shapes {

struct Widget {
    int sides;
};

class Factory {
public:
    __attribute__((noinline)) Widget *build(int sides);
    __attribute__((noinline)) int *scratch(std::size_t count);
};

Widget *Factory::build(int sides) {
    Widget *widget = new Widget{sides}; // @new
    widget->sides += 1;
    return widget;
}

int *Factory::scratch(std::size_t count) {
    int *values = new int[count]; // @new[]
    values[0] = 1;
    return values;
}

} // namespace shapes

int main() {
    shapes::Factory factory;
    shapes::Widget *widget = factory.build(4); // @build
    int *values = factory.scratch(16);
    return widget->sides + values[0] == 6 ? 0 : 1;
}
