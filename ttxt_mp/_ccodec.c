/*
 * ttxt_mp._ccodec: the compiled event codec (issue 11, first step).
 *
 * One Codec object per event layout does what the generated pure-Python functions of
 * ttxt_mp/codec.py do -- pack_into(buf, off, ev) -> nbytes, unpack_from(buf, off) ->
 * (event, nbytes), size(ev) -> nbytes -- in one C call, writing and reading the SAME
 * bytes (little-endian, no padding: the layout of a "<..." struct format).
 *
 * The layout descriptor is computed in Python (ttxt_mp/codec_c.py) from the Layout the
 * pure codec compiled, so built-in and user kinds go through the same code.
 *
 * Exactness by construction: the fast path only handles inputs whose result it knows to
 * be identical to the pure codec's (exact types, values in range, valid UTF-8...). For
 * anything else -- a wrong type, an out-of-range int, a too-long string, a short buffer,
 * a negative offset -- it does not try to imitate the pure codec's error: it calls the
 * pure function with the same arguments, which raises exactly what it always raised
 * (or, for an input the fast path merely does not know, returns the right answer).
 *
 * Memory ordering: this module only fills or reads bytes at an offset of a buffer; it
 * publishes nothing. The ring still stores the seqlock stamp and the head in Python after
 * pack_into returns, and re-checks the stamp after unpack_from returns, exactly as with
 * the pure codec, so the argument of ttxt_mp/shm/ring.py holds unchanged: x86-64 (TSO)
 * keeps stores in program order and loads in program order, and every access here runs
 * inside an opaque call (a separately built module, reached through a function pointer)
 * that the compiler cannot move across the stamp accesses made by the caller -- the same
 * reason struct/memoryview accesses are safe. Torn reads are harmless: the decoder stays
 * inside the buffer whatever the bytes say (counts are checked against its length), and
 * the caller discards the result when the stamp changed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#if !PY_LITTLE_ENDIAN
#error "ttxt_mp._ccodec assumes a little-endian host (the slot layout is little-endian)"
#endif

#include "_ccodec.h"

/* ------------------------------------------------------------------ descriptors */

/* The slot offset of a msgspec Struct field: its member descriptor, or -1 (getattr). */
static Py_ssize_t member_offset(PyObject *member)
{
    if (member == NULL || member == Py_None || !Py_IS_TYPE(member, &PyMemberDescr_Type))
        return -1;
    PyMemberDef *d = ((PyMemberDescrObject *)member)->d_member;
    if (d->type != T_OBJECT_EX && d->type != T_OBJECT)
        return -1;
    return d->offset;
}

static void field_clear(Field *f)
{
    Py_CLEAR(f->name);
    Py_CLEAR(f->enum_table);
    Py_CLEAR(f->cache_val);
    PyMem_Free(f->cache_key);
    f->cache_key = NULL;
}

static int code_width_ok(char code, Py_ssize_t width)
{
    switch (code) {
    case 'b': case 'B': case '?': return width == 1;
    case 'h': case 'H': return width == 2;
    case 'i': case 'I': case 'f': return width == 4;
    case 'q': case 'Q': case 'd': return width == 8;
    case 's': return width > 0;
    default: return 0;
    }
}

