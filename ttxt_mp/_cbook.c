/* ttxt_mp._cbook: the compiled hot part of ttxt_mp.orderbook.OrderBook (optional).
 *
 * apply_delta(bp, bk, bs, bids, ap, ak, as, asks) -> crossed (bool)
 *
 * Works on the book's own Python containers (per side: dict price -> qty, the sorted
 * price list, the set of removed prices still in that list), so the book's state and
 * every read stay those of the pure-Python reference, ttxt_mp.orderbook._apply_delta,
 * which this function mirrors step for step:
 *   - each (price, qty) level: qty true -> set (insert the price with bisect_right unless
 *     it is in the removed set, then revive it); qty false -> remove lazily;
 *   - drop removed prices from the best end (last of bids, first of asks);
 *   - compact a side in place when its removed set is > 64 and > a quarter of the list;
 *   - crossed = both sides non-empty and best bid >= best ask.
 * Levels not given as a tuple of 2-tuples, or containers of other types, make it call the pure
 * function (registered with set_fallback) before touching the book, so errors and odd
 * inputs are the pure code's by construction.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* a < b with Python semantics, fast for two exact floats; -1 on error */
static inline int
less(PyObject *a, PyObject *b)
{
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b))
        return PyFloat_AS_DOUBLE(a) < PyFloat_AS_DOUBLE(b);
    return PyObject_RichCompareBool(a, b, Py_LT);
}

/* insort(keys, p): bisect_right then insert */
static int
insort(PyObject *keys, PyObject *p)
{
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(keys);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        PyObject *m = PyList_GET_ITEM(keys, mid);
        Py_INCREF(m);
        int lt = less(p, m);
        Py_DECREF(m);
        if (lt < 0)
            return -1;
        if (lt)
            hi = mid;
        else
            lo = mid + 1;
        if (hi > PyList_GET_SIZE(keys))  /* a comparison mutated the list */
            hi = PyList_GET_SIZE(keys);
    }
    return PyList_Insert(keys, lo, p);
}

static int
check_levels(PyObject *seq)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        PyObject *lv = PyTuple_GET_ITEM(seq, i);
        if (!PyTuple_CheckExact(lv) || PyTuple_GET_SIZE(lv) != 2)
            return 0;
    }
    return 1;
}

static int
apply_side(PyObject *prices, PyObject *keys, PyObject *stale, PyObject *seq)
{
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *lv = PyTuple_GET_ITEM(seq, i);
        PyObject *p = PyTuple_GET_ITEM(lv, 0), *q = PyTuple_GET_ITEM(lv, 1);
        Py_INCREF(lv);
        int truth = PyObject_IsTrue(q);
        int rc = 0;
        if (truth < 0) {
            rc = -1;
        } else if (truth) {
            int has = PyDict_Contains(prices, p);
            if (has < 0) {
                rc = -1;
            } else if (!has) {
                int st = PySet_Contains(stale, p);
                if (st < 0)
                    rc = -1;
                else if (st)
                    rc = PySet_Discard(stale, p) < 0 ? -1 : 0;
                else
                    rc = insort(keys, p);
            }
            if (rc == 0)
                rc = PyDict_SetItem(prices, p, q);
        } else {
            int has = PyDict_Contains(prices, p);
            if (has < 0)
                rc = -1;
            else if (has) {
                rc = PyDict_DelItem(prices, p);
                if (rc == 0)
                    rc = PySet_Add(stale, p);
            }
        }
        Py_DECREF(lv);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* keys[:] = [k for k in keys if k not in stale]; stale.clear() */
static int
compact(PyObject *keys, PyObject *stale)
{
    PyObject *kept = PyList_New(0);
    if (kept == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        Py_INCREF(k);
        int st = PySet_Contains(stale, k);
        int rc = st < 0 ? -1 : (st ? 0 : PyList_Append(kept, k));
        Py_DECREF(k);
        if (rc < 0) {
            Py_DECREF(kept);
            return -1;
        }
    }
    int rc = PyList_SetSlice(keys, 0, PyList_GET_SIZE(keys), kept);
    Py_DECREF(kept);
    if (rc < 0)
        return -1;
    return PySet_Clear(stale);
}

/* drop removed prices from the best end; compact when too many linger */
static int
tidy(PyObject *keys, PyObject *stale, int best_last)
{
    if (PySet_GET_SIZE(stale) == 0)
        return 0;
    /* the run of stale prices at the best end: the last ones (bids) or the first (asks) */
    Py_ssize_t n = PyList_GET_SIZE(keys), run = 0;
    while (run < n) {
        PyObject *k = PyList_GET_ITEM(keys, best_last ? n - 1 - run : run);
        Py_INCREF(k);
        int st = PySet_Contains(stale, k);
        if (st > 0)
            st = PySet_Discard(stale, k) < 0 ? -1 : 1;
        Py_DECREF(k);
        if (st < 0)
            return -1;
        if (!st)
            break;
        run++;
    }
    if (run > 0 && (best_last ? PyList_SetSlice(keys, n - run, n, NULL)
                              : PyList_SetSlice(keys, 0, run, NULL)) < 0)
        return -1;
    Py_ssize_t ns = PySet_GET_SIZE(stale);
    if (ns > 64 && ns > (PyList_GET_SIZE(keys) >> 2))
        return compact(keys, stale);
    return 0;
}

static PyObject *fallback = NULL;  /* the pure-Python apply_delta */

static PyObject *
set_fallback(PyObject *self, PyObject *fn)
{
    (void)self;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "set_fallback needs a callable");
        return NULL;
    }
    Py_XSETREF(fallback, Py_NewRef(fn));
    Py_RETURN_NONE;
}

