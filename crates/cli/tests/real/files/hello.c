/* Compiled by gcc in the real-program suite (tests/real_programs.rs), natively and under
 * leakscope; the assembly, the program and its output must be the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    int value;
};

static int compare(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

int main(void) {
    int values[] = {5, 3, 9, 1, 7};
    qsort(values, 5, sizeof values[0], compare);
    struct node *list = NULL;
    for (int i = 0; i < 5; i++) {
        struct node *n = malloc(sizeof *n);
        n->value = values[i];
        n->next = list;
        list = n;
    }
    for (struct node *n = list; n; n = n->next)
        printf("%d ", n->value);
    printf("\n%zu\n", strlen("hello from gcc"));
    while (list) {
        struct node *next = list->next;
        free(list);
        list = next;
    }
    return 0;
}
