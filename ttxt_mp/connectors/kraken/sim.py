"""Kraken Spot public market data (WebSocket API v2 and REST AssetPairs) for the simulator,
written from the Kraken documentation (docs.kraken.com: Spot WebSocket v2 "Book", "Ticker",
"Trade", "Candles (OHLC)", "Heartbeat", "Status", "Ping", "Subscribe", "Unsubscribe", the
"Book checksum (WebSocket v2)" guide, and Spot REST "Get Tradable Asset Pairs").

Mounted under a base path: ``<base>/v2`` (WebSocket) and ``<base>/0/public/AssetPairs``.
A market ``BTCUSDT`` is the v2 symbol ``BTC/USDT``; REST names its assets as Kraken does
(``XBT`` for bitcoin, ``XDG`` for dogecoin: ``wsname`` ``XBT/USDT``).

Books: per (symbol, depth) the last published top-``depth`` view. An update carries the
levels whose quantity changed and ``qty`` 0 for levels that left the book; a level only
pushed out of the depth window by better ones is NOT sent (the client truncates, as the
guide says). Every book message carries the CRC32 checksum of the view's top 10 levels,
computed on the wire strings as the guide does. Fault knobs beyond the shared ones:
:meth:`KrakenVenue.corrupt_checksum` sends wrong checksums; the shared ``skip_update``
fault omits book updates (Kraken has no ids: only the checksum can reveal it).
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import msgspec
from aiohttp import web

from ttxt_mp import argtypes as at
from ttxt_mp.connectors.kraken.instruments import V2_NAMES
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.klines import MIN, KlineSeries
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob, VenueBase

DEPTHS = (10, 25, 100, 500, 1000)  # "Book": depth
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)  # "Candles (OHLC)": minutes
TOP = 10  # the checksum covers the top 10 levels of each side
REST_NAMES = {v: k for k, v in V2_NAMES.items()}  # BTC -> XBT


def iso(ms: int) -> str:
    """RFC 3339 with microseconds, as v2 writes its timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}000Z"


def num(text: str) -> msgspec.Raw:
    """A decimal string as a JSON number with its digits kept (v2 sends full precision)."""
    return msgspec.Raw(text.encode())


def strip(text: str) -> str:
    """The guide's level formatting: no decimal point, no leading zeros."""
    return text.replace(".", "").lstrip("0")


class BookView:
    """One ``book`` subscription stream (symbol, depth): last published view, subscribers."""

    __slots__ = ("symbol", "depth", "bids", "asks", "fan", "dirty")

    def __init__(self, symbol: str, depth: int) -> None:
        self.symbol, self.depth = symbol, depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.fan = Fanout(f"book:{depth}:{symbol}", symbol)
        self.dirty = True


