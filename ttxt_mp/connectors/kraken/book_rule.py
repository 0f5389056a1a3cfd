"""Kraken order-book rule (``VENUE.book_rule``), called by :class:`~ttxt_mp.orderbook.OrderBook`.

Kraken's v2 ``book`` channel carries no update ids: a ``snapshot`` replaces the book and
every ``update`` applies on top of it, in order. Integrity is the CRC32 checksum of each
message (checked after applying it, by :class:`~ttxt_mp.connectors.kraken.sync.KrakenBookSync`),
not a sequence: so snapshots always replace and updates apply once a snapshot came; updates
before any snapshot (or after a checksum mismatch cleared the book) are ``NOT_SYNCED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ttxt_mp.orderbook import APPLIED, NOT_SYNCED, SNAPSHOT, SequenceRule

if TYPE_CHECKING:
    from ttxt_mp.events import Orderbook
    from ttxt_mp.orderbook import OrderBook, Verdict

__all__ = ["RULE", "KrakenRule"]


class KrakenRule(SequenceRule):
    __slots__ = ()
    name = "kraken"

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        return APPLIED if book.synced else NOT_SYNCED

    def snapshot(self, book: OrderBook, ev: Orderbook) -> Verdict:
        return SNAPSHOT


RULE = KrakenRule()
