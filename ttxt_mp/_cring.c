/*
 * ttxt_mp._ccodec.WriterCore / ReaderCore: the ring's hot path in one C call per event
 * (issue 11, second step). ttxt_mp/shm/cring.py attaches one core to a RingWriter or
 * RingReader when the compiled codec is active; the Python ring stays the reference.
 *
 * A core does only the common case, byte for byte what writer.py / reader.py do:
 *   put      reserve the slot (seq < limit), stamp (seq+1)|WRITING, encode the Struct
 *            straight into the slot with the layout's Codec, fill the slot header, stamp
 *            seq+1, publish head, wake check, heartbeat every 1024 puts;
 *   put_raw  the same with already-encoded bytes;
 *   poll     check the stamp, decode into the Struct, re-check the stamp, advance the
 *            cursor (get = poll, then the Python get when nothing is ready);
 *   fetch_raw  poll copying the payload instead of decoding it.
 * Anything else -- a full block ring, a fragment, a lap, a gap, an encoder that is not
 * a Codec (the pure codec selected), an input the codec hands to its pure twin, a closed
 * ring -- calls the Python method the core replaces, with the same arguments, so every
 * slow path and every error is the reference implementation's by construction.
 *
 * State: the hot counters (seq, evno, limit, beat, w0 of the writer; seq, evno of the
 * reader) live here; the Python end reads and writes them through properties
 * (cring.py), so its slow paths see and update the same values.
 *
 * Memory ordering: that of ttxt_mp/shm/ring.py (x86-64 TSO: stores leave in program
 * order, loads are not reordered with loads). What the GIL and opaque calls gave the
 * Python ring, compiler barriers give here: BARRIER() after the WRITING stamp (the
 * payload stores stay after it), before the valid stamp and before head (they stay
 * after the payload), and around the reader's copy/decode (its loads stay between the
 * two stamp loads). Stamps, head and cursor are 8-byte aligned single stores/loads.
 * The one store->load pair (head, then the sleep flags) gets a full fence (mfence), the
 * producer's half of the sleep protocol's Dekker pair.
 *
 * Lifetime: a core holds a buffer export of the ring's mmap; cring.py calls detach()
 * before unmapping, after which every call takes the Python path (QueueClosed).
 */
#include "_ccodec.h"
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define WRITING ((uint64_t)1 << 63)
#define SLOT_HDR 32
#define OFF_HEAD 128
#define OFF_BEAT 136
#define OFF_FLAGS 192
#define BEAT_EVERY 1024

static inline uint64_t ld64(const char *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }
static inline void st64(char *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED); }

/* The geometry and mapping both ends share. */
typedef struct {
    Py_buffer view;
    char *base;          /* NULL: detached (closed), every call takes the Python path */
    Py_ssize_t len, data, ss, pcap;
    uint64_t mask;
} Map;

static int map_init(Map *m, PyObject *mm, Py_ssize_t data, Py_ssize_t ss, Py_ssize_t cap)
{
    if (cap <= 0 || (cap & (cap - 1)) || ss <= SLOT_HDR || ss % 8 || data % 8) {
        PyErr_SetString(PyExc_ValueError, "bad ring geometry");
        return -1;
    }
    if (PyObject_GetBuffer(mm, &m->view, PyBUF_WRITABLE) < 0)
        return -1;
    if (data + cap * ss > m->view.len) {
        PyBuffer_Release(&m->view);
        PyErr_SetString(PyExc_ValueError, "ring geometry outside the mapping");
        return -1;
    }
    m->base = m->view.buf;
    m->len = m->view.len;
    m->data = data;
    m->ss = ss;
    m->pcap = ss - SLOT_HDR;
    m->mask = (uint64_t)cap - 1;
    return 0;
}

static void map_release(Map *m)
{
    if (m->base != NULL) {
        m->base = NULL;
        PyBuffer_Release(&m->view);
    }
}

/* Room for n bytes in a growing scratch buffer; -1 with MemoryError. */
static int scratch_reserve(char **buf, Py_ssize_t *len, Py_ssize_t n)
{
    if (n <= *len)
        return 0;
    Py_ssize_t want = n > 2 * *len ? n : 2 * *len;
    char *p = PyMem_Realloc(*buf, (size_t)want);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *len = want;
    return 0;
}

static inline char *slot_at(const Map *m, uint64_t seq)
{
    return m->base + m->data + (Py_ssize_t)(seq & m->mask) * m->ss;
}

/* The Codec behind a layout function `f` (a bound Codec method), or NULL: f is the pure
   codec's (a Python function) and the caller takes the Python path. */
static CodecObject *codec_of(PyObject *f)
{
    if (f == NULL || !PyCFunction_Check(f))
        return NULL;
    PyObject *self = PyCFunction_GET_SELF(f);
    return self != NULL && Py_IS_TYPE(self, &ttxt_CodecType) ? (CodecObject *)self : NULL;
}

