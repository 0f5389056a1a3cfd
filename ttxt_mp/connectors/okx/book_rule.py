"""OKX order-book sequence rule (``VENUE.book_rule``), called by :class:`~ttxt_mp.orderbook.OrderBook`.

"Order book channel", Sequence ID: every ``books`` message carries ``seqId`` and
``prevSeqId`` (the snapshot's is -1). An update applies when its ``prevSeqId`` is the
``seqId`` last applied; that one test covers the documented cases:

- normal: ``prevSeqId`` = last ``seqId`` < ``seqId``;
- no change (a keep-alive with empty ``bids``/``asks``): ``seqId`` == ``prevSeqId``;
- sequence reset (maintenance): ``seqId`` < ``prevSeqId``; later messages chain from it
  (``seqId`` may then be 0, the smallest id: kept as the book's id).

Anything else is a gap (resync the instrument). Published events carry ``prevSeqId`` as
``prev_update_id`` and ``seqId`` as ``last_update_id``. ``books5`` and ``bbo-tbt`` are
snapshots only (each replaces the book).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ttxt_mp.orderbook import APPLIED, NOT_SYNCED, SNAPSHOT, Gap, SequenceRule

if TYPE_CHECKING:
    from ttxt_mp.events import Orderbook
    from ttxt_mp.orderbook import OrderBook, Verdict

__all__ = ["RULE", "OkxRule"]


class OkxRule(SequenceRule):
    __slots__ = ()
    name = "okx"

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        if not book.synced:
            return NOT_SYNCED
        if ev.prev_update_id != book.update_id:
            return Gap(f"prevSeqId={ev.prev_update_id} after seqId={book.update_id}")
        if ev.last_update_id == 0:  # "The smallest possible sequence ID value is 0": an id
            book.update_id = 0  # the book's generic update (which skips a 0) must keep
        return APPLIED

    def snapshot(self, book: OrderBook, ev: Orderbook) -> Verdict:
        return SNAPSHOT


RULE = OkxRule()
