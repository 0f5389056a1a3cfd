"""Book snapshots for recordings: the producer's state spliced into the recorded stream.

A recording that starts late (the ring already dropped the books' first snapshots), that
is lapped (``GapNotice``), or that is replayed from the middle needs a snapshot of every
book before its deltas. The recorder asks the ring's producer for its state (the same
board a late joiner uses, :mod:`ttxt_mp.shm.board`) when it starts, after every lap,
when a file rotates and every ``interval`` seconds, and writes the state's book
snapshots into the stream exactly at the state's *watermark*: after every event the
state already reflects and before the first one it does not. Replaying the recording
then builds correct books from the first snapshot on, and a replay started at ``T``
seeks to the last snapshot before ``T`` (:mod:`ttxt_mp.storage.seek`).

While a request is pending the recorder does not read further (the watermark is the
producer's next event number when it serves, never below the recorder's position); the
producer serves within a few milliseconds, and gives up after
:data:`ttxt_mp.join.STATE_TIMEOUT` (then the recording goes on without that snapshot).
Only ``Orderbook`` records are written: the last kline and status are already in the
recording as the ring published them, a second copy would be a duplicate event.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from ttxt_mp import codec
from ttxt_mp.events import GapNotice, Orderbook
from ttxt_mp.join import StateRequest
from ttxt_mp.storage.book_snapshots import BookSnapshots
from ttxt_mp.storage.raw import RingBatchGetter

__all__ = ["DEFAULT_SNAPSHOT_INTERVAL", "StateGetter"]

DEFAULT_SNAPSHOT_INTERVAL = 600.0
"""Seconds between two book snapshots in a recording (besides start, laps, rotations)."""
BOOK_KIND = codec.layout_for(Orderbook).kind
GAP_KIND = codec.layout_for(GapNotice).kind


class StateGetter:
    """``get(timeout) -> (kind, payload)`` of a :class:`RingBatchGetter`, with the
    producer's book snapshots inserted at their watermark (see the module docstring)."""

    def __init__(self, inner: RingBatchGetter, request: StateRequest,
                 interval: float = DEFAULT_SNAPSHOT_INTERVAL) -> None:  # fmt: skip
        self.inner = inner
        self.request = request
        self.interval = interval
        self.states = 0
        """States spliced into the stream."""
        self.snapshots = 0
        """Book snapshots handed out from states."""
        self.given_up = 0
        """Requests the producer did not serve in time (no snapshot written for them)."""
        self._ready: deque[tuple[int, bytes]] = deque()
        self._mark = 0
        self._due = math.inf
        self.ask()

    @property
    def position(self) -> int:
        """The ring event number of the next ring event handed out."""
        return self.inner.position

    def ask(self) -> None:
        """Snapshot every book again, at the producer's next event (superseding a state
        that is pending or not yet handed out)."""
        self._ready.clear()
        self.request.ask()
        now = time.monotonic()
        self._due = now + self.interval if self.interval > 0 else math.inf

    def __call__(self, timeout: float | None) -> tuple[int, Any]:
        if self._ready and self.inner.position >= self._mark:
            return self._snapshot()
        if self.request.pending:
            self._wait(timeout)
        elif time.monotonic() >= self._due:
            self.ask()
            self._wait(timeout)
        if self._ready and self.inner.position >= self._mark:
            return self._snapshot()
        kind, payload = self.inner(timeout)
        if kind == GAP_KIND:  # lapped: what follows needs fresh books
            self.ask()
        return kind, payload

    def _snapshot(self) -> tuple[int, bytes]:
        self.snapshots += 1
        return self._ready.popleft()

    def _wait(self, timeout: float | None) -> None:
        """Wait for the pending state (reading on would move past its watermark); raise
        QueueEmpty when ``timeout`` ends first, so the caller stays responsive."""
        st = self.request.wait(None if timeout is None else time.monotonic() + timeout)
        if st is not None:
            self._take(st.records, st.watermark)
        else:  # given up: read on without it
            self.given_up += 1

    def _take(self, records: list[tuple[int, bytes]], watermark: int) -> None:
        if self.inner.position > watermark:  # cannot happen while we paused; stay exact
            self.ask()
            return
        self._ready.extend((k, p) for k, p in records if k == BOOK_KIND)
        self._mark = watermark
        self.states += 1

    def close(self) -> None:
        self.request.close()


def state_getter(queue: Any, inner: Any, interval: float, keep_books: bool = False) -> Any:
    """``inner`` wrapped in a :class:`StateGetter` when ``queue`` is a shared-memory ring
    (its producer may serve states: a ring without a board yet, e.g. a recorder started
    with its engine, is read as is until one appears); with ``keep_books`` (a source that
    cannot serve states, e.g. a remote feed) in a :class:`BookSnapshots`; ``inner``
    itself otherwise."""
    if keep_books:
        return BookSnapshots(inner, interval)
    if not isinstance(inner, RingBatchGetter) or not hasattr(queue, "name"):
        return inner
    request = StateRequest(queue.name, instance_id=getattr(queue, "instance_id", None))
    return StateGetter(inner, request, interval)
