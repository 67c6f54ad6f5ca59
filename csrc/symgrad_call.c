/* symgrad's call trampoline: a CPython extension built once per Python (through the same disk
 * cache as the generated steps).  It takes the data pointers of the call's numpy arrays through
 * the buffer protocol and calls a step's sg_run with the GIL released: about a tenth of a
 * microsecond per array instead of a microsecond through cffi objects.
 *
 *   call(sg_run_address, arrays, outs, args_address, dims, workspace_address) -> status
 *
 * `args_address` points at the step's void *args[]: inputs then outputs are written here;
 * the shared tensors' pointers after them were set once by Python.  The caller has already
 * validated every array (dtype, shape, C-contiguity). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef int (*sg_run_fn)(void **args, const int64_t *dims, char *workspace);

static int put_pointers(PyObject *list, void **args, Py_ssize_t *k, int writable)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, i), &view,
                               writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS
                                        : PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        /* the list holds a reference to each array for the whole call */
        args[(*k)++] = view.buf;
        PyBuffer_Release(&view);
    }
    return 0;
}

static PyObject *call(PyObject *self, PyObject *const *argv, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6 || !PyList_Check(argv[1]) || !PyList_Check(argv[2]) || !PyList_Check(argv[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "call(sg_run_address, arrays: list, outs: list, args_address, "
                        "dims: list, workspace_address)");
        return NULL;
    }
    sg_run_fn fn = (sg_run_fn)PyLong_AsVoidPtr(argv[0]);
    void **args = (void **)PyLong_AsVoidPtr(argv[3]);
    char *workspace = (char *)PyLong_AsVoidPtr(argv[5]);
    if (PyErr_Occurred())
        return NULL;
    Py_ssize_t k = 0;
    if (put_pointers(argv[1], args, &k, 0) < 0 || put_pointers(argv[2], args, &k, 1) < 0)
        return NULL;
    Py_ssize_t n_dims = PyList_GET_SIZE(argv[4]);
    int64_t dims[n_dims > 0 ? n_dims : 1];
    for (Py_ssize_t i = 0; i < n_dims; i++) {
        dims[i] = PyLong_AsLongLong(PyList_GET_ITEM(argv[4], i));
        if (dims[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = fn(args, dims, workspace);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(status);
}

static PyMethodDef methods[] = {
    {"call", (PyCFunction)(void (*)(void))call, METH_FASTCALL, "run a compiled step"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_symgrad_call", NULL, -1, methods};

PyMODINIT_FUNC PyInit__symgrad_call(void) { return PyModule_Create(&module); }
