"""RecordBatch: many replayed records as numpy arrays over the memory-mapped files.

A batch does not copy payloads: ``offset``/``length`` point into ``buffers[file[i]]``.
Vectorized code reads ``kind``, ``ts`` or :meth:`headers` directly; :meth:`raw` yields
the ring bytes and :meth:`events` the Python events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttxt_mp import codec
from ttxt_mp.storage.records import windows


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
        """Each record decoded to its event Struct."""
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
