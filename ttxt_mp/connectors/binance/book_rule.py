"""Binance order-book sequence rule (``VENUE.book_rule``), called by :class:`~ttxt_mp.orderbook.OrderBook`.

Spot (docs "How to manage a local order book correctly", revised Dec 2024): a delta with
``u <= book id`` is stale; ``U > book id + 1`` is a gap (the docs' text says
``U > book id``, which would flag every contiguous event since ``U == previous u + 1``; the
intent, and the earlier text, is ``U > id + 1``). An event overlapping the book id
(``U <= id < u``) is applied, as the procedure says. The book id becomes ``u``.

USDⓈ-M futures events (``pu`` present, ``prev_update_id != -1``): the first event after a
snapshot is stale if ``u < lastUpdateId`` and must have ``U <= lastUpdateId`` (the docs),
or ``U == lastUpdateId + 1``: no update id lies between the two, so nothing was missed
(a quiet book's snapshot is its last event's ``u`` and the next event starts one after
it; the docs' rule alone would call that a gap and refetch); every later event must have
``pu == previous u``.

Deltas before a snapshot (or after a gap) are ``NOT_SYNCED``; snapshots always replace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ttxt_mp.orderbook import APPLIED, NOT_SYNCED, STALE, Gap, SequenceRule

if TYPE_CHECKING:
    from ttxt_mp.events import Orderbook
    from ttxt_mp.orderbook import OrderBook, Verdict

__all__ = ["RULE", "BinanceRule"]


class BinanceRule(SequenceRule):
    __slots__ = ()
    name = "binance"

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        if not book.synced:
            return NOT_SYNCED
        book_id = book.update_id
        u = ev.last_update_id
        pu = ev.prev_update_id
        if pu == -1:  # spot: U/u
            if u <= book_id:
                return STALE
            if ev.first_update_id > book_id + 1:
                return Gap(f"first update id {ev.first_update_id} > book id {book_id} + 1 "
                           f"(missed {book_id + 1}...{ev.first_update_id - 1})")  # fmt: skip
        elif book.fresh:  # futures, first event after the snapshot
            if u < book_id:
                return STALE
            if ev.first_update_id > book_id + 1:
                return Gap(f"first event after snapshot {book_id} starts at "
                           f"U={ev.first_update_id} > lastUpdateId + 1")  # fmt: skip
        else:  # futures: the pu chain
            if u <= book_id:
                return STALE
            if pu != book_id:
                return Gap(f"pu={pu} != previous u={book_id}")
        return APPLIED


RULE = BinanceRule()
