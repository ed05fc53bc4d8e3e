/* interpreter: a small bytecode VM running a fixed program, so that the allocations come
 * from the same few C functions at many different recursion depths of the evaluation loop:
 * the stack shape of a real interpreter (CPython, Lua, a JavaScript engine's interpreter).
 *
 *   interpreter ITERATIONS
 *
 * vm_run(frame) is a switch-dispatch loop over the ops below; CALL makes a new frame in
 * vm_call and runs it with a recursive vm_run, so every level of the program's recursion is
 * two C frames (vm_run, vm_call). Values are ints or heap objects: strings (PUSH_STR copies
 * a constant, CONCAT makes a new string of its two operands and frees them) and lists
 * (MKLIST); DROP, STORE over a value, and a frame's return free them. The program (see
 * `program` below):
 *
 *   main(n):       for i in n..1: acc += work(i)
 *   work(i):       descend(i, i % 9)
 *   descend(i, d): s = "frame-" ++ d (kept in a local during the call below)
 *                  if d == 0: return leafwork(i) + len(s)
 *                  if (i + d) % 3 == 0: r = other(i, d - 1) else r = descend(i, d - 1)
 *                  return r + len(s)
 *   other(i, d):   l = ["tmp-item-" ++ i, "x"]; return descend(i, d) + len(l)
 *   leafwork(i):   a list of "key-" ++ i ++ "=a-longer-value-...", i % 7 and "tag"; its length
 *
 * so the program's stack is 4..15 frames deep (9.3 on average), each two C frames (vm_call,
 * vm_run), varying with i; the allocations are in str_new and list_new, called from vm_run.
 * Per iteration: 6 in leafwork, 2 per descend level, 4 per other: 21.3 on average (computed
 * from the program). Nothing is leaked. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

enum { T_INT, T_STR, T_LIST };

struct obj;
typedef struct {
    int tag;
    union {
        long i;
        struct obj *o;
    };
} value;

struct obj {
    size_t len;
    union {
        char chars[1];    /* T_STR: len bytes and a NUL */
        value items[1];   /* T_LIST: len items */
    };
};

enum op {
    PUSH_INT,  /* imm */
    PUSH_STR,  /* constant index */
    LOAD,      /* local slot (ints only: copied) */
    STORE,     /* local slot */
    ADD, SUB, MOD,
    CONCAT,    /* strings (an int operand is formatted) -> a new string */
    MKLIST,    /* n -> a list of the n top values */
    LEN,       /* local slot -> its length */
    DROP,
    JZ,        /* target */
    JMP,       /* target */
    CALL,      /* function, argument count */
    RET,
};

struct fn {
    const char *name;
    int nlocals;
    const int *code;
};

#define MAX_LOCALS 4
#define MAX_STACK 8

struct frame {
    const struct fn *fn;
    value locals[MAX_LOCALS];
    value stack[MAX_STACK];
    int sp;
};

static const char *const constants[] = {
    "frame-", "tmp-item-", "x", "key-",
    "=a-longer-value-string-for-the-record-so-that-it-is-not-tiny", "tag",
};

/* The allocation and free functions: every object of the program passes through them. */
NOINLINE static struct obj *str_new(size_t len) {
    struct obj *o = malloc(offsetof(struct obj, chars) + len + 1);
    if (!o) abort();
    o->len = len;
    o->chars[len] = 0;
    return o;
}

NOINLINE static struct obj *list_new(size_t n) {
    struct obj *o = malloc(offsetof(struct obj, items) + n * sizeof(value));
    if (!o) abort();
    o->len = n;
    return o;
}

NOINLINE static void value_free(value v) {
    if (v.tag == T_LIST)
        for (size_t k = 0; k < v.o->len; k++) value_free(v.o->items[k]);
    if (v.tag != T_INT) free(v.o);
}

static size_t format_part(value v, char *buf) {
    if (v.tag == T_INT) return (size_t)sprintf(buf, "%ld", v.i);
    return 0;
}

static value concat(value a, value b) {
    char ta[24], tb[24];
    size_t la = a.tag == T_STR ? a.o->len : format_part(a, ta);
    size_t lb = b.tag == T_STR ? b.o->len : format_part(b, tb);
    struct obj *o = str_new(la + lb);
    memcpy(o->chars, a.tag == T_STR ? a.o->chars : ta, la);
    memcpy(o->chars + la, b.tag == T_STR ? b.o->chars : tb, lb);
    value_free(a);
    value_free(b);
    return (value){.tag = T_STR, .o = o};
}

static value vm_call(const struct fn *fn, value *args, int nargs);

