"""MarketDataRecorder: a consumer that appends every event it reads to per-instrument files.

``python -m ttxt_mp.storage.recorder --engine NAME --config PATH`` runs the engine's
recorder child (:mod:`ttxt_mp.storage.engine_recorder`).

Why it looks like this (ttxt2's recorder deadlocked when a batch filled, hung in
``stop()`` until another event came, never fsynced and dropped its buffer on a failed
write):

- It is only a consumer. On an ``overwrite`` ring the producer never waits for it; if it
  falls behind it receives ``GapNotice(lost=N)`` and records that as an explicit record.
- It waits for events with a short timeout, so ``stop()`` returns within ``poll_interval``
  even when nothing arrives. From a ring it reads batches of slots and waits by sleeping
  ``idle_sleep`` (2 ms, backing off to 50 ms while idle) steps, never by asking the producer to wake it (see
  :class:`ttxt_mp.storage.raw.RingBatchGetter`): the producer does not notice it.
- Records are batched per file into chunks (``chunk_events``, or fewer after
  ``max_chunk_age`` seconds so a quiet instrument still reaches the disk). Each chunk is
  one ``write``; ``fsync`` runs every ``fsync_interval`` seconds (0: after every chunk).
- A failed write is reported (``on_error``, ``stats``; the log gets one line per condition,
  then one every ``error_log_interval``) and the chunk stays queued and is retried every
  ``retry_interval``. The queue is bounded: beyond ``max_buffer_bytes`` (over all files)
  new chunks are dropped, counted in ``stats.lost``/``stats.dropped``, and recorded as a
  ``GapNotice`` in their file once writes succeed again (a full disk used to buffer
  without bound). Files are created ``file_mode`` (0600), never through a symlink.

Routing: an event with a symbol goes to ``<EXCHANGE>_<BASE>_<QUOTE>.bin``; one with an
exchange but no symbol (``ConnectorStatus``) to ``<EXCHANGE>.bin``; one with neither to
``_ENGINE.bin`` (``_ENGINE-<SOURCE>.bin`` when ``source`` names the ring, so recorders of
several rings can share a directory). A ``GapNotice`` without a symbol concerns the whole ring, so it is written
to the exchange file and to every open instrument file of that exchange (of every
exchange if it names none); the replayer merges such copies back into one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import struct
import sys
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ttxt_mp import codec
from ttxt_mp.events import GapNotice
from ttxt_mp.queues import QueueClosed, QueueEmpty
from ttxt_mp.storage.format import (
    DEFAULT_CHUNK_EVENTS,
    ENGINE_FILE_STEM,
    FILE_SUFFIX,
    RECORD_HEADER,
    FormatError,
    file_name,
    file_stem,
    pack_chunk,
    utc_day,
)
from ttxt_mp.storage.raw import raw_getter
from ttxt_mp.storage.state_getter import DEFAULT_SNAPSHOT_INTERVAL, state_getter
from ttxt_mp.storage.writer import DEFAULT_FILE_MODE, ChunkFile, FileLocked, dir_mode, parse_mode

log = logging.getLogger(__name__)

GAP_KIND = codec.layout_for(GapNotice).kind
DEFAULT_MAX_BUFFER_BYTES = 64 << 20  # chunks queued while writes fail, over all files
ERROR_LOG_INTERVAL = 60.0  # a persisting write error is logged again at most this often
_I8 = struct.Struct("<q")
_NS_PER_DAY = 86_400 * 10**9

ChunkCallback = Callable[[str, int, int], None]
"""``on_chunk(path, events_in_chunk, file_size)`` after a chunk is written."""
ErrorCallback = Callable[[str, BaseException], None]


class RecorderStats(msgspec.Struct):
    events: int = 0
    records: int = 0  # events plus the extra copies of ring-wide gap notices
    chunks: int = 0
    bytes: int = 0
    gaps: int = 0
    lost: int = 0
    write_errors: int = 0
    dropped: int = 0  # events discarded because the write buffer was full (also in lost)
    pending_chunks: int = 0
    pending_bytes: int = 0
    files: int = 0
    truncated_bytes: int = 0  # cut from torn file tails when reopening
    written_position: int = 0  # with ``position``: every source event before it is written
    last_error: str = ""


class _Route(msgspec.Struct, frozen=True):
    """Where a kind keeps exchange, symbol and timestamps inside its payload."""

    exch: slice
    sym: slice
    exch_ts: int
    local_ts: int


def _route_for(kind: int) -> _Route:
    try:
        fields = codec.layout_for(kind).header_dtype.fields
    except codec.LayoutError:
        fields = {}

    def span(name: str) -> slice:
        if name not in fields:
            return slice(0, 0)
        dt, off = fields[name][:2]
        return slice(off, off + dt.itemsize)

    def at(name: str) -> int:
        return fields[name][1] if name in fields else -1

    return _Route(span("exchange"), span("symbol"), at("exch_ts"), at("local_ts"))


class _Slot:
    """One output file and the chunk being filled for it."""

    __slots__ = ("path", "exchange", "symbol", "day", "file", "body", "index", "count",
                 "first", "last", "since", "pending", "first_pos", "dropped")  # fmt: skip

    def __init__(self, path: str, exchange: str, symbol: str, day: int) -> None:
        self.path = path
        self.exchange = exchange
        self.symbol = symbol
        self.day = day
        self.file: ChunkFile | None = None
        self.body = bytearray()
        self.index = array("I")
        self.count = 0
        self.first = 0
        self.last = 0
        self.since = 0.0
        self.first_pos = 0  # source position of the chunk's first event
        self.pending: list[tuple[bytes, int, int]] = []  # (chunk bytes, events, first_pos)
        self.dropped = 0  # events discarded since the last successful write (a gap to record)

    def add(self, kind: int, payload: Any, ts: int, now: float) -> None:
        if self.count == 0:
            self.first = self.last = ts
            self.since = now
        elif ts < self.first:
            self.first = ts
        elif ts > self.last:
            self.last = ts
        self.index.append(len(self.body))
        self.body += RECORD_HEADER.pack(kind, len(payload))
        self.body += payload
        self.count += 1

    def discard(self) -> int:
        """Drop the chunk being filled (the write buffer is full); returns its events."""
        n = self.count
        self.body = bytearray()
        self.index = array("I")
        self.count = 0
        self.dropped += n
        return n

    def seal(self) -> None:
        if self.count:
            if sys.byteorder != "little":
                self.index.byteswap()
            chunk = pack_chunk(self.body, self.index.tobytes(), self.count, self.first, self.last)
            self.pending.append((chunk, self.count, self.first_pos))
            self.body = bytearray()
            self.index = array("I")
            self.count = 0


class MarketDataRecorder:
    """Consume ``queue`` and append its events to recording files in ``directory``."""

    def __init__(
        self,
        queue: Any,
        directory: str | os.PathLike[str],
        *,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        max_chunk_age: float = 1.0,
        fsync_interval: float | None = 1.0,
        rotate_daily: bool = False,
        poll_interval: float = 0.05,
        idle_sleep: float = 0.002,
        retry_interval: float = 0.5,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        error_log_interval: float = ERROR_LOG_INTERVAL,
        file_mode: int = DEFAULT_FILE_MODE,
        close_timeout: float = 2.0,
        drain_timeout: float = 0.0,
        kinds: Sequence[int] | None = None,
        source: str = "",
        on_chunk: ChunkCallback | None = None,
        on_error: ErrorCallback | None = None,
        clock: Callable[[], int] = time.time_ns,
        position: Callable[[], int] | None = None,
        snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL,
        keep_books: bool = False,
    ) -> None:
        if chunk_events < 1:
            raise ValueError(f"chunk_events must be >= 1, got {chunk_events}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        if max_buffer_bytes < 1:
            raise ValueError(f"max_buffer_bytes must be >= 1, got {max_buffer_bytes}")
        self.max_buffer_bytes = max_buffer_bytes
        self.error_log_interval = error_log_interval
        self.file_mode = parse_mode(file_mode)
        self._pending_bytes = 0
        self._error_log: dict[tuple[str, int | None], list[float]] = {}  # -> [next log at, n]
        self.directory = os.fspath(directory)
        self.chunk_events = chunk_events
        self.max_chunk_age = max_chunk_age
        self.fsync_interval = fsync_interval
        self.rotate_daily = rotate_daily
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.close_timeout = close_timeout
        self.drain_timeout = drain_timeout
        self.kinds = None if kinds is None else frozenset(kinds)
        self.source = source
        self.on_chunk = on_chunk
        self.on_error = on_error
        self.clock = clock
        self.stats = RecorderStats()
        self._get = state_getter(queue, raw_getter(queue, idle_sleep), snapshot_interval,
                                 keep_books)
        if position is None and hasattr(self._get, "position"):
            position = lambda: self._get.position  # noqa: E731
        self.position = position
        self._routes: dict[int, _Route] = {}
        self._slots: dict[tuple[bytes, bytes], _Slot] = {}
        self._by_path: dict[str, _Slot] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._day = 0
        self._day_end = 0
        self._now = time.monotonic()
        self._last_fsync = self._now
        self._retry_at = 0.0

    # ------------------------------------------------------------------ life cycle

    def start(self) -> MarketDataRecorder:
        """Run in a background thread until :meth:`stop` or the queue closes."""
        if self._thread is not None:
            raise RuntimeError("recorder already started")
        self._thread = threading.Thread(target=self.run, name="ttxt-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> RecorderStats:
        """Finish: write every buffered event, fsync, close. Returns promptly when idle."""
        self._stop.set()
        if self._thread is not None:
            limit = self.poll_interval + self.close_timeout + 1.0 if timeout is None else timeout
            self._thread.join(limit)
            if self._thread.is_alive():
                log.error("recorder thread did not finish within %.1fs", limit)
        return self.stats

    def __enter__(self) -> MarketDataRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def arun(self) -> RecorderStats:
        """:meth:`run` in a worker thread; cancelling the task stops the recorder."""
        try:
            return await asyncio.shield(asyncio.to_thread(self.run))
        except asyncio.CancelledError:
            self._stop.set()
            raise

    def run(self) -> RecorderStats:
        """Consume until :meth:`stop` is called or the queue is closed and drained."""
        self._makedirs()
        get, poll, stop = self._get, self.poll_interval, self._stop
        self._maintain()
        try:
            while not stop.is_set():
                try:
                    kind, payload = get(poll)
                except QueueEmpty:
                    self._maintain()
                    continue
                except QueueClosed:
                    break
                self._accept(kind, payload)
                # A steady trickle never times out the get: age chunks by the clock too.
                if self.stats.events & 15 == 0 and time.monotonic() - self._now >= poll:
                    self._maintain()
            else:
                self._drain()
        finally:
            self._finish()
        return self.stats

    def _drain(self) -> None:
        """On stop: take what is already in the queue (up to ``drain_timeout`` seconds),
        so an engine that stops its producers and recorder together loses nothing."""
        end = time.monotonic() + self.drain_timeout
        while time.monotonic() < end:
            try:
                kind, payload = self._get(0)
            except (QueueEmpty, QueueClosed):
                return
            self._accept(kind, payload)

    def _makedirs(self) -> None:
        """The recording directory, created private (like its files) when missing."""
        os.makedirs(self.directory, mode=dir_mode(self.file_mode), exist_ok=True)

    # ------------------------------------------------------------------ routing

    def _accept(self, kind: int, payload: Any) -> None:
        if self.kinds is not None and kind not in self.kinds:
            return
        route = self._routes.get(kind)
        if route is None:
            route = self._routes[kind] = _route_for(kind)
        key = (bytes(payload[route.exch]), bytes(payload[route.sym]))
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slot_for(key)
        ts = _I8.unpack_from(payload, route.exch_ts)[0] if route.exch_ts >= 0 else 0
        if ts == 0 and route.local_ts >= 0:
            ts = _I8.unpack_from(payload, route.local_ts)[0]
        self.stats.events += 1
        if kind == GAP_KIND:
            self._note_gap(payload)
            if not slot.symbol:
                for other in list(self._slots.values()):
                    if other is not slot and other.symbol and (
                        not slot.exchange or other.exchange == slot.exchange
                    ):
                        self._add(other, kind, payload, ts)
        self._add(slot, kind, payload, ts)

    def _add(self, slot: _Slot, kind: int, payload: Any, ts: int) -> None:
        if slot.count == 0 and self.position is not None:
            slot.first_pos = self.position() - 1  # the event just read
        slot.add(kind, payload, ts, self._now)
        self.stats.records += 1
        if slot.count >= self.chunk_events:
            self._seal(slot)
            self._write(slot)

    def _seal(self, slot: _Slot) -> None:
        """Seal the slot's chunk into its write queue, unless the queued bytes of every
        file would exceed ``max_buffer_bytes`` (writes failing, e.g. a full disk): then the
        events are dropped, counted as lost, and recorded as a gap once writes succeed."""
        if not slot.count:
            return
        if slot.pending and self._pending_bytes + len(slot.body) > self.max_buffer_bytes:
            n = slot.discard()
            self.stats.dropped += n
            self.stats.lost += n
            return
        slot.seal()
        self._pending_bytes += len(slot.pending[-1][0])
        self.stats.pending_bytes = self._pending_bytes

    def _record_dropped(self, slot: _Slot) -> None:
        """Writes work again: put the hole left by dropped events in the file."""
        n, slot.dropped = slot.dropped, 0
        gap = GapNotice(exchange=slot.exchange, symbol=slot.symbol, lost=n, local_ts=self.clock())
        kind, payload = codec.encode(gap)
        if slot.count == 0 and self.position is not None:
            slot.first_pos = self.position()
        slot.add(kind, payload, gap.local_ts, self._now)
        self.stats.records += 1
        self.stats.gaps += 1
        log.warning("%s: recording again; %d events dropped while writes failed are "
                    "recorded as a gap", slot.path, n)  # fmt: skip

    def _note_gap(self, payload: Any) -> None:
        self.stats.gaps += 1
        lost = codec.decode(GAP_KIND, payload).lost
        self.stats.lost += lost
        log.warning("gap of %d events recorded (lapped on the ring, or not recording)", lost)

    def _slot_for(self, key: tuple[bytes, bytes]) -> _Slot:
        exchange = key[0].rstrip(b"\0").decode()
        symbol = key[1].rstrip(b"\0").decode()
        day = self._day if self.rotate_daily else 0
        name = file_name(exchange, symbol, day)
        if self.source and not exchange and not symbol:  # one engine file per source ring
            name = name.replace(ENGINE_FILE_STEM, f"{ENGINE_FILE_STEM}-{file_stem(self.source, '')}")
        path = os.path.join(self.directory, name)
        slot = self._by_path.get(path)
        if slot is None:
            slot = self._by_path[path] = _Slot(path, exchange, symbol, day)
        self._slots[key] = slot
        return slot

    # ------------------------------------------------------------------ writing

    def _open(self, slot: _Slot) -> ChunkFile:
        n = 0
        stem = slot.path[: -len(FILE_SUFFIX)]
        while True:
            path = slot.path if n == 0 else f"{stem}.{n}{FILE_SUFFIX}"
            try:
                f = ChunkFile(path, slot.exchange, slot.symbol, day=slot.day,
                              file_mode=self.file_mode)  # fmt: skip
            except (FormatError, FileLocked) as e:
                # An existing file we must not (or cannot now) append to: write beside it.
                log.warning("%s; recording into the next free name instead", e)
                n += 1
                continue
            self.stats.files += 1
            self.stats.truncated_bytes += f.recovery.truncated
            for p in f.recovery.problems:
                log.warning("found in %s", p)
            if f.recovery.truncated:
                log.warning("%s: cut %d bytes of an unfinished chunk", path, f.recovery.truncated)
            return f

    def _write(self, slot: _Slot) -> bool:
        """Write the slot's sealed chunks in order; on failure keep them for a retry."""
        if not slot.pending:
            return True
        wrote = False
        if self._retry_at and self._now < self._retry_at:
            self.stats.pending_chunks = self._pending()
            return False
        try:
            if slot.file is None:
                slot.file = self._open(slot)
            while slot.pending:
                chunk, count, _ = slot.pending[0]
                slot.file.append(chunk)
                slot.pending.pop(0)
                self._pending_bytes -= len(chunk)
                wrote = True
                self._recovered()
                self.stats.chunks += 1
                self.stats.bytes += len(chunk)
                if self.fsync_interval == 0:
                    slot.file.fsync()
                if self.on_chunk is not None:
                    self.on_chunk(slot.file.path, count, slot.file.size)
        except OSError as e:
            self._failed(slot, e)
            return False
        finally:
            self.stats.pending_chunks = self._pending()
            self.stats.pending_bytes = self._pending_bytes
        if slot.dropped and wrote:
            self._record_dropped(slot)
        return True

    def _failed(self, slot: _Slot, e: BaseException) -> None:
        self.stats.write_errors += 1
        self.stats.last_error = f"{slot.path}: {e}"
        now = time.monotonic()
        self._retry_at = now + self.retry_interval
        # One line per condition (e.g. ENOSPC), then one every error_log_interval with the
        # count: a full disk used to log a line per file every retry_interval.
        key = (type(e).__name__, getattr(e, "errno", None))
        entry = self._error_log.setdefault(key, [0.0, 0])
        entry[1] += 1
        if now >= entry[0]:
            entry[0] = now + self.error_log_interval
            again = f" ({entry[1]} failures so far)" if entry[1] > 1 else ""
            log.error("recording writes fail%s, buffering up to %.0f MB then dropping events "
                      "(counted as lost, recorded as a gap); retrying every %.1fs; "
                      "first failure now: %s: %s", again, self.max_buffer_bytes / 1e6,
                      self.retry_interval, slot.path, e)  # fmt: skip
        if self.on_error is not None:
            self.on_error(slot.path, e)

    def _recovered(self) -> None:
        if self._error_log:
            total = sum(int(n) for _, n in self._error_log.values())
            self._error_log.clear()
            log.warning("recording writes succeed again after %d failed attempts%s", total,
                        f"; {self.stats.dropped} events dropped in total"
                        if self.stats.dropped else "")  # fmt: skip

    def _pending(self) -> int:
        return sum(len(s.pending) for s in self._by_path.values())

    def _maintain(self) -> None:
        now = self._now = time.monotonic()
        if self._retry_at and now >= self._retry_at:
            self._retry_at = 0.0
        if self.rotate_daily:
            wall = self.clock()
            if wall >= self._day_end:
                self._rotate(wall)
        for slot in self._by_path.values():
            if slot.count and now - slot.since >= self.max_chunk_age:
                self._seal(slot)
            if slot.pending:
                self._write(slot)
        if self.fsync_interval and now - self._last_fsync >= self.fsync_interval:
            self._fsync_all()
            self._last_fsync = now
        self._update_position()

    def _update_position(self) -> None:
        """``stats.written_position``: the source position of the oldest event still
        buffered or unwritten (or the next one to read): a restart that resumes there loses
        only what the crash took from the buffers."""
        if self.position is None:
            return
        pos = self.position()
        for slot in self._by_path.values():
            if slot.count:
                pos = min(pos, slot.first_pos)
            if slot.pending:
                pos = min(pos, slot.pending[0][2])
        self.stats.written_position = pos

    def _rotate(self, wall: int) -> None:
        if self._day:
            self._close_all(final=False)
            ask = getattr(self._get, "ask", None)
            if ask is not None:  # each new file starts with a snapshot of every book
                ask()
        self._day = utc_day(wall)
        self._day_end = (wall // _NS_PER_DAY + 1) * _NS_PER_DAY

    def _fsync_all(self) -> None:
        for slot in self._by_path.values():
            if slot.file is not None:
                try:
                    slot.file.fsync()
                except OSError as e:
                    self._failed(slot, e)

    def _close_all(self, final: bool) -> None:
        """Seal, write (retrying up to ``close_timeout``), fsync and close every file."""
        for slot in self._by_path.values():
            self._seal(slot)
        deadline = time.monotonic() + self.close_timeout
        while True:
            self._now = time.monotonic()
            self._retry_at = 0.0
            if all([self._write(s) for s in self._by_path.values()]):
                break
            if time.monotonic() >= deadline:
                lost = sum(p[1] for s in self._by_path.values() for p in s.pending)
                self.stats.last_error = f"{lost} events could not be written: {self.stats.last_error}"
                log.error("recorder closing with %d unwritten events: %s", lost,
                          self.stats.last_error)  # fmt: skip
                break
            time.sleep(min(self.retry_interval, 0.1))
        for slot in self._by_path.values():
            if slot.file is not None:
                try:
                    slot.file.close()
                except OSError as e:
                    self._failed(slot, e)
        if final or not any(s.pending for s in self._by_path.values()):
            self._by_path.clear()
            self._slots.clear()
        else:  # keep unwritten chunks of the old day for the next retry
            self._by_path = {p: s for p, s in self._by_path.items() if s.pending}
            for s in self._by_path.values():
                s.file = None
            self._slots.clear()

    def _finish(self) -> None:
        self._close_all(final=True)
        self._update_position()
        close = getattr(self._get, "close", None)
        if close is not None:
            close()

    def mark_gap(self, lost: int, exchange: str = "", symbols: Sequence[str] = (),
                 message: str = "") -> None:  # fmt: skip
        """Record an explicit gap of ``lost`` events (e.g. the source ran while no recorder
        did) in ``exchange``'s file and in the file of each of ``symbols``, so a replay
        shows the hole. Call before :meth:`start` or from the recording thread."""
        for sym in symbols:
            kind, probe = codec.encode(GapNotice(exchange=exchange, symbol=sym, lost=0))
            route = self._routes.get(kind) or self._routes.setdefault(kind, _route_for(kind))
            key = (bytes(probe[route.exch]), bytes(probe[route.sym]))
            if key not in self._slots:
                self._slot_for(key)
        if message:
            log.warning("%s", message)
        self._makedirs()
        self._now = time.monotonic()
        self._accept(*codec.encode(GapNotice(exchange=exchange, lost=lost,
                                             local_ts=self.clock())))  # fmt: skip


# ---------------------------------------------------------------------- running standalone


def run_recorder(
    source: Any, directory: str | os.PathLike[str], *, install_signals: bool = True, **options: Any
) -> RecorderStats:
    """Record ``source`` (an IQueue, or the name of a ring to attach to) until SIGINT/SIGTERM
    or the queue closes; returns the final statistics."""
    queue = _attach(source) if isinstance(source, str) else source
    rec = MarketDataRecorder(queue, directory, **options)
    previous: dict[int, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: rec._stop.set())
    try:
        return rec.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if isinstance(source, str):
            queue.close()


def _attach(name: str) -> Any:
    try:
        from ttxt_mp.shm import ShmQueue
    except ImportError as e:
        raise RuntimeError(
            f"cannot attach to ring {name!r}: shared-memory rings are not available ({e})"
        ) from e
    return ShmQueue.attach(name, start="oldest")


def _is_url(source: str) -> bool:
    from ttxt_mp.bus.remote_url import is_bus_url

    return is_bus_url(source)


def _remote_sources(url: str, start: str) -> dict[str, Any]:
    """One remote reader per market ring a bridge publishes (``ttxt-mp record redis://...``):
    a recorder on another host writes the same files as one beside the engine."""
    from ttxt_mp.argtypes import NothingFound
    from ttxt_mp.bus.remote import RemoteRings, connect, list_rings
    from ttxt_mp.bus.remote_url import parse_bus_url, refuse_password_in_argv

    bus = parse_bus_url(refuse_password_in_argv(url))
    client = connect(bus)
    try:
        rings = [r for r in list_rings(client, bus) if r.endswith("-market")]
    finally:
        client.close()
    if not rings:
        raise NothingFound(f"no market rings of engine {bus.engine!r} on {bus.redacted} (is a "
                           "[[bridges]] entry publishing them?)")  # fmt: skip
    out: dict[str, Any] = {}
    try:
        for r in rings:
            out[r] = RemoteRings(bus, [r], start=start)
    except BaseException:
        for q in out.values():
            q.close()
        raise
    return out


def market_rings(source: str) -> list[str]:
    """Ring names to record for ``source``: the ring itself if one has that name, else the
    engine's market rings (``<engine>-<exchange>-market``)."""
    from ttxt_mp.shm import list_objects

    rings = sorted({o.ring for o in list_objects(source) if o.kind == "ring" and o.alive})
    if source in rings:
        return [source]
    found = [r for r in rings if r.startswith(source + "-") and r.endswith("-market")]
    if not found:
        from ttxt_mp.argtypes import NothingFound

        raise NothingFound(f"no live ring {source!r} and no market rings of engine {source!r} "
                           f"(looked for /dev/shm/ttxt-{source}-*-market)")  # fmt: skip
    return found


def add_record_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``ttxt-mp record ENGINE_OR_RING --dir DIR``."""
    parser.add_argument("source", help="engine name (records its market rings), a ring name, "
                        "or redis://HOST:PORT/DB/ENGINE: the market rings a bridge publishes "
                        "(the Redis password from $TTXT_MP_REDIS_PASSWORD)")  # fmt: skip
    parser.add_argument("--dir", required=True, help="directory of the recording files")
    from ttxt_mp.argtypes import non_negative, positive

    parser.add_argument("--chunk-events", type=positive(int), default=DEFAULT_CHUNK_EVENTS,
                        help="events per chunk (default %(default)s)")  # fmt: skip
    parser.add_argument("--max-chunk-age", type=positive(), default=1.0,
                        help="write a partial chunk after this many seconds (default 1)")  # fmt: skip
    parser.add_argument("--fsync-interval", type=non_negative(), default=1.0,
                        help="seconds between fsyncs, 0 = after every chunk (default 1)")  # fmt: skip
    parser.add_argument("--rotate-daily", action="store_true",
                        help="one file per instrument and UTC day")  # fmt: skip
    parser.add_argument("--snapshot-interval", type=non_negative(),
                        default=DEFAULT_SNAPSHOT_INTERVAL,
                        help="seconds between book snapshots in the recording, besides its "
                             "start, laps and rotations; 0 = only those (default 600)")  # fmt: skip
    parser.add_argument("--start", default="latest",
                        help="redis:// sources: latest (default: the bridge's state, then new "
                             "events), oldest, or a stream id to resume after")  # fmt: skip
    return parser


def record_main(args: argparse.Namespace) -> int:
    """Record until SIGINT/SIGTERM (or every ring closes); prints the statistics as JSON."""
    options = dict(chunk_events=args.chunk_events, max_chunk_age=args.max_chunk_age,
                   fsync_interval=args.fsync_interval, rotate_daily=args.rotate_daily,
                   snapshot_interval=args.snapshot_interval)  # fmt: skip
    remote = _is_url(args.source)
    queues = _remote_sources(args.source, args.start) if remote else \
        {r: _attach(r) for r in market_rings(args.source)}
    # a remote feed serves no states on request: the recorder keeps the books itself
    recorders = [MarketDataRecorder(q, args.dir, source=r, keep_books=remote, **options)
                 for r, q in queues.items()]  # fmt: skip
    done = threading.Event()

    def stop(*_: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for rec in recorders:
            rec.start()
        while not done.wait(0.2):
            if not any(r._thread is not None and r._thread.is_alive() for r in recorders):
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for rec in recorders:
            rec.stop()
        for q in queues.values():
            q.close()
    for ring, rec in zip(queues, recorders, strict=True):
        last = getattr(queues[ring], "last_id", None)
        if last is not None:  # a remote ring: where a next recording resumes (--start)
            print(f"{ring}: recorded up to stream id {last}", file=sys.stderr)
        print(msgspec.json.encode(rec.stats).decode())
    return 0 if all(r.stats.pending_chunks == 0 for r in recorders) else 1


if __name__ == "__main__":  # the supervisor's recorder child (see engine_recorder)
    from ttxt_mp.storage.engine_recorder import main

    sys.exit(main())