static PyObject *
call_fallback(PyObject *const *args, Py_ssize_t nargs)
{
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ttxt_mp._cbook: no fallback registered");
        return NULL;
    }
    return PyObject_Vectorcall(fallback, args, nargs, NULL);
}

static PyObject *
apply_delta(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 8)
        return call_fallback(args, nargs);
    PyObject *bp = args[0], *bk = args[1], *bs = args[2];
    PyObject *ap = args[4], *ak = args[5], *as = args[6];
    if (!PyDict_CheckExact(bp) || !PyList_CheckExact(bk) || !PySet_CheckExact(bs) ||
        !PyDict_CheckExact(ap) || !PyList_CheckExact(ak) || !PySet_CheckExact(as) ||
        !PyTuple_CheckExact(args[3]) || !PyTuple_CheckExact(args[7]))  /* events hold tuples */
        return call_fallback(args, nargs);
    PyObject *bids = Py_NewRef(args[3]), *asks = Py_NewRef(args[7]);
    PyObject *res = NULL;
    if (!check_levels(bids) || !check_levels(asks)) {
        res = call_fallback(args, nargs);
        goto done;
    }
    if (apply_side(bp, bk, bs, bids) < 0 || apply_side(ap, ak, as, asks) < 0)
        goto done;
    if (tidy(bk, bs, 1) < 0 || tidy(ak, as, 0) < 0)
        goto done;
    Py_ssize_t nb = PyList_GET_SIZE(bk), na = PyList_GET_SIZE(ak);
    if (nb && na) {
        PyObject *b = PyList_GET_ITEM(bk, nb - 1), *a = PyList_GET_ITEM(ak, 0);
        if (PyFloat_CheckExact(b) && PyFloat_CheckExact(a))
            res = Py_NewRef(PyFloat_AS_DOUBLE(b) >= PyFloat_AS_DOUBLE(a) ? Py_True : Py_False);
        else {
            Py_INCREF(b);
            Py_INCREF(a);
            res = PyObject_RichCompare(b, a, Py_GE);  /* as the pure code: bk[-1] >= ak[0] */
            Py_DECREF(b);
            Py_DECREF(a);
        }
    } else {
        res = Py_NewRef(Py_False);
    }
done:
    Py_DECREF(bids);
    Py_DECREF(asks);
    return res;
}

static PyMethodDef methods[] = {
    {"apply_delta", (PyCFunction)(void (*)(void))apply_delta, METH_FASTCALL,
     "Apply a delta's bids and asks to a book's containers; returns crossed."},
    {"set_fallback", set_fallback, METH_O,
     "Register the pure-Python apply_delta, called for any input this module leaves to it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cbook",
    "The compiled hot part of ttxt_mp.orderbook (optional; see ttxt_mp.orderbook).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cbook(void)
{
    return PyModule_Create(&module);
}
