"""``BookSnapshots`` (the remote recorder's own book snapshots): every snapshot it writes
is exactly the book that the records before it build, at any point of any stream; books
are written every interval and when a file opens; after a gap a book is written again
only once its source snapshotted it; a delta before any snapshot never makes a book."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp import codec
from ttxt_mp.events import GapNotice, MarketTrades, Orderbook, Side, Trade
from ttxt_mp.orderbook import OrderBook
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.storage.book_snapshots import BookSnapshots

SYMS = ("A/USDT", "B/USDT")
prices = st.integers(90, 110).map(float)
qtys = st.sampled_from([0.0, 0.5, 1.0, 2.0])
levels = st.lists(st.tuples(prices, qtys), max_size=4).map(tuple)


@st.composite
def event(draw):
    sym = draw(st.sampled_from(SYMS))
    what = draw(st.sampled_from(["delta", "delta", "delta", "snapshot", "trade", "gap"]))
    if what == "gap":
        return GapNotice(exchange="x", lost=draw(st.integers(1, 9)))
    if what == "trade":
        return MarketTrades(exchange="x", symbol=sym, trades=(Trade("1", 100.0, 1.0, Side.BUY, 0),))
    return Orderbook(exchange="x", symbol=sym, is_snapshot=what == "snapshot",
                     bids=draw(levels), asks=draw(levels))  # fmt: skip


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def source(events, handed=None):
    """A getter over ``events``; ``handed`` gets each record it returns."""
    q = deque(codec.encode(e) for e in events)

    def get(timeout):
        if not q:
            raise QueueEmpty
        rec = q.popleft()
        if handed is not None:
            handed.append(rec)
        return rec

    return get


def replayed_books(records):
    """What a consumer builds from the records (snapshot replaces, delta applies on a
    book that had a snapshot; a gap unsyncs everything)."""
    books: dict[str, OrderBook] = {}
    for e in records:
        if isinstance(e, GapNotice):
            for b in books.values():
                b.synced = False
                b.clear()
        elif isinstance(e, Orderbook):
            b = books.setdefault(e.symbol, OrderBook("x", e.symbol, rules="none"))
            if e.is_snapshot or b.synced:
                b.update(e)
    return books


@settings(max_examples=150, deadline=None)
@given(evs=st.lists(event(), max_size=60), ticks=st.lists(st.sampled_from([0.0, 0.4, 1.1]),
                                                          min_size=1, max_size=5),
       asks=st.sets(st.integers(0, 80), max_size=4))  # fmt: skip
def test_every_written_snapshot_is_the_book_the_records_before_it_build(evs, ticks, asks):
    clock = Clock()
    handed: list = []
    g = BookSnapshots(source(evs, handed), 1.0, clock)
    seen: list = []
    written = 0
    for i in range(10 * len(evs) + 10):
        if len(handed) == len(evs):
            break  # the source is drained
        clock.t += ticks[i % len(ticks)]
        if i in asks:
            g.ask()
        before = len(handed)
        rec = g(0)
        e = codec.decode(*rec)
        if len(handed) > before:  # the source's own record, unchanged
            assert rec == handed[-1]
        else:  # a snapshot written here: the book every record so far builds
            assert isinstance(e, Orderbook) and e.is_snapshot
            book = replayed_books(seen)[e.symbol]
            assert book.synced
            assert (list(e.bids), list(e.asks)) == (book.bids(), book.asks())
            written += 1
        seen.append(e)
    assert len(handed) == len(evs), "every source record goes through"
    assert written == g.snapshots


def test_books_are_written_every_interval_and_when_asked():
    clock = Clock()
    snap = Orderbook(exchange="x", symbol="A/USDT", is_snapshot=True, bids=((99.0, 1.0),),
                     asks=((101.0, 2.0),))  # fmt: skip
    delta = Orderbook(exchange="x", symbol="A/USDT", bids=((99.5, 3.0),))
    g = BookSnapshots(source([snap, delta, delta, delta]), 10.0, clock)
    assert codec.decode(*g(0)) == snap
    assert codec.decode(*g(0)) == delta
    clock.t = 10.5  # due: the book as it is now, before the next record
    got = codec.decode(*g(0))
    assert got.is_snapshot and got.bids == ((99.5, 3.0), (99.0, 1.0)) and got.asks == ((101.0, 2.0),)
    assert codec.decode(*g(0)) == delta
    g.ask()  # a new file opens
    assert codec.decode(*g(0)).is_snapshot
    assert codec.decode(*g(0)) == delta
    assert g.snapshots == 2


def test_after_a_gap_and_before_any_snapshot_nothing_is_written():
    clock = Clock()
    delta = Orderbook(exchange="x", symbol="A/USDT", bids=((99.5, 3.0),))
    snap = Orderbook(exchange="x", symbol="A/USDT", is_snapshot=True, bids=((99.0, 1.0),))
    g = BookSnapshots(source([delta, snap, GapNotice(exchange="x", lost=3), delta]), 1.0, clock)
    assert codec.decode(*g(0)) == delta
    g.ask()
    assert codec.decode(*g(0)) == snap  # the delta before any snapshot built nothing
    assert isinstance(codec.decode(*g(0)), GapNotice)
    g.ask()
    assert codec.decode(*g(0)) == delta  # after the gap the book waits for a snapshot
    assert g.snapshots == 0
