"""A ring consumer that starts with the producer's state (see :mod:`ttxt_mp.shm.board`).

:class:`JoinedRing` wraps one :class:`~ttxt_mp.shm.ShmConsumer`. Attached at ``latest``,
it asks the ring's producer for its state at once, and hands out first those events (a
snapshot of every synced book, the last kline per interval, the last statuses; on a
private ring the wallet, positions and open orders), then the ring's events from its cursor, dropping the stateful ones the state already contains
(event number below the watermark). After a lap (a ``GapNotice``) it asks again, so a
lapped consumer gets fresh snapshots right after the notice. A ring without a board (a
replay, a user's ring) or a producer that does not answer in time just yields the ring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from ttxt_mp.events import (
    BookTicker,
    ConnectorStatus,
    GapNotice,
    Kline,
    MarkPrice,
    OpenInterest,
    Orderbook,
    OrderUpdate,
    PositionUpdate,
    Wallet,
)
from ttxt_mp.queues import IQueueConsumer, QueueEmpty
from ttxt_mp.shm.board import BoardState, StateBoard
from ttxt_mp.shm.errors import RingError

__all__ = ["STATEFUL", "JoinedRing", "StateRequest"]

log = logging.getLogger("ttxt_mp.join")
STATEFUL = frozenset({Orderbook, Kline, BookTicker, MarkPrice, OpenInterest, ConnectorStatus,
                      Wallet, PositionUpdate, OrderUpdate})  # fmt: skip
"""Kinds a state holds the latest value of: market rings' books, klines, book tickers,
mark prices, open interest and statuses; a private ring's wallet, positions and open orders (its acks are not state:
never dropped)."""
"""Kinds whose latest value is the state: older ones are superseded by a served state."""
STATE_TIMEOUT = 2.0


class StateRequest:
    """Asks one ring's producer for its state and picks it up without blocking.

    Shared by :class:`JoinedRing` (decoded events) and the recorder (raw records). A ring
    without a board, or a producer that does not serve within ``timeout``, gives no state
    (logged once per request) and the consumer reads the ring as is."""

    def __init__(self, ring: str, *, instance_id: int | None = None,
                 allow_gid: int | None = None, timeout: float = STATE_TIMEOUT) -> None:  # fmt: skip
        self.ring = ring
        self.timeout = timeout
        self._ticket = 0
        self._asked = 0.0
        self._instance_id, self._allow_gid = instance_id, allow_gid
        self.board: StateBoard | None = None
        self._open()

    def _open(self) -> None:
        """The board, if the producer has one yet (a consumer attached just as the engine
        started may be earlier than the connector's board: tried again on every ask)."""
        try:
            self.board = StateBoard.open(self.ring, instance_id=self._instance_id,
                                         allow_gid=self._allow_gid)  # fmt: skip
        except (RingError, OSError) as e:
            log.debug("%s: no state on join (%s)", self.ring, e)

    @property
    def pending(self) -> bool:
        """A state was asked for and is neither served nor given up yet."""
        return bool(self._ticket)

    def ask(self) -> None:
        """Ask for a state served from now on (after a lap, an older pending request
        could be answered with a state from before the lap: it is superseded)."""
        if self.board is None:
            self._open()
        if self.board is not None:
            self._ticket = self.board.request()
            self._asked = time.monotonic()

    def poll(self) -> BoardState | None:
        """The state once served; None while waiting, or after giving up (then
        :attr:`pending` is False)."""
        if not self._ticket:
            return None
        assert self.board is not None
        st = self.board.poll(self._ticket)
        if st is not None:
            self._ticket = 0
            return st
        if time.monotonic() - self._asked > self.timeout:
            log.info("%s: producer served no state within %.1fs; reading the ring as is",
                     self.ring, self.timeout)  # fmt: skip
            self._ticket = 0
        return None

    def wait(self, deadline: float | None) -> BoardState | None:
        """Poll until the state is served (returned), given up (None) or ``deadline``
        passes (QueueEmpty, so the caller stays responsive). The producer serves within its
        poll period, so the pause doubles from 0.2 ms up to 5 ms."""
        delay = 0.0002
        while True:
            st = self.poll()
            if st is not None or not self.pending:
                return st
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise QueueEmpty
            time.sleep(delay if left is None else min(delay, left))
            delay = min(2 * delay, 0.005)

    def close(self) -> None:
        self._ticket = 0
        if self.board is not None:
            self.board.close()
            self.board = None


class JoinedRing(IQueueConsumer):
    """State first, then the live ring, nothing missing and nothing twice."""

    def __init__(self, consumer: Any, *, instance_id: int | None = None,
                 allow_gid: int | None = None, timeout: float = STATE_TIMEOUT,
                 join: bool = True) -> None:  # fmt: skip
        """``join=False``: no state now (a consumer reading the ring's history from its
        oldest event wants that history, not a summary); still one after every lap."""
        self.consumer = consumer
        self.name = consumer.name
        self.joins = 0
        """States received (the first join, then one per lap)."""
        self._ready: deque[Any] = deque()
        self._mark = 0
        self.state = StateRequest(consumer.name, instance_id=instance_id,
                                  allow_gid=allow_gid, timeout=timeout)  # fmt: skip
        if join:
            self.state.ask()

    @property
    def board(self) -> StateBoard | None:
        return self.state.board

    # ------------------------------------------------------------------ state
    def _accept(self, st: BoardState | None) -> None:
        if st is not None:
            self._mark = st.watermark
            self._ready.extend(st.events)
            self.joins += 1

    def _poll_state(self) -> bool:
        """True while a requested state is still awaited (and not yet given up)."""
        self._accept(self.state.poll())
        return self.state.pending

    def _wait_state(self, deadline: float | None) -> None:
        self._accept(self.state.wait(deadline))

    async def _await_state(self) -> None:
        while self._poll_state():
            await asyncio.sleep(0.002)

    def _keep(self, e: Any) -> bool:
        """Drop what the served state already holds; re-join after a lap."""
        if self._mark:
            if self.consumer.last_evno >= self._mark:
                self._mark = 0
            elif e.__class__ in STATEFUL:
                return False
        if e.__class__ is GapNotice:
            self.state.ask()
        return True

    # ------------------------------------------------------------------ IQueueConsumer
    def get_nowait(self) -> Any:
        while True:
            if self.state.pending and self._poll_state():
                raise QueueEmpty
            if self._ready:
                return self._ready.popleft()
            e = self.consumer.get_nowait()
            if self._keep(e):
                return e

    def get(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.state.pending:
                self._wait_state(deadline)
            if self._ready:
                return self._ready.popleft()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            e = self.consumer.get(left)
            if self._keep(e):
                return e

    async def aget(self) -> Any:
        while True:
            if self.state.pending:
                await self._await_state()
            if self._ready:
                return self._ready.popleft()
            e = await self.consumer.aget()
            if self._keep(e):
                return e

    # ------------------------------------------------------------------ wait sets
    # ttxt_mp.waitset serves several of these from one thread (see RingReader).
    def poll_event(self) -> Any:
        """The next event (state first) or None, never waiting."""
        while True:
            if self.state.pending and self._poll_state():
                return None
            if self._ready:
                return self._ready.popleft()
            e = self.consumer.poll_event()
            if e is None or self._keep(e):
                return e

    def prefer_kinds(self, kinds: Any) -> None:
        """See RingReader.prefer_kinds (the state's events are filtered by the caller)."""
        f = getattr(self.consumer, "prefer_kinds", None)
        if f is not None:
            f(kinds)

    def prefer_instruments(self, exchanges: Any, symbols: Any) -> None:
        """See RingReader.prefer_instruments."""
        f = getattr(self.consumer, "prefer_instruments", None)
        if f is not None:
            f(exchanges, symbols)

    def wait_cap(self) -> float | None:
        """While a state is awaited the wait set looks again after this long (the state
        board has no wake-up fd)."""
        return 0.002 if self.state.pending else None

    def wake_fd(self) -> int | None:
        f = getattr(self.consumer, "wake_fd", None)
        return f() if f is not None else None

    def arm_sleep(self) -> None:
        self.consumer.arm_sleep()

    def disarm_sleep(self) -> None:
        self.consumer.disarm_sleep()

    def drain_wakeups(self) -> None:
        self.consumer.drain_wakeups()

    def check_alive(self) -> Any:
        e = self.consumer.check_alive()
        return e if e is None or self._keep(e) else None

    # ------------------------------------------------------------------ pass-through
    def get_batch(self, max_n: int = 1024, timeout: float | None = 0) -> Any:
        """Raw records, without the state (the recorder asks for the state itself)."""
        return self.consumer.get_batch(max_n, timeout)

    def __getattr__(self, name: str) -> Any:  # lag, lost, metadata, instance_id, ...
        return getattr(self.consumer, name)

    def close(self) -> None:
        self.state.close()
        self.consumer.close()

    def __enter__(self) -> JoinedRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