static PyObject *call_back(PyObject *f, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(f, args, nargsf, kwnames);
}

/* ================================================================== writer */

typedef struct {
    PyObject_HEAD
    Map m;
    long long seq, evno, limit, beat;
    unsigned long long w0;
    Py_ssize_t slow;     /* events handed to the Python path (tests: valid ones make none) */
    char *scratch;       /* an event needing fragments is encoded here first */
    Py_ssize_t scratch_len;
    int nwords;
    PyObject *enc;       /* the writer's dict: type -> (kind, pack_into, size) */
    PyObject *raw_kinds; /* the writer's set of kinds checked for put_raw */
    PyObject *put_py, *put_raw_py, *put_many_py, *wake; /* the Python methods */
} WriterCore;

static int Writer_traverse(WriterCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->enc);
    Py_VISIT(self->raw_kinds);
    Py_VISIT(self->put_py);
    Py_VISIT(self->put_raw_py);
    Py_VISIT(self->put_many_py);
    Py_VISIT(self->wake);
    return 0;
}

static int Writer_clear(WriterCore *self)
{
    map_release(&self->m);
    PyMem_Free(self->scratch);
    self->scratch = NULL;
    self->scratch_len = 0;
    Py_CLEAR(self->enc);
    Py_CLEAR(self->raw_kinds);
    Py_CLEAR(self->put_py);
    Py_CLEAR(self->put_raw_py);
    Py_CLEAR(self->put_many_py);
    Py_CLEAR(self->wake);
    return 0;
}