/* (name, member|None, code, width, pos, enum_table|None, cache) -> Field */
static int field_init(Field *f, PyObject *spec)
{
    PyObject *name, *member, *table;
    const char *code;
    int cache;
    if (!PyArg_ParseTuple(spec, "UOsnnOp", &name, &member, &code, &f->width, &f->pos,
                          &table, &cache))
        return -1;
    f->code = code[0];
    if (strlen(code) != 1 || !code_width_ok(f->code, f->width)) {
        PyErr_Format(PyExc_ValueError, "bad field code %R of width %zd", spec, f->width);
        return -1;
    }
    f->name = Py_NewRef(name);
    f->slot = member_offset(member);
    if (table != Py_None) {
        if (!PyTuple_Check(table)) {
            PyErr_SetString(PyExc_TypeError, "enum_table must be a tuple or None");
            return -1;
        }
        f->enum_table = Py_NewRef(table);
    }
    f->cache = cache && f->code == 's';
    if (f->cache && (f->cache_key = PyMem_Calloc(1, (size_t)f->width)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* (name, member|None, "T", count_pos) or
   (name, member|None, "A", count_pos, item_cls|None, itemsize, [field spec, ...]) */
static int part_init(Part *p, PyObject *spec)
{
    PyObject *name, *member, *item = Py_None, *fields = NULL;
    const char *what;
    p->itemsize = 0;
    if (!PyArg_ParseTuple(spec, "UOsn|OnO", &name, &member, &what, &p->count_pos, &item,
                          &p->itemsize, &fields))
        return -1;
    p->name = Py_NewRef(name);
    p->slot = member_offset(member);
    p->is_text = what[0] == 'T';
    if (p->is_text)
        return 0;
    if (fields == NULL || !PyList_Check(fields) || p->itemsize <= 0) {
        PyErr_Format(PyExc_ValueError, "bad array spec %R", spec);
        return -1;
    }
    if (item != Py_None) {
        if (!PyType_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "an array item must be a class or None");
            return -1;
        }
        p->item = Py_NewRef(item);
    }
    p->nfields = PyList_GET_SIZE(fields);
    p->fields = PyMem_Calloc((size_t)p->nfields + 1, sizeof(Field));
    if (p->fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < p->nfields; k++)
        if (field_init(&p->fields[k], PyList_GET_ITEM(fields, k)) < 0)
            return -1;
    p->doubles = p->item == NULL && p->nfields > 0;
    for (Py_ssize_t k = 0; k < p->nfields; k++)
        p->doubles &= p->fields[k].code == 'd' && p->fields[k].enum_table == NULL;
    return 0;
}

static void Codec_dealloc(CodecObject *self)
{
    for (Py_ssize_t i = 0; self->fixed && i < self->nfixed; i++)
        field_clear(&self->fixed[i]);
    for (Py_ssize_t j = 0; self->var && j < self->nvar; j++) {
        Part *p = &self->var[j];
        for (Py_ssize_t k = 0; p->fields && k < p->nfields; k++)
            field_clear(&p->fields[k]);
        PyMem_Free(p->fields);
        Py_CLEAR(p->name);
        Py_CLEAR(p->item);
    }
    PyMem_Free(self->fixed);
    PyMem_Free(self->var);
    Py_CLEAR(self->cls);
    Py_CLEAR(self->kwnames);
    Py_CLEAR(self->pure_pack);
    Py_CLEAR(self->pure_unpack);
    Py_CLEAR(self->pure_size);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A new reference to the interned `name`: msgspec matches keyword names to fields by
   identity first (field names are interned), so the constructor call stays cheap. */
static PyObject *interned(PyObject *name)
{
    PyObject *s = Py_NewRef(name);
    PyUnicode_InternInPlace(&s);
    return s;
}

static PyObject *Codec_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"cls", "header_size", "fixed", "var", "pure_pack_into",
                             "pure_unpack_from", "pure_size", NULL};
    PyObject *cls, *fixed, *var, *pk, *up, *sz;
    Py_ssize_t hs;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OnO!O!OOO", kwlist, &cls, &hs,
                                     &PyList_Type, &fixed, &PyList_Type, &var, &pk, &up, &sz))
        return NULL;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a type");
        return NULL;
    }
    CodecObject *self = (CodecObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->cls = Py_NewRef(cls);
    self->header_size = hs;
    self->pure_pack = Py_NewRef(pk);
    self->pure_unpack = Py_NewRef(up);
    self->pure_size = Py_NewRef(sz);
    self->nfixed = PyList_GET_SIZE(fixed);
    self->nvar = PyList_GET_SIZE(var);
    self->fixed = PyMem_Calloc((size_t)self->nfixed + 1, sizeof(Field));
    self->var = PyMem_Calloc((size_t)self->nvar + 1, sizeof(Part));
    self->kwnames = PyTuple_New(self->nfixed + self->nvar);
    if (self->fixed == NULL || self->var == NULL || self->kwnames == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < self->nfixed; i++) {
        Field *f = &self->fixed[i];
        if (field_init(f, PyList_GET_ITEM(fixed, i)) < 0)
            goto fail;
        if (f->pos < 0 || f->pos + f->width > hs) {
            PyErr_SetString(PyExc_ValueError, "field outside the header");
            goto fail;
        }
        PyTuple_SET_ITEM(self->kwnames, i, interned(f->name));
    }
    for (Py_ssize_t j = 0; j < self->nvar; j++) {
        Part *p = &self->var[j];
        if (part_init(p, PyList_GET_ITEM(var, j)) < 0)
            goto fail;
        if (p->count_pos < 0 || p->count_pos + 4 > hs) {
            PyErr_SetString(PyExc_ValueError, "count outside the header");
            goto fail;
        }
        for (Py_ssize_t k = 0; k < p->nfields; k++)
            if (p->fields[k].pos < 0 || p->fields[k].pos + p->fields[k].width > p->itemsize) {
                PyErr_SetString(PyExc_ValueError, "item field outside the item");
                goto fail;
            }
        PyTuple_SET_ITEM(self->kwnames, self->nfixed + j, interned(p->name));
    }
    self->all_slots = 1;
    for (Py_ssize_t i = 0; i < self->nfixed; i++)
        self->all_slots &= self->fixed[i].slot >= 0;
    for (Py_ssize_t j = 0; j < self->nvar; j++) {
        self->all_slots &= self->var[j].slot >= 0;
        for (Py_ssize_t k = 0; self->var[j].item && k < self->var[j].nfields; k++)
            self->all_slots &= self->var[j].fields[k].slot >= 0;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* ------------------------------------------------------------------ encoding */

/* A new reference to attribute `name` of `obj` (whose type was checked by the caller, so
   `slot` is valid for it), or NULL without an exception set (unset: use the fallback). */
static PyObject *get_attr(PyObject *obj, Py_ssize_t slot, PyObject *name)
{
    if (slot >= 0) {
        PyObject *v = *(PyObject **)((char *)obj + slot);
        return v == NULL ? NULL : Py_NewRef(v);
    }
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        PyErr_Clear();
    return v;
}

/* The UTF-8 bytes of exact str `v` (cached in the str by CPython), or NULL (no error). */
static const char *utf8_of(PyObject *v, Py_ssize_t *n)
{
    if (!PyUnicode_CheckExact(v))
        return NULL;
    const char *s = PyUnicode_AsUTF8AndSize(v, n);
    if (s == NULL)
        PyErr_Clear(); /* e.g. a lone surrogate: the pure codec raises its error */
    return s;
}

/* Store `x` in `width` bytes if lo <= x <= hi (else -1): its low bytes, which on this
   little-endian host come first -- two's complement, so signed and unsigned alike. */
static int put_int(char *dst, long long x, long long lo, long long hi, size_t width)
{
    if (x < lo || x > hi)
        return -1;
    memcpy(dst, &x, width);
    return 0;
}

/* Write `v` as field `f` at `dst`. 0: done; -1: not a fast-path value (no error set). */
static int put_field(const Field *f, PyObject *v, char *dst)
{
    switch (f->code) {
    case 's': {
        Py_ssize_t n;
        const char *s = utf8_of(v, &n);
        /* too long, or ending with NUL (the padding): the pure codec refuses it */
        if (s == NULL || n > f->width || (n > 0 && s[n - 1] == '\0'))
            return -1;
        memcpy(dst, s, (size_t)n);
        memset(dst + n, 0, (size_t)(f->width - n));
        return 0;
    }
    case 'd': case 'f': {
        double x;
        if (PyFloat_Check(v))
            x = PyFloat_AS_DOUBLE(v);
        else if (PyLong_CheckExact(v)) {
            x = PyLong_AsDouble(v);
            if (x == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return -1;
            }
        }
        else
            return -1;
        if (f->code == 'd') { /* = PyFloat_Pack8(x, dst, 1) on an IEEE host (checked at import) */
            memcpy(dst, &x, 8);
            return 0;
        }
        /* what struct uses for 'f': it rounds, and refuses an overflow */
        if (PyFloat_Pack4(x, dst, 1) < 0) {
            PyErr_Clear();
            return -1;
        }
        return 0;
    }
    case '?':
        if (v == Py_True || v == Py_False || PyLong_CheckExact(v)) {
            *dst = (char)(PyObject_IsTrue(v) ? 1 : 0); /* cannot fail for these types */
            return 0;
        }
        return -1;
    default: break;
    }
    /* integers: int, bool and IntEnum members (int subclasses, read without __index__,
       as struct does); the range is each struct code's */
    if (!PyLong_Check(v))
        return -1;
    if (f->code == 'Q') {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        memcpy(dst, &u, 8);
        return 0;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    switch (f->code) {
    case 'b': return put_int(dst, x, INT8_MIN, INT8_MAX, 1);
    case 'B': return put_int(dst, x, 0, UINT8_MAX, 1);
    case 'h': return put_int(dst, x, INT16_MIN, INT16_MAX, 2);
    case 'H': return put_int(dst, x, 0, UINT16_MAX, 2);
    case 'i': return put_int(dst, x, INT32_MIN, INT32_MAX, 4);
    case 'I': return put_int(dst, x, 0, UINT32_MAX, 4);
    case 'q': return put_int(dst, x, LLONG_MIN, LLONG_MAX, 8);
    default: return -1;
    }
}

/* Items of an array part: an exact tuple, or an exact list when no Python code can run
   while we walk it (every field read from its slot); the rest goes to the pure codec. */
static int seq_items(PyObject *v, int allow_list, PyObject ***items, Py_ssize_t *n)
{
    if (PyTuple_CheckExact(v)) {
        *items = ((PyTupleObject *)v)->ob_item;
        *n = PyTuple_GET_SIZE(v);
        return 0;
    }
    if (allow_list && PyList_CheckExact(v)) {
        *items = ((PyListObject *)v)->ob_item;
        *n = PyList_GET_SIZE(v);
        return 0;
    }
    return -1;
}

/* Bytes of the variable part `p` of `ev`, or -1 (not a fast-path value). */
static Py_ssize_t part_size(const Part *p, int allow_list, PyObject *v)
{
    Py_ssize_t n;
    PyObject **items;
    if (p->is_text)
        return utf8_of(v, &n) == NULL ? -1 : n;
    if (seq_items(v, allow_list, &items, &n) < 0 || n > (Py_ssize_t)UINT32_MAX)
        return -1;
    return n * p->itemsize;
}

/* Write one array item `x` at `dst`. */
static int put_item(const Part *p, int allow_list, PyObject *x, char *dst)
{
    if (p->item == NULL) { /* a tuple (a book level): exactly its fields */
        PyObject **vals;
        Py_ssize_t n;
        if (seq_items(x, allow_list, &vals, &n) < 0 || n != p->nfields)
            return -1;
        for (Py_ssize_t k = 0; k < n; k++)
            if (put_field(&p->fields[k], vals[k], dst + p->fields[k].pos) < 0)
                return -1;
        return 0;
    }
    if ((PyObject *)Py_TYPE(x) != p->item)
        return -1;
    for (Py_ssize_t k = 0; k < p->nfields; k++) {
        const Field *f = &p->fields[k];
        PyObject *v = get_attr(x, f->slot, f->name);
        if (v == NULL)
            return -1;
        int r = put_field(f, v, dst + f->pos);
        Py_DECREF(v);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* The whole event: its size in *nbytes and, when dst != NULL (and the size fits in
   `room`), its bytes. 0: done; -1: use the pure codec (no error set). */
int ttxt_encode_event(CodecObject *self, PyObject *ev, char *dst, Py_ssize_t room,
                        Py_ssize_t *nbytes)
{
    if ((PyObject *)Py_TYPE(ev) != self->cls)
        return -1;
    PyObject *vals[64];
    PyObject **vars = self->nvar <= 64 ? vals : PyMem_Malloc(sizeof(PyObject *) * self->nvar);
    if (vars == NULL)
        return -1;
    Py_ssize_t j, got = 0, n = self->header_size;
    int r = -1;
    for (j = 0; j < self->nvar; j++) {
        const Part *p = &self->var[j];
        if ((vars[j] = get_attr(ev, p->slot, p->name)) == NULL)
            goto done;
        got = j + 1;
        Py_ssize_t sz = part_size(p, self->all_slots, vars[j]);
        if (sz < 0)
            goto done;
        n += sz;
    }
    *nbytes = n;
    if (dst == NULL) {
        r = 0;
        goto done;
    }
    if (n > room)
        goto done;
    for (Py_ssize_t i = 0; i < self->nfixed; i++) {
        const Field *f = &self->fixed[i];
        PyObject *v = get_attr(ev, f->slot, f->name);
        if (v == NULL)
            goto done;
        int ok = put_field(f, v, dst + f->pos);
        Py_DECREF(v);
        if (ok < 0)
            goto done;
    }
    char *q = dst + self->header_size;
    for (j = 0; j < self->nvar; j++) {
        const Part *p = &self->var[j];
        PyObject **items = NULL;
        Py_ssize_t cnt = 0;
        if (p->is_text) {
            const char *s = utf8_of(vars[j], &cnt); /* checked by part_size */
            memcpy(q, s, (size_t)cnt);
            q += cnt;
        }
        else {
            seq_items(vars[j], self->all_slots, &items, &cnt); /* checked by part_size */
            for (Py_ssize_t k = 0; k < cnt; k++, q += p->itemsize)
                if (put_item(p, self->all_slots, items[k], q) < 0)
                    goto done;
        }
        uint32_t c32 = (uint32_t)cnt;
        memcpy(dst + p->count_pos, &c32, 4);
    }
    r = 0;
done:
    for (j = 0; j < got; j++)
        Py_XDECREF(vars[j]);
    if (vars != vals)
        PyMem_Free(vars);
    return r;
}

static PyObject *Codec_size(CodecObject *self, PyObject *ev)
{
    Py_ssize_t n;
    if (ttxt_encode_event(self, ev, NULL, 0, &n) < 0) {
        self->fallbacks++;
        return PyObject_CallOneArg(self->pure_size, ev);
    }
    return PyLong_FromSsize_t(n);
}

/* A non-negative offset argument, or -1 (negative, not an int: the pure codec's case). */
static Py_ssize_t offset_arg(PyObject *o)
{
    if (!PyLong_CheckExact(o))
        return -1;
    Py_ssize_t off = PyLong_AsSsize_t(o);
    if (off < 0) {
        PyErr_Clear();
        return -1;
    }
    return off;
}

static PyObject *Codec_pack_into(CodecObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t off, n;
    Py_buffer view;
    if (nargs != 3 || (off = offset_arg(args[1])) < 0)
        goto pure;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        goto pure;
    }
    if (off > view.len || ttxt_encode_event(self, args[2], (char *)view.buf + off, view.len - off, &n) < 0) {
        PyBuffer_Release(&view);
        goto pure;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
pure:
    self->fallbacks++;
    return PyObject_Vectorcall(self->pure_pack, args, nargs, NULL);
}

/* ------------------------------------------------------------------ decoding */

/* The value of field `f` stored at `src`, or NULL without error (use the pure codec). */
static PyObject *get_field(Field *f, const char *src)
{
    long long x;
    switch (f->code) {
    case 's': {
        if (f->cache && f->cache_val && memcmp(f->cache_key, src, (size_t)f->width) == 0)
            return Py_NewRef(f->cache_val);
        Py_ssize_t n = f->width;
        while (n > 0 && src[n - 1] == '\0') /* bytes.rstrip(b"\0") */
            n--;
        PyObject *s = PyUnicode_DecodeUTF8(src, n, NULL);
        if (s == NULL) {
            PyErr_Clear();
            return NULL;
        }
        if (f->cache) {
            memcpy(f->cache_key, src, (size_t)f->width);
            Py_XSETREF(f->cache_val, Py_NewRef(s));
        }
        return s;
    }
    case 'd': { /* = PyFloat_Unpack8(src, 1) on an IEEE host (checked at import) */
        double d;
        memcpy(&d, src, 8);
        return PyFloat_FromDouble(d);
    }
    case 'f': {
        double d = PyFloat_Unpack4(src, 1);
        return PyFloat_FromDouble(d);
    }
    case '?': return PyBool_FromLong(*src != 0);
    case 'b': { int8_t y; memcpy(&y, src, 1); x = y; break; }
    case 'B': { uint8_t y; memcpy(&y, src, 1); x = y; break; }
    case 'h': { int16_t y; memcpy(&y, src, 2); x = y; break; }
    case 'H': { uint16_t y; memcpy(&y, src, 2); x = y; break; }
    case 'i': { int32_t y; memcpy(&y, src, 4); x = y; break; }
    case 'I': { uint32_t y; memcpy(&y, src, 4); x = y; break; }
    case 'q': memcpy(&x, src, 8); break;
    case 'Q': {
        unsigned long long u;
        memcpy(&u, src, 8);
        if (f->enum_table == NULL)
            return PyLong_FromUnsignedLongLong(u);
        x = u > (unsigned long long)LLONG_MAX ? -1 : (long long)u;
        break;
    }
    default: return NULL;
    }
    if (f->enum_table == NULL)
        return PyLong_FromLongLong(x);
    /* the member; a value outside the table (or a gap) goes to the pure codec */
    if (x < 0 || x >= PyTuple_GET_SIZE(f->enum_table))
        return NULL;
    PyObject *m = PyTuple_GET_ITEM(f->enum_table, x);
    return m == Py_None ? NULL : Py_NewRef(m);
}

/* The array part `p` with `cnt` items at `src`: a tuple of items, or NULL (NULL with an
   error set: an item constructor raised; without: use the pure codec). */
static PyObject *get_array(Part *p, const char *src, Py_ssize_t cnt)
{
    PyObject *out = PyTuple_New(cnt);
    if (out == NULL)
        return NULL;
    if (p->doubles) { /* book levels: (price, qty) tuples of floats, as get_field makes them */
        for (Py_ssize_t i = 0; i < cnt; i++, src += p->itemsize) {
            PyObject *item = PyTuple_New(p->nfields);
            if (item == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            for (Py_ssize_t k = 0; k < p->nfields; k++) {
                double d;
                memcpy(&d, src + p->fields[k].pos, 8);
                PyObject *f = PyFloat_FromDouble(d);
                if (f == NULL) {
                    Py_DECREF(item);
                    Py_DECREF(out);
                    return NULL;
                }
                PyTuple_SET_ITEM(item, k, f);
            }
            /* Floats only: it can never be part of a cycle, so the collector need not
               track it (CPython's gc untracks such tuples itself, one pass later). */
            PyObject_GC_UnTrack(item);
            PyTuple_SET_ITEM(out, i, item);
        }
        return out;
    }
    PyObject *vals[32];
    PyObject **v = p->nfields <= 32 ? vals : PyMem_Malloc(sizeof(PyObject *) * p->nfields);
    if (v == NULL) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < cnt; i++, src += p->itemsize) {
        Py_ssize_t k;
        for (k = 0; k < p->nfields; k++)
            if ((v[k] = get_field(&p->fields[k], src + p->fields[k].pos)) == NULL)
                break;
        PyObject *item = NULL;
        if (k == p->nfields && p->item == NULL) { /* as the pure codec: the tuple itself */
            if ((item = PyTuple_New(k)) != NULL)
                for (Py_ssize_t m = 0; m < k; m++)
                    PyTuple_SET_ITEM(item, m, v[m]); /* steals the reference */
            k = item != NULL ? 0 : k;
        }
        else if (k == p->nfields) /* ... or item(*fields) */
            item = PyObject_Vectorcall(p->item, v, (size_t)k, NULL);
        for (Py_ssize_t m = 0; m < k; m++)
            Py_DECREF(v[m]);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    if (v != vals)
        PyMem_Free(v);
    return out;
}

PyObject *ttxt_decode_struct(CodecObject *self, const char *buf, Py_ssize_t len,
                             Py_ssize_t *nbytes)
{
    Py_ssize_t nf = self->nfixed + self->nvar, got = 0;
    PyObject *vals[96];
    PyObject **v = nf <= 96 ? vals : PyMem_Malloc(sizeof(PyObject *) * nf);
    PyObject *ev = NULL;
    if (v == NULL)
        return PyErr_NoMemory();
    if (len < self->header_size)
        goto done;
    for (; got < self->nfixed; got++)
        if ((v[got] = get_field(&self->fixed[got], buf + self->fixed[got].pos)) == NULL)
            goto done;
    const char *p = buf + self->header_size;
    for (Py_ssize_t j = 0; j < self->nvar; j++, got++) {
        Part *part = &self->var[j];
        uint32_t c32;
        memcpy(&c32, buf + part->count_pos, 4);
        Py_ssize_t cnt = (Py_ssize_t)c32;
        Py_ssize_t nb = part->is_text ? cnt : cnt * part->itemsize;
        if (nb > len - (p - buf))
            goto done;
        if (part->is_text) {
            v[got] = PyUnicode_DecodeUTF8(p, nb, NULL);
            if (v[got] == NULL)
                PyErr_Clear();
        }
        else
            v[got] = get_array(part, p, cnt);
        if (v[got] == NULL)
            goto done;
        p += nb;
    }
    ev = PyObject_Vectorcall(self->cls, v, 0, self->kwnames);
    *nbytes = p - buf;
done:
    for (Py_ssize_t i = 0; i < got; i++)
        Py_DECREF(v[i]);
    if (v != vals)
        PyMem_Free(v);
    return ev;
}

/* (event, nbytes), or NULL as ttxt_decode_struct. */
static PyObject *decode_event(CodecObject *self, const char *buf, Py_ssize_t len)
{
    Py_ssize_t n = 0;
    PyObject *ev = ttxt_decode_struct(self, buf, len, &n);
    if (ev == NULL)
        return NULL;
    PyObject *nb = PyLong_FromSsize_t(n);
    if (nb == NULL) {
        Py_DECREF(ev);
        return NULL;
    }
    PyObject *res = PyTuple_Pack(2, ev, nb);
    Py_DECREF(ev);
    Py_DECREF(nb);
    return res;
}

static PyObject *Codec_unpack_from(CodecObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t off;
    Py_buffer view;
    if (nargs != 2 || (off = offset_arg(args[1])) < 0)
        goto pure;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        goto pure;
    }
    PyObject *res = NULL;
    if (off <= view.len)
        res = decode_event(self, (const char *)view.buf + off, view.len - off);
    PyBuffer_Release(&view);
    if (res != NULL || PyErr_Occurred()) /* an event, or the constructor's own error */
        return res;
pure:
    self->fallbacks++;
    return PyObject_Vectorcall(self->pure_unpack, args, nargs, NULL);
}

/* ------------------------------------------------------------------ module */

static PyMethodDef Codec_methods[] = {
    {"pack_into", (PyCFunction)(void (*)(void))Codec_pack_into, METH_FASTCALL,
     "pack_into(buf, off, ev) -> nbytes: write ev at buf[off:] (the pure codec's bytes)."},
    {"unpack_from", (PyCFunction)(void (*)(void))Codec_unpack_from, METH_FASTCALL,
     "unpack_from(buf, off) -> (event, nbytes): the event encoded at buf[off:]."},
    {"size", (PyCFunction)Codec_size, METH_O, "size(ev) -> nbytes of its encoding."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Codec_members[] = {
    {"fallbacks", T_PYSSIZET, offsetof(CodecObject, fallbacks), READONLY,
     "How many calls went to the pure codec (inputs off the fast path, and errors)."},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject ttxt_CodecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ttxt_mp._ccodec.Codec",
    .tp_basicsize = sizeof(CodecObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled codec of one event layout (built by ttxt_mp.codec_c).",
    .tp_new = Codec_new,
    .tp_dealloc = (destructor)Codec_dealloc,
    .tp_methods = Codec_methods,
    .tp_members = Codec_members,
};

static struct PyModuleDef ccodec_module = {
    PyModuleDef_HEAD_INIT, "ttxt_mp._ccodec",
    "Compiled pack/unpack of the fixed event layouts (see ttxt_mp.codec_c).", -1, NULL,
};

/* The codec copies doubles as they are in memory: that is struct's '<d' only where a C
   double is an IEEE 754 little-endian binary64, which we check rather than assume. */
static int ieee_doubles(void)
{
    double x = -1.0 / 3.0, y;
    unsigned char packed[8], raw[8];
    if (PyFloat_Pack8(x, (char *)packed, 1) < 0)
        return 0;
    memcpy(raw, &x, 8);
    y = PyFloat_Unpack8((const char *)raw, 1);
    return memcmp(packed, raw, 8) == 0 && y == x;
}

PyMODINIT_FUNC PyInit__ccodec(void)
{
    if (!ieee_doubles()) {
        PyErr_SetString(PyExc_ImportError, "ttxt_mp._ccodec needs IEEE 754 doubles");
        return NULL;
    }
    if (PyType_Ready(&ttxt_CodecType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&ccodec_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Codec", (PyObject *)&ttxt_CodecType) < 0
        || ttxt_ring_add_types(m) < 0
        || ttxt_batch_add_functions(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
