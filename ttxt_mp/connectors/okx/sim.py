"""OKX v5 public market data (SPOT), written from the OKX v5 API documentation
(www.okx.com/docs-v5/en: "WebSocket" overview (Connect, Subscribe, Unsubscribe, Notice),
"Order book channel" (books, books5, bbo-tbt; Sequence ID; Checksum), "Trades channel",
"Candlesticks channel", "Get instruments", "Get order book", "Error Code" (WebSocket
60012/60013/60014/60018/60019)). Mounted under a base path: <base>/ws/v5/public,
<base>/ws/v5/business (candles), <base>/api/v5/...

Books: ``books`` sends the 400-level snapshot on subscribing, then every ``books_push_ms``
an ``update`` with the levels whose size changed (``"0"`` for levels that left the 400),
``prevSeqId`` = the previous message's ``seqId``, ``seqId`` growing by uneven steps, and
the checksum of the best 25 levels (0 with the ``checksum_zero`` knob, as from June 2026);
after ``books_keepalive`` s without change (around 60 s) an empty update with
``seqId == prevSeqId`` (``books5`` and ``bbo-tbt``: their latest snapshot again).
:meth:`OkxVenue.restart` is the documented sequence reset (``seqId`` < ``prevSeqId``);
:meth:`OkxVenue.corrupt_checksum` sends wrong checksums (a fault). ``books5`` and
``bbo-tbt`` are snapshots on change. Keep-alive: the text ``ping`` gets ``pong``; a
connection that got nothing for ``idle_timeout`` s (30) is closed. A connection's 481st
subscribe/unsubscribe request within an hour is refused (60014).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
import zlib
from typing import Any

from aiohttp import web

from ttxt_mp import argtypes as at
from ttxt_mp.connectors.okx.checksum import CHECKSUM_LEVELS, okx_checksum
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.fmt import fmt_product
from ttxt_mp.sim.klines import MIN, Candle
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob, VenueBase

__all__ = ["OkxVenue"]

BOOKS_DEPTH = 400
# "Candlesticks channel" bars -> (kline kind, ms) of the simulator's candles (UTC bars)
BARS: dict[str, tuple[str, int]] = {
    "1s": ("", 1000), "1m": ("", MIN), "3m": ("", 3 * MIN), "5m": ("", 5 * MIN),
    "15m": ("", 15 * MIN), "30m": ("", 30 * MIN), "1H": ("", 60 * MIN), "2H": ("", 120 * MIN),
    "4H": ("", 240 * MIN), "6Hutc": ("", 360 * MIN), "12Hutc": ("", 720 * MIN),
    "1Dutc": ("", 1440 * MIN), "2Dutc": ("", 2880 * MIN), "3Dutc": ("", 4320 * MIN),
    "1Wutc": ("W", 7 * 1440 * MIN), "1Mutc": ("M", 0),
}  # fmt: skip
WRONG_URL = ("Wrong URL or channel:{ch},instId:{inst} doesn't exist. Please use the correct URL, "
             "channel and parameters referring to API document.")  # fmt: skip


class BooksTopic:
    """One instrument's ``books``: the last sent 400-level view, its seqId, the faults."""

    __slots__ = ("sym", "bids", "asks", "seq", "fan", "dirty", "last_sent", "corrupt", "rng")

    def __init__(self, sym: str) -> None:
        self.sym = sym
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.rng = random.Random(zlib.crc32(sym.encode()))
        self.seq = self.rng.randint(10_000, 99_999)
        self.fan = Fanout(f"books:{sym}", sym)
        self.dirty = True
        self.last_sent = 0.0
        self.corrupt = 0  # updates still to send with a wrong checksum