static void Writer_dealloc(WriterCore *self)
{
    PyObject_GC_UnTrack(self);
    Writer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Writer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mm", "data", "slot_size", "capacity", "nwords", "enc",
                             "raw_kinds", "put", "put_raw", "put_many", "wake", NULL};
    PyObject *mm, *enc, *raw, *put, *put_raw, *put_many, *wake;
    Py_ssize_t data, ss, cap;
    int nwords;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OnnniO!O!OOOO", kwlist, &mm, &data, &ss,
                                     &cap, &nwords, &PyDict_Type, &enc, &PySet_Type, &raw,
                                     &put, &put_raw, &put_many, &wake))
        return NULL;
    WriterCore *self = (WriterCore *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (map_init(&self->m, mm, data, ss, cap) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->nwords = nwords;
    self->beat = BEAT_EVERY;
    self->enc = Py_NewRef(enc);
    self->raw_kinds = Py_NewRef(raw);
    self->put_py = Py_NewRef(put);
    self->put_raw_py = Py_NewRef(put_raw);
    self->put_many_py = Py_NewRef(put_many);
    self->wake = Py_NewRef(wake);
    return (PyObject *)self;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* what time.monotonic_ns() reads on Linux */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A slot header, stamp excluded (stored by the caller): exactly SLOT_HEADER.pack_into's
   bytes 8..31 ("<QQHHH2xI4x", padding zero). */
static inline void fill_header(char *slot, uint64_t evno, unsigned kind, unsigned fidx,
                               unsigned fcnt, uint32_t plen)
{
    uint16_t k16 = (uint16_t)kind, f0 = (uint16_t)fidx, f1 = (uint16_t)fcnt;
    memcpy(slot + 8, &evno, 8);
    memcpy(slot + 16, &k16, 2);
    memcpy(slot + 18, &f0, 2);
    memcpy(slot + 20, &f1, 2);
    memset(slot + 22, 0, 2);
    memcpy(slot + 24, &plen, 4);
    memset(slot + 28, 0, 4);
}

/* After the slots up to `next` (exclusive) hold one more event, stamped valid: head,
   wake check, heartbeat. -1: waking raised. */
static int publish(WriterCore *self, uint64_t next)
{
    char *base = self->m.base;
    self->seq = (long long)next;
    self->evno++;
    BARRIER();
    st64(base + OFF_HEAD, next);
    /* head before the flag load: the producer's half of the Dekker pair (ring.py) */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (ld64(base + OFF_FLAGS) != self->w0 || self->nwords > 1) {
        PyObject *r = PyObject_CallNoArgs(self->wake);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    if (--self->beat <= 0 && self->m.base != NULL) {
        self->beat = BEAT_EVERY;
        st64(self->m.base + OFF_BEAT, monotonic_ns());
    }
    return 0;
}

/* An event of n > payload bytes in consecutive slots (RingWriter._write_frags): every
   fragment stamped WRITING, filled, then stamped valid from the last to the first (ring.py:
   fragment 0 valid implies all complete). 1 done, 0 the Python path (too large for the
   ring, no room under the block limit), -1 error. */
static int put_frags(WriterCore *self, CodecObject *c, PyObject *ev, unsigned kind, Py_ssize_t n)
{
    Py_ssize_t pcap = self->m.pcap, nfrag = (n + pcap - 1) / pcap, m;
    uint64_t seq = (uint64_t)self->seq, evno = (uint64_t)self->evno;
    if (nfrag > 0xFFFF || (uint64_t)nfrag > self->m.mask + 1
        || (long long)seq + nfrag > self->limit)
        return 0;
    if (scratch_reserve(&self->scratch, &self->scratch_len, n) < 0)
        return -1;
    if (ttxt_encode_event(c, ev, self->scratch, n, &m) < 0 || m != n)
        return 0;
    for (Py_ssize_t k = 0; k < nfrag; k++)
        st64(slot_at(&self->m, seq + k), (seq + k + 1) | WRITING);
    BARRIER();
    for (Py_ssize_t k = 0; k < nfrag; k++) {
        char *slot = slot_at(&self->m, seq + k);
        Py_ssize_t len = n - k * pcap < pcap ? n - k * pcap : pcap;
        fill_header(slot, evno, kind, (unsigned)k, (unsigned)nfrag, (uint32_t)len);
        memcpy(slot + SLOT_HDR, self->scratch + k * pcap, (size_t)len);
    }
    for (Py_ssize_t k = nfrag - 1; k >= 0; k--) {
        BARRIER();
        st64(slot_at(&self->m, seq + k), seq + k + 1);
    }
    return publish(self, seq + (uint64_t)nfrag) < 0 ? -1 : 1;
}

/* One event on the fast path: 1 done, 0 take the Python path, -1 error. */
static int put_fast(WriterCore *self, PyObject *ev)
{
    char *base = self->m.base;
    if (base == NULL || self->seq >= self->limit)
        return 0;
    PyObject *t = PyDict_GetItemWithError(self->enc, (PyObject *)Py_TYPE(ev));
    if (t == NULL || !PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 2) {
        PyErr_Clear();
        return 0;
    }
    CodecObject *c = codec_of(PyTuple_GET_ITEM(t, 1));
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
    if (c == NULL || kind < 0 || kind > 0xFFFF) {
        PyErr_Clear();
        return 0;
    }
    uint64_t seq = (uint64_t)self->seq;
    char *slot = base + self->m.data + (Py_ssize_t)(seq & self->m.mask) * self->m.ss;
    st64(slot, (seq + 1) | WRITING);
    BARRIER();
    Py_ssize_t n;
    /* Not encodable here (an input for the pure codec, or too large: fragments): the
       slot is written again, from its WRITING stamp on, as the Python put always did. */
    if (ttxt_encode_event(c, ev, slot + SLOT_HDR, self->m.pcap, &n) < 0) {
        if (ttxt_encode_event(c, ev, NULL, 0, &n) < 0 || n <= self->m.pcap)
            return 0;
        return put_frags(self, c, ev, (unsigned)kind, n);
    }
    fill_header(slot, (uint64_t)self->evno, (unsigned)kind, 0, 1, (uint32_t)n);
    BARRIER();
    st64(slot, seq + 1);
    return publish(self, seq + 1) < 0 ? -1 : 1;
}

static PyObject *Writer_put(WriterCore *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    /* put(ev), put(ev, timeout), put(ev, timeout=t): the timeout only matters on the
       Python path (a full block ring); anything else is the Python method's to refuse */
    int args_ok = kwnames == NULL ? nargs == 1 || nargs == 2
        : nargs == 1 && PyTuple_GET_SIZE(kwnames) == 1
          && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout") == 0;
    if (args_ok) {
        int r = put_fast(self, args[0]);
        if (r > 0)
            Py_RETURN_NONE;
        if (r < 0)
            return NULL;
    }
    self->slow++;
    return call_back(self->put_py, args, nargsf, kwnames);
}

static PyObject *Writer_put_many(WriterCore *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || kwnames != NULL || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0])))
        return call_back(self->put_many_py, args, nargsf, kwnames);
    PyObject *seq = PySequence_Fast(args[0], "put_many");
    if (seq == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *ev = PySequence_Fast_GET_ITEM(seq, i);
        int r = put_fast(self, ev);
        if (r < 0)
            goto fail;
        if (r == 0) {
            self->slow++;
            PyObject *res = PyObject_CallOneArg(self->put_py, ev);
            if (res == NULL)
                goto fail;
            Py_DECREF(res);
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyObject *Writer_put_raw(WriterCore *self, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    char *base = self->m.base;
    if (nargs != 2 || kwnames != NULL || base == NULL || !PyLong_CheckExact(args[0])
        || !PyBytes_CheckExact(args[1]) || self->seq >= self->limit)
        goto py;
    int has = PySet_Contains(self->raw_kinds, args[0]);
    long kind = PyLong_AsLong(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[1]);
    if (has != 1 || kind < 0 || kind > 0xFFFF || n > self->m.pcap) {
        PyErr_Clear();
        goto py;
    }
    uint64_t seq = (uint64_t)self->seq;
    char *slot = base + self->m.data + (Py_ssize_t)(seq & self->m.mask) * self->m.ss;
    st64(slot, (seq + 1) | WRITING);
    BARRIER();
    fill_header(slot, (uint64_t)self->evno, (unsigned)kind, 0, 1, (uint32_t)n);
    memcpy(slot + SLOT_HDR, PyBytes_AS_STRING(args[1]), (size_t)n);
    BARRIER();
    st64(slot, seq + 1);
    if (publish(self, seq + 1) < 0)
        return NULL;
    Py_RETURN_NONE;
py:
    self->slow++;
    return call_back(self->put_raw_py, args, nargsf, kwnames);
}

/* put_rows(kind, rows) -> count: records of a C-contiguous 2-D buffer (n rows of `size`
   bytes, size <= the slot payload), one slot each, as many as the limit allows; head is
   published once at the end, then the wake check and a heartbeat (as _put_records). The
   caller (cring.py) checked the kind and reserves room when fewer than n were written. */
static PyObject *Writer_put_rows(WriterCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    long kind;
    Py_buffer b;
    char *base = self->m.base;
    if (nargs != 2 || base == NULL) {
        PyErr_SetString(PyExc_TypeError, "put_rows(kind, rows) on an attached core");
        return NULL;
    }
    if ((kind = PyLong_AsLong(args[0])) == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[1], &b, PyBUF_C_CONTIGUOUS | PyBUF_ND) < 0)
        return NULL;
    Py_ssize_t n = b.ndim == 2 ? b.shape[0] : -1, size = b.ndim == 2 ? b.shape[1] : -1;
    if (n < 0 || size > self->m.pcap || b.itemsize != 1 || kind < 0 || kind > 0xFFFF) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "put_rows: 2-D uint8 rows that fit one slot");
        return NULL;
    }
    Py_ssize_t done = 0;
    uint64_t seq = (uint64_t)self->seq, evno = (uint64_t)self->evno;
    while (done < n && (long long)seq < self->limit) {
        char *slot = base + self->m.data + (Py_ssize_t)(seq & self->m.mask) * self->m.ss;
        st64(slot, (seq + 1) | WRITING);
        BARRIER();
        fill_header(slot, evno, (unsigned)kind, 0, 1, (uint32_t)size);
        memcpy(slot + SLOT_HDR, (char *)b.buf + done * size, (size_t)size);
        BARRIER();
        st64(slot, seq + 1);
        seq++, evno++, done++;
    }
    PyBuffer_Release(&b);
    self->seq = (long long)seq;
    self->evno = (long long)evno;
    BARRIER();
    st64(base + OFF_HEAD, seq);
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* head before the flag load (ring.py) */
    PyObject *r = PyObject_CallNoArgs(self->wake);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    self->beat = BEAT_EVERY;
    if (self->m.base != NULL)
        st64(self->m.base + OFF_BEAT, monotonic_ns());
    return PyLong_FromSsize_t(done);
}

