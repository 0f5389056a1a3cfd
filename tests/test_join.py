"""State on join, in one process: a consumer that attaches late, or is lapped, gets the
producer's state, then the ring without a missing or repeated event, so its books equal
the producer's at every point (hypothesis over join points, serve points and laps)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp import events as ev
from ttxt_mp.connectors.state import StateServer
from ttxt_mp.join import JoinedRing
from ttxt_mp.orderbook import OrderBook
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.shm import ShmQueue
from ttxt_mp.shm.board import StateBoard

SYMS = ("BTC/USDT", "ETH/USDT")


@dataclass
class FakeConnector:
    """What StateServer needs of a connector: books, latest values, the publisher."""

    publisher: object
    books: dict[str, OrderBook] = field(default_factory=dict)
    latest: dict = field(default_factory=dict)
    stopping: bool = False
    uid: int = 0

    def state_events(self) -> list:
        out = [b.to_event() for b in self.books.values() if b.synced]
        return out + list(self.latest.values())

    def state_consistent(self) -> bool:
        return True

    def put(self, e) -> None:
        if isinstance(e, ev.Orderbook):
            self.books.setdefault(e.symbol, OrderBook("binance", e.symbol)).update(e)
        elif isinstance(e, ev.Kline | ev.ConnectorStatus):
            self.latest[(type(e), e.symbol)] = e
        self.publisher.put(e)

    def step(self, i: int, sym: str) -> None:
        """One event: the first per symbol is a snapshot, then contiguous deltas."""
        self.uid += 1
        u = self.uid
        book = self.books.get(sym)
        if book is None or not book.synced:
            e = ev.Orderbook(exchange="binance", symbol=sym, is_snapshot=True,
                             bids=((100.0, 1.0), (99.0, 2.0)), asks=((101.0, 1.0),),
                             first_update_id=u, last_update_id=u)
        elif i % 7 == 3:
            e = ev.MarketTrades(exchange="binance", symbol=sym, trades=(
                ev.Trade(str(u), 100.5, 0.1, ev.Side.BUY, u),))
            self.uid -= 1
        elif i % 11 == 5:
            e = ev.Kline(exchange="binance", symbol=sym, interval="1m", open_ts=u, close=float(u))
            self.uid -= 1
        else:
            price = 90.0 + (i * 37 % 20) * 0.5
            qty = 0.0 if i % 5 == 0 else float(i % 9 + 1)
            side = {"bids": ((price, qty),)} if price < 100.5 else {"asks": ((price + 1, qty),)}
            e = ev.Orderbook(exchange="binance", symbol=sym, first_update_id=book.update_id + 1,
                             last_update_id=book.update_id + 1, **side)
            self.uid = book.update_id + 1
        self.put(e)


@contextlib.contextmanager
def ring(with_board: bool = True) -> Iterator[tuple[object, StateBoard | None]]:
    """A fresh small ring (and its state board), removed whatever the test did."""
    name = f"tj{uuid.uuid4().hex[:10]}"
    pub = ShmQueue.create(name, capacity=64, slot_size=256)
    board = StateBoard.create(name) if with_board else None
    try:
        yield pub, board
    finally:
        if board is not None:
            board.close()
            board.unlink()
        pub.close()
        pub.unlink()


def consumer_books(events: list) -> dict[str, OrderBook]:
    books: dict[str, OrderBook] = {}
    for e in events:
        if isinstance(e, ev.Orderbook):
            books.setdefault(e.symbol, OrderBook("binance", e.symbol)).update(e)
    return books


def same(a: OrderBook, b: OrderBook) -> bool:
    return a.synced and b.synced and a.bids() == b.bids() and a.asks() == b.asks() \
        and a.update_id == b.update_id


def drain(q: JoinedRing) -> list:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except QueueEmpty:
            return out


@settings(max_examples=40, deadline=None)
@given(before=st.integers(0, 300), after=st.integers(0, 300), serve_at=st.integers(0, 300),
       lap_at=st.one_of(st.none(), st.integers(0, 200)))
def test_late_and_lapped_consumers_rebuild_the_producers_books(before, after, serve_at, lap_at):
    with ring() as (pub, board):
        assert board is not None
        conn = FakeConnector(pub)
        server = StateServer(conn, board)
        i = 0
        for _ in range(before):
            conn.step(i, SYMS[i % 2])
            i += 1
        q = JoinedRing(ShmQueue.attach(pub.name), timeout=5.0)
        got: list = []
        for k in range(after):
            if k == serve_at:
                server.serve_if_asked()
            if lap_at is not None and k == lap_at:
                for _ in range(100):  # more than the ring holds: the consumer is lapped
                    conn.step(i, SYMS[i % 2])
                    i += 1
                server.serve_if_asked()  # nothing pending yet: the lap is not seen yet
                got += drain(q) if not q.state.pending else []
                server.serve_if_asked()  # the GapNotice asked again
            conn.step(i, SYMS[i % 2])
            i += 1
            if not q.state.pending:  # once the state is in, read as we go
                got += drain(q)
        server.serve_if_asked()
        got += drain(q)
        server.serve_if_asked()
        got += drain(q)
        mine = consumer_books(got)
        for sym, book in conn.books.items():
            assert sym in mine and same(mine[sym], book), (sym, mine.get(sym), book)
            assert mine[sym].stale == 0  # nothing the state held came again
        if lap_at is not None and lap_at < after:
            assert any(isinstance(e, ev.GapNotice) for e in got)
            assert q.joins >= 2
        # latest values came with the state: the last kline seen is the producer's
        klines = [e for e in got if isinstance(e, ev.Kline)]
        for (kind, sym), e in conn.latest.items():
            if kind is ev.Kline:
                assert [k for k in klines if k.symbol == sym][-1] == e
        q.close()


def test_a_ring_without_board_is_read_as_is():
    with ring(with_board=False) as (pub, _):
        q = JoinedRing(ShmQueue.attach(pub.name))
        assert q.board is None
        e = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP)
        pub.put(e)
        assert q.get(timeout=1.0) == e
        q.close()


def test_a_producer_that_never_serves_is_given_up_after_the_timeout():
    with ring() as (pub, _):
        q = JoinedRing(ShmQueue.attach(pub.name), timeout=0.2)
        e = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP)
        pub.put(e)
        assert q.get(timeout=3.0) == e  # waited out the state, then read the ring
        assert q.joins == 0
        q.close()


def test_reading_from_the_oldest_keeps_the_history_and_asks_only_after_a_lap():
    with ring() as (pub, board):
        assert board is not None
        first = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.STARTING)
        pub.put(first)
        q = JoinedRing(ShmQueue.attach(pub.name, start="oldest"), join=False)
        assert not board.pending  # no state asked for: the history is what was wanted
        assert q.get(timeout=1.0) == first
        for i in range(100):  # lapped: 64 slots
            pub.put(ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP, reconnects=i))
        assert isinstance(q.get(timeout=1.0), ev.GapNotice)
        assert board.pending  # after the lap it asks for a fresh state
        q.close()
