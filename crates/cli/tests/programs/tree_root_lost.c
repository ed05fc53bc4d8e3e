// A complete binary tree of depth 4 (15 nodes of 24 bytes) whose root pointer is dropped:
// the root is definitely lost, the 14 nodes below it are indirectly lost.
// expect definitely_lost 24 1
// expect indirectly_lost 336 14
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect leak-function definitely_lost make_tree
// expect leak-function indirectly_lost make_tree
#include <stdlib.h>

#include "fixture.h"

struct node {
    struct node *left;
    struct node *right;
    long value;
};

NOINLINE struct node *make_tree(int depth) {
    if (depth == 0)
        return NULL;
    struct node *n = malloc(sizeof *n);
    n->value = depth;
    n->left = make_tree(depth - 1);
    n->right = make_tree(depth - 1);
    escape(n);
    return n;
}

NOINLINE void build_and_drop(void) { lose(make_tree(4)); }

int main(void) {
    build_and_drop();
    scrub_stack();
    return 0;
}
