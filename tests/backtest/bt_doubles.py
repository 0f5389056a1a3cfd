"""Test doubles for the runner's collaborators (the simulated venue and the results),
written against the interfaces of BACKTEST.md, and helpers to write small recordings.

The doubles are deliberately simple (top-of-book only, every call logged with its
simulated time) so a runner test can say exactly when what reached whom. They replace
``ttxt_mp.backtest.venue`` / ``ttxt_mp.backtest.results`` in ``sys.modules`` for one test
(the :func:`doubles` fixture), whether or not the real modules exist.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ttxt_mp import AsyncioQueue
from ttxt_mp import events as ev
from ttxt_mp.backtest.records import EquityRow, FillRow, OrderRow
from ttxt_mp.storage import MarketDataRecorder

T0 = 1_714_521_600_000_000_000  # 2024-05-01T00:00:00Z
MS = 1_000_000
S = 1_000_000_000


class FeeSchedule(msgspec.Struct, frozen=True):
    maker: float
    taker: float


class VenueRules(msgspec.Struct, frozen=True):
    price_amend: str = "in_place"
    queue_cancels: bool = True


def default_rules(exchange: str) -> VenueRules:
    return VenueRules()


class FakeVenue:
    """Top of book; a limit order fills when a trade reaches its price; a market order
    fills at once at the best price. ``log``: (call, ts, what) for every call."""

    instances: list[FakeVenue] = []

    def __init__(self, exchange: str, *, fees: FeeSchedule, rules: VenueRules,
                 balances: dict[str, float], sink: Any) -> None:  # fmt: skip
        self.exchange, self.fees, self.rules, self.sink = exchange, fees, rules, sink
        self.balances = dict(balances)
        self.bid: dict[str, float] = {}
        self.ask: dict[str, float] = {}
        self.resting: dict[str, ev.CreateOrder] = {}
        self.log: list[tuple[str, int, str]] = []
        self.n = 0
        FakeVenue.instances.append(self)

    def _ts(self, e: Any) -> int:
        return e.exch_ts or e.local_ts

    def on_market(self, e: Any) -> list[Any]:
        ts = self._ts(e)
        self.log.append(("market", ts, type(e).__name__))
        out: list[Any] = []
        if type(e) is ev.Orderbook:
            if e.bids:
                self.bid[e.symbol] = e.bids[0][0]
            if e.asks:
                self.ask[e.symbol] = e.asks[0][0]
        elif type(e) is ev.MarketTrades:
            for t in e.trades:
                for cid, o in list(self.resting.items()):
                    if o.symbol == e.symbol and (o.side == ev.Side.BUY and t.price <= o.price
                                                 or o.side == ev.Side.SELL and t.price >= o.price):
                        del self.resting[cid]
                        out += self._fill(o, o.price, ts, "maker")
        return out

    def _update(self, o: ev.CreateOrder, status: ev.OrderStatus, ts: int, **kw: Any) -> ev.OrderUpdate:
        u = ev.OrderUpdate(exchange=self.exchange, symbol=o.symbol, exch_ts=ts, local_ts=ts,
                           client_order_id=o.client_order_id, order_id=f"o{o.client_order_id}",
                           side=o.side, order_type=o.order_type, tif=o.tif, status=status,
                           price=o.price, qty=o.qty, **kw)  # fmt: skip
        self.sink.add(OrderRow(ts=ts, exchange=self.exchange, symbol=o.symbol,
                               client_order_id=o.client_order_id, order_id=u.order_id,
                               side=o.side.name, order_type=o.order_type.name, tif=o.tif.name,
                               status=status.name, price=o.price, qty=o.qty,
                               filled_qty=u.filled_qty, avg_price=u.avg_price))  # fmt: skip
        return u

    def _fill(self, o: ev.CreateOrder, price: float, ts: int, liq: str) -> list[Any]:
        self.n += 1
        fee = price * o.qty * (self.fees.maker if liq == "maker" else self.fees.taker)
        self.sink.add(FillRow(ts=ts, exchange=self.exchange, symbol=o.symbol,
                              client_order_id=o.client_order_id, order_id=f"o{o.client_order_id}",
                              trade_id=f"t{self.n}", side=o.side.name, price=price, qty=o.qty,
                              liquidity=liq, fee=fee, fee_asset="USDT"))  # fmt: skip
        sign = 1 if o.side == ev.Side.BUY else -1
        self.balances["BTC"] = self.balances.get("BTC", 0.0) + sign * o.qty
        self.balances["USDT"] = self.balances.get("USDT", 0.0) - sign * o.qty * price - fee
        u = self._update(o, ev.OrderStatus.FILLED, ts, filled_qty=o.qty, avg_price=price,
                         last_fill_price=price, last_fill_qty=o.qty, fee=fee, fee_asset="USDT",
                         trade_id=f"t{self.n}")  # fmt: skip
        w = ev.Wallet(exchange=self.exchange, exch_ts=ts, local_ts=ts, balances=tuple(
            ev.Balance(a, v, 0.0) for a, v in sorted(self.balances.items())))
        return [u, w]

    def submit(self, cmd: Any, ts: int) -> list[Any]:
        self.log.append(("submit", ts, f"{type(cmd).__name__} {cmd.client_order_id}"))
        t = type(cmd)
        if t is ev.CreateOrder:
            ack = ev.OrderAck(exchange=self.exchange, symbol=cmd.symbol, exch_ts=ts, local_ts=ts,
                              client_order_id=cmd.client_order_id, action=ev.OrderAction.CREATE,
                              accepted=True, order_id=f"o{cmd.client_order_id}")  # fmt: skip
            if cmd.order_type == ev.OrderType.MARKET:
                price = self.ask[cmd.symbol] if cmd.side == ev.Side.BUY else self.bid[cmd.symbol]
                return [ack, self._update(cmd, ev.OrderStatus.NEW, ts),
                        *self._fill(cmd, price, ts, "taker")]
            self.resting[cmd.client_order_id] = cmd
            return [ack, self._update(cmd, ev.OrderStatus.NEW, ts)]
        if t is ev.CancelOrder:
            o = self.resting.pop(cmd.client_order_id, None)
            ack = ev.OrderAck(exchange=self.exchange, symbol=cmd.symbol, exch_ts=ts, local_ts=ts,
                              client_order_id=cmd.client_order_id, action=ev.OrderAction.CANCEL,
                              accepted=o is not None, code="" if o else "-2011",
                              message="" if o else "Unknown order sent.")  # fmt: skip
            return [ack] + ([self._update(o, ev.OrderStatus.CANCELED, ts)] if o else [])
        if t is ev.SetLeverage:
            return [ev.OrderAck(exchange=self.exchange, symbol=cmd.symbol, exch_ts=ts,
                                local_ts=ts, client_order_id=cmd.client_order_id,
                                action=ev.OrderAction.SET_LEVERAGE, accepted=True)]  # fmt: skip
        raise AssertionError(f"unexpected command {cmd}")

    def book(self, symbol: str) -> Any:
        return None

    def mark_to_market(self, ts: int, symbol: str, quote: str) -> EquityRow:
        self.log.append(("equity", ts, symbol))
        mid = (self.bid.get(symbol, 0.0) + self.ask.get(symbol, 0.0)) / 2
        pos = self.balances.get("BTC", 0.0)
        eq = self.balances.get(quote, 0.0) + pos * mid
        return EquityRow(ts=ts, equity=eq, realized_pnl=0.0, unrealized_pnl=0.0, fees=0.0,
                         funding=0.0, position=pos, mid=mid, symbol=symbol, quote=quote)  # fmt: skip

    def open_orders(self) -> list[ev.OrderUpdate]:
        return []


class FakeResults(msgspec.Struct, kw_only=True):
    rows: list[Any]
    events: int
    sim_start_ns: int
    sim_end_ns: int
    wall_s: float
    error: str | None
    gaps: list[str]
    meta: dict[str, str]

    def of(self, cls: type) -> list[Any]:
        return [r for r in self.rows if type(r) is cls]


class FakeResultsBuilder:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def add(self, row: Any) -> None:
        self.rows.append(row)

    def finish(self, *, events: int, sim_start_ns: int, sim_end_ns: int, wall_s: float,
               error: str | None = None, gaps: list[str] | None = None,
               meta: dict[str, str] | None = None) -> FakeResults:  # fmt: skip
        return FakeResults(rows=self.rows, events=events, sim_start_ns=sim_start_ns,
                           sim_end_ns=sim_end_ns, wall_s=wall_s, error=error,
                           gaps=list(gaps or []), meta=dict(meta or {}))  # fmt: skip


def install_doubles(monkeypatch: pytest.MonkeyPatch) -> type[FakeVenue]:
    """The runner talks to FakeVenue / FakeResultsBuilder for this test."""
    venue = types.ModuleType("ttxt_mp.backtest.venue")
    venue.BacktestVenue = FakeVenue  # type: ignore[attr-defined]
    venue.FeeSchedule = FeeSchedule  # type: ignore[attr-defined]
    venue.VenueRules = VenueRules  # type: ignore[attr-defined]
    venue.default_rules = default_rules  # type: ignore[attr-defined]
    results = types.ModuleType("ttxt_mp.backtest.results")
    results.ResultsBuilder = FakeResultsBuilder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ttxt_mp.backtest.venue", venue)
    monkeypatch.setitem(sys.modules, "ttxt_mp.backtest.results", results)
    FakeVenue.instances = []
    return FakeVenue


# ---------------------------------------------------------------------- recordings


def book(ts: int, bid: float, ask: float, *, symbol: str = "BTC/USDT", exchange: str = "binance",
         snapshot: bool = False, n: int = 0) -> ev.Orderbook:  # fmt: skip
    return ev.Orderbook(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + MS,
                        is_snapshot=snapshot, bids=((bid, 1.0),), asks=((ask, 1.0),),
                        first_update_id=n, last_update_id=n)  # fmt: skip


def trade(ts: int, price: float, qty: float = 0.5, *, symbol: str = "BTC/USDT",
          exchange: str = "binance", side: ev.Side = ev.Side.SELL) -> ev.MarketTrades:  # fmt: skip
    return ev.MarketTrades(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + MS,
                           trades=(ev.Trade(f"x{ts}", price, qty, side, ts),))  # fmt: skip


def market(seconds: int, *, symbol: str = "BTC/USDT", exchange: str = "binance",
           step_ms: int = 100, start: int = T0) -> list[Any]:  # fmt: skip
    """A snapshot, then a book update every ``step_ms`` and a trade every second."""
    out: list[Any] = [book(start, 100.0, 101.0, symbol=symbol, exchange=exchange, snapshot=True)]
    n = seconds * 1000 // step_ms
    prev = (100.0, 101.0)
    for i in range(1, n + 1):
        ts = start + i * step_ms * MS
        mid = 100.5 + (i % 20 - 10) * 0.1
        now = (round(mid - 0.5, 2), round(mid + 0.5, 2))
        out.append(move(ts, prev, now, symbol=symbol, exchange=exchange, n=i))
        prev = now
        if i % (1000 // step_ms) == 0:
            out.append(trade(ts, now[0], symbol=symbol, exchange=exchange))
    return out


def move(ts: int, prev: tuple[float, float], now: tuple[float, float], *, n: int,
         symbol: str = "BTC/USDT", exchange: str = "binance") -> ev.Orderbook:  # fmt: skip
    """A delta moving the one-level book from ``prev`` (bid, ask) to ``now``."""
    bids = ((prev[0], 0.0), (now[0], 1.0)) if prev[0] != now[0] else ((now[0], 1.0),)
    asks = ((prev[1], 0.0), (now[1], 1.0)) if prev[1] != now[1] else ((now[1], 1.0),)
    return ev.Orderbook(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + MS,
                        bids=bids, asks=asks, first_update_id=n, last_update_id=n)  # fmt: skip


def write_recording(events: Iterable[Any], directory: Path, **options: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    q = AsyncioQueue()
    for e in events:
        q.put(e)
    q.close()
    MarketDataRecorder(q, directory, max_chunk_age=3600.0, fsync_interval=None,
                       snapshot_interval=0, **options).run()  # fmt: skip
    return directory
