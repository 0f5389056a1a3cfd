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

/* ------------------------------------------------------------------ CRC32 (zlib's) */

/* zlib's CRC32 (reflected 0x04C11DB7) by carry-less multiplication folding (the method of
   Intel's "Fast CRC Computation Using PCLMULQDQ"; constants as in Linux's crc32-pclmul),
   ~5-10x the table-driven zlib.crc32 per byte, so checking a block's chunks no longer
   costs more than framing it. Used only where the CPU has PCLMULQDQ (checked at run
   time); tests compare it with zlib.crc32 on random data and lengths. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_CLMUL 1

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_bytes(uint32_t c, const unsigned char *p, Py_ssize_t n)
{
    while (n-- > 0)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

/* the raw (not inverted) CRC register over p[:n], n >= 64 and a multiple of 16 */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_fold(uint32_t crc, const unsigned char *p, Py_ssize_t n)
{
    const __m128i r2r1 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
    const __m128i r4r3 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
    const __m128i r5 = _mm_set_epi64x(0, 0x163cd6124LL);
    const __m128i ru = _mm_set_epi64x(0x1F7011641LL, 0x1DB710641LL);
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x1 = _mm_loadu_si128((const __m128i *)p), x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32)), x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    p += 64, n -= 64;
#define FOLD(x, k, next) \
    _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next)
    for (; n >= 64; p += 64, n -= 64) {
        x1 = FOLD(x1, r2r1, _mm_loadu_si128((const __m128i *)p));
        x2 = FOLD(x2, r2r1, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = FOLD(x3, r2r1, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = FOLD(x4, r2r1, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    x1 = FOLD(x1, r4r3, x2);
    x1 = FOLD(x1, r4r3, x3);
    x1 = FOLD(x1, r4r3, x4);
    for (; n >= 16; p += 16, n -= 16)
        x1 = FOLD(x1, r4r3, _mm_loadu_si128((const __m128i *)p));
#undef FOLD
    /* 128 -> 64 bits */
    x2 = _mm_clmulepi64_si128(r4r3, x1, 0x01); /* R4 * x1.low */
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
    /* 64 -> 32 */
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), r5, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    /* Barrett reduction */
    x2 = x1;
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), ru, 0x10);
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), ru, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int have_clmul = -1;

static int clmul_ok(void)
{
    if (have_clmul < 0) {
        __builtin_cpu_init();
        have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
        crc_table_init();
    }
    return have_clmul;
}

/* zlib.crc32(p[:n], crc) */
static uint32_t crc32_fast(uint32_t crc, const unsigned char *p, Py_ssize_t n)
{
    uint32_t c = ~crc;
    if (n >= 64) {
        Py_ssize_t m = n & ~(Py_ssize_t)15;
        c = crc_fold(c, p, m);
        p += m, n -= m;
    }
    return ~crc_bytes(c, p, n);
}
#else
#define HAVE_CLMUL 0
static int clmul_ok(void) { return 0; }
static uint32_t crc32_fast(uint32_t crc, const unsigned char *p, Py_ssize_t n)
{
    (void)p; (void)n;
    return crc;
}
#endif

/* crc32(data, crc=0) -> zlib.crc32(data, crc); only where fast_crc_available() */
static PyObject *py_crc32(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    unsigned long crc = 0;
    Py_buffer b;
    if (nargs < 1 || nargs > 2 || !clmul_ok()) {
        PyErr_SetString(PyExc_TypeError, "crc32(data, crc=0) needs PCLMULQDQ");
        return NULL;
    }
    if (nargs == 2 && (crc = PyLong_AsUnsignedLongMask(args[1])) == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &b, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t r = crc32_fast((uint32_t)crc, b.buf, b.len);
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(r);
}

/* check_chunks(buf, start i64[c], end i64[c], crc u32[c], good bool[c]) -> bad count:
   good[i] = zlib.crc32(buf[start[i]:end[i]]) == crc[i] (False for a range outside buf). */
static PyObject *check_chunks(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 5 || !clmul_ok()) {
        PyErr_SetString(PyExc_TypeError, "check_chunks takes 5 arguments and PCLMULQDQ");
        return NULL;
    }
    Py_buffer v[5];
    static const Py_ssize_t isz[5] = {1, 8, 8, 4, 1};
    int got = 0;
    PyObject *res = NULL;
    for (; got < 5; got++) {
        int fl = got == 0 ? PyBUF_SIMPLE : PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (got == 4 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(args[got], &v[got], fl) < 0)
            goto done;
        if (got > 0 && v[got].itemsize != isz[got]) {
            PyErr_SetString(PyExc_ValueError, "check_chunks: wrong array item size");
            got++;
            goto done;
        }
    }
    Py_ssize_t n = v[1].len / 8, bad = 0;
    if (v[2].len / 8 < n || v[3].len / 4 < n || v[4].len < n) {
        PyErr_SetString(PyExc_ValueError, "check_chunks: arrays of mismatched sizes");
        goto done;
    }
    const int64_t *st = v[1].buf, *en = v[2].buf;
    const uint32_t *want = v[3].buf;
    char *good = v[4].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int ok = st[i] >= 0 && en[i] >= st[i] && en[i] <= v[0].len
                 && crc32_fast(0, (const unsigned char *)v[0].buf + st[i], en[i] - st[i]) == want[i];
        good[i] = (char)ok;
        bad += !ok;
    }
    res = PyLong_FromSsize_t(bad);
