"""Bybit v5 public market data, category ``linear`` (USDT perpetuals), written from the Bybit
v5 documentation (github.com/bybit-exchange/docs, docs/v5: "Connect", "Orderbook", "Trade",
"Ticker", "All Liquidation", "Get Instruments Info", "Get Orderbook"). The spot adapter
(:class:`~ttxt_mp.connectors.bybit.sim.BybitVenue`) with the linear category's differences:

- WebSocket ``/v5/public/linear``; "No args limit for Futures" (only the 21,000 characters);
  replies carry ``req_id`` (``""`` when none) and a subscribe's ``ret_msg`` is ``""``.
- Orderbook depths 1, 50, 200, 1000 (pushed every 10/20/100/200 ms); level 1 is snapshots
  only, with ``ts`` before ``type`` ("Futures (Level 1)"), other levels ``type`` first.
  ``GET /v5/market/orderbook``: limit [1, 1000], default 25, ``u`` of the 1000-level stream.
- ``publicTrade`` entries carry ``L`` (tick direction) and ``seq`` ("Unique field for Perps
  & futures").
- ``tickers.{symbol}``: a snapshot on subscribing, then every ``ticker_push`` s a delta with
  only the fields that changed ("If a response param is not found in the message, then its
  value has not changed"). The mark price drifts a few ticks around the book's mid, the index
  around it too; the funding rate follows their premium; ``nextFundingTime`` is the next
  multiple of the ``funding_interval`` knob; open interest moves with the trades. All of
  it changes only when the market steps (frozen while the simulator is paused).
- ``allLiquidation.{symbol}``: liquidations at ``liquidations_per_sec`` (market time), sent
  in batches every ``liquidation_push`` s ("Push frequency: 500ms"); ``S`` is the liquidated
  position's side, ``p`` its bankruptcy price (below the mark for a long, above for a short).
- ``GET /v5/market/instruments-info?category=linear``: ``LinearPerpetual`` instruments,
  paged by ``limit`` ([1, 1000], default 500) and ``cursor`` / ``nextPageCursor``.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from ttxt_mp import argtypes as at
from ttxt_mp.connectors.bybit.sim import BybitVenue
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob

__all__ = ["BybitLinearVenue", "TickerModel"]

LINEAR_DEPTHS = (1, 50, 200, 1000)  # "Orderbook" depths for linear
FUNDING_CAP = 0.00375  # the documented example's upperFundingRate / lowerFundingRate


def _knobs() -> tuple[Knob, ...]:
    spot = tuple(k for k in BybitVenue.knobs if k.name != "push_ms")
    return spot + (
        Knob("push_ms", {1: 10, 50: 20, 200: 100, 1000: 200}, "orderbook push period in ms "
             "by depth (Orderbook, linear)"),
        Knob("ticker_push", 0.1, "tickers push period in seconds (Ticker: derivatives 100ms)"),
        Knob("funding_interval", 8 * 3600.0, "funding interval in seconds (fundingIntervalHour "
             "8); nextFundingTime is its next multiple", "funding-interval", at.positive()),
        Knob("liquidations_per_sec", 0.5, "liquidations per second of market time per symbol "
             "(0: none)", "liquidations-per-sec", float),
        Knob("liquidation_push", 0.5, "allLiquidation push period in seconds (500ms)"),
    )  # fmt: skip


class TickerModel:
    """The linear ticker of one symbol: mark, index, funding, open interest, as the venue
    would report them, and the fields last sent (what a delta is computed against)."""

    def __init__(self, venue: BybitLinearVenue, sym: str, market: Market) -> None:
        self.venue, self.sym, self.market = venue, sym, market
        self.rng = random.Random(zlib.crc32(sym.encode()))
        self.mark_off = 0.0  # ticks from the mid
        self.index_off = 0.0
        self.last_tick = 0
        self.tick_dir = "ZeroPlusTick"
        self.volume = 0  # lots traded
        self.turnover = 0.0
        self.oi = max(1, int(market.mid)) * 10  # lots, any plausible start
        self.ts = now_ms()
        self.sent: dict[str, str] = {}  # the fields as last sent
        self.cs = 0
        self.fan = Fanout(f"tickers.{sym}", sym)

    def on_book(self, ev: BookEvent) -> None:
        """Market time moved: the mark and index drift (bounded, around the mid)."""
        g = self.rng.gauss
        self.mark_off = max(-3.0, min(3.0, self.mark_off + 0.3 * g(0.0, 1.0)))
        self.index_off = max(-4.0, min(4.0, self.index_off + 0.3 * g(0.0, 1.0)))
        self.ts = ev.ts_ms

    def on_trades(self, trades: list[Trade]) -> None:
        for t in trades:
            if self.last_tick and t.tick != self.last_tick:
                self.tick_dir = "PlusTick" if t.tick > self.last_tick else "MinusTick"
            elif self.last_tick:  # "Enum: tickDirection": same price as the last trade
                self.tick_dir = ("ZeroPlusTick" if self.tick_dir.endswith("PlusTick")
                                 else "ZeroMinusTick")  # fmt: skip
            self.last_tick = t.tick
            self.volume += t.lots
            self.turnover += self.venue.px[self.sym].to_float(t.tick) * self.venue.qx[
                self.sym].to_float(t.lots)  # fmt: skip
            # each trade opens or closes as many contracts (never below one lot)
            self.oi = max(1, self.oi + (t.lots if self.rng.random() < 0.5 else -t.lots))

    def mark_ticks(self) -> int:
        return max(1, round(self.market.mid + self.mark_off))

    def fields(self) -> dict[str, str]:
        """The documented linear ticker fields now (strings, as on the wire)."""
        px, qx = self.venue.px[self.sym], self.venue.qx[self.sym]
        mark = self.mark_ticks()
        index = max(1, round(self.market.mid + self.index_off))
        premium = (mark - index) / index
        rate = max(-FUNDING_CAP, min(FUNDING_CAP, round(premium, 6)))
        interval_ms = max(1, int(self.venue.knob("funding_interval") * 1000))
        next_funding = (self.ts // interval_ms + 1) * interval_ms
        _, bids, asks = self.market.snapshot(1)
        bid, ask = (bids[0] if bids else (0, 0)), (asks[0] if asks else (0, 0))
        oi_value = qx.to_float(self.oi) * px.to_float(mark)
        return {
            "symbol": self.sym, "tickDirection": self.tick_dir,
            "lastPrice": px.fmt(self.last_tick or mark), "markPrice": px.fmt(mark),
            "indexPrice": px.fmt(index), "openInterest": qx.fmt(self.oi),
            "openInterestValue": f"{oi_value:.2f}", "turnover24h": f"{self.turnover:.4f}",
            "volume24h": qx.fmt(self.volume),
            "fundingIntervalHour": f"{self.venue.knob('funding_interval') / 3600:g}",
            "fundingCap": f"{FUNDING_CAP:g}", "nextFundingTime": str(next_funding),
            "fundingRate": f"{rate:.6f}".rstrip("0").rstrip(".") if rate else "0",
            "bid1Price": px.fmt(bid[0]), "bid1Size": qx.fmt(bid[1]),
            "ask1Price": px.fmt(ask[0]), "ask1Size": qx.fmt(ask[1]),
        }  # fmt: skip

    def message(self, kind: str, data: dict[str, str], now: int) -> bytes:
        # "Ticker" response (Linear): topic, type, data, cs, ts.
        return ENC.encode({"topic": self.fan.name, "type": kind, "data": data, "cs": self.cs,
                           "ts": now})  # fmt: skip

    def flush(self, now: int) -> None:
        """Send a delta of the fields that changed since the last message (if any did)."""
        cur = self.fields()
        if not self.sent:
            self.sent = cur
            return
        delta = {k: v for k, v in cur.items() if self.sent.get(k) != v}
        if not delta:
            return
        self.sent = cur
        self.cs += 1
        raw = self.message("delta", {"symbol": self.sym, **delta}, now)
        for c in self.fan.subs.values():
            c.send(raw)

    def snapshot_to(self, conn: SimConnection, now: int) -> None:
        """A new subscriber's snapshot: the state the next delta is computed against."""
        self.flush(now)  # existing subscribers get what changed first
        conn.send(self.message("snapshot", dict(self.sent), now))


