"""Coinbase order-book sequence rule (``VENUE.book_rule``), called by :class:`~ttxt_mp.orderbook.OrderBook`.

Advanced Trade's ``level2`` channel has no per-product update id: every message on a
connection carries the connection's next ``sequence_num`` (all channels share it), so a
lost message is detected per connection, by the connector (:mod:`.sequence`), never per
book. A book event's update id is the ``sequence_num`` of the message that carried it:
increasing along the connection, with holes where other products' or channels' messages
went. The rule therefore only keeps order: a snapshot replaces the book; an update before
a snapshot is ``NOT_SYNCED``; one not newer than the book's is ``STALE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ttxt_mp.orderbook import APPLIED, NOT_SYNCED, SNAPSHOT, STALE, SequenceRule

if TYPE_CHECKING:
    from ttxt_mp.events import Orderbook
    from ttxt_mp.orderbook import OrderBook, Verdict

__all__ = ["RULE", "CoinbaseRule"]


class CoinbaseRule(SequenceRule):
    __slots__ = ()
    name = "coinbase"

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        if not book.synced:
            return NOT_SYNCED
        if ev.last_update_id <= book.update_id:
            return STALE
        return APPLIED

    def snapshot(self, book: OrderBook, ev: Orderbook) -> Verdict:
        return SNAPSHOT  # sequence_num restarts on every connection: always a new book


RULE = CoinbaseRule()