done:
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&v[i]);
    return res;
}

/* scan_headers(buf, pos, magic, version, header_size) -> (rows, stop): the valid, complete
   chunks from `pos` on, as bytes of int64 rows (pos, count, body_len, first_ts, last_ts,
   body_crc), and the offset where the walk stopped: len(buf), or the first offset that is
   not such a chunk (storage/scan.py then names the problem and resynchronizes). A chunk
   header is struct "<4sHHIIqqII" (storage/format.py: CHUNK_HEADER): magic, version,
   flags, count, body_len, first_ts, last_ts, body_crc, then its own CRC32 of the bytes
   before it; a chunk is header + body + 4 bytes per record. */
static PyObject *scan_headers(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Py_buffer b, mg;
    Py_ssize_t pos, hsize;
    long version;
    if (nargs != 5 || !clmul_ok()) {
        PyErr_SetString(PyExc_TypeError, "scan_headers takes 5 arguments and PCLMULQDQ");
        return NULL;
    }
    if ((pos = PyLong_AsSsize_t(args[1])) < 0 || (version = PyLong_AsLong(args[3])) < 0
        || (hsize = PyLong_AsSsize_t(args[4])) != 40) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "scan_headers: bad position, version or header size");
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &mg, PyBUF_SIMPLE) < 0)
        return NULL;
    if (mg.len != 4) {
        PyBuffer_Release(&mg);
        PyErr_SetString(PyExc_ValueError, "scan_headers: the magic is 4 bytes");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &b, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&mg);
        return NULL;
    }
    const unsigned char *buf = b.buf;
    Py_ssize_t size = b.len, n = 0, cap = 0;
    int64_t *rows = NULL;
    PyObject *res = NULL;
    while (pos <= size - hsize) {
        const unsigned char *h = buf + pos;
        uint16_t ver;
        uint32_t count, blen, bcrc, hcrc;
        int64_t first, last;
        memcpy(&ver, h + 4, 2);
        memcpy(&count, h + 8, 4);
        memcpy(&blen, h + 12, 4);
        memcpy(&first, h + 16, 8);
        memcpy(&last, h + 24, 8);
        memcpy(&bcrc, h + 32, 4);
        memcpy(&hcrc, h + 36, 4);
        if (memcmp(h, mg.buf, 4) != 0 || crc32_fast(0, h, hsize - 4) != hcrc || ver != version)
            break;
        Py_ssize_t stop = pos + hsize + (Py_ssize_t)blen + 4 * (Py_ssize_t)count;
        if (stop > size)
            break;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t *grown = PyMem_Realloc(rows, (size_t)cap * 6 * sizeof(int64_t));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            rows = grown;
        }
        int64_t *r = rows + 6 * n++;
        r[0] = pos, r[1] = count, r[2] = blen, r[3] = first, r[4] = last, r[5] = bcrc;
        pos = stop;
    }
    if (pos > size)
        pos = size;
    res = Py_BuildValue("(y#n)", (const char *)rows, n * 6 * (Py_ssize_t)sizeof(int64_t), pos);
done:
    PyMem_Free(rows);
    PyBuffer_Release(&b);
    PyBuffer_Release(&mg);
    return res;
}

static PyObject *fast_crc_available(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    (void)mod;
    return PyBool_FromLong(clmul_ok());
}

static PyMethodDef batch_functions[] = {
    {"crc32", (PyCFunction)(void (*)(void))py_crc32, METH_FASTCALL,
     "crc32(data, crc=0) -> zlib.crc32(data, crc), folded with PCLMULQDQ."},
    {"check_chunks", (PyCFunction)(void (*)(void))check_chunks, METH_FASTCALL,
     "check_chunks(buf, start, end, crc, good) -> number of ranges whose zlib CRC32 "
     "differs from crc (good[i] says which)."},
    {"scan_headers", (PyCFunction)(void (*)(void))scan_headers, METH_FASTCALL,
     "scan_headers(buf, pos, magic, version, header_size) -> (rows, stop): the valid, "
     "complete chunks from pos on, as int64 rows (see ttxt_mp/storage/scan.py)."},
    {"fast_crc_available", (PyCFunction)fast_crc_available, METH_NOARGS,
     "True where crc32/check_chunks run (x86-64 with PCLMULQDQ)."},
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
