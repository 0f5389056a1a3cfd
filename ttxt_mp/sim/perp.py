"""Public state of a simulated perpetual, for derivative venue adapters to print in their own
wire format: a mark and an index price that wander a few ticks around the book's mid as
market time moves (bounded random walks), open interest pushed up or down by each trade,
the funding rate of the mark's premium over the index (capped), the next funding time on an
interval's boundary, and liquidation prints arriving as a Poisson process of market time.
Everything moves only with market events, so it stands still while the simulator pauses."""

from __future__ import annotations

import random
import zlib
from typing import NamedTuple

from ttxt_mp.sim.market import Market

__all__ = ["LiquidationFeed", "LiquidationPrint", "PerpState"]


class PerpState:
    """Mark, index and open interest (in lots) of one perpetual on ``market``."""

    MARK_SPAN = 3.0  # ticks either side of the mid
    INDEX_SPAN = 4.0
    STEP = 0.3  # standard deviation of one move, in ticks

    def __init__(self, market: Market, seed: str) -> None:
        self.market = market
        self._rng = random.Random(zlib.crc32(seed.encode()))
        self._mark = 0.0  # ticks from the mid
        self._index = 0.0
        self.open_interest = max(1, int(market.mid)) * 10  # lots: any plausible start
        self.ts_ms = 0

    def step(self, ts_ms: int) -> None:
        """Market time moved to ``ts_ms``: mark and index take one bounded step each."""
        walk = self._rng.gauss
        self._mark = min(self.MARK_SPAN, max(-self.MARK_SPAN, self._mark + walk(0.0, self.STEP)))
        self._index = min(self.INDEX_SPAN, max(-self.INDEX_SPAN,
                                               self._index + walk(0.0, self.STEP)))  # fmt: skip
        self.ts_ms = ts_ms

    def trade(self, lots: int) -> None:
        """A trade opened or closed ``lots`` (never below one lot open)."""
        sign = 1 if self._rng.random() < 0.5 else -1
        self.open_interest = max(1, self.open_interest + sign * lots)

    def mark_ticks(self) -> int:
        return max(1, round(self.market.mid + self._mark))

    def index_ticks(self) -> int:
        return max(1, round(self.market.mid + self._index))

    def funding_rate(self, cap: float) -> float:
        """The premium of the mark over the index, rounded to 1e-6, within ``±cap``."""
        index = self.index_ticks()
        return max(-cap, min(cap, round((self.mark_ticks() - index) / index, 6)))

    def next_funding_ms(self, interval_s: float) -> int:
        """The first multiple of ``interval_s`` after the market's time."""
        period = max(1, int(interval_s * 1000))
        return (self.ts_ms // period + 1) * period


class LiquidationPrint(NamedTuple):
    ts_ms: int
    long: bool  # the liquidated position was long (a sell order closes it)
    ticks: int  # its bankruptcy price: below the mark for a long, above for a short
    lots: int


class LiquidationFeed:
    """Liquidations of one perpetual at ``rate`` per second of market time."""

    def __init__(self, state: PerpState, seed: str) -> None:
        self.state = state
        self._rng = random.Random(zlib.crc32(b"liq" + seed.encode()))
        self._next: int | None = None

    def _gap_ms(self, rate: float) -> int:
        return max(1, int(self._rng.expovariate(rate) * 1000))

    def due(self, ts_ms: int, rate: float) -> list[LiquidationPrint]:
        """The prints whose time has come by ``ts_ms`` (none when ``rate`` <= 0)."""
        if rate <= 0:
            return []
        if self._next is None:
            self._next = ts_ms + self._gap_ms(rate)
        out = []
        rng = self._rng
        while self._next <= ts_ms:
            long = rng.random() < 0.5
            mark = self.state.mark_ticks()
            away = max(1, int(mark * rng.uniform(0.002, 0.02)))
            out.append(LiquidationPrint(self._next, long, max(1, mark - away) if long
                                        else mark + away, max(1, int(rng.expovariate(0.05)))))  # fmt: skip
            self._next += self._gap_ms(rate)
        return out
