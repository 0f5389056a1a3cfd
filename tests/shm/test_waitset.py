"""Several rings served from the calling thread (ttxt_mp.waitset, the merged attach() feed)
and the adaptive spin of a ring consumer (issue 11). Runs on whichever ring the
environment selects (CI: both)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttxt_mp import events as ev
from ttxt_mp.client import Feed
from ttxt_mp.queues import AsyncioQueue, QueueClosed, QueueEmpty
from ttxt_mp.shm import ShmQueue
from ttxt_mp.shm import layout as L
from ttxt_mp.shm.ring import adapt_spin
from ttxt_mp.waitset import WaitSet, ring_like


def trade(x: str, i: int) -> ev.MarketTrades:
    return ev.MarketTrades(exchange=x, symbol="A/B", exch_ts=i,
                           trades=(ev.Trade(str(i), 1.0, 2.0, ev.Side.BUY, i),))  # fmt: skip


def asleep(p, deadline: float = 10.0) -> None:
    """Wait (polling, bounded) until every consumer of producer ``p`` flagged itself asleep."""
    end = time.monotonic() + deadline
    while not all(p._mv[L.OFF["sleep_flags"] + c["index"]] for c in p.consumers()):
        assert time.monotonic() < end, "the consumer never went to sleep"
        time.sleep(0.001)


@pytest.fixture
def two(names):
    ps = [ShmQueue.create(names(), capacity=256) for _ in range(2)]
    cs = [ShmQueue.attach(p.name) for p in ps]
    yield ps, cs
    for q in cs + ps:
        q.close()


def test_rings_are_served_from_the_calling_thread_in_order_once(two):
    ps, cs = two
    threads = threading.active_count()
    ws = WaitSet(cs)
    assert all(ring_like(c) for c in cs) and ws._threaded is None
    for i in range(100):
        ps[i % 2].put(trade("ab"[i % 2], i))
    got = [ws.get(timeout=5) for _ in range(100)]
    assert threading.active_count() == threads  # no helper thread for rings
    assert sorted(e.exch_ts for e in got) == list(range(100))
    for x in "ab":  # per-ring order
        mine = [e.exch_ts for e in got if e.exchange == x]
        assert mine == sorted(mine)
    assert ws.poll() is None
    with pytest.raises(QueueEmpty):
        ws.get(timeout=0.01)


def test_a_put_wakes_a_sleeping_wait_set_through_the_fifo(two):
    """The wake-up timeout is 30 s: only the FIFO can end the wait within the 10 s."""
    ps, cs = two
    ws = WaitSet(cs, spin_us=0.0, wake_timeout=30.0)
    for k in range(4):  # each ring in turn, several sleeps

        def later(k=k):
            asleep(ps[k % 2])
            ps[k % 2].put(trade("x", k))

        t = threading.Thread(target=later)
        t.start()
        try:
            assert ws.get(timeout=10).exch_ts == k
        finally:
            t.join(timeout=20)
    assert not any(p._mv[L.OFF["sleep_flags"]] for p in ps)  # flags cleared after a wait


def test_rings_and_a_source_without_fd_merge(two):
    ps, cs = two
    other = AsyncioQueue()
    assert not ring_like(other)
    for i in range(30):
        other.put(ev.GapNotice(exchange="q", lost=i))
        ps[0].put(trade("a", i))
    other.close()
    with Feed([cs[0], other, cs[1]]) as feed:
        got = [feed.get(timeout=5) for _ in range(60)]
        ps[1].put(trade("b", 99))
        assert feed.get(timeout=5).exch_ts == 99
    assert [e.lost for e in got if e.exchange == "q"] == list(range(30))
    assert [e.exch_ts for e in got if e.exchange == "a"] == list(range(30))


def test_closed_rings_drain_then_end_the_wait_set(two):
    ps, cs = two
    ps[0].put(trade("a", 1))
    ps[1].put(trade("b", 2))
    for p in ps:
        p.close()
    ws = WaitSet(cs)
    assert sorted(ws.get(timeout=5).exch_ts for _ in range(2)) == [1, 2]
    with pytest.raises(QueueClosed, match="every ring of the feed is closed"):
        ws.get(timeout=5)


def test_a_wrapper_forwarding_attributes_is_not_taken_for_its_ring(two):
    class Wrapper:  # forwards everything, serves nothing itself: its get must be used
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

    assert not ring_like(Wrapper(two[1][0]))


@given(st.lists(st.booleans(), max_size=40), st.floats(1e-6, 1e-3))
def test_adapt_spin_stays_in_bounds_and_reaches_both_ends(hits, top):
    b = top
    for h in hits:
        b = adapt_spin(b, top, h)
        assert 0.0 <= b <= top
    for _ in range(7):  # top/2 ... top/64, then 0
        b = adapt_spin(b, top, False)
    assert b == 0.0  # a trickle of events ends up sleeping at once
    assert adapt_spin(0.0, top, True) == top / 16
    for _ in range(5):
        b = adapt_spin(b, top, True)
    assert b == top


def test_a_consumer_that_keeps_sleeping_stops_spinning(names):
    with ShmQueue.create(names()) as p, ShmQueue.attach(p.name, spin_us=50) as c:
        assert c._spin_now == 50e-6
        for _ in range(7):
            with pytest.raises(QueueEmpty):
                c.get(timeout=0.001)
        assert c._spin_now == 0.0
        p.put(trade("a", 1))
        assert c.get(timeout=5).exch_ts == 1  # found at once: no wait, budget unchanged
        assert c._spin_now == 0.0


def test_a_kind_filter_passes_other_kinds_over_before_decoding(two):
    """Feed(kinds=...): a compiled ring skips other kinds from the slot header (counted,
    never decoded); a pure one decodes them and the feed's filter drops them. Either way
    the same events come out, notices included."""
    from ttxt_mp.client import EventFilter

    ps, cs = two
    kline = ev.Kline(exchange="a", symbol="A/B", interval="1m")
    status = ev.ConnectorStatus(exchange="a", state=ev.ConnectorState.UP)
    for i in range(20):
        ps[0].put(kline)
        ps[0].put(trade("a", i))
        ps[1].put(kline)
    ps[1].put(status)
    with Feed(cs, EventFilter(kinds=["MarketTrades"])) as feed:
        got = [feed.get(timeout=5) for _ in range(21)]
        with pytest.raises(QueueEmpty):
            feed.get(timeout=0.01)
    assert [e.exch_ts for e in got if type(e) is ev.MarketTrades] == list(range(20))
    assert [e for e in got if type(e) is not ev.MarketTrades] == [status]
    for c in cs:
        core = vars(c).get("_core")
        assert core is None or core.skipped == 20  # the klines, never decoded


def test_an_instrument_filter_passes_other_instruments_over_before_decoding(two):
    """Feed(exchanges=, symbols=): a compiled ring compares the events' exchange and
    symbol bytes in the slot and skips the others undecoded; the result is the filter's."""
    from ttxt_mp.client import EventFilter

    ps, cs = two
    book = ev.Orderbook(exchange="b", symbol="C/D", is_snapshot=True,
                        bids=tuple((float(i), 1.0) for i in range(30)))  # fragments  # fmt: skip
    status = ev.ConnectorStatus(exchange="b", symbol="C/D", state=ev.ConnectorState.UP)
    for i in range(10):
        ps[0].put(trade("a", i))  # wrong exchange
        ps[0].put(trade("b", i))  # wanted
        ps[1].put(book)  # wrong symbol
        ps[1].put(ev.MarketTrades(exchange="b", symbol="E/F", exch_ts=100 + i))  # wanted
    ps[1].put(status)  # a notice: never skipped (the filter drops it: its symbol is unwanted)
    ps[1].put(ev.GapNotice(exchange="z", lost=1))  # always passes
    with Feed(cs, EventFilter(exchanges=["b"], symbols=["A/B", "E/F"])) as feed:
        got = [feed.get(timeout=5) for _ in range(21)]
        with pytest.raises(QueueEmpty):
            feed.get(timeout=0.01)
    assert sorted(e.exch_ts for e in got if type(e) is ev.MarketTrades) == [
        *range(10), *range(100, 110)]  # fmt: skip
    assert [type(e) for e in got if type(e) is not ev.MarketTrades] == [ev.GapNotice]
    skipped = [vars(c)["_core"].skipped for c in cs if "_core" in vars(c)]
    # the pure ring decodes all; the C one skips all but the first of each ring (the
    # first event of a kind is looked up, hence decoded, on the Python path)
    assert skipped in ([], [9, 9])
