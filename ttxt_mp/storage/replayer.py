"""MarketDataReplayer: recorded files back into any IQueue, or straight into your code.

Files are memory-mapped and read a block of chunks at a time (see
:mod:`ttxt_mp.storage.reader`); several instruments are merged by timestamp with one
stable ``argsort`` per window of blocks, so merging costs no Python work per event.

Merging: each record's key is the running maximum of its file's timestamps. A window
takes, from every file, the records whose key is <= the smallest "last key" among the
files' current blocks; those records are final (nothing later in any file can sort before
them), so a stable sort of the window by key, ties by file order, is the exact k-way merge.

Damaged chunks are reported (:attr:`problems`, ``on_problem``, the log) with file and
offset, skipped, and the replay continues.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import msgspec
import numpy as np

from ttxt_mp import codec
from ttxt_mp.events import GapNotice
from ttxt_mp.storage.batch import RecordBatch
from ttxt_mp.storage.format import FILE_SUFFIX, FormatError, Problem, StorageError
from ttxt_mp.storage.raw import raw_putter
from ttxt_mp.storage.reader import Block, RecordingFile
from ttxt_mp.storage.seek import keep_from, last_snapshot

log = logging.getLogger(__name__)

GAP_KIND = codec.layout_for(GapNotice).kind
_GAP_SYMBOL = slice(*(lambda f: (f[1], f[1] + f[0].itemsize))(
    codec.layout_for(GapNotice).header_dtype.fields["symbol"]))  # fmt: skip
DEFAULT_BLOCK_EVENTS = 1 << 20

TimeLike = int | float | str | datetime | None


class ReplayStats(msgspec.Struct):
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    problems: int = 0


def to_ns(t: TimeLike) -> int | None:
    """Nanoseconds since the epoch from ns (int), seconds (float), ISO text or datetime."""
    if t is None or isinstance(t, int):
        return t
    if isinstance(t, float):
        return int(t * 1e9)
    if isinstance(t, str):
        try:
            return int(t)
        except ValueError:
            try:
                t = datetime.fromisoformat(t.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"time {t!r}: expected nanoseconds or ISO 8601 (2024-05-01T12:00:00Z)"
                ) from None
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"time {t.isoformat()} has no time zone; add Z or +00:00")
        return int(t.timestamp() * 1_000_000) * 1000
    raise TypeError(f"unsupported time value {t!r}")


def recording_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand directories to their ``*.bin`` files (sorted); keep files as given."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[str] = []
    for p in map(os.fspath, items):
        if os.path.isdir(p):
            out.extend(sorted(glob.glob(os.path.join(glob.escape(p), "*" + FILE_SUFFIX))))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise FileNotFoundError(f"no recording at {p}")
    return out


class _Stream:
    """The unread part of one file within the replay's chunk and time range."""

    def __init__(self, fi: int, f: RecordingFile, lo: int, hi: int, rp: MarketDataReplayer,
                 seek_offset: int | None = None) -> None:  # fmt: skip
        self.fi, self.f, self.next, self.stop, self.rp = fi, f, lo, hi, rp
        self.seek_offset = seek_offset  # the book snapshot this file starts from (seek.py)
        self.block: Block | None = None
        self.pos = 0

    def ready(self) -> bool:
        """Make sure unread records are buffered; False when the file is exhausted."""
        while self.block is None or self.pos >= len(self.block):
            if self.next >= self.stop:
                return False
            hi = self.f.block_end(self.next, self.stop, self.rp.block_events)
            n_problems = len(self.f.problems)
            block = self.f.read(self.next, hi, verify=self.rp.verify)
            self.rp._report(self.f.problems[n_problems:])
            self.next = hi
            self.block, self.pos = self._clip(block), 0
        return True

    def _clip(self, block: Block) -> Block:
        start = self.rp.start
        if self.seek_offset is None or start is None or (len(block) and block.key[0] >= start):
            self.seek_offset = None
            return self.rp._clip(block)
        keep = keep_from(block, self.seek_offset, start)
        if self.rp.end is not None:
            keep &= block.key < self.rp.end
        return block.take(keep)

    @property
    def last_key(self) -> int:
        assert self.block is not None
        return int(self.block.key[-1])

    def take_upto(self, frontier: int) -> Block:
        assert self.block is not None
        j = int(np.searchsorted(self.block.key, frontier, side="right", sorter=None))
        j = max(j, self.pos)
        out = self.block.take(slice(self.pos, j))
        self.pos = j
        return out


