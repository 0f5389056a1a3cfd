"""The compiled hot path of the ring ends (``ttxt_mp._ccodec.WriterCore`` / ``ReaderCore``).

When the compiled codec is active (``ttxt_mp.codec_c.implementation() == "c"``, i.e. the
extension is built and ``TTXT_MP_PURE`` is unset), every ring end made in this process
gets a core: ``put``, ``put_many`` (of a list), ``put_raw``, ``get``, ``_poll`` and
``_fetch_raw`` become the core's methods, one C call each for the common case (slot
reserved, seqlock stamps, encode/decode straight into/out of the slot, head, wake check),
and the core calls the Python method it replaces for everything else; ``put_many`` of
numpy rows and ``get_batch`` copy slots in C (one call per batch, no numpy call per
chunk). writer.py and
reader.py stay the reference: the same bytes, the same memory ordering (see _cring.c).

The hot counters move into the core; the end's class is switched to a subclass whose
``_seq``/``_evno``/... are properties reading and writing the core, so the Python slow
paths (fragments, block waits, laps, gaps) keep working on the same state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ttxt_mp import codec_c

__all__ = ["active", "available", "compile_reader", "compile_writer"]

_WRITER_STATE = {"_seq": "seq", "_evno": "evno", "_limit": "limit", "_beat": "beat", "_w0": "w0"}
_READER_STATE = {"_seq": "seq", "_evno": "evno"}
_WRITER_METHODS = ("put", "put_many", "put_raw")
_READER_METHODS = {"get": "get", "_poll": "poll", "_fetch_raw": "fetch_raw"}
_classes: dict[type, type] = {}
enabled = True
"""False: ring ends made from now on stay pure Python even with the C codec (benchmarks
compare the Python ring driving the C codec with the compiled ends)."""


def available() -> bool:
    """The extension is built with the ring cores."""
    return codec_c.AVAILABLE and hasattr(codec_c._ccodec, "WriterCore")


def active() -> bool:
    """Ring ends made now get a compiled core (the C codec is the selected one)."""
    return enabled and available() and codec_c.IMPLEMENTATION == "c"


def _core_property(field: str) -> property:
    def get(self) -> Any:
        return getattr(self._core, field)

    def set_(self, value: Any) -> None:
        setattr(self._core, field, value)

    return property(get, set_, doc=f"The core's ``{field}`` (see ttxt_mp.shm.cring).")


def _ready_batch(self, max_n: int) -> np.ndarray | None:
    """RingReader._ready_batch: whole slots copied by the core into one bytearray, seen
    as slot records without a copy; laps, gaps and split events take the Python path."""
    got = self._core.read_batch(max_n)
    if got is False:
        return type(self).__mro__[1]._ready_batch(self, max_n)
    return None if got is None else np.frombuffer(got, self._slots.dtype)


def _put_records(self, kind: int, arr: np.ndarray, timeout: float | None) -> None:
    """RingWriter._put_records: the core copies the rows slot by slot (no numpy call per
    chunk); records needing fragments, and the checks, stay on the Python path."""
    base = type(self).__mro__[1]
    rows = arr if arr.ndim == 2 and arr.dtype == np.uint8 and arr.flags.c_contiguous else None
    if self._closed or rows is None or rows.shape[1] > self._pcap:
        return base._put_records(self, kind, arr, timeout)
    if kind not in self._raw_kinds:
        self._check_kind(kind)
        self._raw_kinds.add(kind)
    done, n = 0, len(rows)
    while True:
        done += self._core.put_rows(kind, rows[done:])
        if done >= n:
            return
        self._reserve(1, timeout)


_EXTRA = {"_ready_batch": _ready_batch, "_put_records": _put_records}


def _compiled_class(cls: type, state: dict[str, str], methods: Any) -> type:
    """``cls`` with its hot state in the core; cached per class."""
    sub = _classes.get(cls)
    if sub is not None:
        return sub

    def _unmap(self) -> None:
        core = self.__dict__.get("_core")
        if core is not None:
            core.detach()  # before the mapping goes: later calls take the Python path
        for name in methods:  # back to the class's methods (and no reference cycle)
            self.__dict__.pop(name, None)
        cls._unmap(self)

    ns: dict[str, Any] = {k: _core_property(v) for k, v in state.items()}
    ns.update(_unmap=_unmap, __module__=cls.__module__, __qualname__=cls.__qualname__,
              __doc__=cls.__doc__)  # fmt: skip
    ns.update({k: f for k, f in _EXTRA.items() if hasattr(cls, k)})
    sub = _classes[cls] = type(cls.__name__, (cls,), ns)
    return sub


def _switch(end: Any, core: Any, state: dict[str, str], methods: Any) -> None:
    values = {k: getattr(end, k) for k in state}
    end._core = core
    end.__class__ = _compiled_class(type(end), state, methods)
    for k, v in values.items():
        end.__dict__.pop(k, None)
        setattr(end, k, v)


def compile_writer(w: Any) -> None:
    """Give RingWriter ``w`` (just initialised as producer) its compiled core."""
    cls = type(w)
    core = codec_c._ccodec.WriterCore(
        w._mm, w._data, w._ss, w._cap, w._nwords, w._enc, w._raw_kinds,
        cls.put.__get__(w), cls.put_raw.__get__(w), cls.put_many.__get__(w),
        w._wake_sleepers,
    )  # fmt: skip
    _switch(w, core, _WRITER_STATE, _WRITER_METHODS)
    for name in _WRITER_METHODS:
        setattr(w, name, getattr(core, name))


def compile_reader(r: Any) -> None:
    """Give RingReader ``r`` (just registered) its compiled core."""
    cls = type(r)
    core = codec_c._ccodec.ReaderCore(
        r._mm, r._data, r._ss, r._cap, r._ci * 8, r._dec,
        cls._poll.__get__(r), cls.get.__get__(r), cls._fetch_raw.__get__(r),
    )  # fmt: skip
    _switch(r, core, _READER_STATE, _READER_METHODS)
    for name, cname in _READER_METHODS.items():
        setattr(r, name, getattr(core, cname))
