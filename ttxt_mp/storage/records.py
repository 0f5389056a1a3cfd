"""Vectorized record framing: find every record of many chunks without a per-event loop.

Records are variable-length, so record ``j`` of a chunk is found from record ``j - 1``.
Instead of walking one chunk at a time, all chunks of a block advance together: step ``j``
reads the ``j``-th record header of every chunk in one numpy gather. A block of thousands
of chunks therefore costs ``max(count)`` numpy steps, not one Python step per event.
"""

from __future__ import annotations

import numpy as np

from ttxt_mp import codec
from ttxt_mp.storage.format import RECORD_HEADER_SIZE

_REC = np.dtype({"names": ["kind", "length"], "formats": ["<u2", "<u4"], "offsets": [0, 2],
                 "itemsize": 8})  # fmt: skip


def windows(buf: np.ndarray, width: int) -> np.ndarray:
    """A zero-copy (len - width + 1, width) view: row ``i`` is ``buf[i:i + width]``."""
    if len(buf) < width:
        return np.empty((0, width), dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(
        buf, shape=(len(buf) - width + 1, width), strides=(1, 1), writeable=False
    )


def gather_i8(win8: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The little-endian int64 at each of ``offsets`` (``win8 = windows(buf, 8)``)."""
    return win8[offsets].view("<i8")[:, 0]


def frame(
    win8: np.ndarray, body_start: np.ndarray, body_len: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Records of the given chunks, in chunk order.

    Returns ``(kind u16, payload offset i64, payload length u32, chunk_ok bool)``;
    ``chunk_ok[c]`` is False when chunk ``c``'s records do not exactly fill its body (the
    records of such a chunk are garbage and must be dropped by the caller).
    """
    n_chunks = len(count)
    total = int(count.sum())
    kinds = np.zeros(total, dtype=np.uint16)
    offs = np.zeros(total, dtype=np.int64)
    lens = np.zeros(total, dtype=np.uint32)
    if n_chunks == 0 or total == 0:
        return kinds, offs, lens, np.ones(n_chunks, dtype=bool)
    base = np.cumsum(count) - count
    order = np.argsort(-count, kind="stable")
    cnt = count[order]
    pos = body_start[order].astype(np.int64)
    base = base[order]
    end = (body_start + body_len)[order]
    last = len(win8) - 1
    active = np.searchsorted(-cnt, -np.arange(int(cnt[0])), side="left")
    for j, n in enumerate(active.tolist()):
        p = pos[:n]
        rec = win8[np.minimum(p, last)].view(_REC)[:, 0]
        idx = base[:n] + j
        kinds[idx] = rec["kind"]
        lens[idx] = rec["length"]
        offs[idx] = p + RECORD_HEADER_SIZE
        pos[:n] = p + RECORD_HEADER_SIZE + rec["length"]
    ok = np.empty(n_chunks, dtype=bool)
    ok[order] = pos == end
    return kinds, offs, lens, ok


class TimestampTable:
    """Per-kind byte offsets of ``exch_ts`` and ``local_ts`` inside a payload (-1: none)."""

    def __init__(self) -> None:
        self.exch = np.full(65536, -1, dtype=np.int64)
        self.local = np.full(65536, -1, dtype=np.int64)
        self._known: set[int] = set()

    def _learn(self, kinds: np.ndarray) -> None:
        present = np.flatnonzero(np.bincount(kinds, minlength=1)).tolist()
        for k in present:
            if k in self._known:
                continue
            self._known.add(k)
            try:
                fields = codec.layout_for(k).header_dtype.fields
            except codec.LayoutError:
                continue  # unregistered kind: timestamps unknown, records still framed
            if "exch_ts" in fields:
                self.exch[k] = fields["exch_ts"][1]
            if "local_ts" in fields:
                self.local[k] = fields["local_ts"][1]

    def timestamps(self, win8: np.ndarray, kinds: np.ndarray, offs: np.ndarray) -> np.ndarray:
        """Record timestamps: ``exch_ts``, or ``local_ts`` where ``exch_ts`` is 0."""
        self._learn(kinds)
        ex = self.exch[kinds]
        lo = self.local[kinds]
        last = len(win8) - 1
        ts = np.where(ex >= 0, gather_i8(win8, np.clip(offs + ex, 0, last)), 0)
        zero = ts == 0
        if zero.any():
            loc = np.where(lo >= 0, gather_i8(win8, np.clip(offs + lo, 0, last)), 0)
            ts = np.where(zero, loc, ts)
        return ts


_TABLE = TimestampTable()


def record_timestamps(win8: np.ndarray, kinds: np.ndarray, offs: np.ndarray) -> np.ndarray:
    return _TABLE.timestamps(win8, kinds, offs)
