"""Binance local-book synchronisation as pure logic (no network), for a connector to drive.

The procedure of Binance's "How to manage a local order book correctly" (Spot docs, revised
Dec 2024):

1. Buffer diff events from the stream; note the ``U`` of the first one.
2. Get a REST depth snapshot.
3. If its ``lastUpdateId`` is strictly less than that first ``U``, get another snapshot.
4. Discard buffered events with ``u <= lastUpdateId``; set the book to the snapshot.
5. Apply the remaining buffered events, then live events, with the update procedure
   (stale events ignored, ``U > book id + 1`` means missed events: restart).

Driving it::

    sync = BinanceBookSync("BTC/USDT")
    for ev in normalizer.normalize(frame):          # diff events
        publish_all(sync.on_diff(ev))
        if sync.needs_snapshot and not fetching:
            snap = normalizer.normalize_snapshot(await rest_depth(), "BTC/USDT")
            publish_all(sync.on_snapshot(snap))     # [] if the snapshot was too old

Everything returned is safe to publish in order: a consumer applying it to its own
:class:`~ttxt_mp.orderbook.OrderBook` gets the same book (the snapshot first, then only
deltas that pass the checks). After a gap nothing more is returned until a snapshot
brings the book back; ``resyncs`` counts them and ``last_gap`` says why.
"""

from __future__ import annotations

from collections import deque

from ttxt_mp.connectors.binance.book_rule import RULE
from ttxt_mp.events import Orderbook
from ttxt_mp.orderbook import GAP, OrderBook, UpdateResult

__all__ = ["BinanceBookSync"]


class BinanceBookSync:
    def __init__(
        self,
        symbol: str,
        exchange: str = "binance",
        *,
        max_buffer: int = 100_000,
        max_depth: int | None = None,
        book: OrderBook | None = None,
    ) -> None:
        self.book = book if book is not None else OrderBook(exchange, symbol, max_depth, rules=RULE)
        self.max_buffer = max_buffer
        self._buffer: deque[Orderbook] = deque()
        self.synced = False
        self.snapshot_retries = 0  # snapshots refused as older than the buffer
        self.resyncs = 0  # gaps that forced a new snapshot
        self.dropped = 0  # oldest buffered diffs dropped because the buffer was full
        self.last_gap = ""

    @property
    def needs_snapshot(self) -> bool:
        """True until a snapshot has been accepted, and again after any gap."""
        return not self.synced

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def first_buffered_id(self) -> int | None:
        """``U`` of the oldest buffered diff: a usable snapshot has lastUpdateId >= it."""
        return self._buffer[0].first_update_id if self._buffer else None

    def on_diff(self, ev: Orderbook) -> list[Orderbook]:
        """A diff-depth event from the stream -> the events to publish now (0 or 1)."""
        if self.synced:
            r = self.book.update(ev)
            if r is UpdateResult.APPLIED:
                return [ev]
            if r is GAP:
                self._restart(ev)
            return []
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(ev)
        return []

    def on_snapshot(self, snap: Orderbook) -> list[Orderbook]:
        """A REST snapshot -> [snapshot, buffered diffs that apply...], or [] to retry.

        A snapshot older than the first buffered diff (``lastUpdateId < U``) is refused:
        ``needs_snapshot`` stays True and the connector fetches another one.
        """
        if not snap.is_snapshot:
            raise ValueError("on_snapshot() needs a snapshot event (is_snapshot=True)")
        first = self.first_buffered_id
        if first is not None and snap.last_update_id < first:
            self.snapshot_retries += 1
            return []
        self.book.update(snap)
        self.synced = True
        out = [snap]
        pending = list(self._buffer)
        self._buffer.clear()
        for i, ev in enumerate(pending):
            r = self.book.update(ev)
            if r is UpdateResult.APPLIED:
                out.append(ev)
            elif r is GAP:
                self._restart(ev)
                self._buffer.extend(pending[i + 1 :])
                break
        return out

    def _restart(self, ev: Orderbook) -> None:
        """Missed events: forget the book, keep buffering from the event that showed it."""
        self.synced = False
        self.resyncs += 1
        self.last_gap = self.book.last_gap
        self._buffer.clear()
        self._buffer.append(ev)

    def reset(self) -> None:
        """Start over (e.g. after a reconnect): drop the buffer and the sync state."""
        self.synced = False
        self._buffer.clear()
        self.book.clear()
        self.book.synced = False