NOINLINE static value vm_run(struct frame *f) {
    const int *pc = f->fn->code;
    for (;;) {
        switch (*pc++) {
        case PUSH_INT:
            f->stack[f->sp++] = (value){.tag = T_INT, .i = *pc++};
            break;
        case PUSH_STR: {
            const char *c = constants[*pc++];
            size_t n = strlen(c);
            struct obj *o = str_new(n);
            memcpy(o->chars, c, n);
            f->stack[f->sp++] = (value){.tag = T_STR, .o = o};
            break;
        }
        case LOAD:
            f->stack[f->sp++] = f->locals[*pc++];
            break;
        case STORE: {
            value *slot = &f->locals[*pc++];
            value_free(*slot);
            *slot = f->stack[--f->sp];
            break;
        }
        case ADD:
            f->sp--;
            f->stack[f->sp - 1].i += f->stack[f->sp].i;
            break;
        case SUB:
            f->sp--;
            f->stack[f->sp - 1].i -= f->stack[f->sp].i;
            break;
        case MOD:
            f->sp--;
            f->stack[f->sp - 1].i %= f->stack[f->sp].i;
            break;
        case CONCAT:
            f->sp--;
            f->stack[f->sp - 1] = concat(f->stack[f->sp - 1], f->stack[f->sp]);
            break;
        case MKLIST: {
            int n = *pc++;
            struct obj *o = list_new((size_t)n);
            f->sp -= n;
            memcpy(o->items, &f->stack[f->sp], (size_t)n * sizeof(value));
            f->stack[f->sp++] = (value){.tag = T_LIST, .o = o};
            break;
        }
        case LEN: {
            value v = f->locals[*pc++];
            f->stack[f->sp++] = (value){.tag = T_INT, .i = v.tag == T_INT ? 0 : (long)v.o->len};
            break;
        }
        case DROP:
            value_free(f->stack[--f->sp]);
            break;
        case JZ: {
            int target = *pc++;
            if (f->stack[--f->sp].i == 0) pc = f->fn->code + target;
            break;
        }
        case JMP:
            pc = f->fn->code + *pc;
            break;
        case CALL: {
            extern const struct fn program[];
            const struct fn *callee = &program[*pc++];
            int nargs = *pc++;
            f->sp -= nargs;
            value r = vm_call(callee, &f->stack[f->sp], nargs);
            f->stack[f->sp++] = r;
            break;
        }
        case RET: {
            value r = f->stack[--f->sp];
            while (f->sp > 0) value_free(f->stack[--f->sp]);
            return r;
        }
        default:
            abort();
        }
    }
}

/* A new frame for fn, its arguments moved into its first locals; its locals are freed when
 * it returns. */
NOINLINE static value vm_call(const struct fn *fn, value *args, int nargs) {
    struct frame f;
    f.fn = fn;
    f.sp = 0;
    for (int k = 0; k < MAX_LOCALS; k++) f.locals[k] = (value){.tag = T_INT, .i = 0};
    memcpy(f.locals, args, (size_t)nargs * sizeof(value));
    value r = vm_run(&f);
    for (int k = 0; k < fn->nlocals; k++) value_free(f.locals[k]);
    __asm__ volatile("" ::: "memory");
    return r;
}

enum { F_MAIN, F_WORK, F_DESCEND, F_OTHER, F_LEAFWORK };

/* main(n): locals n, acc */
static const int code_main[] = {
    /* 0 */ LOAD, 0, JZ, 23,
    /* 4 */ LOAD, 0, CALL, F_WORK, 1, LOAD, 1, ADD, STORE, 1,
    /* 14 */ LOAD, 0, PUSH_INT, 1, SUB, STORE, 0,
    /* 21 */ JMP, 0,
    /* 23 */ LOAD, 1, RET,
};
/* work(i) */
static const int code_work[] = {
    LOAD, 0, LOAD, 0, PUSH_INT, 9, MOD, CALL, F_DESCEND, 2, RET,
};
/* descend(i, d): locals i, d, s */
static const int code_descend[] = {
    /* 0 */ PUSH_STR, 0, LOAD, 1, CONCAT, STORE, 2,
    /* 7 */ LOAD, 1, JZ, 38,
    /* 11 */ LOAD, 0, LOAD, 1, PUSH_INT, 1, SUB,
    /* 18 */ LOAD, 0, LOAD, 1, ADD, PUSH_INT, 3, MOD, JZ, 33,
    /* 28 */ CALL, F_DESCEND, 2, JMP, 36,
    /* 33 */ CALL, F_OTHER, 2,
    /* 36 */ JMP, 43,
    /* 38 */ LOAD, 0, CALL, F_LEAFWORK, 1,
    /* 43 */ LEN, 2, ADD, RET,
};
/* other(i, d): locals i, d, l */
static const int code_other[] = {
    PUSH_STR, 1, LOAD, 0, CONCAT, PUSH_STR, 2, MKLIST, 2, STORE, 2,
    LOAD, 0, LOAD, 1, CALL, F_DESCEND, 2, LEN, 2, ADD, RET,
};
/* leafwork(i): locals i, l */
static const int code_leafwork[] = {
    PUSH_STR, 3, LOAD, 0, CONCAT, PUSH_STR, 4, CONCAT,
    LOAD, 0, PUSH_INT, 7, MOD, PUSH_STR, 5, MKLIST, 3, STORE, 1,
    LEN, 1, RET,
};

const struct fn program[] = {
    [F_MAIN] = {"main", 2, code_main},
    [F_WORK] = {"work", 1, code_work},
    [F_DESCEND] = {"descend", 3, code_descend},
    [F_OTHER] = {"other", 3, code_other},
    [F_LEAFWORK] = {"leafwork", 2, code_leafwork},
};

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 100000;
    if (iterations < 1) {
        fprintf(stderr, "usage: interpreter ITERATIONS\n");
        return 2;
    }
    value arg = {.tag = T_INT, .i = iterations};
    value r = vm_call(&program[F_MAIN], &arg, 1);
    printf("interpreter: %ld iterations, checksum %ld\n", iterations, r.i);
    return 0;
}
