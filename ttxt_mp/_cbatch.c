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

static int64_t load_i64(const unsigned char *b, Py_ssize_t len, int64_t p)
{
    int64_t x; /* as numpy's clipped gather in records.py: p into [0, len - 8] */
    if (p > (int64_t)len - 8)
        p = (int64_t)len - 8;
    if (p < 0)
        p = 0;
    memcpy(&x, b + p, 8);
    return x;
}

/* frame_records(buf, body_start i64[c], body_len i64[c], count i64[c], exch_pos i64[65536],
                 local_pos i64[65536], kind u16[n], offset i64[n], length u32[n], ts i64[n],
                 ok bool[c]) -> None

   What records.frame + record_timestamps compute with numpy gathers, in one pass over the
   chunks: each record's kind, payload offset and length, timestamp (exch_ts, or local_ts
   where that is 0; per-kind payload offsets, -1: none), and per chunk whether its index
   and record lengths agree and exactly fill its body (else its records are garbage). */
static PyObject *frame_records(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "frame_records takes 11 arguments");
        return NULL;
    }
    Py_buffer v[11];
    static const Py_ssize_t isz[11] = {1, 8, 8, 8, 8, 8, 2, 8, 4, 8, 1};
    static const char *names[11] = {"buf", "body_start", "body_len", "count", "exch_pos",
                                    "local_pos", "kind", "offset", "length", "ts", "ok"};
    int got = 0;
    PyObject *res = NULL;
    for (; got < 11; got++) {
        int fl = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (got >= 6 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(args[got], &v[got], got == 0 ? PyBUF_SIMPLE : fl) < 0)
            goto done;
        if (got > 0 && v[got].itemsize != isz[got]) {
            PyErr_Format(PyExc_ValueError, "frame_records: %s has items of %zd bytes, not %zd",
                         names[got], v[got].itemsize, isz[got]);
            got++;
            goto done;
        }
    }
    const unsigned char *b = v[0].buf;
    Py_ssize_t blen = v[0].len, nch = v[1].len / 8, n = v[6].len / 2;
    const int64_t *bs = v[1].buf, *bl = v[2].buf, *cnt = v[3].buf, *ex = v[4].buf, *lo = v[5].buf;
    uint16_t *kind = v[6].buf;
    int64_t *off = v[7].buf, *ts = v[9].buf;
    uint32_t *len = v[8].buf;
    char *ok = v[10].buf;
    if (v[2].len / 8 < nch || v[3].len / 8 < nch || v[10].len < nch || v[4].len / 8 < 65536
        || v[5].len / 8 < 65536 || v[7].len / 8 < n || v[8].len / 4 < n || v[9].len / 8 < n) {
        PyErr_SetString(PyExc_ValueError, "frame_records: arrays of mismatched sizes");
        goto done;
    }
    Py_ssize_t r = 0;
    for (Py_ssize_t c = 0; c < nch; c++) {
        int64_t start = bs[c], end = bs[c] + bl[c], k = cnt[c];
        int good = start >= 0 && bl[c] >= 0 && k >= 0 && end + 4 * k <= blen && r + k <= n;
        if (!good) { /* outside the buffer: garbage records, dropped by the caller */
            for (int64_t j = 0; j < k && r < n; j++, r++)
                kind[r] = 0, off[r] = 0, len[r] = 0, ts[r] = 0;
            ok[c] = 0;
            continue;
        }
        const unsigned char *index = b + end;
        for (int64_t j = 0; j < k; j++, r++) {
            uint32_t rel, nrel, ln;
            uint16_t kd;
            memcpy(&rel, index + 4 * j, 4);
            int64_t pos = start + rel;
            int64_t next = end;
            if (j + 1 < k) {
                memcpy(&nrel, index + 4 * (j + 1), 4);
                next = start + nrel;
            }
            if ((j == 0 && rel != 0) || pos + 6 > end) {
                good = 0;
                kind[r] = 0, off[r] = 0, len[r] = 0, ts[r] = 0;
                continue;
            }
            memcpy(&kd, b + pos, 2);
            memcpy(&ln, b + pos + 2, 4);
            if (pos + 6 + (int64_t)ln != next)
                good = 0;
            kind[r] = kd, off[r] = pos + 6, len[r] = ln;
            int64_t t = ex[kd] >= 0 ? load_i64(b, blen, pos + 6 + ex[kd]) : 0;
            if (t == 0 && lo[kd] >= 0)
                t = load_i64(b, blen, pos + 6 + lo[kd]);
            ts[r] = t;
        }
        ok[c] = (char)good;
    }
    res = Py_NewRef(Py_None);
done:
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&v[i]);
    return res;
}

static PyMethodDef batch_functions[] = {
    {"frame_records", (PyCFunction)(void (*)(void))frame_records, METH_FASTCALL,
     "frame_records(buf, body_start, body_len, count, exch_pos, local_pos, kind, offset, "
     "length, ts, ok): frame chunks' records and read their timestamps in one pass "
     "(see ttxt_mp/storage/records.py)."},
    {"decode_records", (PyCFunction)(void (*)(void))decode_records, METH_FASTCALL,
     "decode_records(table, resolve, views, file, kind, offset, length, start, stop) -> "
     "list: the event of each record in [start, stop) (see ttxt_mp/storage/batch.py)."},
    {NULL, NULL, 0, NULL},
};

int ttxt_batch_add_functions(PyObject *m)
{
    return PyModule_AddFunctions(m, batch_functions);
}
