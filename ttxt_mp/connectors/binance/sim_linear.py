"""Binance USDⓈ-M futures public market data (simulated venue ``binance_linear``), written
from the USDⓈ-M Futures documentation (developers.binance.com/docs/derivatives/
usds-margined-futures: "WebSocket Market Streams" (Diff. Book Depth, Partial Book Depth,
Aggregate Trade, Kline/Candlestick, Individual Symbol Book Ticker, Mark Price and
Liquidation Order Streams; "Live Subscribing/Unsubscribing"; "How to manage a local order
book correctly") and "Market Data" REST (Exchange Information, Order Book, Open Interest,
Check Server Time)).

The Spot adapter with the futures differences: REST under ``/fapi/v1``; depth events carry
``T`` and ``pu`` (the ``u`` of the stream's previous event), diff speeds 250 ms (default),
500 ms, 100 ms; no ``@trade`` stream (trades are ``@aggTrade``); klines every 250 ms and no
``1s``; ``bookTicker`` with ``e``/``E``/``T``; ``<sym>@markPrice[@1s]`` every 3 s / 1 s
(mark near the mid, index, funding rate, next funding time on the funding interval's UTC
boundaries); ``<sym>@forceOrder``: the latest liquidation of the last second, generated at
the ``liquidations_per_min`` knob; open interest moves with the trades. Limits: 10
incoming messages per second per connection, REQUEST_WEIGHT 2400 per minute, a ping every
3 minutes and 10 minutes to answer it. The fault knobs are the Spot adapter's.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from ttxt_mp import argtypes as at
from ttxt_mp.connectors.binance.sim import INTERVALS, BinanceVenue, _DiffAcc
from ttxt_mp.sim.market import Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob, VenueBase

if TYPE_CHECKING:
    from ttxt_mp.sim.trading import TradingCore

__all__ = ["BinanceLinearVenue"]

# "Kline/Candlestick chart intervals" of the futures kline stream: no 1s.
FUT_INTERVALS = {k: v for k, v in INTERVALS.items() if k != "1s"}
_FUT_STREAM = re.compile(
    r"^(?P<sym>[a-z0-9_]+)@(?:(?P<depth>depth(?P<lv>5|10|20)?(?:@(?P<speed>100ms|500ms))?)"
    r"|(?P<agg>aggTrade)|kline_(?P<iv>" + "|".join(FUT_INTERVALS) + r")"
    r"|(?P<bt>bookTicker)|(?P<mark>markPrice(?:@(?P<mspeed>1s))?)|(?P<force>forceOrder))$"
)
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)  # "Valid limits:[5, 10, 20, 50, 100, 500, 1000]"
PERPETUAL_DELIVERY_MS = 4133404800000  # a perpetual's deliveryDate in the docs' example
MAX_FUNDING_RATE = 0.00375


class _Perp:
    """A perpetual's own state beside the book: mark basis, open interest, liquidations.

    Its random numbers come from its own generator (seeded by the symbol), never the
    market's, so the book's event sequence stays what the seed says."""

    __slots__ = ("rng", "basis", "oi_lots", "oi_time", "liq_carry", "pending", "step_carry")

    def __init__(self, market: Market) -> None:
        self.rng = np.random.default_rng(zlib.crc32(market.spec.symbol.encode()))
        self.basis = 0.0
        self.oi_lots = max(1, int(market.spec.typical_qty / float(market.spec.step) * 2000))
        self.oi_time = now_ms()
        self.liq_carry = 0.0
        self.step_carry = 0.0
        self.pending: dict[str, Any] | None = None  # the latest liquidation, not yet pushed


class BinanceLinearVenue(BinanceVenue):
    name = "binance_linear"
    knobs = (
        Knob("ping_interval", 180.0, "seconds between server ping frames (WebSocket Market "
             "Streams: every 3 minutes)", "ping-interval", at.positive()),
        Knob("pong_timeout", 600.0, "seconds without a pong before a disconnect (10 minutes)",
             "pong-timeout", at.positive()),
        Knob("max_incoming_per_sec", 10, "incoming messages per second per connection "
             "(10; 0 = no check)", "max-incoming", at.non_negative(int)),
        Knob("weight_limit", 2400, "REQUEST_WEIGHT per minute (exchangeInfo rateLimits: 2400)",
             "weight-limit", at.positive(int)),
        Knob("funding_interval_h", 8.0, "hours between fundings (next funding time on these "
             "UTC boundaries)", "funding-interval", at.positive()),
        Knob("liquidations_per_min", 6.0, "liquidation orders per minute per symbol (pushed "
             "at most one per second, the latest; 0 = none)", "liquidations",
             at.non_negative()),
    )  # fmt: skip
    wire_decimals = None  # futures show the increment's decimals ("tickSize": "0.10")
    rest_prefix = "/fapi/v1"
    stream_re = _FUT_STREAM
    intervals = FUT_INTERVALS
    diff_streams = ("@depth", "@depth@100ms", "@depth@500ms")
    agg_extra: dict[str, Any] = {}
    max_depth_limit = 1000
    default_depth_limit = 500
    partial_keys = ("b", "a")

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.perps = {s: _Perp(m) for s, m in markets.items()}
        self._partial_u: dict[str, int] = {}
        self._last_mono = 0.0
        self.app.router.add_get("/fapi/v1/openInterest", self.rest_open_interest)

    # ================================================================ streams

    @staticmethod
    def depth_period(speed: str | None) -> float:
        return {"100ms": 0.1, "500ms": 0.5}.get(speed or "", 0.25)  # "250ms, 500ms, 100ms"

    @staticmethod
    def kline_period(iv: str) -> float:
        return 0.25  # "Update Speed: 250ms"

    def _diff_head(self, acc: _DiffAcc, sym: str, now: int) -> dict[str, Any]:
        return {"e": "depthUpdate", "E": now, "T": now, "s": sym, "U": acc.first_u,
                "u": acc.last_u, "pu": acc.prev_u or acc.first_u - 1}  # fmt: skip

    def _partial_head(self, f: Fanout, uid: int, now: int) -> dict[str, Any]:
        prev = self._partial_u.get(f.name, uid - 1)
        self._partial_u[f.name] = uid
        return {"e": "depthUpdate", "E": now, "T": now, "s": f.symbol, "U": min(prev + 1, uid),
                "u": uid, "pu": prev}  # fmt: skip

    def _ticker_head(self, uid: int) -> dict[str, Any]:
        t = now_ms()
        return {"e": "bookTicker", "u": uid, "E": t, "T": t}

    def _snapshot_head(self, uid: int) -> dict[str, Any]:
        t = now_ms()
        return {"lastUpdateId": uid, "E": t, "T": t}

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        perp = self.perps[sym]
        for t in trades:  # a fill opens or closes positions: open interest moves by its size
            opens = perp.rng.random() < 0.5
            perp.oi_lots = max(1, perp.oi_lots + (t.lots if opens else -t.lots))
            perp.oi_time = t.ts_ms
        super()._on_trades(sym, trades)

    def on_tick(self, mono: float, now: int) -> None:
        dt = mono - self._last_mono if self._last_mono else 0.0
        self._last_mono = mono
        rate = self.knob("liquidations_per_min") / 60.0
        for sym, perp in self.perps.items():
            perp.step_carry += dt
            while perp.step_carry >= 1.0:  # the basis walks once a second
                perp.step_carry -= 1.0
                perp.basis = max(-0.001, min(0.001, perp.basis + perp.rng.normal() * 0.00005))
            perp.liq_carry += rate * dt
            while perp.liq_carry >= 1.0:
                perp.liq_carry -= 1.0
                perp.pending = self._liquidation(sym, perp, now)
            if perp.pending is not None and not self.streams.get(f"{sym.lower()}@forceOrder"):
                perp.pending = None  # "only the latest one ... within 1000ms"
        super().on_tick(mono, now)

    def on_tick_stream(self, f: Fanout, m: re.Match[str], now: int) -> float | None:
        if m["mark"]:
            self._publish(f, ENC.encode(self._mark_price(f.symbol, now)))
            return 1.0 if m["mspeed"] else 3.0  # "3000ms or 1000ms"
        if m["force"]:
            perp = self.perps[f.symbol]
            if perp.pending is not None:
                self._publish(f, ENC.encode({"e": "forceOrder", "E": now, "o": perp.pending}))
                perp.pending = None
            return 1.0  # "1000ms"
        return None

    def mark_index(self, sym: str) -> tuple[float, float]:
        """(mark, index) now: the index is the book's mid, the mark a small basis off it."""
        m = self.markets[sym]
        index = m.mid * float(m.spec.tick)
        return index * (1.0 + self.perps[sym].basis), index

    def _mark_price(self, sym: str, now: int) -> dict[str, Any]:
        mark, index = self.mark_index(sym)
        rate = max(-MAX_FUNDING_RATE, min(MAX_FUNDING_RATE, 0.0001 + 0.3 * (mark - index) / index))
        period = int(self.knob("funding_interval_h") * 3_600_000)
        # "Mark Price Stream" payload.
        return {"e": "markPriceUpdate", "E": now, "s": sym, "p": f"{mark:.8f}",
                "i": f"{index:.8f}", "P": f"{index:.8f}", "r": f"{rate:.8f}",
                "T": (now // period + 1) * period}  # fmt: skip

    def _liquidation(self, sym: str, perp: _Perp, now: int) -> dict[str, Any] | None:
        """A liquidation order at the touch: SELL closes a long (it hits the bids)."""
        book = self.markets[sym].book
        sell = bool(perp.rng.random() < 0.5)
        best = book.bids.best() if sell else book.asks.best()
        if best is None:
            return None
        m = self.markets[sym]
        lots = max(1, int(math.exp(perp.rng.normal()) * m.spec.typical_qty / float(m.spec.step)))
        slip = int(perp.rng.integers(0, 5))
        limit = max(1, best - slip) if sell else best + slip
        px, qx = self.px[sym], self.qx[sym]
        # "Liquidation Order Streams" order object.
        return {"s": sym, "S": "SELL" if sell else "BUY", "o": "LIMIT", "f": "IOC",
                "q": qx.fmt(lots), "p": px.fmt(limit), "ap": px.fmt(best), "X": "FILLED",
                "l": qx.fmt(lots), "z": qx.fmt(lots), "T": now}  # fmt: skip

    # ================================================================ simulator hooks

    def attach_trading(self, core: TradingCore, *, listen_key_ttl: float) -> Any:
        from ttxt_mp.connectors.binance.sim_futures_trading import BinanceFuturesTrading

        return BinanceFuturesTrading(self, core, listen_key_ttl)

    blast_payloads = VenueBase.blast_payloads  # no blast mode (no @trade stream)

    # ================================================================ REST

    @staticmethod
    def depth_weight(limit: int) -> int:
        """"Order Book" weight: 5, 10, 20, 50: 2; 100: 5; 500: 10; 1000: 20."""
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20

    def depth_limit_ok(self, limit: int) -> bool:
        return limit in DEPTH_LIMITS

    async def rest_open_interest(self, request: web.Request) -> web.Response:
        h, sym, err = self._weighed_symbol(request, 1)  # "Open Interest" weight 1
        if err:
            return err
        assert sym is not None
        perp = self.perps[sym]
        # "Open Interest" response.
        return web.json_response({"openInterest": self.qx[sym].fmt(perp.oi_lots),
                                  "symbol": sym, "time": perp.oi_time}, headers=h)  # fmt: skip

    async def rest_exchange_info(self, request: web.Request) -> web.Response:
        h, over = self._weigh(1)  # "Exchange Information" weight 1, no parameters
        if over:
            return over
        quotes = sorted({m.spec.quote for m in self.markets.values()})
        return web.json_response({
            "exchangeFilters": [],
            "rateLimits": [
                {"interval": "MINUTE", "intervalNum": 1, "limit": self.knob("weight_limit"),
                 "rateLimitType": "REQUEST_WEIGHT"},
                {"interval": "MINUTE", "intervalNum": 1, "limit": 1200, "rateLimitType": "ORDERS"},
                {"interval": "SECOND", "intervalNum": 10, "limit": 300, "rateLimitType": "ORDERS"},
            ],
            "serverTime": now_ms(),
            "assets": [{"asset": q, "marginAvailable": True, "autoAssetExchange": "0"}
                       for q in quotes],
            "symbols": [self._fut_symbol_info(n) for n in self.markets],
            "timezone": "UTC",
        }, headers=h)  # fmt: skip

    def _fut_symbol_info(self, sym: str) -> dict[str, Any]:
        spec = self.markets[sym].spec
        px, qx = self.px[sym], self.qx[sym]
        return {
            "symbol": sym, "pair": sym, "contractType": "PERPETUAL",
            "deliveryDate": PERPETUAL_DELIVERY_MS, "onboardDate": 1569398400000,
            "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": spec.base, "quoteAsset": spec.quote, "marginAsset": spec.quote,
            "pricePrecision": px.dp, "quantityPrecision": qx.dp, "baseAssetPrecision": 8,
            "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
            "settlePlan": 0, "triggerProtect": "0.0500",
            "filters": [  # "Filters" of the futures docs
                {"filterType": "PRICE_FILTER", "minPrice": px.fmt(1),
                 "maxPrice": px.fmt(px.from_float(1_000_000.0)), "tickSize": px.fmt(1)},
                {"filterType": "LOT_SIZE", "minQty": qx.fmt(1), "maxQty": "1000",
                 "stepSize": qx.fmt(1)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": qx.fmt(1), "maxQty": "120",
                 "stepSize": qx.fmt(1)},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": "5"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
                 "multiplierDown": "0.9500", "multiplierDecimal": "4"},
            ],
            "OrderType": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                          "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        }  # fmt: skip
