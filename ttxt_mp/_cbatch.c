/*
 * ttxt_mp._ccodec.decode_records: many recorded records into event Structs in one call
 * (issue 11, replay on the compiled path).
 *
 * The replayer frames records with numpy (kind, file, payload offset and length arrays
 * over memory-mapped files); this walks a range of them and decodes each with its kind's
 * compiled Codec (ttxt_decode_struct, the same function a ring's get uses), so replaying
 * Python events costs no Python bytecode per record.
 *
 * Exactness: a record the fast path does not take (a kind whose layout has no Codec, a
 * payload the Codec hands back, an unknown kind) is decoded by calling the Python
 * fallback exactly as the pure loop would -- `table[kind](view, offset)[0]`, or
 * `resolve(kind)(view, offset)[0]` for a kind missing from the table -- so results and
 * errors are those of the reference loop (ttxt_mp/storage/batch.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_ccodec.h"

/* A C-contiguous buffer of `n` items of `itemsize` bytes, or -1 with an error. */
static int get_array(PyObject *o, Py_buffer *v, Py_ssize_t itemsize, Py_ssize_t n,
                     const char *what)
{
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (v->itemsize != itemsize || v->len / itemsize < n) {
        PyErr_Format(PyExc_ValueError, "decode_records: %s must hold >= %zd items of %zd "
                     "bytes", what, n, itemsize);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

/* fallback(view, offset)[0] */
static PyObject *call_fallback(PyObject *fn, PyObject *view, long long off)
{
    PyObject *o = PyLong_FromLongLong(off);
    if (o == NULL)
        return NULL;
    PyObject *args[2] = {view, o};
    PyObject *r = PyObject_Vectorcall(fn, args, 2, NULL);
    Py_DECREF(o);
    if (r == NULL)
        return NULL;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) < 1) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "decode_records: unpack_from must return a tuple");
        return NULL;
    }
    PyObject *ev = Py_NewRef(PyTuple_GET_ITEM(r, 0));
    Py_DECREF(r);
    return ev;
}

/* decode_records(table, resolve, views, file, kind, offset, length, start, stop) -> list

   table: tuple indexed by kind: a Codec, a Python unpack_from(buf, off) callable, or None
   resolve: kind -> unpack_from callable (raises for an unknown kind)
   views: tuple of buffers (one per file); file: uint16 array or None (all in views[0])
   kind u16, offset i64, length u32: the records; [start, stop): the range to decode */
static PyObject *decode_records(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Py_ssize_t start, stop;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "decode_records takes 9 arguments");
        return NULL;
    }
    PyObject *table = args[0], *resolve = args[1], *views = args[2];
    if (!PyTuple_Check(table) || !PyTuple_Check(views) || PyTuple_GET_SIZE(views) < 1) {
        PyErr_SetString(PyExc_TypeError, "decode_records: table and views must be tuples");
        return NULL;
    }
    if ((start = PyLong_AsSsize_t(args[7])) < 0 || (stop = PyLong_AsSsize_t(args[8])) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "decode_records: negative range");
        return NULL;
    }
    if (stop < start)
        stop = start;
    Py_ssize_t nviews = PyTuple_GET_SIZE(views), ntable = PyTuple_GET_SIZE(table);
    Py_buffer kb, ob, lb, fb = {0};
    int have_file = args[3] != Py_None;
    if (get_array(args[4], &kb, 2, stop, "kind") < 0)
        return NULL;
    if (get_array(args[5], &ob, 8, stop, "offset") < 0) {
        PyBuffer_Release(&kb);
        return NULL;
    }
    if (get_array(args[6], &lb, 4, stop, "length") < 0) {
        PyBuffer_Release(&kb);
        PyBuffer_Release(&ob);
        return NULL;
    }
    if (have_file && get_array(args[3], &fb, 2, stop, "file") < 0) {
        PyBuffer_Release(&kb);
        PyBuffer_Release(&ob);
        PyBuffer_Release(&lb);
        return NULL;
    }
    Py_buffer *bufs = PyMem_Calloc((size_t)nviews, sizeof(Py_buffer));
    Py_ssize_t nbufs = 0;
    PyObject *out = NULL;
    if (bufs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; nbufs < nviews; nbufs++)
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(views, nbufs), &bufs[nbufs], PyBUF_SIMPLE) < 0)
            goto done;
    if ((out = PyList_New(stop - start)) == NULL)
        goto done;
    const uint16_t *kinds = kb.buf, *files = fb.buf;
    const int64_t *offs = ob.buf;
    const uint32_t *lens = lb.buf;
    for (Py_ssize_t i = start; i < stop; i++) {
        Py_ssize_t f = have_file ? files[i] : 0;
        int64_t off = offs[i];
        if (f >= nviews) {
            PyErr_Format(PyExc_IndexError, "decode_records: file %zd of %zd", f, nviews);
            Py_CLEAR(out);
            goto done;
        }
        PyObject *dec = kinds[i] < ntable ? PyTuple_GET_ITEM(table, kinds[i]) : Py_None;
        PyObject *ev = NULL;
        if (Py_IS_TYPE(dec, &ttxt_CodecType) && off >= 0 && off <= bufs[f].len) {
            Py_ssize_t n, room = bufs[f].len - (Py_ssize_t)off;
            if ((Py_ssize_t)lens[i] < room)
                room = (Py_ssize_t)lens[i]; /* a record never reads past its payload */
            ev = ttxt_decode_struct((CodecObject *)dec, (const char *)bufs[f].buf + off, room, &n);
            if (ev == NULL && PyErr_Occurred()) {
                Py_CLEAR(out);
                goto done;
            }
            if (ev == NULL) { /* off the fast path: the pure codec decides, as unpack_from */
                ((CodecObject *)dec)->fallbacks++;
                ev = call_fallback(((CodecObject *)dec)->pure_unpack,
                                   PyTuple_GET_ITEM(views, f), off);
            }
        }
        else if (dec != Py_None && !Py_IS_TYPE(dec, &ttxt_CodecType))
            ev = call_fallback(dec, PyTuple_GET_ITEM(views, f), off);
        else { /* not in the table (e.g. registered since): ask the registry */
            PyObject *k = PyLong_FromLong(kinds[i]);
            PyObject *fn = k == NULL ? NULL : PyObject_CallOneArg(resolve, k);
            Py_XDECREF(k);
            if (fn != NULL) {
                ev = call_fallback(fn, PyTuple_GET_ITEM(views, f), off);
                Py_DECREF(fn);
            }
        }
        if (ev == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i - start, ev);
    }
done:
    for (Py_ssize_t j = 0; j < nbufs; j++)
        PyBuffer_Release(&bufs[j]);
    PyMem_Free(bufs);
    PyBuffer_Release(&kb);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&lb);
    if (have_file)
        PyBuffer_Release(&fb);
    return out;
}

static PyMethodDef batch_functions[] = {
    {"decode_records", (PyCFunction)(void (*)(void))decode_records, METH_FASTCALL,
     "decode_records(table, resolve, views, file, kind, offset, length, start, stop) -> "
     "list: the event of each record in [start, stop) (see ttxt_mp/storage/batch.py)."},
    {NULL, NULL, 0, NULL},
};

int ttxt_batch_add_functions(PyObject *m)
{
    return PyModule_AddFunctions(m, batch_functions);
}
