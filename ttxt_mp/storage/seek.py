"""Seeking a replay: start an instrument at its last book snapshot before the start time.

A replay from ``T`` that began exactly at ``T`` would hand out book deltas with no book
to apply them to. The recorder writes a snapshot of every book periodically (see
:mod:`ttxt_mp.storage.state_getter`); the replayer finds, per file, the last one whose
key is below ``T`` and starts that file there, keeping only the ``Orderbook`` records
between it and ``T`` (the snapshot and the deltas on top of it), then every record from
``T`` on. A consumer's book is then exact at ``T``. Files without a snapshot before ``T``
(no books, or a recording without periodic snapshots) are clipped at ``T`` as before.

The search reads chunks backwards from ``T`` in blocks of :data:`SEARCH_CHUNKS`, so it
costs the data since that snapshot (at most ``snapshot_interval`` of it), not the file.
"""

from __future__ import annotations

import numpy as np

from ttxt_mp import codec
from ttxt_mp.events import Orderbook
from ttxt_mp.storage.reader import Block, RecordingFile

__all__ = ["BOOK_KIND", "SEARCH_CHUNKS", "SeekPoint", "keep_from", "last_snapshot"]

BOOK_KIND = codec.layout_for(Orderbook).kind
_IS_SNAPSHOT = codec.layout_for(Orderbook).header_dtype.fields["is_snapshot"][1]
SEARCH_CHUNKS = 64

SeekPoint = tuple[int, int]
"""``(chunk index, payload offset)`` of a book snapshot: where a seeking file starts."""


def last_snapshot(f: RecordingFile, start: int, *, verify: bool = True) -> SeekPoint | None:
    """The last book snapshot of ``f`` whose key is below ``start``, or None."""
    hi = min(int(np.searchsorted(f.key_hi, start, side="left")) + 1, len(f.index))
    n_problems = len(f.problems)  # damaged chunks are reported once, by the replay itself
    try:
        while hi > 0:
            lo = max(0, hi - SEARCH_CHUNKS)
            b = f.read(lo, hi, verify=verify)
            rows = np.flatnonzero((b.kind == BOOK_KIND) & (b.key < start))
            if len(rows):
                flags = f.buf[b.offset[rows] + _IS_SNAPSHOT].astype(bool)
                snaps = rows[flags]
                if len(snaps):
                    off = int(b.offset[snaps[-1]])
                    chunk = int(np.searchsorted(f.index.pos, off, side="right")) - 1
                    return chunk, off
            hi = lo
        return None
    finally:
        del f.problems[n_problems:]


def keep_from(block: Block, offset: int, start: int) -> np.ndarray:
    """Mask of the records a file seeking from the snapshot at ``offset`` hands out: book
    records from the snapshot to ``start``, everything from ``start`` on."""
    return (block.key >= start) | ((block.offset >= offset) & (block.kind == BOOK_KIND))