class OkxVenue(VenueBase):
    """The SPOT venue; :class:`~ttxt_mp.connectors.okx.sim_linear.OkxLinearVenue` is this
    with instType SWAP and the swap channels (``_extra_channel`` / ``_after_subscribe``)."""

    name = "okx"
    inst_type = "SPOT"
    inst_suffix = ""
    knobs = (
        Knob("idle_timeout", 30.0, "seconds without any frame sent to the client before OKX "
             "closes the connection (Connect: 30 s)", "idle-timeout", at.positive()),
        Knob("books_push_ms", 100, "books update period in ms (Order book channel: 100 ms)"),
        Knob("books5_push_ms", 100, "books5 push period in ms when changed (100 ms)"),
        Knob("bbo_push_ms", 10, "bbo-tbt push period in ms when changed (10 ms)"),
        Knob("books_keepalive", 60.0, "seconds without change before an empty books update "
             "with seqId == prevSeqId (books5 / bbo-tbt: the latest snapshot again); around 60"),
        Knob("checksum_zero", False, "books checksum always 0 (OKX from June 2026)"),
        Knob("kline_push", 0.5, "candle push period in seconds"),
        Knob("ops_per_hour", 480, "subscribe/unsubscribe requests per connection and hour "
             "before error 60014 (Connect: request limit)"),
    )  # fmt: skip
    demo_levels = 400

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.inst = {s: f"{m.spec.base}-{m.spec.quote}{self.inst_suffix}" for s, m in markets.items()}
        self.by_inst = {i: s for s, i in self.inst.items()}
        self.books = {s: BooksTopic(s) for s in markets}
        self.snaps: dict[tuple[str, str], Fanout] = {}  # (books5|bbo-tbt, sym) -> fan
        self.trade_fans = {s: Fanout(f"trades:{s}", s) for s in markets}
        self.candle_fans: dict[tuple[str, str], Fanout] = {}
        for s in markets:
            for ch in ("books5", "bbo-tbt"):
                self.snaps[(ch, s)] = Fanout(f"{ch}:{s}", s)
        self.listen_markets()
        r = self.app.router
        r.add_get("/ws/v5/public", self.ws_public)
        r.add_get("/ws/v5/business", self.ws_business)
        r.add_get("/api/v5/public/instruments", self.rest_instruments)
        r.add_get("/api/v5/market/books", self.rest_books)
        r.add_get("/api/v5/public/time", self.rest_time)

    # ================================================================ publishers

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        self.books[sym].dirty = True

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        f = self.trade_fans[sym]
        if not f:
            return
        # "Trades channel" push: one entry per trade (count 1: no aggregation here).
        raw = ENC.encode({"arg": {"channel": "trades", "instId": self.inst[sym]}, "data": [
            {"instId": self.inst[sym], "tradeId": str(t.trade_id), "px": self.px[sym].fmt(t.tick),
             "sz": self.qx[sym].fmt(t.lots), "side": "buy" if t.taker_buy else "sell",
             "ts": str(t.ts_ms), "count": "1", "source": "0", "seqId": t.seq}
            for t in trades]})  # fmt: skip
        for c in f.subs.values():
            c.send(raw)

    def _levels(self, sym: str, levels: list[tuple[int, int]]) -> list[list[str]]:
        px, qx = self.px[sym], self.qx[sym]
        return [[px.fmt(p), qx.fmt(q) if q else "0", "0", "1" if q else "0"] for p, q in levels]

    def _view(self, sym: str, depth: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        _, bids, asks = self.markets[sym].snapshot(depth)
        return bids, asks

    def _checksum(self, t: BooksTopic) -> int:
        if self.knob("checksum_zero"):
            return 0
        bids = sorted(t.bids.items(), reverse=True)[:CHECKSUM_LEVELS]
        asks = sorted(t.asks.items())[:CHECKSUM_LEVELS]
        b = [":".join(lv[:2]) for lv in self._levels(t.sym, bids)]
        a = [":".join(lv[:2]) for lv in self._levels(t.sym, asks)]
        return okx_checksum(b, a)

    def _books_msg(self, t: BooksTopic, action: str, bids: list[tuple[int, int]],
                   asks: list[tuple[int, int]], prev: int, checksum: int) -> bytes:  # fmt: skip
        # "Order book channel" push: arg, action, data[{asks, bids, ts, checksum, prevSeqId, seqId}]
        return ENC.encode({"arg": {"channel": "books", "instId": self.inst[t.sym]},
                           "action": action, "data": [{
                               "asks": self._levels(t.sym, asks), "bids": self._levels(t.sym, bids),
                               "ts": str(now_ms()), "checksum": checksum, "prevSeqId": prev,
                               "seqId": t.seq}]})  # fmt: skip

    def flush_books(self, t: BooksTopic, mono: float) -> None:
        """Send an update of what changed in the 400-level view (or a keep-alive)."""
        if not t.dirty:
            if t.fan and mono - t.last_sent >= self.knob("books_keepalive"):
                t.last_sent = mono
                self._send_update(t, [], [], t.seq)
            return
        t.dirty = False
        bids, asks = self._view(t.sym, BOOKS_DEPTH)
        nb, na = dict(bids), dict(asks)
        if nb == t.bids and na == t.asks:
            return
        db = sorted([(p, q) for p, q in nb.items() if t.bids.get(p) != q]
                    + [(p, 0) for p in t.bids if p not in nb], reverse=True)  # fmt: skip
        da = sorted([(p, q) for p, q in na.items() if t.asks.get(p) != q]
                    + [(p, 0) for p in t.asks if p not in na])  # fmt: skip
        prev = t.seq
        t.seq += t.rng.randint(1, 20)  # seqIds grow by uneven steps
        t.bids, t.asks = nb, na
        t.last_sent = mono
        self._send_update(t, db, da, prev)

    def _send_update(self, t: BooksTopic, db: list, da: list, prev: int) -> None:
        if not t.fan:
            return
        checksum = self._checksum(t)
        if t.corrupt and checksum:
            t.corrupt -= 1
            checksum = checksum + 1 if checksum < 2**31 - 1 else checksum - 1
        raw = self._books_msg(t, "update", db, da, prev, checksum)
        for c in t.fan.subs.values():
            c.send(raw, t.sym)

    def _snapshot_to(self, conn: SimConnection, t: BooksTopic, mono: float) -> None:
        """A new subscriber's snapshot (pending changes go to the others first)."""
        self.flush_books(t, mono)
        if not t.bids and not t.asks:
            bids, asks = self._view(t.sym, BOOKS_DEPTH)
            t.bids, t.asks = dict(bids), dict(asks)
            t.dirty = False
        conn.send(self._books_msg(t, "snapshot", sorted(t.bids.items(), reverse=True),
                                  sorted(t.asks.items()), -1, self._checksum(t)))  # fmt: skip
        if not t.fan:
            t.last_sent = mono

    def _push_snap(self, ch: str, f: Fanout, mono: float, conn: SimConnection | None = None
                   ) -> None:  # fmt: skip
        """``books5`` / ``bbo-tbt``: the top levels when they changed (or to a new subscriber,
        or again after ``books_keepalive`` s)."""
        depth = 5 if ch == "books5" else 1
        bids, asks = self._view(f.symbol, depth)
        last = f.state or ((), (), 0.0)
        if conn is None and (bids, asks) == last[:2] \
                and mono - last[2] < self.knob("books_keepalive"):  # fmt: skip
            return
        if conn is None:
            f.state = (bids, asks, mono)
        t = self.books[f.symbol]
        data: dict[str, Any] = {"asks": self._levels(f.symbol, asks),
                                "bids": self._levels(f.symbol, bids)}  # fmt: skip
        if ch == "books5":
            data["instId"] = self.inst[f.symbol]
        data.update(ts=str(now_ms()), seqId=t.seq)
        raw = ENC.encode({"arg": {"channel": ch, "instId": self.inst[f.symbol]}, "data": [data]})
        for c in [conn] if conn is not None else f.subs.values():
            c.send(raw)

    def restart(self, symbol: str | None = None) -> None:
        """The documented sequence reset (maintenance): the next ``books`` update of
        `symbol` (every symbol if None) has a seqId smaller than its prevSeqId."""
        for t in self.books.values():
            if symbol is None or t.sym == symbol.upper():
                old, t.seq = t.seq, t.rng.randint(1, 9)
                self._send_update(t, [], [], old)
                t.dirty = True

    def corrupt_checksum(self, symbol: str, count: int = 1) -> None:
        """Fault: the next `count` ``books`` updates of `symbol` carry a wrong checksum."""
        self.books[symbol.upper()].corrupt += count

    def extra_truth(self, symbol: str) -> dict[str, int]:
        """The last seqId sent on ``books`` of `symbol`."""
        return {f"books:{symbol}": self.books[symbol].seq}

    def on_tick(self, mono: float, now: int) -> None:
        bp = self.knob("books_push_ms") / 1000.0
        for t in self.books.values():
            if t.fan and mono >= t.fan.next_due:
                t.fan.next_due = mono + bp
                self.flush_books(t, mono)
        for (ch, _), f in self.snaps.items():
            if f and mono >= f.next_due:
                f.next_due = mono + self.knob("books5_push_ms" if ch == "books5" else
                                              "bbo_push_ms") / 1000.0  # fmt: skip
                self._push_snap(ch, f, mono)
        for f in self.candle_fans.values():
            if f and mono >= f.next_due:
                f.next_due = mono + self.knob("kline_push")
                self._candle_push(f, now)

    def _candle_push(self, f: Fanout, now: int) -> None:
        bar, series, last_start = f.state
        cur = series.current(now)
        if cur is None:
            return
        rows = []
        if last_start is not None and last_start != cur.start:
            closed = series.candles.get(last_start)
            if closed is not None:
                rows.append(self._candle_row(f.symbol, closed, "1"))
        f.state = (bar, series, cur.start)
        rows.append(self._candle_row(f.symbol, cur, "0"))
        # "Candlesticks channel" push: data rows [ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm]
        raw = ENC.encode({"arg": {"channel": f"candle{bar}", "instId": self.inst[f.symbol]},
                          "data": rows})  # fmt: skip
        for c in f.subs.values():
            c.send(raw)

    def _candle_row(self, sym: str, c: Candle, confirm: str) -> list[str]:
        px, qx = self.px[sym], self.qx[sym]
        quote = fmt_product(c.quote, px, 1, qx, px.dp + qx.dp)
        return [str(c.start), px.fmt(c.o), px.fmt(c.h), px.fmt(c.l), px.fmt(c.c),
                qx.fmt(c.vol), self._vol_ccy(sym, c, quote), quote, confirm]  # fmt: skip

    def _vol_ccy(self, sym: str, c: Candle, quote: str) -> str:
        """Spot ``volCcy``: the quote currency volume."""
        return quote

    # ================================================================ websocket

    def _channel(self, arg: dict[str, Any], business: bool) -> Fanout | None:
        ch, inst = arg.get("channel"), arg.get("instId")
        if business:
            if isinstance(ch, str) and ch.startswith("candle") and ch[6:] in BARS \
                    and inst in self.by_inst:  # fmt: skip
                return self._candles(ch[6:], self.by_inst[inst])
            return None
        sym = self.by_inst.get(inst) if isinstance(inst, str) else None
        if sym is not None:
            if ch == "books":
                return self.books[sym].fan
            if ch in ("books5", "bbo-tbt"):
                return self.snaps[(ch, sym)]
            if ch == "trades":
                return self.trade_fans[sym]
        return self._extra_channel(arg)

    def _extra_channel(self, arg: dict[str, Any]) -> Fanout | None:
        """A public channel beyond books and trades (none on spot)."""
        return None

    def _candles(self, bar: str, sym: str) -> Fanout:
        key = (bar, sym)
        f = self.candle_fans.get(key)
        if f is None:
            kind, ms = BARS[bar]
            f = self.candle_fans[key] = Fanout(f"candle{bar}:{sym}", sym)
            f.state = (bar, self.klines.series(self.markets[sym], kind, ms), None)
        return f

    def attach_trading(self, core: Any, *, listen_key_ttl: float) -> Any:
        """Signed endpoints and ``/ws/v5/private`` (:mod:`~ttxt_mp.connectors.okx.sim_trading`)."""
        from ttxt_mp.connectors.okx.sim_trading import OkxSimTrading

        return OkxSimTrading(self, core)

    def _after_subscribe(self, conn: SimConnection, f: Fanout, mono: float) -> None:
        """What a new subscriber gets first (swap channels: their current value)."""

    def _send(self, conn: SimConnection, msg: dict[str, Any]) -> None:
        conn.send(ENC.encode({**msg, "connId": conn.conn_id}))  # type: ignore[attr-defined]

    def _error(self, conn: SimConnection, code: str, msg: str, req_id: Any = None) -> None:
        # "WebSocket" overview, failure response: event error, code, msg, connId.
        out: dict[str, Any] = {"event": "error", "code": code, "msg": msg}
        if req_id is not None:
            out = {"id": req_id, **out}
        self._send(conn, out)

    def _op(self, conn: SimConnection, text: str, business: bool) -> None:
        if text == "ping":
            conn.send(b"pong")
            return
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            self._error(conn, "60012", f"Invalid request: {text[:200]}")
            return
        op, rid = req["op"], req.get("id")
        if op not in ("subscribe", "unsubscribe"):
            self._error(conn, "60019", f"Invalid op: {op}", rid)
            return
        mono = time.monotonic()
        stamps = [s for s in conn.op_times if mono - s < 3600.0]  # type: ignore[attr-defined]
        if len(stamps) >= self.knob("ops_per_hour"):
            self._error(conn, "60014", "Requests too frequent.", rid)
            return
        conn.op_times = stamps + [mono]  # type: ignore[attr-defined]
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            self._error(conn, "60013", "Invalid args", rid)
            return
        fans = [self._channel(a, business) for a in args]
        for a, f in zip(args, fans, strict=True):
            if f is None:
                self._error(conn, "60018", WRONG_URL.format(ch=a.get("channel"),
                            inst=a.get("instId") or a.get("instType")), rid)  # fmt: skip
                return
        for a, f in zip(args, fans, strict=True):
            assert f is not None
            ack: dict[str, Any] = {"event": op, "arg": a}
            self._send(conn, {"id": rid, **ack} if rid is not None else ack)
            if op == "unsubscribe":
                f.subs.pop(conn.id, None)
                conn.subscriptions.pop(f.name, None)
                continue
            conn.subscriptions[f.name] = f
            self._first(conn, f, mono)
            f.subs[conn.id] = conn

    def _first(self, conn: SimConnection, f: Fanout, mono: float) -> None:
        t = self.books.get(f.symbol)
        if t is not None and f is t.fan:
            self._snapshot_to(conn, t, mono)
        elif f.name.startswith(("books5:", "bbo-tbt:")):
            self._push_snap(f.name.partition(":")[0], f, mono, conn)
        else:
            self._after_subscribe(conn, f, mono)

    def unsubscribe_all(self, conn: SimConnection) -> None:
        for f in conn.subscriptions.values():
            f.subs.pop(conn.id, None)
        conn.subscriptions.clear()

    async def ws_public(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, business=False)

    async def ws_business(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, business=True)

    async def _serve(self, request: web.Request, business: bool) -> web.StreamResponse:
        ws, conn = await self.open_ws(request)
        conn.conn_id = uuid.uuid4().hex[:8]  # type: ignore[attr-defined]
        conn.op_times = []  # type: ignore[attr-defined]
        watch = asyncio.get_running_loop().create_task(self._idle_watch(conn))
        try:
            await self.read_frames(ws, conn, lambda c, text: self._op(c, text, business))
        finally:
            watch.cancel()
            self.forget(conn)
        return ws

    async def _idle_watch(self, conn: SimConnection) -> None:
        """"The connection will break automatically if the subscription is not established
        or data has not been pushed for more than 30 seconds" (Connect)."""
        timeout = self.knob("idle_timeout")
        step = min(timeout / 5, 1.0)
        last, since = conn.sent_frames, time.monotonic()
        try:
            while not conn.closed:
                await asyncio.sleep(step)
                now = time.monotonic()
                if conn.sent_frames != last:
                    last, since = conn.sent_frames, now
                elif now - since > timeout and not conn.stalled:
                    await conn.close(1000, "no data for 30 s")
                    return
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    # ================================================================ REST

    @staticmethod
    def _reply(data: list[Any], code: str = "0", msg: str = "") -> web.Response:
        # REST responses: {"code": "0", "msg": "", "data": [...]}
        return web.Response(body=ENC.encode({"code": code, "msg": msg, "data": data}),
                            content_type="application/json")  # fmt: skip

    async def rest_time(self, request: web.Request) -> web.Response:
        # "Get system time": data[{ts}] in ms
        return self._reply([{"ts": str(now_ms())}])

    async def rest_instruments(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("instType") != self.inst_type:
            return self._reply([], "51000", "Parameter instType error")
        inst = q.get("instId")
        if inst is not None and inst not in self.by_inst:
            return self._reply([], "51001", "Instrument ID does not exist")
        syms = [self.by_inst[inst]] if inst else list(self.markets)
        return self._reply([self._instrument(s) for s in syms])

    def _instrument(self, sym: str) -> dict[str, Any]:
        spec = self.markets[sym].spec
        # "Get instruments" (SPOT)
        return {"alias": "", "baseCcy": spec.base, "category": "1", "ctMult": "", "ctType": "",
                "ctVal": "", "ctValCcy": "", "expTime": "", "instFamily": "",
                "instId": self.inst[sym], "instType": "SPOT", "lever": "10",
                "listTime": "1606468572000", "lotSz": spec.step, "maxIcebergSz": "9999999999",
                "maxLmtAmt": "1000000", "maxLmtSz": "9999999999", "maxMktAmt": "1000000",
                "maxMktSz": "1000000", "maxStopSz": "1000000", "maxTriggerSz": "9999999999",
                "maxTwapSz": "9999999999", "minSz": self.qx[sym].fmt(1), "optType": "",
                "quoteCcy": spec.quote, "settleCcy": "", "state": "live", "stk": "",
                "tickSz": spec.tick, "uly": ""}  # fmt: skip

    async def rest_books(self, request: web.Request) -> web.Response:
        q = request.query
        sym = self.by_inst.get(q.get("instId", ""))
        if sym is None:
            return self._reply([], "51001", "Instrument ID does not exist")
        try:
            sz = int(q.get("sz", "1"))
        except ValueError:
            return self._reply([], "51000", "Parameter sz error")
        if not 1 <= sz <= BOOKS_DEPTH:
            return self._reply([], "51000", "Parameter sz error")
        bids, asks = self._view(sym, sz)
        # "Get order book": data[{asks, bids, ts, seqId}] (the books channel's last seqId)
        return self._reply([{"asks": self._levels(sym, asks), "bids": self._levels(sym, bids),
                             "ts": str(now_ms()), "seqId": self.books[sym].seq}])  # fmt: skip
