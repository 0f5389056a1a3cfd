"""Candles built from the simulated trades, per interval, created on first use and backfilled
from the trade history so REST and stream agree."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

from ttxt_mp.sim.market import Market, Trade

MIN = 60_000
_DAY = 86_400_000
_WEEK_OFFSET = 4 * _DAY  # 1970-01-01 is a Thursday; weeks start on Monday 00:00 UTC


def interval_start_end(kind: str, ms: int, ts: int) -> tuple[int, int]:
    """[start, end] (inclusive end, like Binance close time) of the candle containing ts."""
    if kind == "M":
        d = dt.datetime.fromtimestamp(ts / 1000, tz=dt.UTC)
        start = dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)
        nxt = dt.datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=dt.UTC)
        return int(start.timestamp() * 1000), int(nxt.timestamp() * 1000) - 1
    if kind == "W":
        start = (ts - _WEEK_OFFSET) // ms * ms + _WEEK_OFFSET
    else:
        start = ts // ms * ms
    return start, start + ms - 1


class Candle:
    __slots__ = ("start", "end", "o", "h", "l", "c", "vol", "quote", "buy_vol", "buy_quote",
                 "n", "first_id", "last_id", "last_ts")

    def __init__(self, start: int, end: int, t: Trade) -> None:
        self.start, self.end = start, end
        self.o = self.h = self.l = self.c = t.tick
        self.vol = self.quote = self.buy_vol = self.buy_quote = 0
        self.n = 0
        self.first_id = t.trade_id
        self.last_id = t.trade_id
        self.last_ts = t.ts_ms

    def add(self, t: Trade) -> None:
        self.h = max(self.h, t.tick)
        self.l = min(self.l, t.tick)
        self.c = t.tick
        self.vol += t.lots
        self.quote += t.lots * t.tick  # in tick*lot units; formatted with fmt_product
        if t.taker_buy:
            self.buy_vol += t.lots
            self.buy_quote += t.lots * t.tick
        self.n += 1
        self.last_id = t.trade_id
        self.last_ts = t.ts_ms


class KlineSeries:
    """Candles of one interval for one market, oldest first, at most `keep` of them."""

    def __init__(self, market: Market, kind: str, ms: int, keep: int = 5000) -> None:
        self.kind, self.ms, self.keep = kind, ms, keep
        self.candles: OrderedDict[int, Candle] = OrderedDict()
        for t in market.trades:
            self.add(t)
        market.trade_listeners.append(self.add_many)

    def add_many(self, trades: list[Trade]) -> None:
        for t in trades:
            self.add(t)

    def add(self, t: Trade) -> None:
        start, end = interval_start_end(self.kind, self.ms, t.ts_ms)
        c = self.candles.get(start)
        if c is None:
            c = self.candles[start] = Candle(start, end, t)
            if len(self.candles) > self.keep:
                self.candles.popitem(last=False)
        c.add(t)

    def current(self, now: int) -> Candle | None:
        """Candle containing `now`; an empty one at the last close if no trade yet in it."""
        start, end = interval_start_end(self.kind, self.ms, now)
        c = self.candles.get(start)
        if c is not None or not self.candles:
            return c
        last = next(reversed(self.candles.values()))
        return _empty(start, end, last)

    def select(self, start: int | None, end: int | None, limit: int) -> list[Candle]:
        """Candles with open time in [start, end]: oldest first from start, else the latest."""
        out = [c for c in self.candles.values()
               if (start is None or c.start >= start) and (end is None or c.start <= end)]
        return out[:limit] if start is not None else out[-limit:]


def _empty(start: int, end: int, last: Candle) -> Candle:
    c = Candle.__new__(Candle)
    c.start, c.end = start, end
    c.o = c.h = c.l = c.c = last.c
    c.vol = c.quote = c.buy_vol = c.buy_quote = c.n = 0
    c.first_id = c.last_id = -1
    c.last_ts = last.last_ts
    return c


class KlineStore:
    """Lazily created series per (market, interval)."""

    def __init__(self) -> None:
        self._series: dict[tuple[int, str], KlineSeries] = {}

    def series(self, market: Market, kind: str, ms: int) -> KlineSeries:
        key = (id(market), f"{kind}{ms}")
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = KlineSeries(market, kind, ms)
        return s