static PyObject *Writer_detach(WriterCore *self, PyObject *Py_UNUSED(ignored))
{
    map_release(&self->m);
    Py_RETURN_NONE;
}

static PyMethodDef Writer_methods[] = {
    {"put", (PyCFunction)(void (*)(void))Writer_put, METH_FASTCALL | METH_KEYWORDS,
     "put(event, timeout=None): RingWriter.put in one call (its Python twin otherwise)."},
    {"put_many", (PyCFunction)(void (*)(void))Writer_put_many, METH_FASTCALL | METH_KEYWORDS,
     "put_many(list_or_tuple): put each event; anything else goes to RingWriter.put_many."},
    {"put_raw", (PyCFunction)(void (*)(void))Writer_put_raw, METH_FASTCALL | METH_KEYWORDS,
     "put_raw(kind, payload): one-slot bytes of a checked kind; else RingWriter.put_raw."},
    {"put_rows", (PyCFunction)(void (*)(void))Writer_put_rows, METH_FASTCALL,
     "put_rows(kind, rows) -> records written (up to the block limit)."},
    {"detach", (PyCFunction)Writer_detach, METH_NOARGS,
     "Release the mapping (before it is unmapped): every call takes the Python path."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Writer_members[] = {
    {"seq", T_LONGLONG, offsetof(WriterCore, seq), 0, "next sequence to write"},
    {"evno", T_LONGLONG, offsetof(WriterCore, evno), 0, "next event number"},
    {"limit", T_LONGLONG, offsetof(WriterCore, limit), 0, "first sequence not writable"},
    {"beat", T_LONGLONG, offsetof(WriterCore, beat), 0, "puts until the next heartbeat"},
    {"w0", T_ULONGLONG, offsetof(WriterCore, w0), 0, "sleep-flag word 0 at the last wake"},
    {"slow", T_PYSSIZET, offsetof(WriterCore, slow), READONLY, "calls that took the Python path"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject WriterCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ttxt_mp._ccodec.WriterCore",
    .tp_basicsize = sizeof(WriterCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled hot path of one RingWriter (made by ttxt_mp.shm.cring).",
    .tp_new = Writer_new,
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_traverse = (traverseproc)Writer_traverse,
    .tp_clear = (inquiry)Writer_clear,
    .tp_methods = Writer_methods,
    .tp_members = Writer_members,
};

/* ================================================================== reader */

typedef struct {
    PyObject_HEAD
    Map m;
    long long seq, evno;
    Py_ssize_t slow;     /* calls handed to the Python path with an event waiting */
    char *scratch;       /* the fragments of an event, gathered */
    Py_ssize_t scratch_len;
    uint8_t *accept;     /* bitmap of the kinds to decode (NULL: all); others are skipped */
    PyObject *exchanges, *symbols; /* sets of UTF-8 bytes to decode (NULL: all) */
    uint8_t *always;     /* bitmap of the kinds never skipped for their instrument */
    CodecObject *icodec; /* one-entry cache: the codec whose instrument fields follow */
    const Field *iexch, *isym;
    Py_ssize_t skipped;  /* events skipped undecoded */
    Py_ssize_t cursor;   /* byte offset of this consumer's cursor word */
    PyObject *dec;       /* the reader's _Decoders: kind -> unpack_from */
    PyObject *poll_py, *get_py, *raw_py; /* the Python methods */
} ReaderCore;

static int Reader_traverse(ReaderCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->exchanges);
    Py_VISIT(self->symbols);
    Py_VISIT(self->dec);
    Py_VISIT(self->poll_py);
    Py_VISIT(self->get_py);
    Py_VISIT(self->raw_py);
    return 0;
}

static int Reader_clear(ReaderCore *self)
{
    map_release(&self->m);
    PyMem_Free(self->scratch);
    self->scratch = NULL;
    self->scratch_len = 0;
    PyMem_Free(self->accept);
    self->accept = NULL;
    PyMem_Free(self->always);
    self->always = NULL;
    Py_CLEAR(self->exchanges);
    Py_CLEAR(self->symbols);
    self->icodec = NULL;
    Py_CLEAR(self->dec);
    Py_CLEAR(self->poll_py);
    Py_CLEAR(self->get_py);
    Py_CLEAR(self->raw_py);
    return 0;
}

static void Reader_dealloc(ReaderCore *self)
{
    PyObject_GC_UnTrack(self);
    Reader_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mm", "data", "slot_size", "capacity", "cursor", "dec",
                             "poll", "get", "fetch_raw", NULL};
    PyObject *mm, *dec, *poll, *get, *raw;
    Py_ssize_t data, ss, cap, cursor;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OnnnnO!OOO", kwlist, &mm, &data, &ss, &cap,
                                     &cursor, &PyDict_Type, &dec, &poll, &get, &raw))
        return NULL;
    ReaderCore *self = (ReaderCore *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (map_init(&self->m, mm, data, ss, cap) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    if (cursor < 0 || cursor % 8 || cursor + 8 > self->m.len) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_ValueError, "cursor outside the mapping");
        return NULL;
    }
    self->cursor = cursor;
    self->dec = Py_NewRef(dec);
    self->poll_py = Py_NewRef(poll);
    self->get_py = Py_NewRef(get);
    self->raw_py = Py_NewRef(raw);
    return (PyObject *)self;
}

