"""Bybit v5 public market data (spot), written from the Bybit v5 API documentation
(github.com/bybit-exchange/docs, docs/v5: "Connect", "Orderbook", "Trade", "Kline", "Get
Orderbook", "Get Recent Public Trades", "Get Kline", "Get Instruments Info", "Get Bybit Server
Time", "Error Code"). Mounted under a base path: <base>/v5/public/spot, <base>/v5/market/...
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ttxt_mp import argtypes as at
from ttxt_mp.sim.blast import ID_MARK, TEMPLATE_FRAMES, TS_MARK, price_qty
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.fmt import fmt_product
from ttxt_mp.sim.klines import MIN, Candle
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, BlastTarget, Fanout, Knob, VenueBase

# "Kline" available intervals.
INTERVALS: dict[str, tuple[str, int]] = {
    "1": ("", MIN), "3": ("", 3 * MIN), "5": ("", 5 * MIN), "15": ("", 15 * MIN),
    "30": ("", 30 * MIN), "60": ("", 60 * MIN), "120": ("", 120 * MIN), "240": ("", 240 * MIN),
    "360": ("", 360 * MIN), "720": ("", 720 * MIN), "D": ("", 1440 * MIN),
    "W": ("W", 7 * 1440 * MIN), "M": ("M", 0),
}
SPOT_DEPTHS = (1, 50, 200, 1000)  # "Orderbook" depths for spot
REST_TOPIC_DEPTH = 200  # "Get Orderbook": for spot, u corresponds to the 200-level stream
MAX_ARGS = 10  # "Connect": spot can input up to 10 args per subscription request
MAX_ARGS_CHARS = 21_000  # "Connect": an args array is at most 21,000 characters

if TYPE_CHECKING:
    from ttxt_mp.sim.trading import TradingCore


def parse_op(text: str) -> dict[str, Any] | None:
    """A client frame ``{"op": "...", ...}`` (public or private stream), or None if not one."""
    try:
        req = json.loads(text)
    except json.JSONDecodeError:
        return None
    return req if isinstance(req, dict) and isinstance(req.get("op"), str) else None


class BookTopic:
    """One `orderbook.{depth}.{symbol}` stream: the last published top-N view and its `u`.
    Deltas carry the levels whose size changed, size "0" for levels that left the view."""

    __slots__ = ("name", "symbol", "depth", "u", "bids", "asks", "dirty", "force_snapshot",
                 "last_sent", "seq", "cts", "fan", "push_s")

    def __init__(self, name: str, symbol: str, depth: int, push_s: float) -> None:
        self.name, self.symbol, self.depth, self.push_s = name, symbol, depth, push_s
        self.u = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.dirty = True
        self.force_snapshot = True
        self.last_sent = 0.0
        self.seq = 0
        self.cts = 0
        self.fan = Fanout(name, symbol)


class BybitVenue(VenueBase):
    """The spot venue; :class:`~ttxt_mp.connectors.bybit.sim_linear.BybitLinearVenue` is
    this with the linear category's depths, limits and extra topics (the class attributes
    and the ``_extra_topic`` / ``_after_subscribe`` hooks)."""

    name = "bybit"
    category = "spot"  # also the WebSocket path /v5/public/<category>
    depths: tuple[int, ...] = SPOT_DEPTHS
    max_args: int | None = MAX_ARGS  # per subscription request (None: no count limit)
    rest_topic_depth = REST_TOPIC_DEPTH  # the stream whose u the REST book carries
    rest_book_limit = (1, 1, 200)  # "Get Orderbook" limit: default, min, max
    recent_trade_limit = (60, 1, 60)  # "Get Recent Public Trades" limit: default, min, max
    ack_ret_msg = "subscribe"  # ret_msg of a successful subscribe
    reply_req_id = False  # replies always carry req_id ("" when the request had none)
    knobs = (
        Knob("idle_timeout", 600.0, "seconds without ping-pong (and stream data) before a "
             "cut-off (Connect: 10 minutes)", "idle-timeout", at.positive()),
        Knob("idle_data_keepalive", True, "stream data keeps a connection alive (False: only "
             "client pings do)"),
        Knob("l1_resend", 3.0, "level 1 re-sends its snapshot after this many seconds without "
             "change (Orderbook)"),
        Knob("push_ms", {1: 10, 50: 20, 200: 200, 1000: 200}, "orderbook push period in ms "
             "by depth (Orderbook, spot)"),
        Knob("kline_push", 1.0, "kline push period in seconds (Kline: 1-60 s)"),
    )  # fmt: skip
    demo_levels = 50

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.books: dict[str, BookTopic] = {}
        self.trades: dict[str, Fanout] = {}
        self.kline_topics: dict[str, Fanout] = {}
        self.last_event_ts: dict[str, int] = {s: now_ms() for s in markets}
        for sym in markets:
            self.trades[sym] = Fanout(f"publicTrade.{sym}", sym)
            for d in self.depths:
                name = f"orderbook.{d}.{sym}"
                push = self.knob("push_ms").get(d, 200) / 1000.0
                self.books[name] = BookTopic(name, sym, d, push)
        self.listen_markets()
        r = self.app.router
        r.add_get(f"/v5/public/{self.category}", self.ws_handler)
        r.add_get("/v5/market/time", self.rest_time)
        r.add_get("/v5/market/orderbook", self.rest_orderbook)
        r.add_get("/v5/market/recent-trade", self.rest_recent_trade)
        r.add_get("/v5/market/kline", self.rest_kline)
        r.add_get("/v5/market/instruments-info", self.rest_instruments)

    # ================================================================ publishers

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        self.last_event_ts[sym] = ev.ts_ms
        for d in self.depths:
            self.books[f"orderbook.{d}.{sym}"].dirty = True

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        f = self.trades[sym]
        if not f or self.blasting:
            return
        # "Trade" push: type snapshot, data is an array of trades.
        f_raw = ENC.encode({
            "topic": f.name, "type": "snapshot", "ts": now_ms(),
            "data": [self._trade_entry(sym, t) for t in trades],
        })
        for c in f.subs.values():
            c.send(f_raw)

    def _trade_entry(self, sym: str, t: Trade) -> dict[str, Any]:
        return {"T": t.ts_ms, "s": sym, "S": "Buy" if t.taker_buy else "Sell",
                "v": self.qx[sym].fmt(t.lots), "p": self.px[sym].fmt(t.tick),
                "i": str(t.trade_id), "BT": False}

    def restart(self, symbol: str | None = None) -> None:
        """Simulated service restart: every book topic (of `symbol`) restarts at u=1 with a
        snapshot ("Orderbook": "Occasionally, you'll receive "u"=1 ... overwrite your local
        orderbook")."""
        for t in self.books.values():
            if symbol is None or t.symbol == symbol.upper():
                t.u = 0
                t.force_snapshot = True
                t.dirty = True

    def extra_truth(self, symbol: str) -> dict[str, int]:
        """The current ``u`` of every ``orderbook.{depth}.{symbol}`` topic."""
        return {t.name: t.u for t in self.books.values() if t.symbol == symbol}

    def attach_trading(self, core: TradingCore, *, listen_key_ttl: float) -> Any:
        from ttxt_mp.connectors.bybit.sim_trading import BybitTrading

        return BybitTrading(self, core)

    def blast_targets(self) -> Iterator[BlastTarget]:
        for sym, f in self.trades.items():
            for conn in f.subs.values():
                yield conn, sym, False

    def blast_payloads(self, symbol: str, wrapped: bool = False) -> list[bytes]:
        """``publicTrade.<SYM>`` pushes ("Trade": type snapshot, one trade per message); one
        wire shape, so `wrapped` is ignored."""
        sym = symbol.encode()
        out = []
        for i in range(TEMPLATE_FRAMES):
            p, q, buyer_maker = price_qty(self, symbol, i)
            out.append(
                b'{"topic":"publicTrade.' + sym + b'","type":"snapshot","ts":' + TS_MARK
                + b',"data":[{"T":' + TS_MARK + b',"s":"' + sym + b'","S":"'
                + (b"Sell" if buyer_maker else b"Buy") + b'","v":"' + q.encode() + b'","p":"'
                + p.encode() + b'","i":"' + ID_MARK + b'","BT":false}]}')
        return out

    def flush_book(self, t: BookTopic, mono: float, now: int) -> None:
        """Publish what changed in the top-N view since the last message of this topic."""
        market = self.markets[t.symbol]
        resend = t.depth == 1 and t.last_sent and mono - t.last_sent >= self.knob("l1_resend")
        if not t.dirty and not t.force_snapshot and not resend:
            return
        t.dirty = False
        _, bids, asks = market.snapshot(t.depth)
        nb, na = dict(bids), dict(asks)
        changed = nb != t.bids or na != t.asks
        snapshot = t.force_snapshot or t.depth == 1
        if snapshot:
            if not changed and not t.force_snapshot and not resend:
                return
            if changed or t.force_snapshot:
                t.u += 1  # a level-1 re-send after 3 s without change keeps the same u
                t.seq, t.cts = market.update_id, self.last_event_ts[t.symbol]
            t.force_snapshot = False
            t.bids, t.asks = nb, na
            self._send_book(t, "snapshot", bids, asks, now)
            return
        if not changed:
            return
        db = [(p, q) for p, q in nb.items() if t.bids.get(p) != q]
        db += [(p, 0) for p in t.bids if p not in nb]
        da = [(p, q) for p, q in na.items() if t.asks.get(p) != q]
        da += [(p, 0) for p in t.asks if p not in na]
        db.sort(key=lambda x: -x[0])
        da.sort()
        t.u += 1
        t.seq, t.cts = market.update_id, self.last_event_ts[t.symbol]
        t.bids, t.asks = nb, na
        self._send_book(t, "delta", db, da, now)

    def _send_book(self, t: BookTopic, kind: str, bids: list[tuple[int, int]],
                   asks: list[tuple[int, int]], now: int) -> None:
        t.last_sent = time.monotonic()
        if not t.fan:
            return
        raw = self._book_msg(t, kind, bids, asks, now)
        sym = t.symbol if kind == "delta" else None
        for c in t.fan.subs.values():
            c.send(raw, sym)

    def _book_msg(self, t: BookTopic, kind: str, bids: list[tuple[int, int]],
                  asks: list[tuple[int, int]], now: int) -> bytes:
        px, qx = self.px[t.symbol], self.qx[t.symbol]
        # "Orderbook" push: topic, type, ts, data{s,b,a,u,seq}, cts.
        head: dict[str, Any] = ({"topic": t.name, "ts": now, "type": kind}
                                if self._ts_first(t.depth) else
                                {"topic": t.name, "type": kind, "ts": now})  # fmt: skip
        return ENC.encode({
            **head,
            "data": {"s": t.symbol, "b": [[px.fmt(p), qx.fmt(q) if q else "0"] for p, q in bids],
                     "a": [[px.fmt(p), qx.fmt(q) if q else "0"] for p, q in asks],
                     "u": t.u, "seq": t.seq},
            "cts": t.cts,
        })

    def _ts_first(self, depth: int) -> bool:
        """Whether a book message of ``depth`` has ``ts`` before ``type`` (kept after it on
        spot, as this adapter always sent it; the order means nothing to a JSON reader)."""
        return False

    def on_tick(self, mono: float, now: int) -> None:
        for t in self.books.values():
            if t.fan and mono >= t.fan.next_due:
                t.fan.next_due = mono + t.push_s
                self.flush_book(t, mono, now)
        for f in self.kline_topics.values():
            if f and mono >= f.next_due:
                f.next_due = mono + self.knob("kline_push")
                self._kline_push(f, now)

    def _kline_push(self, f: Fanout, now: int) -> None:
        iv, series, last_start = f.state
        cur = series.current(now)
        if cur is None:
            return
        msgs = []
        if last_start is not None and last_start != cur.start:
            closed = series.candles.get(last_start)
            if closed is not None:
                msgs.append(self._kline_entry(f.symbol, iv, closed, True))
        f.state = (iv, series, cur.start)
        msgs.append(self._kline_entry(f.symbol, iv, cur, False))
        # "Kline" push: data array, type snapshot.
        raw = ENC.encode({"topic": f.name, "data": msgs, "ts": now, "type": "snapshot"})
        for c in f.subs.values():
            c.send(raw)

    def _kline_entry(self, sym: str, iv: str, c: Candle, confirm: bool) -> dict[str, Any]:
        px, qx = self.px[sym], self.qx[sym]
        return {"start": c.start, "end": c.end, "interval": iv, "open": px.fmt(c.o),
                "close": px.fmt(c.c), "high": px.fmt(c.h), "low": px.fmt(c.l),
                "volume": qx.fmt(c.vol), "turnover": fmt_product(c.quote, px, 1, qx, px.dp + qx.dp),
                "confirm": confirm, "timestamp": c.last_ts}

    # ================================================================ websocket

    def _topic(self, arg: str) -> Fanout | None:
        if arg in self.books:
            return self.books[arg].fan
        parts = arg.split(".")
        if len(parts) == 2 and parts[0] == "publicTrade" and parts[1] in self.trades:
            return self.trades[parts[1]]
        if len(parts) == 3 and parts[0] == "kline" and parts[1] in INTERVALS and parts[2] in self.markets:
            f = self.kline_topics.get(arg)
            if f is None:
                kind, ms = INTERVALS[parts[1]]
                series = self.klines.series(self.markets[parts[2]], kind, ms)
                f = self.kline_topics[arg] = Fanout(arg, parts[2])
                f.state = (parts[1], series, None)
            return f
        return self._extra_topic(arg)

    def _extra_topic(self, arg: str) -> Fanout | None:
        """A topic of the category beyond books, trades and klines (none on spot)."""
        return None

    def _after_subscribe(self, conn: SimConnection, f: Fanout, now: int, mono: float) -> None:
        """Send what a new subscriber of ``f`` gets first (books: their snapshot, above)."""

    def _reply(self, conn: SimConnection, op: str, req: dict[str, Any], ok: bool, msg: str) -> None:
        # "Understanding the Subscription Response" / "How to Send the Heartbeat Packet" (spot).
        out: dict[str, Any] = {"success": ok, "ret_msg": msg, "conn_id": conn.conn_uuid, "op": op}  # type: ignore[attr-defined]
        if "req_id" in req or self.reply_req_id:
            out["req_id"] = req.get("req_id", "")
        conn.send(ENC.encode(out))

    def _subscribe(self, conn: SimConnection, req: dict[str, Any], sub: bool) -> None:
        op = "subscribe" if sub else "unsubscribe"
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            self._reply(conn, op, req, False, "args must be a non-empty array of topics")
            return
        if self.max_args is not None and len(args) > self.max_args:
            self._reply(conn, op, req, False, f"args size >{self.max_args}")
            return
        if len(ENC.encode(args)) > MAX_ARGS_CHARS:
            self._reply(conn, op, req, False, f"args length >{MAX_ARGS_CHARS} characters")
            return
        bad = [a for a in args if self._topic(a) is None]
        if bad:
            self._reply(conn, op, req, False, f"Invalid symbol :[{','.join(bad)}]")
            return
        if sub:
            dup = [a for a in args if a in conn.subscriptions]
            if dup:
                self._reply(conn, op, req, False, f"error:already subscribed,topic:{','.join(dup)}")
                return
        self._reply(conn, op, req, True, self.ack_ret_msg if sub else "")
        now, mono = now_ms(), time.monotonic()
        for a in args:
            f = self._topic(a)
            assert f is not None
            if not sub:
                conn.subscriptions.pop(a, None)
                f.subs.pop(conn.id, None)
                continue
            conn.subscriptions[a] = f
            book = self.books.get(a)
            if book is not None:
                # "Once you have subscribed successfully, you will receive a snapshot."
                self.flush_book(book, mono, now)  # existing subscribers get pending deltas first
                if book.u == 0:
                    book.force_snapshot = True
                    self.flush_book(book, mono, now)
                p = sorted(book.bids.items(), reverse=True)
                q = sorted(book.asks.items())
                conn.send(self._book_msg(book, "snapshot", p, q, now))
                if not f.subs:
                    f.next_due = mono + book.push_s
            else:
                self._after_subscribe(conn, f, now, mono)
            f.subs[conn.id] = conn

    def unsubscribe_all(self, conn: SimConnection) -> None:
        for f in conn.subscriptions.values():
            f.subs.pop(conn.id, None)
        conn.subscriptions.clear()

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        return await self.serve_ws(request, self._control)

    async def serve_ws(
        self,
        request: web.Request,
        on_text: Callable[[SimConnection, str], None],
        *,
        answer_stalled: bool = False,
        on_open: Callable[[SimConnection], None] | None = None,
        on_close: Callable[[SimConnection], None] | None = None,
    ) -> web.StreamResponse:
        """One Bybit WebSocket session (public or private): a connection id, the idle watch,
        text frames to ``on_text``, pings answered, ``forget`` at the end. A stalled
        connection reads nothing unless ``answer_stalled``."""
        ws, conn = await self.open_ws(request)
        conn.conn_uuid = str(uuid.uuid4())  # type: ignore[attr-defined]
        conn.last_ping = time.monotonic()  # type: ignore[attr-defined]
        if on_open is not None:
            on_open(conn)
        keep = asyncio.get_running_loop().create_task(self._idle_watch(conn))
        try:
            await self.read_frames(ws, conn, on_text, answer_stalled=answer_stalled)
        finally:
            keep.cancel()
            if on_close is not None:
                on_close(conn)
            self.forget(conn)
        return ws

    def _control(self, conn: SimConnection, text: str) -> None:
        req = parse_op(text)
        if req is None:
            self._reply(conn, "", {}, False, f"Invalid request: {text[:64]}")
            return
        op = req["op"]
        if op == "ping":
            conn.last_ping = time.monotonic()  # type: ignore[attr-defined]
            self._reply(conn, "ping", req, True, "pong")
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, req, op == "subscribe")
        else:
            self._reply(conn, op, req, False, f"Invalid op: {op}")

    async def _idle_watch(self, conn: SimConnection) -> None:
        """"If there is no ping-pong and no stream data sent from server end, the connection
        will be cut off after 10 minutes" (Connect). With the idle_data_keepalive knob False only
        client pings count."""
        timeout = self.knob("idle_timeout")
        data_counts = self.knob("idle_data_keepalive")
        step = min(timeout / 5, 1.0)
        last_frames, last_data = conn.sent_frames, time.monotonic()
        try:
            while not conn.closed:
                await asyncio.sleep(step)
                now = time.monotonic()
                if data_counts and conn.sent_frames != last_frames:
                    last_frames, last_data = conn.sent_frames, now
                active = max(conn.last_ping, last_data if data_counts else 0.0)  # type: ignore[attr-defined]
                if now - active > timeout and not conn.stalled:
                    await conn.close(1000, "idle timeout")
                    return
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    # ================================================================ REST

    @staticmethod
    def _ok(result: Any) -> web.Response:
        # "Common response parameters": retCode, retMsg, result, retExtInfo, time.
        return web.Response(body=ENC.encode({"retCode": 0, "retMsg": "OK", "result": result,
                                             "retExtInfo": {}, "time": now_ms()}),
                            content_type="application/json")

    @staticmethod
    def _err(code: int, msg: str) -> web.Response:
        # "Error Code" 10001: request parameter error (HTTP 200 with a non-zero retCode).
        return web.json_response({"retCode": code, "retMsg": msg, "result": {},
                                  "retExtInfo": {}, "time": now_ms()})

    def _cat_symbol(self, q: Any, category_default: str | None = None,
                    symbol_required: bool = True) -> tuple[str | None, web.Response | None]:
        cat = q.get("category", category_default)
        if cat is None:
            return None, self._err(10001, "params error: category is required")
        if cat != self.category:
            return None, self._err(10001, f"params error: category {cat} is not available")
        sym = q.get("symbol")
        if sym is None:
            if symbol_required:
                return None, self._err(10001, "params error: symbol is required")
            return None, None
        if sym not in self.markets:
            return None, self._err(10001, "params error: Symbol Invalid")
        return sym, None

    @staticmethod
    def _limit(q: Any, default: int, lo: int, hi: int) -> tuple[int, web.Response | None]:
        raw = q.get("limit")
        if raw is None:
            return default, None
        try:
            v = int(raw)
        except ValueError:
            return 0, BybitVenue._err(10001, "params error: limit must be an integer")
        if not lo <= v <= hi:
            return 0, BybitVenue._err(10001, f"params error: limit must be in [{lo}, {hi}]")
        return v, None

    async def rest_time(self, request: web.Request) -> web.Response:
        ns = time.time_ns()
        return self._ok({"timeSecond": str(ns // 10**9), "timeNano": str(ns)})  # "Get Bybit Server Time"

    async def rest_orderbook(self, request: web.Request) -> web.Response:
        q = request.query
        sym, err = self._cat_symbol(q)
        if err:
            return err
        limit, err = self._limit(q, *self.rest_book_limit)
        if err:
            return err
        assert sym is not None
        t = self.books[f"orderbook.{self.rest_topic_depth}.{sym}"]
        self.flush_book(t, time.monotonic(), now_ms())  # u matches the 200-level stream
        if t.u == 0:
            t.force_snapshot = True
            self.flush_book(t, time.monotonic(), now_ms())
        px, qx = self.px[sym], self.qx[sym]
        b = sorted(t.bids.items(), reverse=True)[:limit]
        a = sorted(t.asks.items())[:limit]
        return self._ok({"s": sym, "a": [[px.fmt(p), qx.fmt(v)] for p, v in a],
                         "b": [[px.fmt(p), qx.fmt(v)] for p, v in b], "ts": now_ms(),
                         "u": t.u, "seq": t.seq, "cts": t.cts})  # "Get Orderbook"

    async def rest_recent_trade(self, request: web.Request) -> web.Response:
        q = request.query
        sym, err = self._cat_symbol(q)
        if err:
            return err
        limit, err = self._limit(q, *self.recent_trade_limit)
        if err:
            return err
        assert sym is not None
        px, qx = self.px[sym], self.qx[sym]
        trades = list(self.markets[sym].trades)[-limit:][::-1]  # newest first
        return self._ok({"category": self.category, "list": [{  # "Get Recent Public Trades"
            "execId": str(t.trade_id), "symbol": sym, "price": px.fmt(t.tick),
            "size": qx.fmt(t.lots), "side": "Buy" if t.taker_buy else "Sell",
            "time": str(t.ts_ms), "isBlockTrade": False, "isRPITrade": False, "seq": str(t.seq),
        } for t in trades]})

    async def rest_kline(self, request: web.Request) -> web.Response:
        q = request.query
        sym, err = self._cat_symbol(q, category_default="linear")  # "use linear by default"
        if err:
            return err
        iv = q.get("interval")
        if iv not in INTERVALS:
            return self._err(10001, "params error: invalid interval")
        limit, err = self._limit(q, 200, 1, 1000)
        if err:
            return err
        try:
            start = int(q["start"]) if "start" in q else None
            end = int(q["end"]) if "end" in q else None
        except ValueError:
            return self._err(10001, "params error: start/end must be integers")
        assert sym is not None
        kind, ms = INTERVALS[iv]
        px, qx = self.px[sym], self.qx[sym]
        rows = self.klines.series(self.markets[sym], kind, ms).select(start, end, limit)
        # "Get Kline": string arrays, sorted in reverse by start time.
        return self._ok({"symbol": sym, "category": self.category, "list": [[
            str(c.start), px.fmt(c.o), px.fmt(c.h), px.fmt(c.l), px.fmt(c.c), qx.fmt(c.vol),
            fmt_product(c.quote, px, 1, qx, px.dp + qx.dp)] for c in reversed(rows)]})

    async def rest_instruments(self, request: web.Request) -> web.Response:
        q = request.query
        sym, err = self._cat_symbol(q, symbol_required=False)
        if err:
            return err
        names = [sym] if sym else list(self.markets)
        return self._ok({"category": self.category, "list": [  # "Get Instruments Info" (spot)
            self._instrument(i, n) for i, n in enumerate(names, 1)]})

    def _instrument(self, i: int, sym: str) -> dict[str, Any]:
        spec = self.markets[sym].spec
        qx = self.qx[sym]
        return {
            "symbolId": i, "symbol": sym, "baseCoin": spec.base, "quoteCoin": spec.quote,
            "innovation": "0", "status": "Trading", "marginTrading": "none", "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": spec.step, "quotePrecision": "0.0000001",
                "minOrderQty": qx.fmt(1), "maxOrderQty": "10000", "minOrderAmt": "5",
                "maxOrderAmt": "8000000", "maxLimitOrderQty": "10000",
                "maxMarketOrderQty": "5000", "postOnlyMaxLimitOrderSize": "60000",
            },
            "priceFilter": {"tickSize": spec.tick},
            "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
            "symbolType": "",
        }
