"""``ToyExchange``: the toy exchange itself, an aiohttp server on 127.0.0.1 (a free port).

It speaks the format of :mod:`ttxt_toyvenue.protocol` (and is written from that text,
not from the normalizer) and knows the truth: its books (:meth:`ToyExchange.truth`) and
every trade and ticker it sent (:attr:`trades`, :attr:`tickers`). It runs its own event
loop in a thread, so a test drives it with plain calls::

    with ToyExchange() as ex:          # listening on ex.ws_url / ex.rest_url
        ...                            # point a connector at it, wait until it is synced
        ex.play(300)                   # 300 steps: one delta per symbol each, some
                                       # trades and tickers; returns once all are sent
        ex.truth("BTC-USDT")           # {"seq": ..., "bids": [[p, q], ...], "asks": ...}

Nothing changes between :meth:`play` calls, so a book seen after the last step of a play
must equal :meth:`truth`. ``play(n, drop={"ETH-USDT": 100})`` applies the 100th ETH delta
but does not send it: the connector sees a ``seq`` gap and must resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["DEFAULT_MARKETS", "ToyExchange"]

DEFAULT_MARKETS: Mapping[str, tuple[float, float, int]] = {
    "BTC-USDT": (30000.0, 0.5, 1000),  # mid, tick, first seq
    "ETH-USDT": (2000.0, 0.05, 5000),
}
LEVELS = 25  # price levels a side may use (the venue promises at most 50)
TRADE_EVERY, TICKER_EVERY = 3, 10
TIMEOUT = 30.0


def _num(x: float) -> str:
    return repr(float(x))


class _Market:
    def __init__(self, sym: str, mid: float, tick: float, seq: int, rng: random.Random) -> None:
        self.sym, self.mid, self.tick, self.seq, self.rng = sym, mid, tick, seq, rng
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.trade_no = 0
        self.last = mid
        self.volume = 0.0
        for k in range(1, 11):
            self.bids[self.price(-k)] = self.qty()
            self.asks[self.price(k)] = self.qty()

    def price(self, k: int) -> float:
        decimals = max(0, len(_num(self.tick).split(".")[1].rstrip("0")))
        return round(self.mid + k * self.tick, decimals)

    def qty(self) -> float:
        return round(self.rng.uniform(0.001, 5.0), 3)

    def step(self) -> dict[str, Any]:
        """Change one level (set or remove), advance ``seq``; the delta frame."""
        rng = self.rng
        side, sign = (self.bids, -1) if rng.random() < 0.5 else (self.asks, 1)
        px = self.price(sign * rng.randint(1, LEVELS))
        qty = 0.0 if px in side and rng.random() < 0.35 else self.qty()
        if qty:
            side[px] = qty
        else:
            side.pop(px, None)
        self.seq += 1
        lv = [[_num(px), _num(qty)]]
        return self.book_frame("delta", lv if sign < 0 else [], lv if sign > 0 else [])

    def book_frame(self, kind: str, bids: list | None = None, asks: list | None = None) -> dict:
        if kind == "snapshot":
            bids = [[_num(p), _num(q)] for p, q in self.levels(self.bids, True)]
            asks = [[_num(p), _num(q)] for p, q in self.levels(self.asks, False)]
        return {"ch": "book", "sym": self.sym, "type": kind, "seq": self.seq, "ts": _ms(),
                "bids": bids or [], "asks": asks or []}  # fmt: skip

    @staticmethod
    def levels(side: dict[float, float], bids: bool) -> list[list[float]]:
        return [[p, side[p]] for p in sorted(side, reverse=bids)]

    def trade(self) -> dict[str, Any]:
        self.trade_no += 1
        buy = self.rng.random() < 0.5
        px = min(self.asks, default=self.last) if buy else max(self.bids, default=self.last)
        qty = self.qty()
        self.last = px
        self.volume = round(self.volume + qty, 6)
        t = {"id": f"{self.sym}-{self.trade_no}", "px": _num(px), "qty": _num(qty),
             "side": "buy" if buy else "sell", "ts": _ms()}  # fmt: skip
        return {"ch": "trades", "sym": self.sym, "ts": t["ts"], "trades": [t]}

    def ticker(self) -> dict[str, Any]:
        return {"ch": "ticker", "sym": self.sym, "ts": _ms(), "seq": self.seq,
                "last": _num(self.last), "bid": _num(max(self.bids, default=0.0)),
                "ask": _num(min(self.asks, default=0.0)), "vol": _num(self.volume)}  # fmt: skip


def _ms() -> int:
    return time.time_ns() // 1_000_000


class ToyExchange:
    """See the module docstring. ``markets``: native symbol -> (mid, tick, first seq)."""

    def __init__(self, markets: Mapping[str, tuple[float, float, int]] = DEFAULT_MARKETS,
                 *, seed: int = 7) -> None:  # fmt: skip
        rng = random.Random(seed)
        self.markets = {s: _Market(s, m, t, q, rng) for s, (m, t, q) in markets.items()}
        self.port = 0
        self.trades: list[dict[str, Any]] = []
        """Every trade sent: ``{"sym", "id", "px", "qty", "side", "ts"}`` (wire strings)."""
        self.tickers: list[dict[str, Any]] = []
        """Every ticker frame sent."""
        self.connections = 0
        self.subscribes: list[list[str]] = []
        self._clients: dict[web.WebSocketResponse, set[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ life-cycle

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ToyExchange:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="toy-exchange",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(TIMEOUT)
            if not loop.is_running():
                loop.close()

    def __enter__(self) -> ToyExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        assert self._loop is not None, "the toy exchange is not running"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/instruments", self._instruments)
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"exchange stopping"), 5)
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ what the test asks

    def play(self, steps: int, *, drop: Mapping[str, int] | None = None,
             timeout: float = TIMEOUT) -> None:  # fmt: skip
        """``steps`` steps (see the module docstring), sent before this returns."""
        self._call(self._play(steps, dict(drop or {})), timeout)

    def truth(self, sym: str) -> dict[str, Any]:
        """The book now: ``{"seq", "bids": [[price, qty], ...] best first, "asks"}``."""
        return self._call(self._truth(sym))

    def clients(self) -> int:
        return len(self._clients)

    async def _truth(self, sym: str) -> dict[str, Any]:
        m = self.markets[sym]
        return {"seq": m.seq, "bids": m.levels(m.bids, True), "asks": m.levels(m.asks, False)}

    async def _play(self, steps: int, drop: dict[str, int]) -> None:
        for i in range(1, steps + 1):
            for sym, m in self.markets.items():
                delta = m.step()
                if drop.get(sym) != i:
                    await self._publish("book", sym, delta)
                if i % TRADE_EVERY == 0:
                    frame = m.trade()
                    self.trades.extend({"sym": sym, **t} for t in frame["trades"])
                    await self._publish("trades", sym, frame)
                if i % TICKER_EVERY == 0 or i == steps:
                    frame = m.ticker()
                    self.tickers.append(frame)
                    await self._publish("ticker", sym, frame)
            await asyncio.sleep(0)  # let replies (pongs, subscriptions) through

    async def _publish(self, ch: str, sym: str, frame: dict[str, Any]) -> None:
        text = json.dumps(frame)
        topic = f"{ch}:{sym}"
        for ws, subs in list(self._clients.items()):
            if topic in subs and not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)

    # ------------------------------------------------------------------ handlers

    async def _instruments(self, request: web.Request) -> web.Response:
        body = {"instruments": [
            {"name": s, "base": s.split("-")[0], "quote": s.split("-")[1], "tick": _num(m.tick)}
            for s, m in self.markets.items()
        ]}  # fmt: skip
        return web.json_response(body)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        subs = self._clients[ws] = set()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                await self._on_request(ws, subs, msg.data)
        finally:
            self._clients.pop(ws, None)
        return ws

    async def _on_request(self, ws: web.WebSocketResponse, subs: set[str], text: str) -> None:
        try:
            req = json.loads(text)
            op = req["op"]
        except (ValueError, KeyError, TypeError):
            await ws.send_json({"op": "error", "id": 0, "msg": f"bad request {text[:80]!r}"})
            return
        rid = req.get("id", 0)
        if op == "ping":
            await ws.send_json({"op": "pong"})
            return
        channels = req.get("channels", [])
        if op not in ("subscribe", "unsubscribe"):
            await ws.send_json({"op": "error", "id": rid, "msg": f"unknown op {op!r}"})
            return
        for c in channels:
            ch, _, sym = str(c).partition(":")
            if ch not in ("book", "trades", "ticker") or sym not in self.markets:
                await ws.send_json({"op": "error", "id": rid, "msg": f"unknown channel {c!r}"})
                return
        if op == "unsubscribe":
            subs.difference_update(channels)
            await ws.send_json({"op": "unsubscribed", "id": rid, "channels": channels})
            return
        self.subscribes.append(list(channels))
        subs.update(channels)
        await ws.send_json({"op": "subscribed", "id": rid, "channels": channels})
        for c in channels:
            if c.startswith("book:"):
                await ws.send_str(json.dumps(self.markets[c[5:]].book_frame("snapshot")))