/* The next event's payload when the next sequence starts a complete event with the
   expected event number: a pointer into its slot (one slot) or into the gathered
   fragments (several), its bytes in *len, its kind and slot count in *kind, *nslots.
   NULL otherwise, with *ready = 0 when the slot is simply not written yet (nothing to
   read, no lap), 1 for the Python path (laps, gaps, a torn header, no memory). */
static const char *next_event(ReaderCore *self, unsigned *kind, Py_ssize_t *len,
                              uint16_t *nslots, int *ready)
{
    char *base = self->m.base;
    *ready = 1;
    if (base == NULL)
        return NULL;
    uint64_t seq = (uint64_t)self->seq;
    char *slot = slot_at(&self->m, seq);
    uint64_t st = ld64(slot);
    BARRIER();
    if (st != seq + 1) {
        long long written = (long long)(st & ~WRITING) - 1;
        *ready = written > (long long)seq; /* a lap: the Python path relocates */
        return NULL;
    }
    uint64_t evno;
    uint16_t k16, fidx, fcnt;
    uint32_t plen;
    memcpy(&evno, slot + 8, 8);
    memcpy(&k16, slot + 16, 2);
    memcpy(&fidx, slot + 18, 2);
    memcpy(&fcnt, slot + 20, 2);
    memcpy(&plen, slot + 24, 4);
    Py_ssize_t pcap = self->m.pcap;
    if (fidx != 0 || fcnt == 0 || evno != (uint64_t)self->evno || plen > pcap
        || (uint64_t)fcnt > self->m.mask + 1)
        return NULL;
    *kind = k16;
    *nslots = fcnt;
    if (fcnt == 1) {
        *len = plen;
        return slot + SLOT_HDR;
    }
    /* fragment 0 valid: every fragment is complete (stamped last to first) */
    memcpy(&plen, slot_at(&self->m, seq + fcnt - 1) + 24, 4);
    if (plen > pcap)
        return NULL; /* torn: the stamp check of the Python path rejects it */
    Py_ssize_t total = (fcnt - 1) * pcap + plen;
    if (scratch_reserve(&self->scratch, &self->scratch_len, total) < 0) {
        PyErr_Clear();
        return NULL;
    }
    for (uint16_t k = 0; k < fcnt; k++) {
        Py_ssize_t n = total - k * pcap < pcap ? total - k * pcap : pcap;
        memcpy(self->scratch + k * pcap, slot_at(&self->m, seq + k) + SLOT_HDR, (size_t)n);
    }
    *len = total;
    return self->scratch;
}

