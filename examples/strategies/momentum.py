"""A momentum taker: samples the mid every second; when it has moved more than
``threshold`` away from its average over the last ``window`` samples, it buys (up) or
sells (down) ``qty`` at market, within a position limit. The same class runs live and in
a backtest; its clock (``every``) is wall time live and exchange time in a backtest.

Live, from this process against an engine with a trading connector (README
"Backtesting"):

    python examples/strategies/momentum.py mm_live

In a backtest:

    ttxt-mp backtest recordings/mm_live --strategy examples.strategies.momentum:Momentum \\
        --balance binance:USDT=100000 binance:BTC=2 --fees binance=0.001,0.001
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

import ttxt_mp
from ttxt_mp import Side
from ttxt_mp.client import BaseClient
from ttxt_mp.trading_client import TradingMixin


class Momentum(TradingMixin, BaseClient):
    def __init__(self, engine: str = "mm_live", name: str = "mom", exchange: str = "binance",
                 symbol: str = "BTC/USDT", qty: float = 0.001, max_position: float = 0.003,
                 window: int = 20, threshold: float = 0.00002, sample_s: float = 1.0,
                 **args: Any) -> None:  # fmt: skip
        super().__init__(**args)
        self.exchange, self.symbol = exchange, symbol
        self.qty, self.max_position = float(qty), float(max_position)
        self.threshold = float(threshold)
        self.mids: deque[float] = deque(maxlen=int(window))
        self.position = 0.0
        self.in_flight = 0  # market orders sent and not final
        self.fills: list[tuple[int, str, float, float]] = []
        self.signals: list[tuple[int, str, float]] = []
        self.enable_trading(engine, name)
        self.started_ns = self.now  # its samples fall at this time + k * sample_s
        self.every(float(sample_s), self.sample)

    def mid(self) -> float | None:
        book = self.books.get((self.exchange, self.symbol))
        if book is None or book.best_bid is None or book.best_ask is None:
            return None
        return (book.best_bid[0] + book.best_ask[0]) / 2

    def sample(self) -> None:
        mid = self.mid()
        if mid is None:
            return
        full = len(self.mids) == self.mids.maxlen
        avg = sum(self.mids) / len(self.mids) if self.mids else mid
        self.mids.append(mid)
        if not full or self.in_flight:
            return
        move = mid / avg - 1
        if move > self.threshold and self.position + self.qty <= self.max_position + 1e-12:
            self.take(Side.BUY, move)
        elif move < -self.threshold and self.position - self.qty >= -self.max_position - 1e-12:
            self.take(Side.SELL, move)

    def take(self, side: Side, move: float) -> None:
        self.signals.append((self.now, side.name, move))
        self.trading.create_order(self.exchange, self.symbol, side, self.qty)  # market
        self.in_flight += 1

    def on_order_ack(self, e: ttxt_mp.OrderAck) -> None:
        if not e.accepted:
            self.in_flight -= 1

    def on_order_update(self, e: ttxt_mp.OrderUpdate) -> None:
        if e.last_fill_qty:
            self.position += e.last_fill_qty if e.side == Side.BUY else -e.last_fill_qty
            self.fills.append((self.now, e.side.name, e.last_fill_price, e.last_fill_qty))
        if e.status not in (ttxt_mp.OrderStatus.NEW, ttxt_mp.OrderStatus.PARTIALLY_FILLED):
            self.in_flight -= 1


if __name__ == "__main__":
    engine = sys.argv[1] if len(sys.argv) > 1 else "mm_live"
    m = Momentum(engine=engine)
    with ttxt_mp.attach(engine, exchanges=[m.exchange], symbols=[m.symbol], wait=10) as feed:
        try:
            m.run(feed)
        except KeyboardInterrupt:
            pass
    print(f"{len(m.fills)} fills, position {m.position:+.5f}")
