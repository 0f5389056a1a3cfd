"""Move codec bytes through any IQueue: the ring's raw API when it has one, codec otherwise.

A shared-memory ring offers ``get_raw(timeout) -> (kind, payload)`` and
``put_raw(kind, payload)``, so the recorder stores and the replayer republishes the exact
ring bytes. Queues of Python objects (``AsyncioQueue``) get the same bytes through
:func:`ttxt_mp.codec.encode` / :func:`ttxt_mp.codec.decode`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ttxt_mp import codec
from ttxt_mp.events import GapNotice
from ttxt_mp.shm.batch_records import batch_events

RawGet = Callable[[float | None], tuple[int, bytes]]
MAX_IDLE_SLEEP = 0.05  # the longest sleep of an idle batch reader (latency when data resumes)
RawPut = Callable[[int, Any], None]


def raw_getter(queue: Any, idle_sleep: float = 0.0) -> RawGet:
    """``get(timeout) -> (kind, payload)``; raises QueueEmpty/QueueClosed like ``get``.

    ``idle_sleep`` > 0 and a ring (``get_batch``): a :class:`RingBatchGetter`, which reads
    many slots per call and waits by sleeping instead of asking the producer for a wake-up.
    """
    if idle_sleep > 0 and hasattr(queue, "get_batch") and hasattr(queue, "lost"):
        return RingBatchGetter(queue, idle_sleep)
    get_raw = getattr(queue, "get_raw", None)
    if get_raw is not None:
        return get_raw
    get = queue.get
    encode = codec.encode

    def get_encoded(timeout: float | None) -> tuple[int, bytes]:
        return encode(get(timeout))

    return get_encoded


class RingBatchGetter:
    """Events of a ring one at a time, read ``max_n`` slots per ``get_batch`` copy.

    Why, for a bulk consumer like the recorder: reading slot by slot moves the consumer's
    cursor cache line (which the producer's core also touches) once per event, and a
    consumer that caught up blocks in ``get_raw``, so the producer pays a syscall to wake
    it. Batches move the cursor once per batch; when the ring is empty this sleeps
    ``idle_sleep`` steps, doubling up to ``max_idle_sleep`` while it stays empty (a
    recording a few ms later is as good, and an idle recorder stays off the CPU). A lap becomes a
    ``GapNotice`` record, as ``get_raw`` reports it. :attr:`position` is the ring event
    number of the next event handed out (every event before it was handed out or lost).
    """

    def __init__(self, ring: Any, idle_sleep: float, max_n: int = 4096,
                 max_idle_sleep: float = MAX_IDLE_SLEEP) -> None:  # fmt: skip
        self.ring = ring
        self.idle_sleep = idle_sleep
        self.max_idle_sleep = max(idle_sleep, max_idle_sleep)
        self._sleep = idle_sleep  # grows while the ring stays empty, reset by an event
        self.max_n = max_n
        self._items: list[tuple[int, Any]] = []
        self._next: list[int] = []
        self._i = 0
        self._lost = ring.lost
        # RingReader keeps the event number it reads next as ``_evno``; batches carry it.
        self.position = int(getattr(ring, "_evno", 0))

    def __call__(self, timeout: float | None) -> tuple[int, Any]:
        i = self._i
        if i >= len(self._items):
            self._refill(timeout)
            i = 0
        self._i = i + 1
        self.position = self._next[i]
        return self._items[i]

    def _refill(self, timeout: float | None) -> None:
        ring = self.ring
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            recs = ring.get_batch(self.max_n, timeout=0)  # QueueClosed once closed+drained
            if len(recs):
                self._sleep = self.idle_sleep
                self._parse(recs)
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                # One blocking-API look per timeout: it reports a dead producer, and may
                # find an event that arrived meanwhile.
                got = ring.get_raw(0)
                self._items, self._next, self._i = [got], [self.position + 1], 0
                return
            time.sleep(self._sleep if left is None else min(self._sleep, left))
            # Idle: back off (2 ms doubling to max_idle_sleep) so a quiet recorder costs
            # next to no CPU (2 ms polling forever took 5.6 % of a core).
            self._sleep = min(self._sleep * 2, self.max_idle_sleep)

    def _parse(self, recs: Any) -> None:
        items: list[tuple[int, Any]] = []
        nxt: list[int] = []
        evnos = recs["evno"].tolist()
        lost = self.ring.lost - self._lost
        if lost > 0:
            self._lost += lost
            items.append(codec.encode(GapNotice(exchange="", lost=lost, local_ts=time.time_ns())))
            nxt.append(evnos[0])
        for evno, kind, payload in batch_events(recs):
            items.append((kind, payload))
            nxt.append(evno + 1)
        self._items, self._next, self._i = items, nxt, 0


def raw_putter(queue: Any) -> RawPut:
    """``put(kind, payload)`` where payload is any bytes-like object."""
    put_raw = getattr(queue, "put_raw", None)
    if put_raw is not None:
        return lambda kind, payload: put_raw(kind, bytes(payload))
    put = queue.put
    decode = codec.decode
    return lambda kind, payload: put(decode(kind, payload))
