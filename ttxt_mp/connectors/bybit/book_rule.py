"""Bybit order-book sequence rule (``VENUE.book_rule``), called by :class:`~ttxt_mp.orderbook.OrderBook`.

v5 docs, WebSocket orderbook: a ``snapshot`` resets the book; ``u == 1`` is a snapshot
after a service restart whatever its type; level-1 re-sends a snapshot with the same ``u``
(applied: it replaces with the same data); ``u`` never goes backwards (an older delta or
snapshot is stale). Bybit calls ``u`` a sequence ("generally continuous"); with the book's
``contiguous=True`` (default) a delta whose ``u`` is not previous+1 is a gap, with
``contiguous=False`` only monotonicity is checked. Deltas before a snapshot (or after a
gap) are ``NOT_SYNCED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ttxt_mp.orderbook import APPLIED, NOT_SYNCED, SNAPSHOT, STALE, Gap, SequenceRule

if TYPE_CHECKING:
    from ttxt_mp.events import Orderbook
    from ttxt_mp.orderbook import OrderBook, Verdict

__all__ = ["RULE", "BybitRule"]


class BybitRule(SequenceRule):
    __slots__ = ()
    name = "bybit"

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        u = ev.last_update_id
        if u == 1:  # service restart: a snapshot whatever the type says
            return SNAPSHOT
        if not book.synced:
            return NOT_SYNCED
        book_id = book.update_id
        if u <= book_id:
            return STALE
        if book.contiguous and u != book_id + 1:
            return Gap(f"u={u} after u={book_id} (missed {book_id + 1}...{u - 1})")
        return APPLIED

    def snapshot(self, book: OrderBook, ev: Orderbook) -> Verdict:
        u = ev.last_update_id
        if book.synced and u != 1 and u < book.update_id:
            return STALE  # "u must not go backwards"
        return SNAPSHOT


RULE = BybitRule()
