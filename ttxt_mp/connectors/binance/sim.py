"""Binance Spot public market data, written from the Binance Spot API documentation
(github.com/binance/binance-spot-api-docs: "Web Socket Streams for Binance" (diff and
partial depth, trade, aggTrade, kline and bookTicker streams), "Public Rest API for
Binance", "Error codes for Binance"). Mounted under a base path so URLs read like the real ones:
<base>/api/v3/depth, <base>/ws/<stream>, <base>/stream?streams=a/b.

What differs in Binance's other markets is behind small hooks (the stream pattern, REST
prefix, payload heads, update periods, depth weights), so the USDⓈ-M futures adapter
(:mod:`ttxt_mp.connectors.binance.sim_linear`) is a subclass.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ttxt_mp import argtypes as at
from ttxt_mp.sim.blast import ID_MARK, TEMPLATE_FRAMES, TS_MARK, price_qty
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.fmt import fmt_product
from ttxt_mp.sim.klines import MIN, Candle
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, BlastTarget, Fanout, Knob, VenueBase

# "Kline/Candlestick chart intervals" (web-socket-streams.md / enums).
INTERVALS: dict[str, tuple[str, int]] = {
    "1s": ("", 1000), "1m": ("", MIN), "3m": ("", 3 * MIN), "5m": ("", 5 * MIN),
    "15m": ("", 15 * MIN), "30m": ("", 30 * MIN), "1h": ("", 60 * MIN), "2h": ("", 120 * MIN),
    "4h": ("", 240 * MIN), "6h": ("", 360 * MIN), "8h": ("", 480 * MIN), "12h": ("", 720 * MIN),
    "1d": ("", 1440 * MIN), "3d": ("", 3 * 1440 * MIN), "1w": ("W", 7 * 1440 * MIN),
    "1M": ("M", 0),
}
_STREAM = re.compile(
    r"^(?P<sym>[a-z0-9]+)@(?:(?P<depth>depth(?P<lv>5|10|20)?(?:@(?P<speed>100ms|1000ms))?)"
    r"|(?P<trade>trade)|(?P<agg>aggTrade)|kline_(?P<iv>1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"
    r"|(?P<bt>bookTicker))$"
)
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID_STR = re.compile(r"^[A-Za-z0-9]{1,36}$")
MAX_STREAMS = 1024  # "A single connection can listen to a maximum of 1024 streams."
_NO_ID = object()

if TYPE_CHECKING:
    from ttxt_mp.sim.trading import TradingCore


class StreamError(ValueError):
    pass


class BinanceVenue(VenueBase):
    name = "binance"
    rest_prefix = "/api/v3"
    stream_re = _STREAM
    intervals = INTERVALS
    diff_streams = ("@depth", "@depth@100ms", "@depth@1000ms")
    agg_extra: dict[str, Any] = {"M": True}  # "Ignore" field of Spot's aggTrade
    max_depth_limit = 5000
    partial_keys = ("bids", "asks")  # of the "Partial Book Depth Streams" payload
    knobs = (
        Knob("ping_interval", 20.0, "seconds between server ping frames (General WSS "
             "information: every 20 s)", "ping-interval", at.positive()),
        Knob("pong_timeout", 60.0, "seconds without a pong before a disconnect (1 min)",
             "pong-timeout", at.positive()),
        Knob("max_incoming_per_sec", 5, "incoming messages per second per connection "
             "(Websocket Limits: 5; 0 = no check)", "max-incoming", at.non_negative(int)),
        Knob("weight_limit", 6000, "REQUEST_WEIGHT per minute (IP Limits: 6000)",
             "weight-limit", at.positive(int)),
    )  # fmt: skip
    wire_decimals = 8  # REST and streams show 8 decimals
    demo_levels = 1000

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.streams: dict[str, Fanout] = {}
        self.combined: set[int] = set()  # connection ids with the `combined` property
        self.weight_window = 0
        self.weight_used = 0
        self._book_top: dict[str, tuple[int, int, int, int]] = {}
        self._kline_last: dict[str, int] = {}
        self._agg_id: dict[str, int] = {}  # last aggregate trade id per symbol
        self.listen_markets()
        r = self.app.router
        r.add_get("/ws", self.ws_handler)
        r.add_get("/ws/{stream}", self.ws_handler)
        r.add_get("/stream", self.ws_handler)
        pre = self.rest_prefix
        r.add_get(f"{pre}/ping", self.rest_ping)
        r.add_get(f"{pre}/time", self.rest_time)
        r.add_get(f"{pre}/exchangeInfo", self.rest_exchange_info)
        r.add_get(f"{pre}/depth", self.rest_depth)
        r.add_get(f"{pre}/trades", self.rest_trades)
        r.add_get(f"{pre}/klines", self.rest_klines)

    # ================================================================ streams

    def parse_stream(self, name: str) -> re.Match[str]:
        m = self.stream_re.match(name)
        if m is None:
            raise StreamError(f"Invalid request: unknown stream '{name}'")
        if m["sym"].upper() not in self.markets:
            raise StreamError(f"Invalid request: unknown symbol in stream '{name}'")
        return m

    def subscribe(self, conn: SimConnection, name: str) -> None:
        m = self.parse_stream(name)
        f = self.streams.get(name)
        if f is None:
            f = self.streams[name] = Fanout(name, m["sym"].upper())
            f.state = m
        if not f.subs:
            f.next_due = 0.0
            f.state = m
            if m["depth"] and m["lv"] is None:
                f.state = _DiffAcc(m)
        f.subs[conn.id] = conn
        conn.subscriptions[name] = f

    def unsubscribe(self, conn: SimConnection, name: str) -> None:
        f = conn.subscriptions.pop(name, None)
        if f is not None:
            f.subs.pop(conn.id, None)

    def unsubscribe_all(self, conn: SimConnection) -> None:
        for name in list(conn.subscriptions):
            self.unsubscribe(conn, name)
        self.combined.discard(conn.id)

    def _publish(self, f: Fanout, raw: bytes, depth: bool = False) -> None:
        """Send raw payload; combined connections get {"stream":..,"data":..} (General WSS info)."""
        wrapped: bytes | None = None
        sym = f.symbol if depth else None
        for cid, conn in f.subs.items():
            if cid in self.combined:
                if wrapped is None:
                    wrapped = b'{"stream":"' + f.name.encode() + b'","data":' + raw + b"}"
                conn.send(wrapped, sym)
            else:
                conn.send(raw, sym)

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        low = sym.lower()
        for suffix in self.diff_streams:
            f = self.streams.get(low + suffix)
            if f:
                f.state.add(ev)
        f = self.streams.get(f"{low}@bookTicker")
        if f:
            self._book_ticker(f, sym, ev.update_id)

    def _book_ticker(self, f: Fanout, sym: str, uid: int) -> None:
        # "Individual Symbol Book Ticker Streams": any change of best bid/ask price or qty.
        book = self.markets[sym].book
        b, a = book.bids.best(), book.asks.best()
        if b is None or a is None:
            return
        top = (b, book.bids.levels[b], a, book.asks.levels[a])
        if self._book_top.get(sym) == top:
            return
        self._book_top[sym] = top
        px, qx = self.px[sym], self.qx[sym]
        self._publish(f, ENC.encode({
            **self._ticker_head(uid), "s": sym, "b": px.fmt(top[0]), "B": qx.fmt(top[1]),
            "a": px.fmt(top[2]), "A": qx.fmt(top[3]),
        }))

    def _ticker_head(self, uid: int) -> dict[str, Any]:
        """Spot's "Individual Symbol Book Ticker Streams" payload: no event type, no time."""
        return {"u": uid}

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        if self.blasting:
            return
        agg = self.streams.get(f"{sym.lower()}@aggTrade")
        if agg:
            self._agg_trades(agg, sym, trades)
        f = self.streams.get(f"{sym.lower()}@trade")
        if not f:
            return
        px, qx = self.px[sym], self.qx[sym]
        for t in trades:
            # "Trade Streams" payload.
            self._publish(f, ENC.encode({
                "e": "trade", "E": now_ms(), "s": sym, "t": t.trade_id, "p": px.fmt(t.tick),
                "q": qx.fmt(t.lots), "T": t.ts_ms, "m": not t.taker_buy, "M": True,
            }))

    def _agg_trades(self, f: Fanout, sym: str, trades: list[Trade]) -> None:
        """"Aggregate Trade Streams": trade information aggregated for a single taker order;
        one batch is one taker order's fills, so one aggregate per price it filled at."""
        px, qx = self.px[sym], self.qx[sym]
        agg_id = self._agg_id.get(sym, trades[0].trade_id // 2)
        i = 0
        while i < len(trades):
            first = trades[i]
            j, lots = i + 1, first.lots
            while j < len(trades) and (trades[j].tick, trades[j].taker_buy) == (
                    first.tick, first.taker_buy):  # fmt: skip
                lots += trades[j].lots
                j += 1
            agg_id += 1
            self._publish(f, ENC.encode({
                "e": "aggTrade", "E": now_ms(), "s": sym, "a": agg_id, "p": px.fmt(first.tick),
                "q": qx.fmt(lots), "f": first.trade_id, "l": trades[j - 1].trade_id,
                "T": first.ts_ms, "m": not first.taker_buy, **self.agg_extra,
            }))
            i = j
        self._agg_id[sym] = agg_id

    def on_tick(self, mono: float, now: int) -> None:
        for f in self.streams.values():
            if not f.subs or mono < f.next_due:
                continue
            m = f.state if isinstance(f.state, re.Match) else f.state.match
            if m["depth"]:
                period = self.depth_period(m["speed"])
                if m["lv"] is None:
                    self._flush_diff(f, now)
                else:
                    self._partial_depth(f, int(m["lv"]), now)
            elif m["iv"]:
                period = self.kline_period(m["iv"])
                self._kline_push(f, m["iv"], now)
            else:
                period = self.on_tick_stream(f, m, now)
                if period is None:
                    continue
            f.next_due = mono + period if f.next_due == 0.0 else max(f.next_due + period, mono)

    @staticmethod
    def depth_period(speed: str | None) -> float:
        return 0.1 if speed == "100ms" else 1.0  # "Update Speed: 1000ms or 100ms"

    @staticmethod
    def kline_period(iv: str) -> float:
        return 1.0 if iv == "1s" else 2.0  # "1000ms for 1s, 2000ms for the other"

    def on_tick_stream(self, f: Fanout, m: re.Match[str], now: int) -> float | None:
        """Push a timed stream other than depth and klines; its period (None: not timed)."""
        return None

    def _flush_diff(self, f: Fanout, now: int) -> None:
        acc: _DiffAcc = f.state
        if acc.first_u == 0:
            return
        sym = f.symbol
        px, qx = self.px[sym], self.qx[sym]
        bids = sorted((t for t in acc.changes if t[0]), key=lambda k: -k[1])
        asks = sorted((t for t in acc.changes if not t[0]), key=lambda k: k[1])
        ch = acc.changes
        # "Diff. Depth Stream" payload.
        raw = ENC.encode({
            **self._diff_head(acc, sym, now),
            "b": [[px.fmt(k[1]), qx.fmt(ch[k])] for k in bids],
            "a": [[px.fmt(k[1]), qx.fmt(ch[k])] for k in asks],
        })
        acc.reset()
        self._publish(f, raw, depth=True)

    def _diff_head(self, acc: _DiffAcc, sym: str, now: int) -> dict[str, Any]:
        return {"e": "depthUpdate", "E": now, "s": sym, "U": acc.first_u, "u": acc.last_u}

    def _partial_depth(self, f: Fanout, levels: int, now: int) -> None:
        sym = f.symbol
        uid, bids, asks = self.markets[sym].snapshot(levels)
        px, qx = self.px[sym], self.qx[sym]
        kb, ka = self.partial_keys
        self._publish(f, ENC.encode({
            **self._partial_head(f, uid, now),
            kb: [[px.fmt(t), qx.fmt(q)] for t, q in bids],
            ka: [[px.fmt(t), qx.fmt(q)] for t, q in asks],
        }))

    def _partial_head(self, f: Fanout, uid: int, now: int) -> dict[str, Any]:
        """Spot's "Partial Book Depth Streams" payload: the snapshot's ``lastUpdateId``."""
        return {"lastUpdateId": uid}

    def _kline_push(self, f: Fanout, iv: str, now: int) -> None:
        sym = f.symbol
        series = self.kline_series(sym, iv)
        cur = series.current(now)
        if cur is None:
            return
        last_start = self._kline_last.get(f.name)
        if last_start is not None and last_start != cur.start:
            closed = series.candles.get(last_start)
            if closed is not None:  # the closed candle once more, with "x": true
                self._publish(f, self._kline_msg(sym, iv, closed, now, True))
        self._kline_last[f.name] = cur.start
        self._publish(f, self._kline_msg(sym, iv, cur, now, False))

    def _kline_msg(self, sym: str, iv: str, c: Candle, now: int, closed: bool) -> bytes:
        px, qx = self.px[sym], self.qx[sym]
        # "Kline/Candlestick Streams" payload.
        return ENC.encode({
            "e": "kline", "E": now, "s": sym,
            "k": {
                "t": c.start, "T": c.end, "s": sym, "i": iv, "f": c.first_id, "L": c.last_id,
                "o": px.fmt(c.o), "c": px.fmt(c.c), "h": px.fmt(c.h), "l": px.fmt(c.l),
                "v": qx.fmt(c.vol), "n": c.n, "x": closed, "q": fmt_product(c.quote, px, 1, qx, 8),
                "V": qx.fmt(c.buy_vol), "Q": fmt_product(c.buy_quote, px, 1, qx, 8), "B": "0",
            },
        })

    def kline_series(self, sym: str, iv: str):  # noqa: ANN201
        kind, ms = self.intervals[iv]
        return self.klines.series(self.markets[sym], kind, ms)

    # ================================================================ simulator hooks

    def attach_trading(self, core: TradingCore, *, listen_key_ttl: float) -> Any:
        from ttxt_mp.connectors.binance.sim_trading import BinanceTrading

        return BinanceTrading(self, core, listen_key_ttl)

    def blast_targets(self) -> Iterator[BlastTarget]:
        for sym in self.markets:
            f = self.streams.get(f"{sym.lower()}@trade")
            if f:
                for cid, conn in f.subs.items():
                    yield conn, sym, cid in self.combined

    def blast_payloads(self, symbol: str, wrapped: bool) -> list[bytes]:
        """"Trade Streams" payloads (``<symbol>@trade``), in the combined wrapper if wanted."""
        stream = f"{symbol.lower()}@trade".encode()
        out = []
        for i in range(TEMPLATE_FRAMES):
            p, q, buyer_maker = price_qty(self, symbol, i)
            raw = (b'{"e":"trade","E":' + TS_MARK + b',"s":"' + symbol.encode() + b'","t":'
                   + ID_MARK + b',"p":"' + p.encode() + b'","q":"' + q.encode() + b'","T":'
                   + TS_MARK + b',"m":' + (b"true" if buyer_maker else b"false") + b',"M":true}')
            out.append(b'{"stream":"' + stream + b'","data":' + raw + b"}" if wrapped else raw)
        return out

    # ================================================================ websocket

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        initial: list[str] = []
        combined = request.path.endswith("/stream")
        if "stream" in request.match_info:
            initial = [request.match_info["stream"]]
        elif combined and request.query.get("streams"):
            initial = request.query["streams"].split("/")
        try:
            for s in initial:
                self.parse_stream(s)
        except StreamError as e:
            return web.json_response({"code": 2, "msg": str(e)}, status=400)
        ws, conn = await self.open_ws(request)
        if combined:
            self.combined.add(conn.id)
        for s in initial:
            self.subscribe(conn, s)
        keep = self.start_keepalive(conn)
        incoming: deque[float] = deque()
        limit = self.knob("max_incoming_per_sec")
        try:
            async for msg in ws:
                if conn.closed:
                    break
                if conn.stalled:
                    continue  # stalled: nothing is answered
                if limit:
                    t = time.monotonic()
                    incoming.append(t)
                    while incoming and incoming[0] <= t - 1.0:
                        incoming.popleft()
                    if len(incoming) > limit:  # "Websocket Limits": disconnected
                        await conn.close(1008, "too many incoming messages")
                        break
                if msg.type == WSMsgType.TEXT:
                    reply = self.control(conn, msg.data)
                    if reply is not None:
                        conn.send(ENC.encode(reply))
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    self.on_pong(conn, msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            keep.cancel()
            self.forget(conn)
        return ws

    def start_keepalive(self, conn: SimConnection) -> asyncio.Task[None]:
        """Start the server pings of :meth:`_keepalive` on ``conn``; cancel the task at the end."""
        conn.awaiting_pong = set()  # type: ignore[attr-defined]
        conn.pong_due = 0.0  # type: ignore[attr-defined]
        return asyncio.get_running_loop().create_task(self._keepalive(conn))

    @staticmethod
    def on_pong(conn: SimConnection, data: bytes) -> None:
        """Only a pong echoing an outstanding ping's payload counts; unsolicited pongs "will
        not prevent disconnection" (General WSS information)."""
        if bytes(data) in conn.awaiting_pong:  # type: ignore[attr-defined]
            conn.awaiting_pong.clear()  # type: ignore[attr-defined]
            conn.pong_due = 0.0  # type: ignore[attr-defined]

    async def _keepalive(self, conn: SimConnection) -> None:
        """"The websocket server will send a ping frame every 20 seconds. If [it] does not
        receive a pong frame back from the connection within a minute the connection will be
        disconnected." Both times come from VenueTimings."""
        interval = self.knob("ping_interval")
        timeout = self.knob("pong_timeout")
        step = min(interval, timeout, 1.0) / 4
        next_ping = time.monotonic() + interval
        try:
            while not conn.closed:
                await asyncio.sleep(step)
                now = time.monotonic()
                if conn.stalled:
                    continue
                due = conn.pong_due  # type: ignore[attr-defined]
                if due and now > due:
                    await conn.close(1000, "pong timeout")
                    return
                if now >= next_ping:
                    payload = str(now_ms()).encode()
                    conn.awaiting_pong.add(payload)  # type: ignore[attr-defined]
                    if not due:
                        conn.pong_due = now + timeout  # type: ignore[attr-defined]
                    next_ping = now + interval
                    await conn.ws.ping(payload)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    def control(self, conn: SimConnection, text: str) -> dict[str, Any] | None:
        """Live subscribing/unsubscribing, listing and properties, with the documented replies
        and the documented error messages ("Error Messages" table)."""
        try:
            req = json.loads(text)
        except json.JSONDecodeError as e:
            return {"code": 3, "msg": f"Invalid JSON: expected value at line {e.lineno} column {e.colno}"}
        if not isinstance(req, dict):
            return {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
        if "method" not in req:
            return {"code": 2, "msg": f"Invalid request: missing field `method` at line 1 column {len(text)}"}
        method = req["method"]
        if method not in _METHODS:
            return {"code": 2, "msg": (
                f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
                "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28")}
        rid = req.get("id", _NO_ID)
        if not _valid_id(rid):
            return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
        params = req.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            if params:
                return {"code": 2, "msg": "Invalid request: too many parameters"}
            return {"result": list(conn.subscriptions), "id": rid}
        if not isinstance(params, list):
            return {"code": 2, "msg": "Invalid request: params must be an array"}
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) for p in params):
                return {"code": 2, "msg": "Invalid request: stream names must be strings"}
            if method == "SUBSCRIBE":
                try:
                    for p in params:
                        self.parse_stream(p)
                except StreamError as e:
                    return {"code": 2, "msg": str(e)}
                if len(set(conn.subscriptions) | set(params)) > MAX_STREAMS:
                    return {"code": 2, "msg": f"Invalid request: too many streams (max {MAX_STREAMS})"}
                for p in params:
                    self.subscribe(conn, p)
            else:
                for p in params:
                    self.unsubscribe(conn, p)
            return {"result": None, "id": rid}
        # SET_PROPERTY / GET_PROPERTY
        if not params or not isinstance(params[0], str):
            return {"code": 2, "msg": "Invalid request: property name must be a string"}
        if params[0] != "combined":
            return {"code": 0, "msg": "Unknown property", "id": rid}
        if method == "GET_PROPERTY":
            if len(params) != 1:
                return {"code": 2, "msg": "Invalid request: too many parameters"}
            return {"result": conn.id in self.combined, "id": rid}
        if len(params) != 2:
            return {"code": 2, "msg": "Invalid request: too many parameters"}
        if not isinstance(params[1], bool):
            return {"code": 1, "msg": "Invalid value type: expected Boolean"}
        if params[1]:
            self.combined.add(conn.id)
        else:
            self.combined.discard(conn.id)
        return {"result": None, "id": rid}

    # ================================================================ REST

    def _weigh(self, weight: int) -> tuple[dict[str, str], web.Response | None]:
        """"IP Limits": X-MBX-USED-WEIGHT-1M on every response; 429 + Retry-After when over."""
        now = time.time()
        window = int(now // 60)
        if window != self.weight_window:
            self.weight_window, self.weight_used = window, 0
        self.weight_used += weight
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.weight_used)}
        limit = self.knob("weight_limit")
        if self.weight_used > limit:
            headers["Retry-After"] = str(max(1, int((window + 1) * 60 - now + 0.999)))
            return headers, web.json_response({"code": -1003, "msg": (
                f"Too much request weight used; current limit is {limit} request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the "
                "API.")}, status=429, headers=headers)
        return headers, None

    @staticmethod
    def _err(code: int, msg: str, headers: dict[str, str], status: int = 400) -> web.Response:
        # "Error Codes": {"code": -1121, "msg": "Invalid symbol."}; 4XX for malformed requests.
        return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)

    def _symbol(self, q: Any, headers: dict[str, str]) -> tuple[str | None, web.Response | None]:
        sym = q.get("symbol")
        if not sym:
            return None, self._err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.", headers)
        if sym not in self.markets:  # symbols are uppercase and case-sensitive on REST
            return None, self._err(-1121, "Invalid symbol.", headers)
        return sym, None

    def _weighed_symbol(self, request: web.Request, weight: int
                        ) -> tuple[dict[str, str], str | None, web.Response | None]:
        """Weigh a request, then read its mandatory ``symbol``; the first refusal wins."""
        h, over = self._weigh(weight)
        if over:
            return h, None, over
        sym, err = self._symbol(request.query, h)
        return h, sym, err

    def _int(self, q: Any, name: str, default: int | None, headers: dict[str, str]
             ) -> tuple[int | None, web.Response | None]:
        raw = q.get(name)
        if raw is None:
            return default, None
        if not re.fullmatch(r"-?[0-9]{1,20}", raw):
            return None, self._err(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.", headers)
        return int(raw), None

    async def rest_ping(self, request: web.Request) -> web.Response:
        h, over = self._weigh(1)
        return over or web.json_response({}, headers=h)  # "Test connectivity"

    async def rest_time(self, request: web.Request) -> web.Response:
        h, over = self._weigh(1)
        return over or web.json_response({"serverTime": now_ms()}, headers=h)  # "Check server time"

    default_depth_limit = 100

    @staticmethod
    def depth_weight(limit: int) -> int:
        """"Order book" weight by limit: 1-100: 5, 101-500: 25, 501-1000: 50, 1001-5000: 250."""
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

    def depth_limit_ok(self, limit: int) -> bool:
        return limit >= 1

    async def rest_depth(self, request: web.Request) -> web.Response:
        q = request.query
        dflt = self.default_depth_limit
        limit, err = self._int(q, "limit", dflt, {})
        eff = min(limit or dflt, self.max_depth_limit) if err is None else dflt
        h, over = self._weigh(self.depth_weight(eff))
        if over:
            return over
        if err:
            return self._err(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.", h)
        sym, err = self._symbol(q, h)
        if err:
            return err
        assert sym is not None and limit is not None
        if not self.depth_limit_ok(limit):
            return self._err(-1130, "Data sent for parameter 'limit' is not valid.", h)
        uid, bids, asks = self.markets[sym].snapshot(eff)
        px, qx = self.px[sym], self.qx[sym]
        # "Order book" response: lastUpdateId, bids/asks [[price, qty], ...] as strings.
        body = ENC.encode({
            **self._snapshot_head(uid),
            "bids": [[px.fmt(t), qx.fmt(v)] for t, v in bids],
            "asks": [[px.fmt(t), qx.fmt(v)] for t, v in asks],
        })
        return web.Response(body=body, content_type="application/json", headers=h)

    def _snapshot_head(self, uid: int) -> dict[str, Any]:
        return {"lastUpdateId": uid}

    async def rest_trades(self, request: web.Request) -> web.Response:
        h, sym, err = self._weighed_symbol(request, 25)  # "Recent trades list" weight
        if err:
            return err
        q = request.query
        limit, err = self._int(q, "limit", 500, h)
        if err:
            return err
        assert sym is not None and limit is not None
        if not 1 <= limit <= 1000:
            return self._err(-1130, "Data sent for parameter 'limit' is not valid.", h)
        m = self.markets[sym]
        px, qx = self.px[sym], self.qx[sym]
        trades = list(m.trades)[-limit:]
        # "Recent trades list" response, oldest first.
        return web.Response(body=ENC.encode([{
            "id": t.trade_id, "price": px.fmt(t.tick), "qty": qx.fmt(t.lots),
            "quoteQty": fmt_product(t.tick, px, t.lots, qx, 8), "time": t.ts_ms,
            "isBuyerMaker": not t.taker_buy, "isBestMatch": True,
        } for t in trades]), content_type="application/json", headers=h)

    async def rest_klines(self, request: web.Request) -> web.Response:
        h, sym, err = self._weighed_symbol(request, 2)  # "Kline/Candlestick data" weight
        if err:
            return err
        q = request.query
        iv = q.get("interval")
        if not iv:
            return self._err(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.", h)
        if iv not in self.intervals:
            return self._err(-1120, "Invalid interval.", h)
        vals = {}
        for name, default in (("startTime", None), ("endTime", None), ("limit", 500)):
            vals[name], err = self._int(q, name, default, h)
            if err:
                return err
        limit = vals["limit"]
        assert sym is not None and limit is not None
        if not 1 <= limit <= 1000:
            return self._err(-1130, "Data sent for parameter 'limit' is not valid.", h)
        px, qx = self.px[sym], self.qx[sym]
        rows = self.kline_series(sym, iv).select(vals["startTime"], vals["endTime"], limit)
        # "Kline/Candlestick data" row layout.
        return web.Response(body=ENC.encode([[
            c.start, px.fmt(c.o), px.fmt(c.h), px.fmt(c.l), px.fmt(c.c), qx.fmt(c.vol), c.end,
            fmt_product(c.quote, px, 1, qx, 8), c.n, qx.fmt(c.buy_vol),
            fmt_product(c.buy_quote, px, 1, qx, 8), "0",
        ] for c in rows]), content_type="application/json", headers=h)

    async def rest_exchange_info(self, request: web.Request) -> web.Response:
        h, over = self._weigh(20)  # "Exchange information" weight
        if over:
            return over
        q = request.query
        if "symbol" in q and "symbols" in q:
            return self._err(-1128, "Combination of optional parameters invalid.", h)
        names = list(self.markets)
        if "symbol" in q:
            names = [q["symbol"]]
        elif "symbols" in q:
            try:
                names = json.loads(q["symbols"])
                assert isinstance(names, list) and all(isinstance(n, str) for n in names)
            except (ValueError, AssertionError):
                return self._err(-1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.", h)
        if any(n not in self.markets for n in names):
            return self._err(-1121, "Invalid symbol.", h)
        return web.json_response({
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": [  # "Rate limiters (rateLimitType)"
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.knob("weight_limit")},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(n) for n in names],
        }, headers=h)

    def _symbol_info(self, sym: str) -> dict[str, Any]:
        spec = self.markets[sym].spec
        px, qx = self.px[sym], self.qx[sym]
        return {
            "symbol": sym, "status": "TRADING", "baseAsset": spec.base, "baseAssetPrecision": 8,
            "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [  # "Filters" section formats
                {"filterType": "PRICE_FILTER", "minPrice": px.fmt(1),
                 "maxPrice": px.fmt(px.from_float(1_000_000.0)), "tickSize": px.fmt(1)},
                {"filterType": "LOT_SIZE", "minQty": qx.fmt(1), "maxQty": "9000.00000000", "stepSize": qx.fmt(1)},
                {"filterType": "MIN_NOTIONAL", "minNotional": "5.00000000", "applyToMarket": True, "avgPriceMins": 5},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000", "stepSize": "0.00000000"},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": ["SPOT"],
        }


class _DiffAcc:
    """Changes accumulated over one diff-depth window: the last quantity per level and the first
    and last update id it covers (U, u)."""

    __slots__ = ("match", "changes", "first_u", "last_u", "prev_u")

    def __init__(self, match: re.Match[str]) -> None:
        self.match = match
        self.changes: dict[tuple[bool, int], int] = {}
        self.first_u = 0
        self.last_u = 0
        self.prev_u = 0  # u of the stream's previous event (futures ``pu``)

    def add(self, ev: BookEvent) -> None:
        if self.first_u == 0:
            self.first_u = ev.update_id
        self.last_u = ev.update_id
        ch = self.changes
        for is_bid, tick, lots in ev.changes:
            ch[(is_bid, tick)] = lots

    def reset(self) -> None:
        self.prev_u = self.last_u
        self.changes = {}
        self.first_u = 0
        self.last_u = 0


def _valid_id(rid: object) -> bool:
    """"64-bit signed integer, alphanumeric strings; max length 36, null" (Live Subscribing)."""
    if rid is _NO_ID:
        return False
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return -(2**63) <= rid < 2**63
    return isinstance(rid, str) and bool(_ID_STR.match(rid))
