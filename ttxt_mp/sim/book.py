"""The true full-depth order book: integer ticks -> integer lots, one sorted side each."""

from __future__ import annotations

from bisect import bisect_left, insort


class Side:
    """One side of a book; `ticks` is ascending for both sides."""

    __slots__ = ("is_bid", "levels", "ticks")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, int] = {}
        self.ticks: list[int] = []

    def __len__(self) -> int:
        return len(self.ticks)

    def set(self, tick: int, lots: int) -> None:
        levels = self.levels
        if lots > 0:
            if tick not in levels:
                insort(self.ticks, tick)
            levels[tick] = lots
        elif tick in levels:
            del levels[tick]
            ticks = self.ticks
            del ticks[bisect_left(ticks, tick)]

    def best(self) -> int | None:
        if not self.ticks:
            return None
        return self.ticks[-1] if self.is_bid else self.ticks[0]

    def farthest(self) -> int:
        return self.ticks[0] if self.is_bid else self.ticks[-1]

    def nth(self, k: int) -> int:
        """Tick of the k-th level from the top (0 = best)."""
        return self.ticks[-1 - k] if self.is_bid else self.ticks[k]

    def top(self, n: int | None = None) -> list[tuple[int, int]]:
        """(tick, lots) from best to worse, at most n levels (all if None)."""
        levels = self.levels
        if self.is_bid:
            ticks = self.ticks if n is None or n >= len(self.ticks) else self.ticks[-n:]
            return [(t, levels[t]) for t in reversed(ticks)]
        ticks = self.ticks if n is None else self.ticks[:n]
        return [(t, levels[t]) for t in ticks]


class Book:
    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = Side(True)
        self.asks = Side(False)

    def side(self, is_bid: bool) -> Side:
        return self.bids if is_bid else self.asks