class MarketDataReplayer:
    """Replay recording files (or directories of them) in timestamp order.

    ``start``/``end`` bound the replay to ``[start, end)`` (ns, seconds as float, ISO
    text or aware datetime); ``exchanges``/``symbols`` select files (exchange-level files,
    with status and gap records, are kept unless ``symbols`` is given).

    ``seek`` (default): each instrument starts at its last book snapshot before ``start``
    and hands out only book records until ``start``, so books are exact from ``start`` on
    (see :mod:`ttxt_mp.storage.seek`); ``seek=False`` clips every file at ``start``.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        exchanges: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
        verify: bool = True,
        block_events: int = DEFAULT_BLOCK_EVENTS,
        on_problem: Callable[[Problem], None] | None = None,
        seek: bool = True,
    ) -> None:
        self.start, self.end = to_ns(start), to_ns(end)
        self.seek = seek
        self.verify = verify
        self.block_events = block_events
        self.on_problem = on_problem
        self.problems: list[Problem] = []
        self._stop = threading.Event()
        want_ex = None if exchanges is None else {e.lower() for e in exchanges}
        want_sym = None if symbols is None else {s.upper() for s in symbols}
        self.files: list[RecordingFile] = []
        for path in recording_paths(paths):
            try:
                f = RecordingFile(path)
            except FormatError as e:
                self._report([Problem(path, 0, os.path.getsize(path), str(e))])
                continue
            if want_ex is not None and f.exchange.lower() not in want_ex:
                continue
            if want_sym is not None and f.symbol.upper() not in want_sym:
                continue
            self.files.append(f)
            self._report(f.problems)
        if len(self.files) > 65535:
            raise StorageError(f"{len(self.files)} files: at most 65535 per replay")

    # ------------------------------------------------------------------ problems / filters

    def _report(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            self.problems.append(p)
            log.warning("skipping damaged data: %s", p)
            if self.on_problem is not None:
                self.on_problem(p)

    def _clip(self, block: Block) -> Block:
        if self.start is None and self.end is None:
            return block
        lo = 0 if self.start is None else int(np.searchsorted(block.key, self.start, "left"))
        hi = len(block) if self.end is None else int(np.searchsorted(block.key, self.end, "left"))
        return block.take(slice(lo, max(lo, hi)))

    # ------------------------------------------------------------------ iteration

    def batches(self) -> Iterator[RecordBatch]:
        """Records in merged timestamp order, as numpy batches (see :class:`RecordBatch`)."""
        buffers = tuple(f.buf for f in self.files)
        paths = tuple(f.path for f in self.files)
        streams = [self._stream(i, f) for i, f in enumerate(self.files)]
        seen_gaps: set[bytes] = set()
        while streams and not self._stop.is_set():
            streams = [s for s in streams if s.ready()]
            if not streams:
                break
            frontier = min(s.last_key for s in streams)
            parts = [(s.fi, s.take_upto(frontier)) for s in streams]
            parts = [(fi, b) for fi, b in parts if len(b)]
            batch = self._merge(parts, buffers, paths)
            if len(streams) > 1:
                batch = self._dedupe_gaps(batch, seen_gaps)
            if len(batch):
                yield batch

    def _stream(self, fi: int, f: RecordingFile) -> _Stream:
        lo, hi = f.chunk_range(self.start, self.end)
        if not self.seek or self.start is None:
            return _Stream(fi, f, lo, hi, self)
        at = last_snapshot(f, self.start, verify=self.verify)
        if at is None or at[0] >= hi:  # no snapshot, or ``end`` is before it
            return _Stream(fi, f, lo, hi, self)
        return _Stream(fi, f, min(lo, at[0]), hi, self, at[1])

    @staticmethod
    def _merge(
        parts: list[tuple[int, Block]], buffers: tuple[np.ndarray, ...], paths: tuple[str, ...]
    ) -> RecordBatch:
        if len(parts) == 1:
            fi, b = parts[0]
            fidx = np.full(len(b), fi, dtype=np.uint16)
            return RecordBatch(buffers, paths, fidx, b.kind, b.offset, b.length, b.ts, b.key)
        key = np.concatenate([b.key for _, b in parts])
        order = np.argsort(key, kind="stable")
        fidx = np.concatenate([np.full(len(b), fi, dtype=np.uint16) for fi, b in parts])

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(b, name) for _, b in parts])[order]

        return RecordBatch(buffers, paths, fidx[order], cat("kind"), cat("offset"),
                           cat("length"), cat("ts"), key[order])  # fmt: skip

    @staticmethod
    def _dedupe_gaps(batch: RecordBatch, seen: set[bytes]) -> RecordBatch:
        """Keep one copy of a ring-wide gap notice that was recorded in several files."""
        gaps = np.flatnonzero(batch.kind == GAP_KIND)
        drop = []
        for i in gaps.tolist():
            p = bytes(batch.payload(i))
            if any(p[_GAP_SYMBOL]):
                continue
            if p in seen:
                drop.append(i)
            else:
                seen.add(p)
        if not drop:
            return batch
        keep = np.ones(len(batch), dtype=bool)
        keep[drop] = False
        return RecordBatch(batch.buffers, batch.paths, batch.file[keep], batch.kind[keep],
                           batch.offset[keep], batch.length[keep], batch.ts[keep],
                           batch.key[keep])  # fmt: skip

    def raw(self) -> Iterator[tuple[int, memoryview]]:
        """``(kind, payload)`` per record, in merged order."""
        for b in self.batches():
            yield from b.raw()

    def events(self) -> Iterator[Any]:
        """Event Structs in merged order (decoded by the compiled codec when it is active:
        no Python code runs per event here, see :meth:`RecordBatch.events`)."""
        return chain.from_iterable(b.events() for b in self.batches())

    def __iter__(self) -> Iterator[Any]:
        return self.events()

    # ------------------------------------------------------------------ publishing

    def stop(self) -> None:
        """Make a running :meth:`publish` / iteration end after its current record."""
        self._stop.set()

    def publish(self, queue: Any, *, speed: float | None = None, close: bool = False) -> ReplayStats:
        """Put every record into ``queue`` (``put_raw`` when it has one), as fast as possible
        (``speed`` None) or with the recorded spacing divided by ``speed``."""
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 (or None for as fast as possible), got {speed}")
        put = raw_putter(queue)
        stats = ReplayStats()
        t0 = time.monotonic()
        key0: int | None = None
        stop = self._stop
        try:
            for batch in self.batches():
                stats.batches += 1
                if speed is None:
                    for kind, payload in batch.raw():
                        put(kind, payload)
                    stats.events += len(batch)
                    continue
                if key0 is None:  # a seek's book records before start go out at once
                    key0 = max(int(batch.key[0]), self.start or 0)
                due = (t0 + np.maximum(batch.key - key0, 0) / (speed * 1e9)).tolist()
                for (kind, payload), at in zip(batch.raw(), due, strict=True):
                    delay = at - time.monotonic()
                    if delay > 0:
                        if stop.wait(delay):
                            break
                    put(kind, payload)
                    stats.events += 1
                if stop.is_set():
                    break
        finally:
            stats.seconds = time.monotonic() - t0
            stats.problems = len(self.problems)
            if close:
                queue.close()
        return stats

    async def apublish(
        self, queue: Any, *, speed: float | None = None, close: bool = False
    ) -> ReplayStats:
        """:meth:`publish` from a worker thread, so the event loop keeps running."""
        try:
            return await asyncio.shield(
                asyncio.to_thread(self.publish, queue, speed=speed, close=close)
            )
        except asyncio.CancelledError:
            self.stop()
            raise

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files = []

    def __enter__(self) -> MarketDataReplayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
