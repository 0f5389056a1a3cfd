"""OKX local-book synchronisation as pure logic (no network), for a connector to drive.

``books`` sends its snapshot in-band after subscribing, then updates chained by
``prevSeqId`` -> ``seqId`` (:mod:`ttxt_mp.connectors.okx.book_rule`). Feed every Orderbook
event with its :class:`~ttxt_mp.connectors.okx.normalizer.BookText` to
:meth:`OkxBookSync.on_event` and publish what it returns; when ``needs_resync`` turns True
(a broken chain or a checksum mismatch) resubscribe that instrument's ``books`` for a new
snapshot. Until then updates are dropped (``book.not_synced``).

Checksums (:mod:`ttxt_mp.connectors.okx.checksum`) are verified after each applied message
whose ``checksum`` is non-zero, when ``verify`` is on. A message without one (OKX sends only
zeros from June 2026; the normalizer then keeps no text) stops the text bookkeeping until a
snapshot carries a checksum again.
"""

from __future__ import annotations

from ttxt_mp.connectors.okx.book_rule import RULE
from ttxt_mp.connectors.okx.checksum import TextSides
from ttxt_mp.connectors.okx.normalizer import BookText
from ttxt_mp.events import Orderbook
from ttxt_mp.orderbook import GAP, OrderBook, UpdateResult

__all__ = ["OkxBookSync"]

_OK = (UpdateResult.APPLIED, UpdateResult.SNAPSHOT)


class OkxBookSync:
    def __init__(self, symbol: str, exchange: str = "okx", *, verify: bool = True,
                 book: OrderBook | None = None) -> None:  # fmt: skip
        self.book = book if book is not None else OrderBook(exchange, symbol, rules=RULE)
        self.verify = verify
        self.text: TextSides | None = None  # None: no checksums to verify
        self.resyncs = 0
        self.checksum_errors = 0
        self.checked = 0
        self.last_gap = ""

    @property
    def needs_resync(self) -> bool:
        """True before the first snapshot and after a gap, until a snapshot arrives."""
        return not self.book.synced

    def on_event(self, ev: Orderbook, text: BookText | None = None) -> list[Orderbook]:
        """A snapshot or update from the stream (its text when the normalizer kept it)
        -> events to publish ([] for a keep-alive that changes nothing)."""
        book = self.book
        r = book.update(ev)
        if r not in _OK:
            if r is GAP:
                self.resyncs += 1
                self.last_gap = book.last_gap
            return []
        if self.verify:
            if text is None:  # no checksum (0, or a snapshot-only channel): none to keep
                self.text = None
            elif not self._verified(ev, text):
                return []
        if not ev.is_snapshot and not ev.bids and not ev.asks \
                and ev.last_update_id == ev.prev_update_id:  # fmt: skip
            return []  # "no update": seqId == prevSeqId, nothing to tell a consumer
        return [ev]

    def _verified(self, ev: Orderbook, text: BookText) -> bool:
        """Keep the level text and check a non-zero checksum; False after a mismatch (the
        book is then out of sync, counted as a gap)."""
        if ev.is_snapshot:
            self.text = TextSides() if text.checksum else None
            if self.text is not None:
                self.text.replace(ev.bids, ev.asks, text.bids, text.asks)
        elif self.text is not None:
            self.text.apply(ev.bids, ev.asks, text.bids, text.asks)
        if not text.checksum or self.text is None:
            return True
        self.checked += 1
        book = self.book
        mine = self.text.checksum()
        if mine == text.checksum:
            return True
        self.checksum_errors += 1
        self.resyncs += 1
        self.last_gap = (f"checksum mismatch at seqId={ev.last_update_id}: OKX sent "
                         f"{text.checksum}, the book gives {mine}")  # fmt: skip
        book.gaps += 1
        book.last_gap = self.last_gap
        book.synced = False
        book.clear()
        self.text = None
        return False
