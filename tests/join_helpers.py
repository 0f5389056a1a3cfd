"""State-on-join test helpers: a fake connector (books, latest values, a StateServer's
needs) publishing a deterministic stream to a small ring with a state board."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from ttxt_mp import events as ev
from ttxt_mp.connectors.state import StateServer
from ttxt_mp.orderbook import OrderBook
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
        elif isinstance(e, ev.Kline | ev.ConnectorStatus | ev.BookTicker):
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
        elif i % 13 == 7:
            e = ev.BookTicker(exchange="binance", symbol=sym, bid=float(u), bid_qty=1.0,
                              ask=u + 1.0, ask_qty=2.0, update_id=u)
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


@contextlib.contextmanager
def producing(before: int) -> Iterator[tuple[object, FakeConnector, StateServer]]:
    """A ring with its board and a fake connector serving it, ``before`` events published."""
    with ring() as (pub, board):
        assert board is not None
        conn = FakeConnector(pub)
        for i in range(before):
            conn.step(i, SYMS[i % 2])
        yield pub, conn, StateServer(conn, board)
