/* leaky_ext: a C extension for the Python tests (built by tests/e2e/python.rs against each
 * interpreter's headers: gcc -shared -fPIC -g -O1 -fno-omit-frame-pointer
 * -I<sysconfig include> -o leaky_ext<EXT_SUFFIX> leaky_ext.c -pthread).
 *
 *   leak_bytes(n)      mallocs n bytes and loses the only pointer: definitely lost.
 *   keep_bytes(n)      mallocs n bytes and keeps the pointer in a static: still reachable.
 *   run_callbacks_in_c_thread(callable, seconds, batch, pause_us)
 *                      starts a pthread (not a Python thread) that, until `seconds` have
 *                      passed, takes the GIL with PyGILState_Ensure, calls `callable()`
 *                      `batch` times, releases the GIL and sleeps `pause_us` microseconds;
 *                      the calling thread waits for it with the GIL released. Returns the
 *                      number of calls made.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* NOINLINE, lose() and scrub_stack(): the corpus fixtures' helpers, for the same reasons. */
#include "../programs/fixture.h"

/* The still-reachable block of keep_bytes. */
static void *kept_block;

NOINLINE static void lose_block(size_t n) {
    char *p = malloc(n);
    if (p != NULL) {
        memset(p, 0x5a, n);
    }
    lose(p);
}

NOINLINE static PyObject *leak_bytes(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n < 0) {
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "negative size");
    }
    lose_block((size_t)n);
    scrub_stack();
    Py_RETURN_NONE;
}

NOINLINE static PyObject *keep_bytes(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n < 0) {
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "negative size");
    }
    free(kept_block);
    kept_block = malloc((size_t)n);
    if (kept_block != NULL) {
        memset(kept_block, 0x3c, (size_t)n);
    }
    Py_RETURN_NONE;
}

struct callback_job {
    PyObject *callable;
    double seconds;
    long batch;
    long pause_us;
    long calls;
    int failed;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

NOINLINE static void *callback_thread_main(void *arg) {
    struct callback_job *job = arg;
    double deadline = now_s() + job->seconds;
    while (!job->failed && now_s() < deadline) {
        PyGILState_STATE state = PyGILState_Ensure();
        for (long i = 0; i < job->batch; i++) {
            PyObject *result = PyObject_CallObject(job->callable, NULL);
            if (result == NULL) {
                PyErr_Print();
                job->failed = 1;
                break;
            }
            Py_DECREF(result);
            job->calls++;
        }
        PyGILState_Release(state);
        if (job->pause_us > 0) {
            usleep((useconds_t)job->pause_us);
        }
    }
    return NULL;
}

static PyObject *run_callbacks_in_c_thread(PyObject *self, PyObject *args) {
    (void)self;
    struct callback_job job = {0};
    if (!PyArg_ParseTuple(args, "Odll", &job.callable, &job.seconds, &job.batch,
                          &job.pause_us)) {
        return NULL;
    }
    if (!PyCallable_Check(job.callable)) {
        return PyErr_Format(PyExc_TypeError, "the callback is not callable");
    }
    Py_INCREF(job.callable);
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, callback_thread_main, &job);
    if (rc != 0) {
        Py_DECREF(job.callable);
        return PyErr_Format(PyExc_OSError, "pthread_create: %s", strerror(rc));
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    Py_DECREF(job.callable);
    if (job.failed) {
        return PyErr_Format(PyExc_RuntimeError, "the callback raised (printed above)");
    }
    return PyLong_FromLong(job.calls);
}

static PyMethodDef methods[] = {
    {"leak_bytes", leak_bytes, METH_O, "malloc n bytes and lose the pointer"},
    {"keep_bytes", keep_bytes, METH_O, "malloc n bytes and keep the pointer in a static"},
    {"run_callbacks_in_c_thread", run_callbacks_in_c_thread, METH_VARARGS,
     "call a Python callable from a pthread of the extension's own"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "leaky_ext", "Leaks for leakscope's Python tests.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_leaky_ext(void) {
    return PyModule_Create(&module);
}