/* The first slot still holds sequence seq: advance the cursor past the event (1), or 0. */
static inline int finish(ReaderCore *self, uint16_t nslots)
{
    uint64_t seq = (uint64_t)self->seq;
    BARRIER();
    if (ld64(slot_at(&self->m, seq)) != seq + 1)
        return 0;
    self->seq += nslots;
    self->evno++;
    BARRIER();
    st64(self->m.base + self->cursor, seq + nslots);
    return 1;
}

/* The fixed text field `name` of codec c, or NULL. */
static const Field *text_field(const CodecObject *c, const char *name)
{
    for (Py_ssize_t i = 0; i < c->nfixed; i++)
        if (c->fixed[i].code == 's' && PyUnicode_CompareWithASCIIString(c->fixed[i].name, name) == 0)
            return &c->fixed[i];
    return NULL;
}

/* 1 if the text of field f at payload p (NULs stripped, as decoded) is in `wanted`. */
static int text_in(const Field *f, const char *p, PyObject *wanted)
{
    Py_ssize_t n = f->width;
    const char *v = p + f->pos;
    while (n > 0 && v[n - 1] == '\0')
        n--;
    PyObject *b = PyBytes_FromStringAndSize(v, n);
    if (b == NULL) {
        PyErr_Clear();
        return 1; /* unsure: decode it, the caller's filter decides */
    }
    int r = PySet_Contains(wanted, b);
    Py_DECREF(b);
    if (r < 0)
        PyErr_Clear();
    return r != 0;
}

/* 0 when the event (kind, codec c, payload p of len bytes) is of an unwanted instrument:
   its exchange (symbol) field is not among the wanted ones. Kinds without the field, and
   the `always` kinds, are kept (1): the caller's filter decides them. */
static int instrument_wanted(ReaderCore *self, unsigned kind, CodecObject *c, const char *p,
                             Py_ssize_t len)
{
    if ((self->exchanges == NULL && self->symbols == NULL) || len < c->header_size
        || (self->always[kind >> 3] >> (kind & 7)) & 1)
        return 1;
    if (self->icodec != c) {
        self->icodec = c;
        self->iexch = text_field(c, "exchange");
        self->isym = text_field(c, "symbol");
    }
    if (self->exchanges != NULL && self->iexch != NULL && !text_in(self->iexch, p, self->exchanges))
        return 0;
    if (self->symbols != NULL && self->isym != NULL && !text_in(self->isym, p, self->symbols))
        return 0;
    return 1;
}

#define MAX_SKIP 4096 /* then the Python path decodes one (the caller's filter drops it) */

/* The next event, decoded; or NULL: *py = 1 take the Python path, 0 nothing ready.
   Events of kinds outside `accept` are passed over without decoding. */
static PyObject *poll_fast(ReaderCore *self, int *py)
{
    unsigned kind;
    Py_ssize_t len;
    uint16_t nslots;
    int ready;
    const char *p;
    CodecObject *c = NULL;
    for (int skips = 0;; skips++) {
        p = next_event(self, &kind, &len, &nslots, &ready);
        *py = 1;
        if (p == NULL) {
            *py = ready;
            return NULL;
        }
        int keep = self->accept == NULL || (self->accept[kind >> 3] >> (kind & 7)) & 1;
        if (keep) {
            PyObject *k = PyLong_FromUnsignedLong(kind);
            if (k == NULL) {
                PyErr_Clear();
                return NULL;
            }
            /* no __missing__ here: the Python path fills the decoders */
            c = codec_of(PyDict_GetItemWithError(self->dec, k));
            Py_DECREF(k);
            if (c == NULL) {
                PyErr_Clear();
                return NULL;
            }
            keep = instrument_wanted(self, kind, c, p, nslots == 1 ? self->m.pcap : len);
            if (keep)
                break;
        }
        if (skips == MAX_SKIP || !finish(self, nslots))
            return NULL;
        self->skipped++;
    }
    Py_ssize_t n;
    /* one slot: the mapping past the slot header, as the Python reader passes it */
    if (nslots == 1)
        len = self->m.len - (p - self->m.base);
    PyObject *ev = ttxt_decode_struct(c, p, len, &n);
    if (ev == NULL) { /* the pure codec's case, or a constructor error: Python redoes it */
        PyErr_Clear();
        return NULL;
    }
    if (!finish(self, nslots)) {
        Py_DECREF(ev);
        return NULL;
    }
    return ev;
}

