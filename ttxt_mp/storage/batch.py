"""RecordBatch: many replayed records as numpy arrays over the memory-mapped files.

A batch does not copy payloads: ``offset``/``length`` point into ``buffers[file[i]]``.
Vectorized code reads ``kind``, ``ts`` or :meth:`headers` directly; :meth:`raw` yields
the ring bytes and :meth:`events` the Python events.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from ttxt_mp import codec, codec_c
from ttxt_mp.storage.records import windows

DECODE_STEP = 128
"""Records decoded per C call: enough that the call is noise (~1 µs), few enough that the
events of one call (~5 objects each) stay under the GC's first-generation threshold (700):
with 4096 a call's events all survived a collection into the older generations and the
collector's work doubled the cost per event (0.38 vs 1.13 M events/s measured)."""

_TABLE: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None  # (layouts, table)


def _resolve(kind: int) -> Any:
    return codec.layout_for(kind).unpack_from


def decoder() -> tuple[tuple[Any, ...], Any, Any] | None:
    """``(table, resolve, decode_records)`` for the compiled batch decode, or None when the
    pure codec is active (``TTXT_MP_PURE=1``, extension not built). ``table[kind]`` is the
    kind's compiled Codec (or its pure ``unpack_from`` when the C side refused the
    layout); it is rebuilt when kinds are registered or the implementation switches."""
    global _TABLE
    if codec_c.IMPLEMENTATION != "c" or codec_c._ccodec is None:
        return None
    layouts = tuple(codec._BY_KIND.values())
    if _TABLE is None or len(_TABLE[0]) != len(layouts) or not all(
            map(operator.is_, _TABLE[0], layouts)):  # fmt: skip
        table: list[Any] = [None] * (max(codec._BY_KIND, default=-1) + 1)
        for lay in layouts:
            table[lay.kind] = lay.c if lay.c is not None else lay.unpack_from
        _TABLE = (layouts, tuple(table))
    return _TABLE[1], _resolve, codec_c._ccodec.decode_records


@dataclass(slots=True)
class RecordBatch:
    buffers: tuple[np.ndarray, ...]  # uint8 contents of each file
    paths: tuple[str, ...]
    file: np.ndarray  # uint16 index into buffers/paths
    kind: np.ndarray  # uint16 event kind
    offset: np.ndarray  # int64 payload offset in its file
    length: np.ndarray  # uint32 payload length
    ts: np.ndarray  # int64 exch_ts (local_ts when exch_ts is 0)
    key: np.ndarray  # int64 merge key: running max of ts within each file

    def __len__(self) -> int:
        return len(self.kind)

    def payload(self, i: int) -> memoryview:
        o = int(self.offset[i])
        return memoryview(self.buffers[int(self.file[i])])[o : o + int(self.length[i])]

    def _records(self) -> Iterator[tuple[memoryview, int, int, int]]:
        views = [memoryview(b) for b in self.buffers]
        if len(views) == 1:
            v = views[0]
            for k, o, n in zip(self.kind.tolist(), self.offset.tolist(), self.length.tolist(),
                               strict=True):  # fmt: skip
                yield v, k, o, n
        else:
            for f, k, o, n in zip(self.file.tolist(), self.kind.tolist(),
                                  self.offset.tolist(), self.length.tolist(), strict=True):  # fmt: skip
                yield views[f], k, o, n

    def raw(self) -> Iterator[tuple[int, memoryview]]:
        """``(kind, payload)`` of each record, payload a zero-copy memoryview."""
        for v, k, o, n in self._records():
            yield k, v[o : o + n]

    def events(self) -> Iterator[Any]:
        """Each record decoded to its event Struct (through the compiled codec when it is
        active: one C call per :data:`DECODE_STEP` records, see :func:`decoder`)."""
        dec = decoder()
        if dec is None:
            return self._events_pure()
        return chain.from_iterable(self._decoded(dec))

    def _decoded(self, dec: Any) -> Iterator[list[Any]]:
        table, resolve, decode_records = dec
        views = tuple(memoryview(b) for b in self.buffers)
        file = None if len(views) == 1 else np.ascontiguousarray(self.file, np.uint16)
        kind = np.ascontiguousarray(self.kind, np.uint16)
        off = np.ascontiguousarray(self.offset, np.int64)
        length = np.ascontiguousarray(self.length, np.uint32)
        n = len(kind)
        for at in range(0, n, DECODE_STEP):
            yield decode_records(table, resolve, views, file, kind, off, length, at,
                                 min(n, at + DECODE_STEP))  # fmt: skip

    def _events_pure(self) -> Iterator[Any]:
        """The reference: a Python loop calling each kind's ``unpack_from``."""
        unpack = {k: codec.layout_for(k).unpack_from for k in np.unique(self.kind).tolist()}
        views = [memoryview(b) for b in self.buffers]
        offs, kinds = self.offset.tolist(), self.kind.tolist()
        if len(views) == 1:
            v = views[0]
            for k, o in zip(kinds, offs, strict=True):
                yield unpack[k](v, o)[0]
        else:
            for f, k, o in zip(self.file.tolist(), kinds, offs, strict=True):
                yield unpack[k](views[f], o)[0]

    def headers(self, kind: int | type) -> np.ndarray:
        """Fixed fields of this batch's events of one kind, as a numpy structured array
        (e.g. ``b.headers(Kline)["close"]``), in batch order."""
        lay = codec.layout_for(kind)
        rows = np.flatnonzero(self.kind == lay.kind)
        out = np.empty(len(rows), dtype=lay.header_dtype)
        raw = out.view(np.uint8).reshape(len(rows), lay.header_size)
        files = self.file[rows]
        for f in np.unique(files).tolist():
            sel = files == f
            raw[sel] = windows(self.buffers[f], lay.header_size)[self.offset[rows[sel]]]
        return out
