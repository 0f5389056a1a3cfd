"""The bridge's reading side: engine rings into a bounded buffer of stream entries.

Why a separate side: the bridge must never slow a connector. One thread reads every ring
as an ordinary consumer (``get_batch``, a copy of many slots per call) and hands packed
entries to a :class:`Buffer` bounded in bytes; it never waits for Redis. When the buffer
is full (Redis slow or down) an entry is dropped and its ring events counted; a lap on
the ring (the bridge itself too slow) is counted the same way. The next entry accepted
starts with ``GapNotice(lost=<exact count>)`` and the ring's state is asked again, so a
remote book recovers right after the gap.

State for late joiners: the tap asks the ring's producer for its state
(:class:`ttxt_mp.join.StateRequest`, as the recorder does) at start, after a gap, after
Redis came back and every ``state_interval`` while events flow. While it is pending the
ring is still read, but what is read is held (bounded) instead of buffered, so the served
*watermark* (the producer's next event number) is never behind what was buffered; the
held events are then cut exactly at the watermark and a :class:`StateMark` is queued
between them: the writer records, as the state's ``_after``, the id of the last entry
before the mark. Reading never pauses: on a ``block`` ring (private) a pause would make
the connector wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from ttxt_mp import codec
from ttxt_mp.bus import format as bf
from ttxt_mp.events import GapNotice
from ttxt_mp.join import StateRequest
from ttxt_mp.shm.batch_records import batch_events

__all__ = ["Batch", "Buffer", "RingTap", "StateMark"]


class Batch:
    """One stream entry to write: ``n`` records packed, the first ``gap`` of them a
    leading ``GapNotice`` (0 or 1), the ring events numbered ``first`` .. ``end - 1``."""

    __slots__ = ("attempted", "eid", "end", "first", "gap", "n", "packed", "read_ns", "ring")

    def __init__(self, ring: str, packed: bytes, n: int, first: int, end: int,
                 gap: int) -> None:  # fmt: skip
        self.ring, self.packed, self.n, self.first, self.end, self.gap = ring, packed, n, first, end, gap
        self.read_ns = time.monotonic_ns()
        self.eid: bytes | None = None  # assigned at the first attempt, kept for retries
        self.attempted = False

    @property
    def size(self) -> int:
        return len(self.packed) + 64

    @property
    def events(self) -> int:
        """Ring events in the entry (the leading notice is not one)."""
        return self.end - self.first

    def fields(self) -> dict[bytes, bytes]:
        """``s``/``x``: ring event numbers of the first ring event and after the last."""
        return {b"v": bf.layout_tag(), b"n": str(self.n).encode(), b"e": self.packed,
                b"s": str(self.first).encode(), b"x": str(self.end).encode()}  # fmt: skip

    def add_gap(self, lost: int) -> None:
        """Announce ``lost`` more events before this entry (in its leading GapNotice)."""
        if self.gap:
            (kind, payload), *_ = bf.iter_packed(self.packed)
            lost += codec.decode(kind, payload).lost
            rest = self.packed[6 + len(payload):]
            self.n -= 1
        else:
            rest = self.packed
        notice = bf.pack_raw([codec.encode(GapNotice(exchange="", lost=lost, local_ts=time.time_ns()))])
        self.packed = notice + rest
        self.n += 1
        self.gap = 1


class StateMark:
    """A ring's state, valid after every event numbered below ``watermark``."""

    __slots__ = ("fields", "read_ns", "ring", "size", "watermark")

    def __init__(self, ring: str, records: list[tuple[int, bytes]], watermark: int) -> None:
        self.ring, self.watermark = ring, watermark
        self.fields: dict[str, bytes] = {}
        for kind, payload in records:
            self.fields[bf.state_field(codec.decode(kind, payload))] = bf.pack_raw([(kind, payload)])
        self.size = sum(len(v) + 64 for v in self.fields.values()) + 64
        self.read_ns = time.monotonic_ns()