static PyObject *Reader_poll(ReaderCore *self, PyObject *Py_UNUSED(ignored))
{
    int py;
    PyObject *ev = poll_fast(self, &py);
    if (ev != NULL)
        return ev;
    if (!py)
        Py_RETURN_NONE;
    self->slow++;
    return PyObject_CallNoArgs(self->poll_py);
}

static PyObject *Reader_get(ReaderCore *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    int py;
    PyObject *ev = poll_fast(self, &py);
    if (ev != NULL)
        return ev;
    self->slow += py;
    return call_back(self->get_py, args, nargsf, kwnames);
}

static PyObject *Reader_fetch_raw(ReaderCore *self, PyObject *Py_UNUSED(ignored))
{
    unsigned kind;
    Py_ssize_t len;
    uint16_t nslots;
    int ready;
    const char *p = next_event(self, &kind, &len, &nslots, &ready);
    if (p == NULL) {
        if (!ready)
            Py_RETURN_NONE;
        self->slow++;
        return PyObject_CallNoArgs(self->raw_py);
    }
    PyObject *b = PyBytes_FromStringAndSize(p, len);
    if (b == NULL)
        return NULL;
    if (!finish(self, nslots)) {
        Py_DECREF(b);
        self->slow++;
        return PyObject_CallNoArgs(self->raw_py);
    }
    PyObject *k = PyLong_FromUnsignedLong(kind);
    if (k == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    PyObject *res = PyTuple_Pack(2, k, b);
    Py_DECREF(k);
    Py_DECREF(b);
    return res;
}

/* read_batch(max_n) -> bytearray of whole slots | None (nothing to read) | False (the
   Python path: a lap, a gap, a fragment at either end). Up to max_n slots from the
   cursor, never past head nor the ring's end; the first slot's stamp checked before and
   after the copy (the producer overwrites in sequence order, see ring.py). */
static PyObject *Reader_read_batch(ReaderCore *self, PyObject *arg)
{
    char *base = self->m.base;
    Py_ssize_t max_n = PyLong_AsSsize_t(arg);
    if (max_n == -1 && PyErr_Occurred())
        return NULL;
    if (base == NULL || max_n < 1)
        Py_RETURN_FALSE;
    uint64_t seq = (uint64_t)self->seq, head = ld64(base + OFF_HEAD);
    BARRIER();
    if (head <= seq)
        Py_RETURN_NONE;
    Py_ssize_t ss = self->m.ss;
    uint64_t i0 = seq & self->m.mask, cap = self->m.mask + 1;
    Py_ssize_t n = (Py_ssize_t)(head - seq);
    if ((uint64_t)n > cap - i0)
        n = (Py_ssize_t)(cap - i0);
    if (n > max_n)
        n = max_n;
    char *first = base + self->m.data + (Py_ssize_t)i0 * ss;
    if (ld64(first) != seq + 1)
        Py_RETURN_FALSE;
    BARRIER();
    PyObject *out = PyByteArray_FromStringAndSize(first, n * ss);
    if (out == NULL)
        return NULL;
    BARRIER();
    if (ld64(first) != seq + 1) {
        Py_DECREF(out);
        Py_RETURN_FALSE;
    }
    const char *buf = PyByteArray_AS_STRING(out), *last = buf + (n - 1) * ss;
    uint64_t evno0, evno1;
    uint16_t fidx0, fidx1, fcnt1;
    memcpy(&evno0, buf + 8, 8);
    memcpy(&fidx0, buf + 18, 2);
    memcpy(&evno1, last + 8, 8);
    memcpy(&fidx1, last + 18, 2);
    memcpy(&fcnt1, last + 20, 2);
    if (fidx0 != 0 || fidx1 + 1 != fcnt1 || evno0 != (uint64_t)self->evno) {
        Py_DECREF(out);
        Py_RETURN_FALSE;
    }
    self->seq = (long long)(seq + (uint64_t)n);
    self->evno = (long long)evno1 + 1;
    BARRIER();
    st64(base + self->cursor, seq + (uint64_t)n);
    return out;
}

/* set_kinds(None | iterable of kinds): decode only these kinds from now on. */
static PyObject *Reader_set_kinds(ReaderCore *self, PyObject *kinds)
{
    if (kinds == Py_None) {
        PyMem_Free(self->accept);
        self->accept = NULL;
        Py_RETURN_NONE;
    }
    uint8_t *bits = PyMem_Calloc(8192, 1);
    if (bits == NULL)
        return PyErr_NoMemory();
    PyObject *it = PyObject_GetIter(kinds), *k;
    if (it == NULL) {
        PyMem_Free(bits);
        return NULL;
    }
    while ((k = PyIter_Next(it)) != NULL) {
        long v = PyLong_AsLong(k);
        Py_DECREF(k);
        if (v < 0 || v > 0xFFFF) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "event kinds are 0..65535, got %ld", v);
            break;
        }
        bits[v >> 3] |= (uint8_t)(1u << (v & 7));
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        PyMem_Free(bits);
        return NULL;
    }
    PyMem_Free(self->accept);
    self->accept = bits;
    Py_RETURN_NONE;
}

