"""Synthetic market for one (venue, symbol): a random-walk mid, limit orders, cancels and market
orders matched against one true full-depth book.

Every event that changes the book gets the next update id (Binance `u`, Bybit `seq`); trades
consume resting liquidity. The sequence of events depends only on the seed and on how many steps
were taken, never on wall-clock timing, so two markets with one seed stay identical.

Users' resting orders (kept by the trading core, attached as :attr:`Market.resting`) are
part of the matching like on a venue: a synthetic market order or crossing limit order
meets the best price first, the users' orders included, and within a price the queue
order (a user's order behind the synthetic size that was there when it was placed). Their
fills are public trades like any other; the users' orders themselves are not shown in the
public depth (hidden), so a level made only of them prints trades without a book update.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from ttxt_mp.sim.book import Book, Side
from ttxt_mp.sim.fmt import Scale
from ttxt_mp.sim.specs import Rates, SymbolSpec

SECONDS_PER_YEAR = 365 * 24 * 3600


class BookEvent(NamedTuple):
    """One matching-engine event: its update id, time and level changes (is_bid, tick, lots)."""

    update_id: int
    ts_ms: int
    changes: list[tuple[bool, int, int]]


class Trade(NamedTuple):
    trade_id: int
    tick: int
    lots: int
    ts_ms: int
    taker_buy: bool  # taker was the buyer, i.e. Binance isBuyerMaker == False
    seq: int  # update id of the event that produced the trade


class Resting(Protocol):
    """Orders outside the synthetic book (users' resting orders) that the synthetic flow
    trades with; ticks and lots are the market's integer units."""

    def best(self, is_bid: bool) -> int | None:
        """Best tick of the resting orders on that side (None: none)."""
        ...

    def take(self, is_bid: bool, tick: int, lots: int, visible: int) -> list[tuple[int, bool]]:
        """A taker of ``lots`` reaches ``tick`` of the ``is_bid`` side, where ``visible``
        synthetic lots rest: fill the resting orders there in queue order (interleaved with
        the synthetic lots ahead of each); returns the (lots, is_resting_order) pieces
        taken, in queue order (synthetic pieces come out of ``visible``)."""
        ...

    def reduced(self, is_bid: bool, tick: int, old: int, new: int) -> None:
        """The synthetic size at a level shrank without a trade (a cancel)."""
        ...


# Trades kept per market: the recent-trades endpoints serve at most 1000 (Binance) / 60
# (Bybit spot) and a kline series asked for later is backfilled from them. 200 000 made
# the simulator grow ~3 MB/min at demo load for an hour before the deque was full.
TRADE_HISTORY = 5_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Market:
    """One synthetic instrument. `step(dt)` advances it by dt seconds of simulated order flow."""

    def __init__(self, spec: SymbolSpec, rates: Rates, seed: int, history: int = TRADE_HISTORY) -> None:
        if rates.levels < 10 or rates.max_levels < rates.levels:
            raise ValueError("Rates need levels >= 10 and max_levels >= levels")
        self.spec = spec
        self.rates = rates
        self.price = Scale(spec.tick)
        self.qty = Scale(spec.step)
        self.rng = np.random.default_rng(seed)
        self.book = Book()
        self.update_id = int(self.rng.integers(1_000_000, 9_000_000))
        self.trade_id = int(self.rng.integers(100_000, 900_000))
        self.trades: deque[Trade] = deque(maxlen=history)
        self.book_listeners: list[Callable[[BookEvent], None]] = []
        self.trade_listeners: list[Callable[[list[Trade]], None]] = []
        self.resting: Resting | None = None  # users' resting orders (the trading core)
        self.mid = float(self.price.from_float(spec.price))
        self._sigma = rates.volatility * self.mid / math.sqrt(SECONDS_PER_YEAR)  # ticks/sqrt(s)
        self._lot_mu = math.log(max(spec.typical_qty / float(spec.step), 1.0))
        # Levels span ~0.5% of the price per side: dense (1-tick gaps) at the top, sparser deeper.
        self._gap = max(1, int(self.mid * 0.005 / rates.levels))
        self._near = max(3.0, self._gap / 2)  # mean distance of most new orders from the mid
        self._u_carry = 0.0
        self._t_carry = 0.0
        self._build()

    # ---------------------------------------------------------------- setup

    def _lots(self, z: float) -> int:
        return max(1, int(math.exp(self._lot_mu + 1.0 * z)))

    def _build(self) -> None:
        """Initial book: `levels` levels per side with random gaps and lognormal sizes."""
        n = self.rates.levels
        u = self.rng.random((2, n)).tolist()
        sizes = self.rng.normal(size=(2, n)).tolist()
        base = math.floor(self.mid)
        for s, side in enumerate((self.book.bids, self.book.asks)):
            tick = base if side.is_bid else base + 1
            for i in range(n):
                gap = 1 + int(u[s][i] * 2 * self._gap * i / n)
                tick = tick - gap if side.is_bid else tick + gap
                if tick > 0:
                    side.set(tick, self._lots(sizes[s][i] + 0.02 * i**0.5))

    # ---------------------------------------------------------------- flow

    def step(self, dt: float, ts_ms: int | None = None) -> None:
        """Advance by dt seconds: move the mid, then process arrivals (deterministic per seed)."""
        ts = now_ms() if ts_ms is None else ts_ms
        rng = self.rng
        self.mid = max(1.0, self.mid + rng.normal() * self._sigma * math.sqrt(dt))
        # Expected counts carried across steps so the event sequence does not depend on dt.
        self._u_carry += self.rates.updates_per_sec * dt
        self._t_carry += self.rates.trades_per_sec * dt
        n_u = int(self._u_carry)
        n_t = int(self._t_carry)
        self._u_carry -= n_u
        self._t_carry -= n_t
        if n_u:
            rows = rng.random((n_u, 3)).tolist()
            zs = rng.normal(size=n_u).tolist()
            for (r_kind, r_side, r_dist), z in zip(rows, zs, strict=True):
                if r_kind < self.rates.cancel_ratio:
                    self._cancel(r_side < 0.5, r_dist, z, ts)
                else:
                    self._limit(r_side < 0.5, r_dist, z, ts)
        if n_t:
            rows = rng.random((n_t, 1)).tolist()
            zs = rng.normal(size=n_t).tolist()
            for (r_side,), z in zip(rows, zs, strict=True):
                self._market(r_side < 0.5, z, ts)

    def _distance(self, r: float) -> int:
        """Ticks from the mid: mostly near the top, a tail spread over the whole initial depth."""
        if r < 0.85:
            return int(-math.log1p(-r / 0.85) * self._near)
        return int((r - 0.85) / 0.15 * self.rates.levels * self._gap)

    def _cancel(self, is_bid: bool, r_dist: float, z: float, ts: int) -> None:
        """Cancel or reduce the first level at or beyond a distance drawn like new orders', so
        arrivals and cancels balance at every depth and the book keeps its shape."""
        side = self.book.side(is_bid)
        n = len(side)
        if n <= 20:
            return
        d = self._distance(r_dist)
        ticks = side.ticks
        if is_bid:
            i = bisect_right(ticks, math.floor(self.mid) - d) - 1
            if i < 0:
                return
        else:
            i = bisect_left(ticks, math.ceil(self.mid) + d)
            if i >= n:
                return
        tick = ticks[i]
        lots = side.levels[tick]
        new = 0 if z < 0 else max(0, int(lots * min(0.95, 0.3 + 0.2 * z)))
        if new != lots:
            side.set(tick, new)
            if self.resting is not None:
                self.resting.reduced(is_bid, tick, lots, new)
            self._emit([(is_bid, tick, new)], [], ts)

    def _limit(self, is_bid: bool, r_dist: float, z: float, ts: int) -> None:
        d = self._distance(r_dist)
        tick = math.floor(self.mid) - d if is_bid else math.ceil(self.mid) + d
        if tick <= 0:
            return
        self.limit_order(is_bid, tick, self._lots(z), ts)

    def _market(self, taker_buy: bool, z: float, ts: int) -> None:
        opp = self.book.side(not taker_buy)
        if len(opp) <= 20:
            return
        cap = sum(q for _, q in opp.top(5)) // 2
        self.market_order(taker_buy, min(self._lots(z - 0.5), max(cap, 1)), ts)

    def limit_order(self, is_bid: bool, tick: int, lots: int, ts: int) -> None:
        """One synthetic limit order: it trades what it crosses, the rest rests."""
        changes: list[tuple[bool, int, int]] = []
        fills: list[tuple[int, int]] = []
        lots = self._match(is_bid, tick, lots, changes, fills)
        if lots > 0:
            side = self.book.side(is_bid)
            new = side.levels.get(tick, 0) + lots
            side.set(tick, new)
            changes.append((is_bid, tick, new))
            self._trim(side, changes)
        self._emit(changes, [(is_bid, t, q) for t, q in fills], ts)

    def market_order(self, taker_buy: bool, lots: int, ts: int) -> None:
        """One synthetic market order of ``lots``: it walks the opposite side."""
        changes: list[tuple[bool, int, int]] = []
        fills: list[tuple[int, int]] = []
        self._match(taker_buy, None, lots, changes, fills)
        self._emit(changes, [(taker_buy, t, q) for t, q in fills], ts)

    def _match(
        self,
        taker_bid: bool,
        limit: int | None,
        lots: int,
        changes: list[tuple[bool, int, int]],
        fills: list[tuple[int, int]],
    ) -> int:
        """Consume the opposite side from its best level, the users' resting orders
        included (price, then queue priority); returns the unfilled lots."""
        opp = self.book.side(not taker_bid)
        ext = self.resting
        while lots > 0 and len(opp) > 20:
            level = best = opp.best()
            assert best is not None
            user = ext.best(not taker_bid) if ext is not None else None
            if user is not None:
                level = min(best, user) if taker_bid else max(best, user)
            if limit is not None and (level > limit if taker_bid else level < limit):
                break
            avail = opp.levels.get(level, 0)
            if ext is not None and user == level:
                parts = ext.take(not taker_bid, level, lots, avail)
            else:
                parts = [(min(avail, lots), False)]
            syn = sum(q for q, is_user in parts if not is_user)
            if syn:
                opp.set(level, avail - syn)
                changes.append((not taker_bid, level, avail - syn))
            took = 0
            for q, _ in parts:
                fills.append((level, q))
                took += q
            if not took:
                break  # nothing fillable there (cannot happen with a consistent book)
            lots -= took
        if limit is not None and lots > 0:
            best = opp.best()
            user = ext.best(not taker_bid) if ext is not None else None
            for b in (best, user):
                if b is not None and (b <= limit if taker_bid else b >= limit):
                    return 0  # would cross a protected level; drop the remainder
        return lots

    def _trim(self, side: Side, changes: list[tuple[bool, int, int]]) -> None:
        while len(side) > self.rates.max_levels:
            far = side.farthest()
            if self.resting is not None:
                self.resting.reduced(side.is_bid, far, side.levels[far], 0)
            side.set(far, 0)
            changes.append((side.is_bid, far, 0))

    def _emit(
        self, changes: list[tuple[bool, int, int]], fills: list[tuple[bool, int, int]], ts: int
    ) -> None:
        if changes:  # fills of hidden (user) orders alone print trades, change no level
            self.update_id += 1
            event = BookEvent(self.update_id, ts, changes)
            for fn in self.book_listeners:
                fn(event)
        if fills:
            trades = []
            for taker_buy, tick, q in fills:
                self.trade_id += 1
                trades.append(Trade(self.trade_id, tick, q, ts, taker_buy, self.update_id))
            self.trades.extend(trades)
            for tfn in self.trade_listeners:
                tfn(trades)

    # ---------------------------------------------------------------- views

    def snapshot(self, depth: int | None = None) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """(update_id, bids best-first, asks best-first) of the true book."""
        return self.update_id, self.book.bids.top(depth), self.book.asks.top(depth)
