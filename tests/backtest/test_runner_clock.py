"""The client clock live: ``now`` is wall time, ``call_later``/``every`` fire from
``run``/``arun`` between events (and while no event comes), cancel works, and a
TradingMixin client reads its private events without being asked (a poller)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ttxt_mp import AsyncioQueue
from ttxt_mp import events as ev
from ttxt_mp.client import BaseClient
from ttxt_mp.clock import Clock, Timer, WallClock


class Ticking(BaseClient):
    def __init__(self, interval: float, stop_after: int) -> None:
        super().__init__()
        self.ticks: list[int] = []
        self.once: list[int] = []
        self.stop_after = stop_after
        self.timer = self.every(interval, self.tick)

    def tick(self) -> None:
        self.ticks.append(self.now)
        if len(self.ticks) >= self.stop_after:
            self.stop()


def test_now_is_wall_time() -> None:
    c = BaseClient()
    before = time.time_ns()
    assert before <= c.now <= time.time_ns()


def test_every_and_call_later_fire_while_idle() -> None:
    t0 = time.time_ns()
    c = Ticking(0.02, 3)
    c.call_later(0.01, lambda: c.once.append(c.now))
    dropped = c.call_later(0.01, lambda: c.once.append(-1))
    dropped.cancel()
    c.run(AsyncioQueue(), duration=20.0)  # stops itself after 3 ticks; 20 s is the bound
    assert len(c.ticks) == 3 and len(c.once) == 1 and c.once[0] >= t0 + 10_000_000
    # never early: tick k at or after its slot (the slots do not drift with a late tick)
    assert all(t >= t0 + (k + 1) * 20_000_000 for k, t in enumerate(c.ticks)), c.ticks
    assert c.ticks == sorted(c.ticks) and time.time_ns() - t0 < 15e9


def test_timers_fire_between_events() -> None:
    class Mixed(Ticking):
        def __init__(self) -> None:
            super().__init__(0.01, 2)
            self.books = {}
            self.keep_books = False
            self.seen = 0

        def on_orderbook(self, e: ev.Orderbook) -> None:
            self.seen += 1

    q = AsyncioQueue()
    for _ in range(5):
        q.put(ev.Orderbook(exchange="x", symbol="A/B"))
    c = Mixed()
    c.run(q, duration=20.0)
    assert c.seen == 5 and len(c.ticks) == 2


async def test_arun_fires_timers_and_stops_from_one() -> None:
    c = Ticking(0.01, 2)  # stop() from a timer ends arun though no event ever comes
    await asyncio.wait_for(c.arun(AsyncioQueue()), 20.0)
    assert len(c.ticks) == 2


async def test_arun_wakes_for_a_timer_scheduled_while_it_sleeps() -> None:
    c = BaseClient()
    fired: list[int] = []

    def last() -> None:
        fired.append(c.now)
        c.stop()

    t0 = time.time_ns()
    c.call_later(0.02, lambda: c.call_later(0.01, last))  # nothing else is scheduled
    await asyncio.wait_for(c.arun(AsyncioQueue()), 20.0)
    assert len(fired) == 1 and fired[0] - t0 >= 29_000_000


def test_pollers_run_while_idle() -> None:
    c = BaseClient()
    calls: list[int] = []

    def poll() -> None:
        calls.append(1)
        if len(calls) >= 5:
            c.stop()

    c.add_poller(poll)
    c.run(AsyncioQueue(), duration=20.0)
    assert len(calls) == 5


def test_install_clock_keeps_remaining_delays() -> None:
    class Fixed(Clock):
        def __init__(self) -> None:
            self.t = 1_000
            self.timers: list[Timer] = []

        def now(self) -> int:
            return self.t

        def schedule(self, timer: Timer) -> None:
            self.timers.append(timer)

    c = BaseClient()
    c.call_later(5.0, lambda: None)
    rep = c.every(2.0, lambda: None)
    gone = c.call_later(1.0, lambda: None)
    gone.cancel()
    new = Fixed()
    c.install_clock(new)
    assert c.now == 1_000 and c.clock is new
    moved = sorted(new.timers, key=lambda t: t.due)
    assert [t.interval for t in moved] == [rep.interval, 0]
    assert 1_000 + 1.9e9 < moved[0].due <= 1_000 + 2e9
    assert 1_000 + 4.9e9 < moved[1].due <= 1_000 + 5e9
    assert rep.cancelled  # the wall clock's copy never fires


def test_bad_delays() -> None:
    c = BaseClient()
    with pytest.raises(ValueError, match="interval must be > 0 seconds"):
        c.every(0, lambda: None)
    with pytest.raises(ValueError, match="delay must be >= 0 seconds"):
        c.call_later(-1, lambda: None)
    with pytest.raises(ValueError, match="delay must be >= 0"):
        c.call_later(float("nan"), lambda: None)


def test_wall_clock_skips_missed_ticks() -> None:
    class Frozen(WallClock):
        t = 0

        def now(self) -> int:
            return self.t

    w = Frozen()
    n: list[int] = []
    t = w.every(0.001, lambda: n.append(1))
    w.t = 1_000_000_000  # a handler blocked the loop for a second
    assert w.run_due() == 1 and n == [1]  # one call, not a thousand
    assert t.due == w.t + 1_000_000


def test_live_trading_client_polls_and_is_not_fed_twice() -> None:
    """enable_trading (live) registers the trading client's poll as a poller, and private
    events coming through the client's feed too (``attach`` reads the private rings) are
    skipped: the trading client delivers them, once, with its bookkeeping."""
    from ttxt_mp.trading_client import TradingClient, TradingMixin

    class T(TradingMixin, BaseClient):
        def __init__(self) -> None:
            super().__init__()
            self.updates: list[ev.OrderUpdate] = []
            self.books_seen = 0

        def on_order_update(self, e: ev.OrderUpdate) -> None:
            self.updates.append(e)

        def on_orderbook(self, e: ev.Orderbook) -> None:
            self.books_seen += 1

    c = T()
    tc = c.enable_trading("bt15noengine", "t", link_now=False)
    try:
        assert isinstance(tc, TradingClient) and c._pollers == [tc.poll]
        u = ev.OrderUpdate(exchange="x", symbol="A/B", client_order_id="t-1", side=ev.Side.BUY,
                           status=ev.OrderStatus.NEW)  # fmt: skip
        c.keep_books = False
        c.dispatch(u)
        c.dispatch(ev.Orderbook(exchange="x", symbol="A/B"))
        assert c.updates == [] and c.books_seen == 1
        assert tc.handle(u) and c.updates == [u] and tc.open_orders["t-1"] == u
    finally:
        tc.close()
