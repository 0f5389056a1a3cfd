"""Builders for the backtest venue's tests: a list sink, replayed events, commands."""

from __future__ import annotations

from typing import Any

from ttxt_mp.backtest.records import BalanceRow, FillRow, OrderRow, PositionRow
from ttxt_mp.backtest.venue import BacktestVenue, FeeSchedule, VenueRules, default_rules
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    MarketTrades,
    MarkPrice,
    OrderAck,
    Orderbook,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    Trade,
)

EX = "binance"
SYM = "BTC/USDT"
PERP = "BTC/USDT:USDT"
FEES = FeeSchedule(maker=0.001, taker=0.002)


class Rows(list):
    """The sink: every row in order (what ResultsBuilder.add receives)."""

    def add(self, row: Any) -> None:
        self.append(row)

    def of(self, kind: type) -> list:
        return [r for r in self if type(r) is kind]

    @property
    def fills(self) -> list[FillRow]:
        return self.of(FillRow)

    @property
    def orders(self) -> list[OrderRow]:
        return self.of(OrderRow)

    @property
    def balances(self) -> list[BalanceRow]:
        return self.of(BalanceRow)

    @property
    def positions(self) -> list[PositionRow]:
        return self.of(PositionRow)


def make(balances: dict[str, float] | None = None, *, fees: FeeSchedule = FEES,
         exchange: str = EX, rules: VenueRules | None = None,
         contract_rules: VenueRules | None = None) -> tuple[BacktestVenue, Rows]:  # fmt: skip
    rows = Rows()
    v = BacktestVenue(exchange, fees=fees,
                      rules=rules if rules is not None else default_rules(exchange),
                      balances={"USDT": 10_000.0, "BTC": 10.0} if balances is None else balances,
                      sink=rows, contract_rules=contract_rules)  # fmt: skip
    return v, rows


def book(ts: int, bids=(), asks=(), *, symbol: str = SYM, snapshot: bool = True,
         exchange: str = EX) -> Orderbook:  # fmt: skip
    return Orderbook(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + 5,
                     is_snapshot=snapshot, bids=tuple(bids), asks=tuple(asks))  # fmt: skip


def delta(ts: int, bids=(), asks=(), *, symbol: str = SYM, exchange: str = EX) -> Orderbook:
    return book(ts, bids, asks, symbol=symbol, snapshot=False, exchange=exchange)


def trades(ts: int, *items: tuple[float, float, Side], symbol: str = SYM,
           exchange: str = EX) -> MarketTrades:  # fmt: skip
    """Replayed trades (price, qty, taker side)."""
    return MarketTrades(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + 5, trades=tuple(
        Trade(f"t{ts}-{i}", p, q, s, ts) for i, (p, q, s) in enumerate(items)))  # fmt: skip


def mark(ts: int, price: float, rate: float = 0.0, next_ts: int = 0, *, symbol: str = PERP,
         exchange: str = EX) -> MarkPrice:  # fmt: skip
    return MarkPrice(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + 5,
                     mark_price=price, funding_rate=rate, next_funding_ts=next_ts)  # fmt: skip


def order(cid: str, side: Side, qty: float, price: float = 0.0, *, tif=TimeInForce.GTC,
          symbol: str = SYM, reduce_only: bool = False, exchange: str = EX) -> CreateOrder:
    return CreateOrder(exchange=exchange, symbol=symbol, client_order_id=cid, side=side,
                       order_type=OrderType.LIMIT if price else OrderType.MARKET, qty=qty,
                       price=price, tif=tif, reduce_only=reduce_only)  # fmt: skip


def cancel(cid: str, *, symbol: str = SYM, exchange: str = EX) -> CancelOrder:
    return CancelOrder(exchange=exchange, symbol=symbol, client_order_id=cid)


def amend(cid: str, price: float = 0.0, qty: float = 0.0, *, symbol: str = SYM,
          exchange: str = EX) -> AmendOrder:  # fmt: skip
    return AmendOrder(exchange=exchange, symbol=symbol, client_order_id=cid, new_price=price,
                      new_qty=qty)  # fmt: skip


def acks(events: list) -> list[OrderAck]:
    return [e for e in events if isinstance(e, OrderAck)]


def updates(events: list) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate)]


def queue_ahead(v: BacktestVenue, cid: str) -> float:
    """The size the venue counts ahead of a resting order (white-box, for queue tests)."""
    return v._orders[cid].queue.ahead
