"""A custom event kind end to end: ``BestQuote``, the best bid and ask of one instrument.

Importing this module registers the kind (id 1000), so every process that imports it can
put, get, filter and record BestQuote events. The engine config
``examples/book_ticker.toml`` uses it twice:

- ``[events] modules = ["examples.book_ticker"]`` registers it in every process of the
  engine before any ring is created or attached (the engine's rings then carry it too);
- ``[[clients]] target = "examples.book_ticker:BookTickers"`` runs :class:`BookTickers`,
  which turns the engine's books into BestQuote events on a ring of its own.

``python -m examples.tail_book_tickers RING`` prints the events of such a ring.

(A venue's own best bid/offer stream arrives as the library's ``BookTicker``, with
``streams = { book_ticker = true }``; this kind is computed by a client from the books,
to show how a kind of your own travels.)
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

import ttxt_mp
from ttxt_mp import BaseClient, Fixed, ShmQueue, codec


class BestQuote(msgspec.Struct, frozen=True, kw_only=True):
    exchange: str
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    local_ts: int = 0


ttxt_mp.register_event(1000, BestQuote, [
    Fixed("exchange", "S16"), Fixed("symbol", "S32"),
    Fixed("bid", "f8"), Fixed("bid_qty", "f8"), Fixed("ask", "f8"), Fixed("ask_qty", "f8"),
    Fixed("local_ts", "i8"),
])  # fmt: skip


class BookTickers(BaseClient):
    """Publishes a :class:`BestQuote` into ring ``ring`` whenever a book's best bid or
    ask changes. The ring lives as long as the client: created when it starts (for this
    one kind), closed (its readers see ``QueueClosed``) and removed when it stops."""

    def __init__(self, ring: str = "book_tickers", **args: Any) -> None:
        super().__init__(ring=ring, **args)
        self.ring = ring
        self.out: Any = None
        self.last: dict[tuple[str, str], tuple] = {}
        self.published = 0

    def run(self, source: Any, **kw: Any) -> None:
        self.out = ShmQueue.create(self.ring, capacity=4096, kinds=[codec.kind_of(BestQuote)])
        try:
            super().run(source, **kw)
        finally:
            self.out.close()
            self.out.unlink()

    def on_orderbook(self, e: ttxt_mp.Orderbook) -> None:
        key = (e.exchange, e.symbol)
        book = self.books[key]
        bb, ba = book.best_bid, book.best_ask
        if bb is None or ba is None or self.last.get(key) == (bb, ba):
            return
        self.last[key] = (bb, ba)
        self.out.put(BestQuote(exchange=e.exchange, symbol=e.symbol, bid=bb[0], bid_qty=bb[1],
                                ask=ba[0], ask_qty=ba[1], local_ts=time.time_ns()))  # fmt: skip
        self.published += 1
