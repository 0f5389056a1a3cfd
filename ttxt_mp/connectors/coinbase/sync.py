"""The local book of one Coinbase product, as pure logic for the connector to drive.

``level2`` sends the whole book as a ``snapshot`` event after subscribing, then ``update``
events; nothing per product says an update was lost: that is the connection's
``sequence_num`` (:mod:`.sequence`), and on a loss the connector calls :meth:`lost` on
every book of the connection and subscribes ``level2`` again, which makes Coinbase send
fresh snapshots. Until one arrives, updates are dropped (counted in ``book.not_synced``).
"""

from __future__ import annotations

from ttxt_mp.connectors.coinbase.book_rule import RULE
from ttxt_mp.events import Orderbook
from ttxt_mp.orderbook import OrderBook, UpdateResult

__all__ = ["CoinbaseBookSync"]

_PUBLISH = (UpdateResult.APPLIED, UpdateResult.SNAPSHOT)


class CoinbaseBookSync:
    def __init__(self, symbol: str, exchange: str = "coinbase") -> None:
        self.book = OrderBook(exchange, symbol, rules=RULE)
        self.resyncs = 0

    @property
    def needs_resync(self) -> bool:
        """True before the first snapshot and after :meth:`lost`, until a snapshot arrives."""
        return not self.book.synced

    def lost(self) -> None:
        """Messages of the connection were lost: the book is no longer trusted."""
        self.book.synced = False
        self.book.clear()
        self.resyncs += 1

    def on_event(self, ev: Orderbook) -> list[Orderbook]:
        """A snapshot or update from the stream -> the events to publish."""
        return [ev] if self.book.update(ev) in _PUBLISH else []
