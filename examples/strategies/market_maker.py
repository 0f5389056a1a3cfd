"""A market maker: one bid and one ask ``edge_ticks`` from the mid (never outside the best
prices: a tick inside them at worst), re-quoted when the book moves, within a position
limit. The same class runs live and in a backtest.

Live, against the simulator (see README "Backtesting"; the engine of
``examples/strategies/live.toml`` runs it as a ``[[clients]]`` entry and records the
market), or from this process against a running engine with a trading connector:

    python examples/strategies/market_maker.py mm_live

In a backtest, on what was recorded:

    ttxt-mp backtest recordings/mm_live --strategy examples.strategies.market_maker:MarketMaker \\
        --balance binance:USDT=100000 binance:BTC=2 --latency-ms 1

Everything it decides on comes from its events and ``self.now``, so the backtest sees
what the live run saw, shifted only by the latencies.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import ttxt_mp
from ttxt_mp import OrderAction, OrderStatus, Side, TimeInForce
from ttxt_mp.client import BaseClient
from ttxt_mp.trading_client import TradingMixin

FINAL = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)


class MarketMaker(TradingMixin, BaseClient):
    def __init__(self, engine: str = "mm_live", name: str = "mm", exchange: str = "binance",
                 symbol: str = "BTC/USDT", qty: float = 0.001, max_position: float = 0.005,
                 tick: float = 0.01, edge_ticks: int = 5, min_requote_s: float = 0.2,
                 **args: Any) -> None:  # fmt: skip
        super().__init__(**args)
        self.exchange, self.symbol = exchange, symbol
        self.qty, self.max_position = float(qty), float(max_position)
        self.tick, self.edge = float(tick), int(edge_ticks) * float(tick)
        self.min_requote_ns = int(float(min_requote_s) * 1e9)
        self.enable_trading(engine, name)
        self.quotes: dict[Side, str | None] = {Side.BUY: None, Side.SELL: None}
        self.pending: set[str] = set()  # sent, not acked (create) or not final (cancel)
        self.last_quote: dict[Side, int] = {Side.BUY: 0, Side.SELL: 0}
        self.position = 0.0
        self.fills: list[tuple[int, str, float, float]] = []  # (now, side, price, qty)
        self.sent_at: dict[tuple[str, OrderAction], int] = {}
        self.rtt_ns: list[int] = []  # command -> ack, as this strategy saw it
        self.data_lag_ns: list[int] = []  # exchange time -> this strategy, per book event
        self.first_order_ns = 0  # when it started quoting (its clock)

    # ------------------------------------------------------------------ events

    def on_orderbook(self, e: ttxt_mp.Orderbook) -> None:
        if (e.exchange, e.symbol) != (self.exchange, self.symbol):
            return
        if e.exch_ts and len(self.data_lag_ns) < 100_000:
            self.data_lag_ns.append(self.now - e.exch_ts)
        self.requote()

    def on_order_ack(self, e: ttxt_mp.OrderAck) -> None:
        sent = self.sent_at.pop((e.client_order_id, e.action), None)
        if sent is not None:
            self.rtt_ns.append(self.now - sent)
        if e.action == OrderAction.CREATE and not e.accepted:
            self._closed(e.client_order_id)  # e.g. post-only would have crossed
        elif e.action == OrderAction.CREATE or not e.accepted:
            self.pending.discard(e.client_order_id)  # a refused cancel: the order is done

    def on_order_update(self, e: ttxt_mp.OrderUpdate) -> None:
        if e.last_fill_qty:
            signed = e.last_fill_qty if e.side == Side.BUY else -e.last_fill_qty
            self.position += signed
            self.fills.append((self.now, e.side.name, e.last_fill_price, e.last_fill_qty))
        if e.status in FINAL:
            self._closed(e.client_order_id)
            self.requote()

    # ------------------------------------------------------------------ quoting

    def _closed(self, cid: str) -> None:
        self.pending.discard(cid)
        for side, q in self.quotes.items():
            if q == cid:
                self.quotes[side] = None

    def targets(self) -> dict[Side, float] | None:
        book = self.books.get((self.exchange, self.symbol))
        if book is None or book.best_bid is None or book.best_ask is None:
            return None
        (best_bid, _), (best_ask, _) = book.best_bid, book.best_ask
        mid, t = (best_bid + best_ask) / 2, self.tick
        if best_ask - best_bid < 3 * t - t / 2:  # no room inside: join the best prices
            return {Side.BUY: best_bid, Side.SELL: best_ask}
        bid = max(best_bid + t, math.floor((mid - self.edge) / t + 1e-9) * t)
        ask = min(best_ask - t, math.ceil((mid + self.edge) / t - 1e-9) * t)
        if ask - bid < t / 2:
            bid, ask = best_bid + t, best_ask - t
        return {Side.BUY: round(bid, 8), Side.SELL: round(ask, 8)}

    def requote(self) -> None:
        want = self.targets()
        if want is None:
            return
        for side, price in want.items():
            cid = self.quotes[side]
            if cid is not None:
                if cid in self.pending:
                    continue  # its ack or its cancel is on the way
                live = self.trading.open_orders.get(cid)
                if live is None or abs(live.price - price) < self.tick / 2:
                    continue  # not known open yet (its update follows the ack), or in place
                if self.now - self.last_quote[side] < self.min_requote_ns:
                    continue
                self.trading.cancel_order(self.exchange, self.symbol, cid)
                self._sent(cid, OrderAction.CANCEL)
                continue
            signed = self.qty if side == Side.BUY else -self.qty
            if abs(self.position + signed) > self.max_position + 1e-12:
                continue
            cid = self.trading.create_order(self.exchange, self.symbol, side, self.qty,
                                            price=price, tif=TimeInForce.POST_ONLY)  # fmt: skip
            self.first_order_ns = self.first_order_ns or self.now
            self.quotes[side] = cid
            self.last_quote[side] = self.now
            self._sent(cid, OrderAction.CREATE)

    def _sent(self, cid: str, action: OrderAction) -> None:
        self.pending.add(cid)
        self.sent_at[(cid, action)] = self.now


if __name__ == "__main__":
    engine = sys.argv[1] if len(sys.argv) > 1 else "mm_live"
    mm = MarketMaker(engine=engine)
    with ttxt_mp.attach(engine, exchanges=[mm.exchange], symbols=[mm.symbol], wait=10) as feed:
        try:
            mm.run(feed)
        except KeyboardInterrupt:
            pass
    print(f"{len(mm.fills)} fills, position {mm.position:+.5f}")