/* set_instruments(exchanges, symbols, always): decode only events whose exchange and
   symbol fields (UTF-8 bytes) are in these sets (None: any); kinds in `always` are kept. */
static PyObject *Reader_set_instruments(ReaderCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || (args[0] != Py_None && !PyAnySet_Check(args[0]))
        || (args[1] != Py_None && !PyAnySet_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "set_instruments(set | None, set | None, kinds)");
        return NULL;
    }
    uint8_t *bits = PyMem_Calloc(8192, 1);
    if (bits == NULL)
        return PyErr_NoMemory();
    PyObject *it = PyObject_GetIter(args[2]), *k;
    if (it == NULL) {
        PyMem_Free(bits);
        return NULL;
    }
    while ((k = PyIter_Next(it)) != NULL) {
        long v = PyLong_AsLong(k);
        Py_DECREF(k);
        if (v < 0 || v > 0xFFFF) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "event kinds are 0..65535, got %ld", v);
            break;
        }
        bits[v >> 3] |= (uint8_t)(1u << (v & 7));
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        PyMem_Free(bits);
        return NULL;
    }
    PyMem_Free(self->always);
    self->always = bits;
    Py_XSETREF(self->exchanges, args[0] == Py_None ? NULL : Py_NewRef(args[0]));
    Py_XSETREF(self->symbols, args[1] == Py_None ? NULL : Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static PyObject *Reader_detach(ReaderCore *self, PyObject *Py_UNUSED(ignored))
{
    map_release(&self->m);
    Py_RETURN_NONE;
}

static PyMethodDef Reader_methods[] = {
    {"poll", (PyCFunction)Reader_poll, METH_NOARGS,
     "RingReader._poll in one call: the next event or None (its Python twin otherwise)."},
    {"get", (PyCFunction)(void (*)(void))Reader_get, METH_FASTCALL | METH_KEYWORDS,
     "get(timeout=None): the next ready event, else RingReader.get (waits)."},
    {"fetch_raw", (PyCFunction)Reader_fetch_raw, METH_NOARGS,
     "RingReader._fetch_raw in one call: (kind, payload bytes) or None."},
    {"set_instruments", (PyCFunction)(void (*)(void))Reader_set_instruments, METH_FASTCALL,
     "set_instruments(exchanges, symbols, always): decode only these instruments."},
    {"set_kinds", (PyCFunction)Reader_set_kinds, METH_O,
     "set_kinds(None | kinds): decode only these kinds; others are passed over undecoded."},
    {"read_batch", (PyCFunction)Reader_read_batch, METH_O,
     "read_batch(max_n): whole slots as a bytearray, None (nothing), False (Python path)."},
    {"detach", (PyCFunction)Reader_detach, METH_NOARGS,
     "Release the mapping (before it is unmapped): every call takes the Python path."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Reader_members[] = {
    {"seq", T_LONGLONG, offsetof(ReaderCore, seq), 0, "next sequence to read"},
    {"evno", T_LONGLONG, offsetof(ReaderCore, evno), 0, "event number expected next"},
    {"slow", T_PYSSIZET, offsetof(ReaderCore, slow), READONLY, "calls that took the Python path"},
    {"skipped", T_PYSSIZET, offsetof(ReaderCore, skipped), READONLY, "events passed over undecoded"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ReaderCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ttxt_mp._ccodec.ReaderCore",
    .tp_basicsize = sizeof(ReaderCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled hot path of one RingReader (made by ttxt_mp.shm.cring).",
    .tp_new = Reader_new,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_traverse = (traverseproc)Reader_traverse,
    .tp_clear = (inquiry)Reader_clear,
    .tp_methods = Reader_methods,
    .tp_members = Reader_members,
};

int ttxt_ring_add_types(PyObject *m)
{
    if (PyType_Ready(&WriterCoreType) < 0 || PyType_Ready(&ReaderCoreType) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "WriterCore", (PyObject *)&WriterCoreType) < 0
        || PyModule_AddObjectRef(m, "ReaderCore", (PyObject *)&ReaderCoreType) < 0)
        return -1;
    return 0;
}
