"""The simulator: markets, venues and one aiohttp server on 127.0.0.1, driven by one clock."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
from aiohttp import web

from ttxt_mp.connectors.binance.sim import BinanceVenue
from ttxt_mp.connectors.binance.sim_trading import BinanceTrading
from ttxt_mp.connectors.bybit.sim import BybitVenue
from ttxt_mp.connectors.bybit.sim_trading import BybitTrading
from ttxt_mp.sim.blast import Blaster
from ttxt_mp.sim.control import control_app
from ttxt_mp.sim.faults import FaultSpec
from ttxt_mp.sim.market import Market, now_ms
from ttxt_mp.sim.specs import VENUES, Rates, SymbolSpec, VenueTimings, default_spec
from ttxt_mp.sim.trading import AccountSpec, TradingCore
from ttxt_mp.sim.venue import VenueBase


class VenueUrls(msgspec.Struct):
    rest: str  # replaces https://api.binance.com or https://api.bybit.com
    ws: str  # replaces wss://stream.binance.com:9443 or wss://stream.bybit.com


class SimUrls(msgspec.Struct):
    host: str
    port: int
    control: str
    binance: VenueUrls | None = None
    bybit: VenueUrls | None = None


class TrueBook(msgspec.Struct):
    """The true book at one instant. `update_id` is Binance's lastUpdateId / Bybit's seq;
    `topics` gives Bybit's current `u` per orderbook topic. Levels are best first, formatted
    as the venue formats them on the wire."""

    venue: str
    symbol: str
    update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    topics: dict[str, int] = {}

    def as_floats(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return ([(float(p), float(q)) for p, q in self.bids],
                [(float(p), float(q)) for p, q in self.asks])


class Simulator:
    """Binance Spot + Bybit v5 public market-data simulator.

    `symbols` maps venue ("binance", "bybit") to symbol names or SymbolSpec. Every (venue,
    symbol) has its own deterministic market derived from `seed`. Use as
    `async with Simulator(...) as sim:` or `urls = await sim.start()` / `await sim.stop()`.
    Other modules may add routes to `sim.venue("binance").app` before `start()`.
    """

    def __init__(
        self,
        symbols: Mapping[str, Sequence[str | SymbolSpec]] | None = None,
        seed: int = 1,
        rates: Rates | None = None,
        timings: VenueTimings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_ms: float = 10.0,
        paused: bool = False,
        accounts: Mapping[str, tuple[str, Mapping[str, str]]] | Sequence[AccountSpec] | None = None,
        fees: tuple[str, str] = ("0.001", "0.001"),
        listen_key_ttl: float = 3600.0,
        blast_trades: float = 0.0,
    ) -> None:
        if symbols is None:
            symbols = {"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSDT", "ETHUSDT"]}
        unknown = set(symbols) - set(VENUES)
        if unknown:
            raise ValueError(f"unknown venue(s) {sorted(unknown)}; expected some of {VENUES}")
        if tick_ms <= 0:
            raise ValueError("tick_ms must be > 0")
        if blast_trades < 0:
            raise ValueError(f"blast_trades must be >= 0 frames/s, got {blast_trades}")
        self.seed = seed
        self.rates = rates or Rates()
        self.timings = timings or VenueTimings()
        self.host, self.port = host, port
        self.tick_s = tick_ms / 1000.0
        self.paused = paused
        self.markets: dict[str, dict[str, Market]] = {}
        for venue, syms in symbols.items():
            ms: dict[str, Market] = {}
            for s in syms:
                spec = s if isinstance(s, SymbolSpec) else default_spec(s)
                ss = np.random.SeedSequence([seed, zlib.crc32(venue.encode()), zlib.crc32(spec.symbol.encode())])
                ms[spec.symbol] = Market(spec, self.rates, int(ss.generate_state(1)[0]))
            self.markets[venue] = ms
        self.venues: dict[str, VenueBase] = {}
        if "binance" in self.markets:
            self.venues["binance"] = BinanceVenue(self.markets["binance"], self.timings)
        if "bybit" in self.markets:
            self.venues["bybit"] = BybitVenue(self.markets["bybit"], self.timings)
        # Trading (signed endpoints, matching, private streams): one core per venue; every
        # account exists on each venue with its own balances. fees = (maker, taker) rates.
        self.trading: dict[str, TradingCore] = {
            name: TradingCore(self.markets[name], maker_fee=fees[0], taker_fee=fees[1])
            for name in self.venues
        }
        self.binance_trading: BinanceTrading | None = None
        self.bybit_trading: BybitTrading | None = None
        if "binance" in self.venues:
            bv = self.venues["binance"]
            assert isinstance(bv, BinanceVenue)
            self.binance_trading = BinanceTrading(bv, self.trading["binance"], listen_key_ttl)
        if "bybit" in self.venues:
            yv = self.venues["bybit"]
            assert isinstance(yv, BybitVenue)
            self.bybit_trading = BybitTrading(yv, self.trading["bybit"])
        specs_in: list[AccountSpec] = []
        if isinstance(accounts, Mapping):
            specs_in = [AccountSpec(k, sec, {a: str(v) for a, v in bal.items()})
                        for k, (sec, bal) in accounts.items()]
        elif accounts is not None:
            specs_in = list(accounts)
        for a in specs_in:
            for core in self.trading.values():
                core.add_account(a)
        # Blast mode (sim/blast.py): trade frames at `blast_trades`/s per subscribed
        # (connection, symbol), replacing the market's own trades on the trade streams.
        self.blasters = ([Blaster(v, blast_trades) for v in self.venues.values()]
                         if blast_trades else [])
        self._blast_tasks: list[asyncio.Task[None]] = []
        self.urls: SimUrls | None = None
        self.steps = 0
        self._runner: web.AppRunner | None = None
        self._clock: asyncio.Task[None] | None = None
        self._scheduled: dict[int, asyncio.TimerHandle] = {}
        self._next_sched = 1

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> SimUrls:
        root = web.Application()
        for name, v in self.venues.items():
            root.add_subapp(f"/{name}", v.app)
        root.add_subapp("/_sim", control_app(self))
        self._runner = web.AppRunner(root, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"{self.host}:{port}"
        self.urls = SimUrls(host=self.host, port=port, control=f"http://{base}/_sim")
        for name in self.venues:
            setattr(self.urls, name, VenueUrls(rest=f"http://{base}/{name}", ws=f"ws://{base}/{name}"))
        loop = asyncio.get_running_loop()
        self._clock = loop.create_task(self._run_clock())
        self._blast_tasks = [loop.create_task(b.run()) for b in self.blasters]
        return self.urls

    async def stop(self) -> None:
        for h in self._scheduled.values():
            h.cancel()
        self._scheduled.clear()
        for t in self._blast_tasks:
            t.cancel()
        await asyncio.gather(*self._blast_tasks, return_exceptions=True)
        self._blast_tasks = []
        if self._clock is not None:
            self._clock.cancel()
            try:
                await self._clock
            except asyncio.CancelledError:
                pass
            self._clock = None
        for v in self.venues.values():
            await v.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run_clock(self) -> None:
        """Step every market by exactly tick_s per tick (catching up when late, so the event
        sequence never depends on scheduling), then let venues flush their publishers."""
        dt = self.tick_s
        next_t = time.monotonic()
        while True:
            now = time.monotonic()
            behind = 0
            while next_t <= now and behind < 50:
                if not self.paused:
                    self._step_all(dt)
                next_t += dt
                behind += 1
            if next_t <= now:  # far behind (e.g. suspended): drop the backlog
                next_t = now + dt
            ms = now_ms()
            mono = time.monotonic()
            for v in self.venues.values():
                v.on_tick(mono, ms)
            if self.binance_trading is not None:
                self.binance_trading.on_tick()
            idle = self.paused and not any(v.conns for v in self.venues.values())
            await asyncio.sleep(0.1 if idle else max(0.0, next_t - time.monotonic()))
            if idle:
                next_t = time.monotonic()

    def _step_all(self, dt: float) -> None:
        ts = now_ms()
        for ms in self.markets.values():
            for m in ms.values():
                m.step(dt, ts)
        for core in self.trading.values():
            core.settle()  # resting user orders the market moved through
        self.steps += 1

    # ------------------------------------------------------------ control

    def pause(self) -> dict[str, dict[str, int]]:
        """Stop the market generator; returns the update id of every book."""
        self.paused = True
        return self.update_ids()

    def resume(self) -> dict[str, dict[str, int]]:
        self.paused = False
        return self.update_ids()

    def advance(self, steps: int = 1) -> None:
        """Step the markets `steps` clock ticks by hand (deterministic; use while paused)."""
        for _ in range(steps):
            self._step_all(self.tick_s)

    def update_ids(self) -> dict[str, dict[str, int]]:
        return {v: {s: m.update_id for s, m in ms.items()} for v, ms in self.markets.items()}

    def deposit(self, venue: str, api_key: str, asset: str, amount: str) -> None:
        """Credit (negative: debit) an account's free balance on one venue."""
        if venue not in self.trading:
            raise KeyError(f"venue {venue!r} not simulated; have {sorted(self.trading)}")
        self.trading[venue].deposit(api_key, asset.upper(), amount)

    def venue(self, name: str) -> VenueBase:
        if name not in self.venues:
            raise KeyError(f"venue {name!r} not simulated; have {sorted(self.venues)}")
        return self.venues[name]

    def market(self, venue: str, symbol: str) -> Market:
        m = self.venue(venue).market(symbol)
        if m is None:
            raise KeyError(f"{venue} has no symbol {symbol!r}; have {sorted(self.markets[venue])}")
        return m

    def truth(self, venue: str, symbol: str, depth: int | None = None) -> TrueBook:
        """All levels (or the top `depth`) of the true book with its current update id."""
        v = self.venue(venue)
        m = self.market(venue, symbol)
        px, qx = v.px[m.spec.symbol], v.qx[m.spec.symbol]  # type: ignore[attr-defined]
        uid, bids, asks = m.snapshot(depth)
        topics: dict[str, int] = {}
        if isinstance(v, BybitVenue):
            topics = {t.name: t.u for t in v.books.values() if t.symbol == m.spec.symbol}
        return TrueBook(venue, m.spec.symbol, uid, [(px.fmt(t), qx.fmt(q)) for t, q in bids],
                        [(px.fmt(t), qx.fmt(q)) for t, q in asks], topics)

    def restart_bybit(self, symbol: str | None = None) -> None:
        """Simulate a Bybit service restart: orderbook topics restart at u=1 with a snapshot."""
        v = self.venue("bybit")
        assert isinstance(v, BybitVenue)
        if symbol is not None:
            self.market("bybit", symbol)
        v.restart(symbol)

    def connections(self, venue: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, v in self.venues.items():
            if venue is None or venue == name:
                out.extend(v.connections())
        return out

    def fault(self, spec: FaultSpec | None = None, **kwargs: Any) -> dict[str, Any]:
        """Apply a fault now (returns {"applied_to": [conn ids]}) or schedule it (returns
        {"scheduled": id}) when `after` > 0 or `every` is set."""
        if spec is None:
            spec = msgspec.convert(kwargs, FaultSpec)
        v = self.venue(spec.venue)
        if spec.symbol is not None and v.market(spec.symbol) is None:
            raise KeyError(f"{spec.venue} has no symbol {spec.symbol!r}")
        if spec.after == 0 and spec.every is None and spec.times == 1:
            return {"applied_to": v.apply_fault(spec)}
        sid = self._next_sched
        self._next_sched += 1
        loop = asyncio.get_running_loop()
        remaining = [spec.times]

        def fire() -> None:
            try:
                v.apply_fault(spec)
            except KeyError:
                pass  # the targeted connection is gone
            remaining[0] -= 1
            if remaining[0] > 0 and spec.every is not None:
                self._scheduled[sid] = loop.call_later(spec.every, fire)
            else:
                self._scheduled.pop(sid, None)

        self._scheduled[sid] = loop.call_later(spec.after, fire)
        return {"scheduled": sid}

    def cancel_fault(self, sid: int) -> bool:
        h = self._scheduled.pop(sid, None)
        if h is not None:
            h.cancel()
        return h is not None
