"""Coinbase Advanced Trade public market data, written from the Advanced Trade documentation
(docs.cdp.coinbase.com: "Advanced Trade WebSocket Overview", "Advanced Trade WebSocket
Channels", "WebSocket Rate Limits", "List Public Products", "Get Public Product Book",
"Get Server Time"). Mounted under a base path: <base>/ (the WebSocket), <base>/api/v3/...

Per connection, every message carries the connection's next ``sequence_num`` (from 0).
Products are ``BASE-QUOTE`` of the simulated markets (market ``BTCUSDT`` is ``BTC-USDT``).

What the documentation leaves open and this adapter chooses (knobs where it matters):
level2 updates are batched every ``l2_push`` s; ``market_trades`` starts with a snapshot
of the last ``trades_snapshot`` trades; ``ticker`` is sent on every match (its best bid
and offer are the book's at that match) and as a snapshot on subscribing; an over-limit
or unknown request is answered ``{"type": "error", "message": ...}`` and ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import deque
from typing import Any

from aiohttp import web

from ttxt_mp import argtypes as at
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.klines import MIN
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob, VenueBase

__all__ = ["CoinbaseVenue"]

CHANNELS = ("level2", "market_trades", "candles", "ticker")  # with product_ids
HEARTBEATS = "heartbeats"  # no product_ids
DATA_CHANNEL = {"level2": "l2_data"}  # the channel name its messages carry
CANDLE_MS = 5 * MIN


def rfc3339(ns: int) -> str:
    """``2023-02-09T20:32:50.714964855Z`` (the feed's timestamps)."""
    s, frac = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class _Conn:
    """The per-connection counters: the next ``sequence_num``, heartbeats, client messages."""

    __slots__ = ("seq", "heartbeat", "hb_due", "hb_counter", "recent")

    def __init__(self) -> None:
        self.seq = 0
        self.heartbeat = False
        self.hb_due = 0.0
        self.hb_counter = 0
        self.recent: deque[float] = deque()


class CoinbaseVenue(VenueBase):
    name = "coinbase"
    knobs = (
        Knob("heartbeat_interval", 1.0, "seconds between heartbeats (Heartbeats channel: "
             "every second)", "heartbeat-interval", at.positive()),
        Knob("l2_push", 0.05, "seconds between level2 update batches"),
        Knob("candle_push", 1.0, "seconds between candles updates (Candles channel: every "
             "second)"),
        Knob("messages_per_sec", 8, "client messages per second per connection before an "
             "error (WebSocket Rate Limits: 8 per second per IP)"),
        Knob("trades_snapshot", 50, "trades in the first market_trades message"),
    )  # fmt: skip

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.product = {s: f"{m.spec.base}-{m.spec.quote}" for s, m in markets.items()}
        self.market_of = {p: s for s, p in self.product.items()}
        self.fans = {(ch, s): Fanout(f"{ch}:{p}", s) for s, p in self.product.items()
                     for ch in CHANNELS}  # fmt: skip
        self.cstate: dict[int, _Conn] = {}
        self.pending: dict[str, dict[tuple[bool, int], int]] = {s: {} for s in markets}
        self.last_ticker: dict[str, dict[str, str]] = {}
        self._l2_due = 0.0
        self._candle_due = 0.0
        self.listen_markets()
        r = self.app.router
        r.add_get("/", self.ws_handler)
        r.add_get("/api/v3/brokerage/time", self.rest_time)
        r.add_get("/api/v3/brokerage/market/products", self.rest_products)
        r.add_get("/api/v3/brokerage/market/product_book", self.rest_product_book)

    # ================================================================ sending

    def _send(self, conn: SimConnection, channel: str, events: list[Any],
              depth_symbol: str | None = None) -> None:  # fmt: skip
        st = self.cstate.get(conn.id)
        if st is None:
            return
        seq, st.seq = st.seq, st.seq + 1  # consumed even when a fault drops the frame
        conn.send(ENC.encode({"channel": channel, "client_id": "",
                              "timestamp": rfc3339(time.time_ns()), "sequence_num": seq,
                              "events": events}), depth_symbol)  # fmt: skip

    def _error(self, conn: SimConnection, message: str) -> None:
        conn.send(ENC.encode({"type": "error", "message": message}))

    # ================================================================ publishers

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        if not self.fans[("level2", sym)]:
            return
        pend = self.pending[sym]
        for is_bid, tick, lots in ev.changes:
            pend[(is_bid, tick)] = lots

    def _levels(self, sym: str, items: list[tuple[bool, int, int]], ts: str) -> list[dict[str, str]]:
        px, qx = self.px[sym], self.qx[sym]
        return [{"side": "bid" if b else "offer", "event_time": ts, "price_level": px.fmt(t),
                 "new_quantity": qx.fmt(q) if q else "0"} for b, t, q in items]  # fmt: skip

    def _flush_l2(self, sym: str) -> None:
        pend = self.pending[sym]
        fan = self.fans[("level2", sym)]
        if not pend:
            return
        items = [(b, t, q) for (b, t), q in pend.items()]
        pend.clear()
        if not fan:
            return
        ev = {"type": "update", "product_id": self.product[sym],
              "updates": self._levels(sym, items, rfc3339(time.time_ns()))}  # fmt: skip
        for c in list(fan.subs.values()):
            self._send(c, "l2_data", [ev], sym)

    def _snapshot_event(self, sym: str) -> dict[str, Any]:
        _, bids, asks = self.markets[sym].snapshot()
        ts = rfc3339(time.time_ns())
        items = [(True, t, q) for t, q in bids] + [(False, t, q) for t, q in asks]
        return {"type": "snapshot", "product_id": self.product[sym],
                "updates": self._levels(sym, items, ts)}  # fmt: skip

    def _trade_entry(self, sym: str, t: Trade) -> dict[str, str]:
        # side: the maker's side (the resting order), so a buying taker prints SELL
        return {"trade_id": str(t.trade_id), "product_id": self.product[sym],
                "price": self.px[sym].fmt(t.tick), "size": self.qx[sym].fmt(t.lots),
                "side": "SELL" if t.taker_buy else "BUY", "time": rfc3339(t.ts_ms * 1_000_000)}  # fmt: skip

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        fan = self.fans[("market_trades", sym)]
        if fan:
            ev = {"type": "update", "trades": [self._trade_entry(sym, t) for t in trades]}
            for c in list(fan.subs.values()):
                self._send(c, "market_trades", [ev])
        tick = self.fans[("ticker", sym)]
        if tick:
            ev = {"type": "update", "tickers": [self._ticker(sym)]}
            for c in list(tick.subs.values()):
                self._send(c, "ticker", [ev])

    def _ticker(self, sym: str) -> dict[str, str]:
        m = self.markets[sym]
        px, qx = self.px[sym], self.qx[sym]
        last = px.fmt(m.trades[-1].tick) if m.trades else px.fmt(int(m.mid))
        bid, ask = m.book.bids.best(), m.book.asks.best()
        t = {"type": "ticker", "product_id": self.product[sym], "price": last,
             "volume_24_h": "0", "low_24_h": last, "high_24_h": last, "low_52_w": last,
             "high_52_w": last, "price_percent_chg_24_h": "0",
             "best_bid": px.fmt(bid) if bid else "0",
             "best_bid_quantity": qx.fmt(m.book.bids.levels[bid]) if bid else "0",
             "best_ask": px.fmt(ask) if ask else "0",
             "best_ask_quantity": qx.fmt(m.book.asks.levels[ask]) if ask else "0"}  # fmt: skip
        self.last_ticker[sym] = t
        return t

    def _candle(self, sym: str, now: int) -> dict[str, str] | None:
        c = self.klines.series(self.markets[sym], "", CANDLE_MS).current(now)
        if c is None:
            return None
        px, qx = self.px[sym], self.qx[sym]
        return {"start": str(c.start // 1000), "high": px.fmt(c.h), "low": px.fmt(c.l),
                "open": px.fmt(c.o), "close": px.fmt(c.c), "volume": qx.fmt(c.vol),
                "product_id": self.product[sym]}  # fmt: skip

    def on_tick(self, mono: float, now_ms_: int) -> None:
        if mono >= self._l2_due:
            self._l2_due = mono + self.knob("l2_push")
            for sym in self.markets:
                self._flush_l2(sym)
        if mono >= self._candle_due:
            self._candle_due = mono + self.knob("candle_push")
            for sym in self.markets:
                fan = self.fans[("candles", sym)]
                c = self._candle(sym, now_ms_) if fan else None
                if c is not None:
                    for conn in list(fan.subs.values()):
                        self._send(conn, "candles", [{"type": "update", "candles": [c]}])
        for cid, st in list(self.cstate.items()):
            if st.heartbeat and mono >= st.hb_due:
                st.hb_due = mono + self.knob("heartbeat_interval")
                conn = self.conns.get(cid)
                if conn is not None and not conn.closed:
                    st.hb_counter += 1
                    self._send(conn, HEARTBEATS, [{
                        "current_time": rfc3339(time.time_ns()).replace("T", " "),
                        "heartbeat_counter": st.hb_counter}])  # fmt: skip

    def extra_truth(self, symbol: str) -> dict[str, int]:
        """Per connection id, the next ``sequence_num`` it will send."""
        return {f"sequence_num:{cid}": st.seq for cid, st in self.cstate.items()}

    # ================================================================ websocket

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws, conn = await self.open_ws(request)
        self.cstate[conn.id] = _Conn()
        try:
            await self.read_frames(ws, conn, self._request)
        finally:
            self.forget(conn)
        return ws

    def unsubscribe_all(self, conn: SimConnection) -> None:
        for fan in self.fans.values():
            fan.subs.pop(conn.id, None)
        conn.subscriptions.clear()
        self.cstate.pop(conn.id, None)

    def _over_limit(self, conn: SimConnection) -> bool:
        recent = self.cstate[conn.id].recent
        now = time.monotonic()
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        recent.append(now)
        return len(recent) > self.knob("messages_per_sec")

    def _request(self, conn: SimConnection, text: str) -> None:
        """One client message: subscribe or unsubscribe ONE channel ("Subscribing")."""
        if conn.id not in self.cstate:
            return
        if self._over_limit(conn):
            self._error(conn, "rate limit exceeded: more than "
                        f"{self.knob('messages_per_sec')} messages per second")  # fmt: skip
            return
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            req = None
        if not isinstance(req, dict) or req.get("type") not in ("subscribe", "unsubscribe"):
            self._error(conn, "failure to parse: expected a subscribe or unsubscribe message")
            return
        channel = req.get("channel")
        if not isinstance(channel, str) or "channels" in req:
            self._error(conn, "one channel per message: 'channel' must be a string")
            return
        sub = req["type"] == "subscribe"
        if channel == HEARTBEATS:
            self.cstate[conn.id].heartbeat = sub
            self._set(conn, HEARTBEATS, sub)
            self._subscriptions(conn)
            return
        if channel not in CHANNELS:
            self._error(conn, f"failure to subscribe: channel {channel!r} is not available")
            return
        pids = req.get("product_ids")
        if not isinstance(pids, list) or not pids or not all(isinstance(p, str) for p in pids):
            self._error(conn, f"failure to subscribe: {channel} needs product_ids")
            return
        unknown = [p for p in pids if p not in self.market_of]
        if unknown:
            self._error(conn, f"failure to subscribe: unknown product_ids {', '.join(unknown)}")
            return
        syms = [self.market_of[p] for p in dict.fromkeys(pids)]
        for sym in syms:
            fan = self.fans[(channel, sym)]
            if channel == "level2":
                self._flush_l2(sym)  # earlier subscribers first get what the snapshot includes
            if sub:
                fan.subs[conn.id] = conn
            else:
                fan.subs.pop(conn.id, None)
            self._set(conn, fan.name, sub)
        self._subscriptions(conn)
        if sub:
            self._first(conn, channel, syms)

    def _set(self, conn: SimConnection, key: str, sub: bool) -> None:
        if sub:
            conn.subscriptions[key] = True
        else:
            conn.subscriptions.pop(key, None)

    def _subscriptions(self, conn: SimConnection) -> None:
        """The ``subscriptions`` message: every channel of the connection with its products."""
        subs: dict[str, list[str]] = {}
        for key in conn.subscriptions:
            ch, _, pid = key.partition(":")
            subs.setdefault(ch, []).append(pid or ch)
        self._send(conn, "subscriptions", [{"subscriptions": subs}])

    def _first(self, conn: SimConnection, channel: str, syms: list[str]) -> None:
        """What a new subscription starts with: snapshots."""
        if channel == "level2":
            self._send(conn, "l2_data", [self._snapshot_event(s) for s in syms])
        elif channel == "ticker":
            self._send(conn, "ticker", [{"type": "snapshot",
                                         "tickers": [self._ticker(s) for s in syms]}])  # fmt: skip
        elif channel == "market_trades":
            n = self.knob("trades_snapshot")
            trades = [self._trade_entry(s, t) for s in syms
                      for t in list(self.markets[s].trades)[-n:][::-1]]  # fmt: skip
            self._send(conn, "market_trades", [{"type": "snapshot", "trades": trades}])
        elif channel == "candles":
            cs = [c for s in syms if (c := self._candle(s, now_ms())) is not None]
            self._send(conn, "candles", [{"type": "snapshot", "candles": cs}])

    # ================================================================ REST

    async def rest_time(self, request: web.Request) -> web.Response:
        ns = time.time_ns()
        return web.json_response({"iso": rfc3339(ns), "epochSeconds": str(ns // 10**9),
                                  "epochMillis": str(ns // 10**6)})  # fmt: skip

    def _product(self, sym: str) -> dict[str, Any]:
        m = self.markets[sym]
        spec, px, qx = m.spec, self.px[sym], self.qx[sym]
        price = px.fmt(m.trades[-1].tick) if m.trades else px.fmt(int(m.mid))
        return {
            "product_id": self.product[sym], "price": price,
            "price_percentage_change_24h": "0", "volume_24h": "0",
            "volume_percentage_change_24h": "0", "base_increment": spec.step,
            "quote_increment": spec.tick, "quote_min_size": "1", "quote_max_size": "10000000",
            "base_min_size": qx.fmt(1), "base_max_size": "10000", "base_name": spec.base,
            "quote_name": spec.quote, "watched": False, "is_disabled": False, "new": False,
            "status": "online", "cancel_only": False, "limit_only": False, "post_only": False,
            "trading_disabled": False, "auction_mode": False, "product_type": "SPOT",
            "quote_currency_id": spec.quote, "base_currency_id": spec.base,
            "mid_market_price": "", "alias": "", "alias_to": [],
            "base_display_symbol": spec.base, "quote_display_symbol": spec.quote,
            "view_only": False, "price_increment": spec.tick,
            "display_name": f"{spec.base}/{spec.quote}", "product_venue": "CBE",
        }  # fmt: skip

    async def rest_products(self, request: web.Request) -> web.Response:
        q = request.query
        kind = q.get("product_type")
        wanted = q.getall("product_ids", [])
        syms = [s for s, p in self.product.items() if not wanted or p in wanted]
        if kind not in (None, "SPOT"):
            syms = []
        products = [self._product(s) for s in syms]
        return web.json_response({"products": products, "num_products": len(products)})

    async def rest_product_book(self, request: web.Request) -> web.Response:
        q = request.query
        pid = q.get("product_id", "")
        sym = self.market_of.get(pid)
        if sym is None:
            return web.json_response({"error": "NOT_FOUND", "error_details": "ProductID not found",
                                      "message": "ProductID not found"}, status=404)  # fmt: skip
        try:
            limit = int(q["limit"]) if "limit" in q else None
        except ValueError:
            return web.json_response({"error": "INVALID_ARGUMENT", "message": "limit must be an "
                                      "integer"}, status=400)  # fmt: skip
        px, qx = self.px[sym], self.qx[sym]
        _, bids, asks = self.markets[sym].snapshot(limit)
        return web.json_response({"pricebook": {
            "product_id": pid, "bids": [{"price": px.fmt(t), "size": qx.fmt(v)} for t, v in bids],
            "asks": [{"price": px.fmt(t), "size": qx.fmt(v)} for t, v in asks],
            "time": rfc3339(time.time_ns())}})  # fmt: skip
