/* Shared between the compiled codec (_ccodec.c) and the compiled ring ends (_cring.c):
   the layout descriptors and the two entry points the ring calls directly. */
#ifndef TTXT_CCODEC_H
#define TTXT_CCODEC_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* One fixed-size field: of the event header, or of an array item. */
typedef struct {
    PyObject *name;       /* attribute name (str) */
    Py_ssize_t slot;      /* offset of the member in the instance; -1: getattr / index */
    char code;            /* struct code: b B h H i I q Q f d ? s */
    Py_ssize_t width;     /* bytes in the record */
    Py_ssize_t pos;       /* byte offset in the header or the item */
    PyObject *enum_table; /* tuple: value -> IntEnum member (None for gaps), or NULL */
    int cache;            /* low-cardinality text: keep a one-entry decode cache */
    char *cache_key;      /* the last decoded raw bytes (width of them) */
    PyObject *cache_val;  /* ... and their str */
} Field;

/* One variable part: UTF-8 text or an array of fixed-size items (count-prefixed). */
typedef struct {
    PyObject *name;
    Py_ssize_t slot;      /* member offset of the part in the event, -1: getattr */
    int is_text;
    Py_ssize_t count_pos; /* header offset of its uint32 count */
    PyObject *item;       /* array item class, or NULL: items are tuples */
    Py_ssize_t itemsize;
    Py_ssize_t nfields;
    Field *fields;
    int doubles;          /* items are tuples of float64 fields (book levels): fast path */
} Part;

typedef struct {
    PyObject_HEAD
    PyObject *cls;
    Py_ssize_t header_size;
    Py_ssize_t nfixed, nvar;
    Field *fixed;
    Part *var;
    int all_slots;        /* every field read from its slot: no Python code runs in encode */
    PyObject *kwnames;    /* names of the constructor's keyword arguments, fixed then var */
    PyObject *pure_pack, *pure_unpack, *pure_size; /* the reference; also the fallback */
    Py_ssize_t fallbacks; /* calls handed to the pure codec (tests check valid events make none) */
} CodecObject;

extern PyTypeObject ttxt_CodecType;

/* Encode `ev` at `dst` (room bytes): 0 and *nbytes, or -1 (not a fast-path input or too
   large; no error set: the caller takes the pure path). dst == NULL: size only. */
int ttxt_encode_event(CodecObject *self, PyObject *ev, char *dst, Py_ssize_t room,
                      Py_ssize_t *nbytes);
/* The event encoded at buf[:len] and its size in *nbytes; NULL without an error: use the
   pure codec; NULL with an error: the Struct's constructor raised. */
PyObject *ttxt_decode_struct(CodecObject *self, const char *buf, Py_ssize_t len,
                             Py_ssize_t *nbytes);
/* Add the ring-end types (WriterCore, ReaderCore) to the module. */
int ttxt_ring_add_types(PyObject *m);
/* Add decode_records (_cbatch.c: recorded records into events, for the replayer). */
int ttxt_batch_add_functions(PyObject *m);

#endif