class Buffer:
    """What the tap read and the writer has not written yet, bounded in bytes. The writer
    removes items only once Redis acknowledged them (a failed write is retried)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[Batch | StateMark] = deque()
        self._lock = threading.Lock()
        self.bytes = 0
        self.events = 0
        self.on_ready: Any = None
        """Called (from the tap's thread) when an item arrives in an empty buffer."""

    def offer(self, item: Batch | StateMark) -> bool:
        with self._lock:
            if self.bytes + item.size > self.max_bytes:
                return False
            was_empty = not self._items
            self._items.append(item)
            self.bytes += item.size
            if isinstance(item, Batch):
                self.events += item.events
        if was_empty and self.on_ready is not None:
            self.on_ready()
        return True

    def front(self, max_items: int) -> list[Batch | StateMark]:
        with self._lock:
            return [self._items[i] for i in range(min(max_items, len(self._items)))]

    def done(self, count: int) -> None:
        """The first ``count`` items are written (or given up)."""
        with self._lock:
            for _ in range(count):
                item = self._items.popleft()
                self.bytes -= item.size
                if isinstance(item, Batch):
                    self.events -= item.events

    def oldest_ns(self) -> int | None:
        with self._lock:
            return self._items[0].read_ns if self._items else None

    def __len__(self) -> int:
        return len(self._items)


class RingTap:
    """Reads one ring (an attached ``ShmConsumer``) into ``buffer`` as entries."""

    def __init__(self, ring: str, consumer: Any, buffer: Buffer, *, batch_events: int = 512,
                 state_interval: float = 1.0, request: StateRequest | None = None,
                 max_read: int = 4096, created_ns: int = 0,
                 max_held_bytes: int = 16 << 20) -> None:  # fmt: skip
        self.ring = ring
        self.created_ns = created_ns
        """The ring instance's creation time (a restarted engine's ring has another)."""
        self.consumer = consumer
        self.buffer = buffer
        self.batch_events = batch_events
        self.state_interval = state_interval
        self.max_read = max_read
        self.max_held_bytes = max_held_bytes
        self.request = request
        self.next = int(getattr(consumer, "_evno", 0))
        """The ring event number read next (every one before it was read or lost)."""
        self.emitted = self.next
        """Every ring event before it is in the buffer, dropped, or lost on the ring."""
        self.gap = 0  # events lost, not yet announced in an entry
        self.lost = 0  # every event lost (laps + drops)
        self.dropped = 0  # of which dropped because the buffer was full
        self.read = 0
        self.states = 0
        self.given_up = 0  # state requests the producer did not serve in time
        self._mark: int | None = None  # watermark of a served state not yet queued
        self._records: list[tuple[int, bytes]] = []
        self._held: list[tuple[int, int, Any]] = []  # read while a state is awaited
        self._held_bytes = 0
        self._holding = False
        self._due = 0.0
        self._flowed = True
        self._refresh = threading.Event()
        self.ask_state()

    # ------------------------------------------------------------------ state
    def ask_state(self) -> None:
        """Refresh the state hash at the producer's next event (from any thread)."""
        self._refresh.set()

    def _state_step(self) -> None:
        """Ask for a state when due; take one when served (the events read meanwhile are
        held, then cut at its watermark); give up, and ask less often, when the producer
        does not serve (a connector restarting, a ring without a state board)."""
        req = self.request
        if req is None:
            return
        now = time.monotonic()
        if req.pending:
            st = req.poll()
            if st is not None:
                self._take(st.watermark, st.records)
            elif not req.pending:  # given up: what was held goes on without a state
                self.given_up += 1
                self._due = now + max(10 * self.state_interval, 10.0)
                self._release()
            return
        if self._refresh.is_set() or (self._flowed and now >= self._due):
            self._refresh.clear()
            self._flowed = False
            self._due = now + self.state_interval
            req.ask()
            self._holding = req.pending

    def _take(self, watermark: int, records: list[tuple[int, bytes]]) -> None:
        if watermark < self.emitted:  # served after we stopped holding: too late for it
            self._release()
            return
        self._mark, self._records = watermark, records
        self._release()
        if self._mark is not None and self._mark == self.emitted:
            self._queue_state()

    def _release(self) -> None:
        self._holding = False
        held, self._held, self._held_bytes = self._held, [], 0
        self._consume(held)

    def _queue_state(self) -> None:
        mark = StateMark(self.ring, self._records, self._mark or 0)
        self._mark, self._records = None, []
        if self.buffer.offer(mark):
            self.states += 1
        # else no room: not asked again now (that would make the producer serve states in a
        # loop while Redis is away); the next entry accepted after drops carries a gap,
        # which asks again, and the next interval does anyway

    # ------------------------------------------------------------------ reading
    def poll(self) -> int:
        """Read what the ring holds (one ``get_batch``); returns the events read. It never
        waits for the producer's state: events read while one is awaited are held (up to
        ``max_held_bytes``, then the state is given up) and cut at its watermark."""
        self._state_step()
        recs = self.consumer.get_batch(self.max_read, timeout=0)
        if not len(recs):
            return 0
        self._flowed = True
        items = self._parse(recs)
        if self._holding:
            self._held.extend(items)
            self._held_bytes += len(recs) * recs.dtype.itemsize
            if self._held_bytes > self.max_held_bytes:
                self._release()
        else:
            self._consume(items)
        return len(items)

    def _parse(self, recs: Any) -> list[tuple[int, int, Any]]:
        """``(evno, kind, payload)`` per event; a lap is ``(evno, -1, lost)`` before it."""
        evnos = recs["evno"].tolist()
        out: list[tuple[int, int, Any]] = []
        if evnos[0] != self.next:  # lapped: the ring overwrote what we had not read
            out.append((evnos[0], -1, evnos[0] - self.next))
        out.extend(batch_events(recs))
        self.next = evnos[-1] + 1
        self.read += len(out)
        return out

    def _consume(self, events: list[tuple[int, int, Any]]) -> None:
        """Events into entries of up to ``batch_events``, cut at a lap (its GapNotice leads
        the next entry) and at a state's watermark (the state mark goes between)."""
        items: list[tuple[int, Any]] = []
        first = self.emitted
        for ev, kind, payload in events:
            if self._mark is not None and ev >= self._mark:
                self._emit(items, first, ev)
                items, first = [], ev
                self._queue_state()
            if kind < 0:  # a lap of ``payload`` events before ``ev``
                self._emit(items, first, ev - payload)
                items, first = [], ev
                self.gap += payload
                self.lost += payload
                continue
            items.append((kind, payload))
            if len(items) >= self.batch_events:
                self._emit(items, first, ev + 1)
                items, first = [], ev + 1
        if events:
            self._emit(items, first, events[-1][0] + 1)
        if self._mark is not None and self._mark == self.emitted:
            self._queue_state()

    def _emit(self, items: list[tuple[int, Any]], first: int, end: int) -> None:
        if not items:
            self.emitted = max(self.emitted, end)
            return
        self.emitted = end
        gap = self.gap
        if gap:
            notice = codec.encode(GapNotice(exchange="", lost=gap, local_ts=time.time_ns()))
            items = [notice, *items]
        batch = Batch(self.ring, bf.pack_raw(items), len(items), first, end, 1 if gap else 0)
        if self.buffer.offer(batch):
            if gap:
                self.gap = 0
                self.ask_state()  # remote books recover right after the gap
        else:
            lost = end - first
            self.gap += lost
            self.lost += lost
            self.dropped += lost

    @property
    def lag(self) -> int:
        """Ring slots published and not read yet."""
        return 0 if self.closed else int(getattr(self.consumer, "lag", 0))

    closed = False

    def close(self) -> None:
        self.closed = True
        if self.request is not None:
            self.request.close()
        self.consumer.close()