class BybitLinearVenue(BybitVenue):
    """See the module docstring."""

    name = "bybit_linear"
    category = "linear"
    depths = LINEAR_DEPTHS
    max_args = None  # "No args limit for Futures"
    rest_topic_depth = 1000  # "Get Orderbook": u of the 1000-level stream (contract)
    rest_book_limit = (25, 1, 1000)  # linear: [1, 1000], default 25
    recent_trade_limit = (500, 1, 1000)  # linear: [1, 1000], default 500
    ack_ret_msg = ""  # "Understanding the Subscription Response" (Linear/Inverse)
    reply_req_id = True
    knobs = _knobs()

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.tickers: dict[str, TickerModel] = {s: TickerModel(self, s, m) for s, m in markets.items()}
        self.liq_fans = {s: Fanout(f"allLiquidation.{s}", s) for s in markets}
        self.liq_rng = {s: random.Random(zlib.crc32(b"liq" + s.encode())) for s in markets}
        self.liq_next: dict[str, int] = {}
        self.liq_pending: dict[str, list[dict[str, Any]]] = {s: [] for s in markets}
        self.liquidations: dict[str, deque[dict[str, Any]]] = {
            s: deque(maxlen=1000) for s in markets}  # the ones sent, for tests
        self.liq_due = 0.0
        self.ticker_due = 0.0

    # ---------------------------------------------------------------- market events

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        super()._on_book(sym, ev)
        tk = self.tickers.get(sym)
        if tk is None:
            return
        tk.on_book(ev)
        self._liquidate(sym, ev.ts_ms)

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        super()._on_trades(sym, trades)
        tk = self.tickers.get(sym)
        if tk is not None:
            tk.on_trades(trades)

    def _trade_entry(self, sym: str, t: Trade) -> dict[str, Any]:
        tk = self.tickers.get(sym)
        return {**super()._trade_entry(sym, t), "L": tk.tick_dir if tk else "PlusTick",
                "seq": t.seq}  # fmt: skip

    def _liquidate(self, sym: str, ts_ms: int) -> None:
        """Liquidations arrive at ``liquidations_per_sec`` of market time (a Poisson process)."""
        rate = self.knob("liquidations_per_sec")
        if rate <= 0:
            return
        rng = self.liq_rng[sym]
        nxt = self.liq_next.get(sym)
        if nxt is None:
            nxt = self.liq_next[sym] = ts_ms + int(rng.expovariate(rate) * 1000)
        while ts_ms >= nxt:
            long = rng.random() < 0.5  # the liquidated position's side
            mark = self.tickers[sym].mark_ticks()
            away = max(1, int(mark * rng.uniform(0.002, 0.02)))
            lots = max(1, int(rng.expovariate(1 / 20)))
            self.liq_pending[sym].append({
                "T": nxt, "s": sym, "S": "Buy" if long else "Sell",
                "v": self.qx[sym].fmt(lots),
                "p": self.px[sym].fmt(max(1, mark - away) if long else mark + away)})  # fmt: skip
            nxt += max(1, int(rng.expovariate(rate) * 1000))
        self.liq_next[sym] = nxt

    # ---------------------------------------------------------------- publishers

    def on_tick(self, mono: float, now: int) -> None:
        super().on_tick(mono, now)
        if mono >= self.ticker_due:
            self.ticker_due = mono + self.knob("ticker_push")
            for tk in self.tickers.values():
                if tk.fan:
                    tk.flush(now)
        if mono >= self.liq_due:
            self.liq_due = mono + self.knob("liquidation_push")
            for sym, pending in self.liq_pending.items():
                if pending:
                    self._send_liquidations(sym, pending, now)
                    self.liq_pending[sym] = []

    def _send_liquidations(self, sym: str, batch: list[dict[str, Any]], now: int) -> None:
        f = self.liq_fans[sym]
        if not f:
            return  # nobody listens: gone, as on the venue
        self.liquidations[sym].extend(batch)
        # "All Liquidation" response: topic, type snapshot, ts, data array.
        raw = ENC.encode({"topic": f.name, "type": "snapshot", "ts": now, "data": batch})
        for c in f.subs.values():
            c.send(raw)

    def ticker_truth(self, symbol: str) -> dict[str, str]:
        """The ticker fields last sent for ``symbol`` (what a subscriber has merged)."""
        return dict(self.tickers[symbol].sent)

    def _ts_first(self, depth: int) -> bool:
        return depth == 1  # "Futures (Level 1): the "ts" field appears before the "type""

    # ---------------------------------------------------------------- websocket

    def _extra_topic(self, arg: str) -> Fanout | None:
        kind, _, sym = arg.partition(".")
        if kind == "tickers" and sym in self.tickers:
            return self.tickers[sym].fan
        if kind == "allLiquidation" and sym in self.liq_fans:
            return self.liq_fans[sym]
        return None

    def _after_subscribe(self, conn: SimConnection, f: Fanout, now: int, mono: float) -> None:
        tk = self.tickers.get(f.symbol)
        if tk is not None and f is tk.fan:
            tk.snapshot_to(conn, now)

    # ---------------------------------------------------------------- REST

    async def rest_instruments(self, request: web.Request) -> web.Response:
        q = request.query
        sym, err = self._cat_symbol(q, symbol_required=False)
        if err:
            return err
        limit, err = self._limit(q, 500, 1, 1000)
        if err:
            return err
        names = [sym] if sym else sorted(self.markets)
        start = 0
        cursor = q.get("cursor")
        if cursor:
            last = dict(p.partition("=")[::2] for p in unquote(cursor).split("&")).get("last")
            if last not in names:
                return self._err(10001, "params error: cursor is invalid")
            start = names.index(last) + 1
        page = names[start : start + limit]
        more = start + limit < len(names)
        nxt = quote(f"first={page[0]}&last={page[-1]}", safe="") if more and page else ""
        ids = {n: i for i, n in enumerate(sorted(self.markets), 1)}
        return self._ok({"category": self.category, "list": [  # "Get Instruments Info" (linear)
            self._instrument(ids[n], n) for n in page], "nextPageCursor": nxt})

    def _instrument(self, i: int, sym: str) -> dict[str, Any]:
        spec = self.markets[sym].spec
        px, qx = self.px[sym], self.qx[sym]
        interval_min = max(1, round(self.knob("funding_interval") / 60))
        return {
            "symbol": sym, "symbolId": i, "contractType": "LinearPerpetual", "status": "Trading",
            "baseCoin": spec.base, "quoteCoin": spec.quote, "launchTime": "1585526400000",
            "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(px.dp),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00",
                               "leverageStep": "0.01"},
            "priceFilter": {"minPrice": spec.tick, "maxPrice": "1999999.80",
                            "tickSize": spec.tick},
            "lotSizeFilter": {"maxOrderQty": "10000", "minOrderQty": qx.fmt(1),
                              "qtyStep": spec.step, "postOnlyMaxOrderQty": "10000",
                              "maxMktOrderQty": "5000", "minNotionalValue": "5"},
            "unifiedMarginTrade": True, "fundingInterval": interval_min, "settleCoin": spec.quote,
            "copyTrading": "both", "upperFundingRate": f"{FUNDING_CAP:g}",
            "lowerFundingRate": f"{-FUNDING_CAP:g}", "isPreListing": False,
            "preListingInfo": None,
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            "symbolType": "",
        }  # fmt: skip

