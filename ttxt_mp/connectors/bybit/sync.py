"""Bybit local-book synchronisation as pure logic (no network), for a connector to drive.

Bybit sends the snapshot in-band: subscribing to ``orderbook.{depth}.{symbol}`` yields a
``snapshot`` then ``delta`` messages; a new snapshot (or ``u == 1`` after a service
restart) resets the book. So the state machine is small: feed every Orderbook event to
:meth:`BybitBookSync.on_event`, publish what it returns, and when ``needs_resync`` turns
True (a gap in ``u``), resubscribe the topic (or fetch ``GET /v5/market/orderbook``, whose
``u`` matches the WebSocket 50-level book) to get a fresh snapshot. Until then deltas are
dropped (counted in ``book.not_synced``), so nothing inconsistent is published.
"""

from __future__ import annotations

from ttxt_mp.connectors.bybit.book_rule import RULE
from ttxt_mp.events import Orderbook
from ttxt_mp.orderbook import GAP, OrderBook, UpdateResult

__all__ = ["BybitBookSync"]


class BybitBookSync:
    def __init__(
        self,
        symbol: str,
        exchange: str = "bybit",
        *,
        contiguous: bool = True,
        max_depth: int | None = None,
        book: OrderBook | None = None,
    ) -> None:
        self.book = (
            book
            if book is not None
            else OrderBook(exchange, symbol, max_depth, rules=RULE, contiguous=contiguous)
        )
        self.resyncs = 0
        self.last_gap = ""

    @property
    def needs_resync(self) -> bool:
        """True before the first snapshot and after a gap, until a snapshot arrives."""
        return not self.book.synced

    def on_event(self, ev: Orderbook) -> list[Orderbook]:
        """A snapshot or delta from the stream (or a REST snapshot) -> events to publish."""
        r = self.book.update(ev)
        if r is UpdateResult.APPLIED or r is UpdateResult.SNAPSHOT:
            return [ev]
        if r is GAP:
            self.resyncs += 1
            self.last_gap = self.book.last_gap
        return []
