"""Rolling VWAP of the last N seconds of trades, per instrument.

Run against a live engine:   python examples/clients/vwap.py demo
or declare it in a config:   [[clients]] target = "examples.clients.vwap:RollingVWAP"
                             args = { window_s = 30 }
"""

from __future__ import annotations

import sys
from collections import deque

import ttxt_mp
from ttxt_mp.client import BaseClient


class RollingVWAP(BaseClient):
    keep_books = False

    def __init__(self, window_s: float = 60.0, **args):
        super().__init__(window_s=window_s, **args)
        self.window_ns = int(float(window_s) * 1e9)
        self.trades: dict[tuple[str, str], deque] = {}
        self.sums: dict[tuple[str, str], list[float]] = {}

    def on_trades(self, e: ttxt_mp.MarketTrades) -> None:
        key = (e.exchange, e.symbol)
        window = self.trades.setdefault(key, deque())
        acc = self.sums.setdefault(key, [0.0, 0.0])
        for t in e.trades:
            window.append((t.ts, t.price * t.qty, t.qty))
            acc[0] += t.price * t.qty
            acc[1] += t.qty
        horizon = window[-1][0] - self.window_ns if window else 0
        while window and window[0][0] < horizon:
            _, pq, q = window.popleft()
            acc[0] -= pq
            acc[1] -= q
        print(f"{e.exchange:8} {e.symbol:10} vwap={self.vwap(*key):.2f} trades={len(window)}", flush=True)

    def vwap(self, exchange: str, symbol: str) -> float:
        pq, q = self.sums.get((exchange, symbol), (0.0, 0.0))
        return pq / q if q > 0 else float("nan")


if __name__ == "__main__":
    with ttxt_mp.attach(sys.argv[1] if len(sys.argv) > 1 else "demo", kinds=["MarketTrades"], wait=10) as feed:
        RollingVWAP(window_s=30).run(feed)
