"""Kraken local-book synchronisation as pure logic (no network), for a connector to drive.

"Book checksum (WebSocket v2)": apply every level of a message (``qty`` 0 removes one), then
truncate each side to the subscribed depth ("you won't receive qty 0 for price levels that
fall out of scope"), then compare the CRC32 of the top 10 levels with the message's
``checksum``. Kraken sends no update ids, so the checksum is the only integrity rule: a
mismatch clears the book (``needs_resync``) and the connector resubscribes that symbol for
a fresh snapshot; updates until then are dropped (``NOT_SYNCED``).

What is published is exact for a consumer that keeps the whole book (no depth): the levels
truncated away are appended to the published update as ``qty`` 0, so its book never keeps a
level Kraken has silently dropped.
"""

from __future__ import annotations

import msgspec

from ttxt_mp.connectors.kraken.book_rule import RULE
from ttxt_mp.connectors.kraken.checksum import TOP, BookChecksum
from ttxt_mp.events import Level, Orderbook
from ttxt_mp.orderbook import APPLIED, SNAPSHOT, OrderBook

__all__ = ["KrakenBookSync"]


class KrakenBookSync:
    """One symbol's book at ``depth`` levels; ``check`` verifies checksums (None: off)."""

    def __init__(self, symbol: str, depth: int, check: BookChecksum | None,
                 exchange: str = "kraken") -> None:  # fmt: skip
        self.book = OrderBook(exchange, symbol, rules=RULE)
        self.depth = depth
        self.check = check
        self.resyncs = 0
        self.mismatches = 0
        self.last_gap = ""

    @property
    def needs_resync(self) -> bool:
        """True before the first snapshot and after a mismatch, until a snapshot arrives."""
        return not self.book.synced

    def on_event(self, ev: Orderbook, checksum: int | None) -> list[Orderbook]:
        """A snapshot or update with its ``checksum`` -> the events to publish."""
        book = self.book
        r = book.update(ev)
        if r is not APPLIED and r is not SNAPSHOT:
            return []
        gone_b, gone_a = self._truncate()
        if self.check is not None and checksum is not None:
            mine = self.check.of(book.asks(TOP), book.bids(TOP))
            if mine != checksum:
                self._mismatch(mine, checksum, r is SNAPSHOT)
                return []
        if r is SNAPSHOT:
            return [book.to_event(ev.local_ts) if gone_b or gone_a else ev]
        if gone_b or gone_a:
            ev = msgspec.structs.replace(ev, bids=ev.bids + gone_b, asks=ev.asks + gone_a)
        return [ev]

    def _truncate(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """Drop the levels beyond the depth; returns them as deletions (qty 0)."""
        book, depth = self.book, self.depth
        nb, na = book.depth()
        if nb <= depth and na <= depth:
            return (), ()
        gone_b = tuple((p, 0.0) for p, _ in book.bids()[depth:]) if nb > depth else ()
        gone_a = tuple((p, 0.0) for p, _ in book.asks()[depth:]) if na > depth else ()
        book.update(Orderbook(exchange=book.exchange, symbol=book.symbol, exch_ts=book.exch_ts,
                              local_ts=book.local_ts, bids=gone_b, asks=gone_a))  # fmt: skip
        book.updates -= 1  # housekeeping, not a venue update
        return gone_b, gone_a

    def _mismatch(self, mine: int, theirs: int, snapshot: bool) -> None:
        self.mismatches += 1
        self.resyncs += 1
        what = "snapshot" if snapshot else "update"
        self.last_gap = f"checksum mismatch after {what}: computed {mine}, Kraken sent {theirs}"
        book = self.book
        book.gaps += 1
        book.last_gap = self.last_gap
        book.synced = False
        book.clear()
