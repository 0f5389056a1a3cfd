"""Book snapshots for a recording whose source cannot serve states on request.

A recorder beside the engine asks the ring's producer for its books
(:mod:`ttxt_mp.storage.state_getter`). A recorder reading a remote feed
(``ttxt-mp record redis://...``) cannot: the bus hands it the bridge's state when it
joins and after each gap, nothing in between. Without more, a day's second file would
start with deltas only, and a replay started late in a long recording would find no
snapshot before it.

So this getter keeps every book itself, from the very records it hands out (the
state's snapshots, then the deltas; the connector already checked their sequence, so
no id rule applies here), and writes a snapshot of each synced book every ``interval``
seconds (if a record came since the last ones) and whenever the recorder opens a new file
(:meth:`ask`). A snapshot goes out
between two records, so it is exactly the book after every record before it: replaying
from it gives the same book as replaying from the start. After a ``GapNotice`` a book
is not written again until the source's next snapshot of it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ttxt_mp import codec
from ttxt_mp.events import GapNotice, Orderbook
from ttxt_mp.orderbook import OrderBook

__all__ = ["BookSnapshots"]

BOOK_KIND = codec.layout_for(Orderbook).kind
GAP_KIND = codec.layout_for(GapNotice).kind


class BookSnapshots:
    """``get(timeout) -> (kind, payload)`` of ``inner``, with a snapshot of every book it
    has seen inserted every ``interval`` seconds (0: only when :meth:`ask` is called)."""

    def __init__(self, inner: Callable[[float | None], tuple[int, Any]], interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.inner = inner
        self.interval = interval
        self.clock = clock
        self.books: dict[tuple[str, str], OrderBook] = {}
        self.snapshots = 0
        """Snapshots written from the kept books."""
        self._ready: deque[tuple[int, bytes]] = deque()
        self._due = clock() + interval if interval > 0 else float("inf")
        self._moved = False  # a record came since the last snapshots (else they'd repeat)

    def ask(self) -> None:
        """Snapshot every synced book before the next record (a new file starts)."""
        self._ready.clear()
        self._moved = False
        for book in self.books.values():
            if book.synced:
                self._ready.append(codec.encode(book.to_event()))
        if self.interval > 0:
            self._due = self.clock() + self.interval

    def __call__(self, timeout: float | None) -> tuple[int, Any]:
        if not self._ready and self._moved and self.clock() >= self._due:
            self.ask()
        if self._ready:
            self.snapshots += 1
            return self._ready.popleft()
        kind, payload = self.inner(timeout)
        self._moved = True
        if kind == BOOK_KIND:
            self._keep(codec.decode(kind, payload))
        elif kind == GAP_KIND:  # events were lost: no book is right until re-snapshotted
            for book in self.books.values():
                book.synced = False
                book.clear()
        return kind, payload

    def _keep(self, ev: Orderbook) -> None:
        """Apply a snapshot, or a delta to a book built from one (a delta before any
        snapshot, or after a gap, would make a partial book look whole)."""
        key = (ev.exchange, ev.symbol)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = OrderBook(ev.exchange, ev.symbol, rules="none")
        if ev.is_snapshot or book.synced:
            book.update(ev)