class KrakenVenue(VenueBase):
    name = "kraken"
    knobs = (
        Knob("heartbeat_s", 1.0, "seconds without data before a heartbeat (Heartbeat: about "
             "once a second)", "heartbeat", at.positive()),
        Knob("kline_push", 1.0, "ohlc push period in seconds"),
    )  # fmt: skip
    demo_levels = 25

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.v2 = {f"{m.spec.base}/{m.spec.quote}": s for s, m in markets.items()}
        self.views = {(s, d): BookView(s, d) for s in markets for d in DEPTHS}
        self.trades = {s: Fanout(f"trade:{s}", s) for s in markets}
        self.tickers = {s: Fanout(f"ticker:{s}", s) for s in markets}
        self.ohlc: dict[tuple[str, int], Fanout] = {}
        self.last_bbo: dict[str, tuple[int, int, int, int]] = {}  # the last ticker sent
        self.corrupt: dict[str, int] = {}  # symbol -> book messages to send a wrong checksum
        self.checksums_sent = 0
        self._conn_ids = iter(range(10**9, 10**10))
        self.listen_markets()
        r = self.app.router
        r.add_get("/v2", self.ws_handler)
        r.add_get("/0/public/AssetPairs", self.rest_asset_pairs)

    def wsname(self, sym: str) -> str:
        spec = self.markets[sym].spec
        return f"{spec.base}/{spec.quote}"

    # ================================================================ faults, truth

    def corrupt_checksum(self, symbol: str, count: int = 1) -> None:
        """The next ``count`` book messages of ``symbol`` carry a wrong checksum."""
        sym = symbol.upper()
        if sym not in self.markets:
            raise KeyError(f"kraken has no symbol {symbol!r}")
        self.corrupt[sym] = self.corrupt.get(sym, 0) + count

    # ================================================================ publishers

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        for (s, _), v in self.views.items():
            if s == sym:
                v.dirty = True
        if self.tickers[sym]:
            self.tickers[sym].state = True  # re-check the best bid/offer at the next tick

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        f = self.trades[sym]
        if not f:
            return
        px, qx, name = self.px[sym], self.qx[sym], self.wsname(sym)
        raw = ENC.encode({"channel": "trade", "type": "update", "data": [
            {"symbol": name, "side": "buy" if t.taker_buy else "sell", "price": num(px.fmt(t.tick)),
             "qty": num(qx.fmt(t.lots)), "ord_type": "market", "trade_id": t.trade_id,
             "timestamp": iso(t.ts_ms)} for t in trades]})  # fmt: skip
        for c in f.subs.values():
            c.send(raw)

    def _checksum(self, sym: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> int:
        px, qx = self.px[sym], self.qx[sym]
        text = "".join(strip(px.fmt(p)) + strip(qx.fmt(q)) for p, q in asks[:TOP] + bids[:TOP])
        crc = zlib.crc32(text.encode())
        n = self.corrupt.get(sym, 0)
        if n:
            self.corrupt[sym] = n - 1
            crc = (crc + 1) & 0xFFFFFFFF
        self.checksums_sent += 1
        return crc

    def _book_msg(self, v: BookView, kind: str, bids: list[tuple[int, int]],
                  asks: list[tuple[int, int]], now: int) -> bytes:  # fmt: skip
        sym = v.symbol
        px, qx = self.px[sym], self.qx[sym]
        top_b = sorted(v.bids.items(), reverse=True)[:TOP]
        top_a = sorted(v.asks.items())[:TOP]
        data: dict[str, Any] = {
            "symbol": self.wsname(sym),
            "bids": [{"price": num(px.fmt(p)), "qty": num(qx.fmt(q) if q else "0")} for p, q in bids],
            "asks": [{"price": num(px.fmt(p)), "qty": num(qx.fmt(q) if q else "0")} for p, q in asks],
            "checksum": self._checksum(sym, top_b, top_a),
        }  # fmt: skip
        if kind == "update":
            data["timestamp"] = iso(now)
        return ENC.encode({"channel": "book", "type": kind, "data": [data]})

    def flush_book(self, v: BookView, now: int) -> None:
        """Publish what changed in the view since its last message (see the module doc)."""
        if not v.dirty:
            return
        v.dirty = False
        m = self.markets[v.symbol]
        _, bids, asks = m.snapshot(v.depth)
        nb, na = dict(bids), dict(asks)
        if nb == v.bids and na == v.asks:
            return
        side_b, side_a = m.book.bids.levels, m.book.asks.levels
        db = sorted(((p, q) for p, q in nb.items() if v.bids.get(p) != q), reverse=True)
        db += [(p, 0) for p in v.bids if p not in nb and p not in side_b]  # gone, not pushed out
        da = sorted((p, q) for p, q in na.items() if v.asks.get(p) != q)
        da += [(p, 0) for p in v.asks if p not in na and p not in side_a]
        v.bids, v.asks = nb, na
        if not v.fan:
            return
        raw = self._book_msg(v, "update", db, da, now)
        for c in v.fan.subs.values():
            c.send(raw, v.symbol)

    def _ticker_msg(self, sym: str, kind: str) -> bytes | None:
        m = self.markets[sym]
        b, a = m.book.bids, m.book.asks
        bt, at_ = b.best(), a.best()
        if bt is None or at_ is None:
            return None
        px, qx = self.px[sym], self.qx[sym]
        key = (bt, b.levels[bt], at_, a.levels[at_])
        if kind == "update" and self.last_bbo.get(sym) == key:
            return None
        self.last_bbo[sym] = key
        last = m.trades[-1].tick if m.trades else bt
        return ENC.encode({"channel": "ticker", "type": kind, "data": [{
            "symbol": self.wsname(sym), "bid": num(px.fmt(bt)), "bid_qty": num(qx.fmt(key[1])),
            "ask": num(px.fmt(at_)), "ask_qty": num(qx.fmt(key[3])), "last": num(px.fmt(last)),
            "volume": 0.0, "vwap": num(px.fmt(last)), "low": num(px.fmt(last)),
            "high": num(px.fmt(last)), "change": 0.0, "change_pct": 0.0}]})  # fmt: skip

    def _ohlc_msg(self, f: Fanout, now: int) -> bytes | None:
        minutes, series = f.state
        c = series.current(now)
        if c is None:
            return None
        sym = f.symbol
        px, qx = self.px[sym], self.qx[sym]
        vwap = num(px.fmt(round(c.quote / c.vol))) if c.vol else num(px.fmt(c.c))
        return ENC.encode({"channel": "ohlc", "type": "update", "timestamp": iso(now), "data": [{
            "symbol": self.wsname(sym), "open": num(px.fmt(c.o)), "high": num(px.fmt(c.h)),
            "low": num(px.fmt(c.l)), "close": num(px.fmt(c.c)), "trades": c.n,
            "volume": num(qx.fmt(c.vol)), "vwap": vwap,
            "interval_begin": iso(c.start), "interval": minutes, "timestamp": iso(now)}]})  # fmt: skip

    def on_tick(self, mono: float, now: int) -> None:
        for v in self.views.values():
            if v.fan:
                self.flush_book(v, now)
        for sym, f in self.tickers.items():
            if f and f.state:
                f.state = False
                raw = self._ticker_msg(sym, "update")
                if raw is not None:
                    for c in f.subs.values():
                        c.send(raw)
        for f in self.ohlc.values():
            if f and mono >= f.next_due:
                f.next_due = mono + self.knob("kline_push")
                raw = self._ohlc_msg(f, now)
                if raw is not None:
                    for c in f.subs.values():
                        c.send(raw)
        beat = self.knob("heartbeat_s")
        for c in self.conns.values():
            seen = c.hb  # type: ignore[attr-defined]
            if c.subscriptions and not c.closed:
                if c.sent_frames != seen[0]:
                    c.hb = (c.sent_frames, mono)  # type: ignore[attr-defined]
                elif mono - seen[1] >= beat and not c.queued:
                    c.hb = (c.sent_frames, mono)  # type: ignore[attr-defined]
                    c.send(b'{"channel":"heartbeat"}')

    # ================================================================ websocket

    def _reply(self, conn: SimConnection, method: str, req: dict[str, Any], t_in: str,
               result: dict[str, Any] | None = None, error: str = "", symbol: str = "") -> None:
        # "Subscribe" / "Unsubscribe" / "Ping": method, result|error, success, time_in/out.
        out: dict[str, Any] = {"method": method}
        if error:
            out["error"] = error
            if symbol:
                out["symbol"] = symbol
        elif result is not None:
            out["result"] = result
        if method != "pong":
            out["success"] = not error
        out["time_in"], out["time_out"] = t_in, iso(now_ms())
        if "req_id" in req:
            out["req_id"] = req["req_id"]
        conn.send(ENC.encode(out))

    def _channel(self, params: dict[str, Any], sym: str) -> tuple[str, Fanout] | str:
        """The subscription key and fanout of one symbol of a request, or why not."""
        ch = params.get("channel")
        if ch == "book":
            v = self.views.get((sym, params.get("depth", 10)))
            return (f"book:{sym}", v.fan) if v else f"Invalid depth {params.get('depth')}"
        if ch == "trade":
            return f"trade:{sym}", self.trades[sym]
        if ch == "ticker":
            return f"ticker:{sym}", self.tickers[sym]
        if ch == "ohlc":
            iv = params.get("interval", 1)
            if iv not in INTERVALS:
                return f"Invalid interval {iv}"
            f = self.ohlc.get((sym, iv))
            if f is None:
                f = self.ohlc[(sym, iv)] = Fanout(f"ohlc:{iv}:{sym}", sym)
                f.state = (iv, KlineSeries(self.markets[sym], "", iv * MIN))
            return f"ohlc:{iv}:{sym}", f
        return f"Channel {ch} not found"

    def _subscribe(self, conn: SimConnection, req: dict[str, Any], sub: bool, t_in: str) -> None:
        method = "subscribe" if sub else "unsubscribe"
        params = req.get("params")
        syms = params.get("symbol") if isinstance(params, dict) else None
        if not isinstance(syms, list) or not syms or not all(isinstance(s, str) for s in syms):
            self._reply(conn, method, req, t_in, error="Malformed request")
            return
        now = now_ms()
        for name in syms:  # "There is a separate acknowledgement response for each symbol"
            sym = self.v2.get(name)
            if sym is None:
                self._reply(conn, method, req, t_in, error=f"Currency pair not supported {name}",
                            symbol=name)  # fmt: skip
                continue
            got = self._channel(params, sym)
            if isinstance(got, str):
                self._reply(conn, method, req, t_in, error=got, symbol=name)
                continue
            key, f = got
            result = {"channel": params["channel"], "symbol": name}
            for opt in ("depth", "interval", "event_trigger", "snapshot"):
                if opt in params:
                    result[opt] = params[opt]
            if not sub:
                had = conn.subscriptions.pop(key, None)
                if had is None:
                    self._reply(conn, method, req, t_in, error="Subscription Not Found",
                                symbol=name)  # fmt: skip
                    continue
                had.subs.pop(conn.id, None)
                self._reply(conn, method, req, t_in, result)
                continue
            if key in conn.subscriptions:
                self._reply(conn, method, req, t_in, error="Already subscribed", symbol=name)
                continue
            self._reply(conn, method, req, t_in, result)
            conn.subscriptions[key] = f
            self._first(conn, params, sym, f, now)
            f.subs[conn.id] = conn

    def _first(self, conn: SimConnection, params: dict[str, Any], sym: str, f: Fanout,
               now: int) -> None:  # fmt: skip
        """What a new subscriber gets first: the book snapshot (always, docs: ``snapshot``
        defaults to true), the ticker snapshot when asked."""
        ch = params["channel"]
        if ch == "book" and params.get("snapshot", True):
            v = self.views[(sym, params.get("depth", 10))]
            self.flush_book(v, now)  # existing subscribers get pending updates first
            if not v.fan.subs:  # nobody kept this view current
                _, bids, asks = self.markets[sym].snapshot(v.depth)
                v.bids, v.asks, v.dirty = dict(bids), dict(asks), False
            conn.send(self._book_msg(v, "snapshot", sorted(v.bids.items(), reverse=True),
                                     sorted(v.asks.items()), now))  # fmt: skip
        elif ch == "ticker" and params.get("snapshot", True):
            raw = self._ticker_msg(sym, "snapshot")
            if raw is not None:
                conn.send(raw)

    def unsubscribe_all(self, conn: SimConnection) -> None:
        for f in conn.subscriptions.values():
            f.subs.pop(conn.id, None)
        conn.subscriptions.clear()

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws, conn = await self.open_ws(request)
        conn.hb = (0, time.monotonic())  # type: ignore[attr-defined]
        # "Status": sent on connection, describes the system and this connection.
        conn.send(ENC.encode({"channel": "status", "type": "update", "data": [{
            "api_version": "v2", "connection_id": next(self._conn_ids), "system": "online",
            "version": "2.0.10"}]}))  # fmt: skip
        try:
            await self.read_frames(ws, conn, self._control)
        finally:
            self.forget(conn)
        return ws

    def _control(self, conn: SimConnection, text: str) -> None:
        t_in = iso(now_ms())
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            self._reply(conn, "error", {}, t_in, error="Malformed request")
            return
        method = req["method"]
        if method == "ping":
            self._reply(conn, "pong", req, t_in)
        elif method in ("subscribe", "unsubscribe"):
            self._subscribe(conn, req, method == "subscribe", t_in)
        else:
            self._reply(conn, method, req, t_in, error=f"Method not found {method}")

    # ================================================================ REST

    async def rest_asset_pairs(self, request: web.Request) -> web.Response:
        """"Get Tradable Asset Pairs": ``{"error": [], "result": {PAIR: {...}}}``."""
        want = request.query.get("pair")
        result: dict[str, Any] = {}
        for sym, m in self.markets.items():
            spec = m.spec
            base, quote = REST_NAMES.get(spec.base, spec.base), REST_NAMES.get(spec.quote, spec.quote)
            alt = f"{base}{quote}"
            if want and want not in (alt, f"{base}/{quote}"):
                continue
            px, qx = self.px[sym], self.qx[sym]
            result[alt] = {
                "altname": alt, "wsname": f"{base}/{quote}", "aclass_base": "currency",
                "base": base, "aclass_quote": "currency", "quote": quote, "lot": "unit",
                "cost_decimals": px.dp + qx.dp, "pair_decimals": px.dp, "lot_decimals": qx.dp,
                "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
                "fees": [[0, 0.26]], "fees_maker": [[0, 0.16]], "fee_volume_currency": "ZUSD",
                "margin_call": 80, "margin_stop": 40, "ordermin": qx.fmt(1), "costmin": "0.5",
                "tick_size": spec.tick, "status": "online",
            }  # fmt: skip
        if want and not result:
            return web.json_response({"error": ["EQuery:Unknown asset pair"]})
        return web.json_response({"error": [], "result": result})
