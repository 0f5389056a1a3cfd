"""The simulator: markets, venues and one aiohttp server on 127.0.0.1, driven by one clock."""

from __future__ import annotations

import asyncio
import functools
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
from aiohttp import web

from ttxt_mp.sim.blast import Blaster
from ttxt_mp.sim.control import control_app
from ttxt_mp.sim.faults import FaultSpec
from ttxt_mp.sim.market import Market, now_ms
from ttxt_mp.sim.specs import Rates, SymbolSpec, VenueTimings, default_spec
from ttxt_mp.sim.trading import AccountSpec, TradingCore
from ttxt_mp.sim.venue import TrueBook, VenueBase, sim_venues

__all__ = ["SimUrls", "Simulator", "TrueBook", "VenueUrls"]

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
"""What each venue simulates when `symbols` is not given."""


class VenueUrls(msgspec.Struct):
    rest: str  # replaces the venue's live REST base URL
    ws: str  # replaces the venue's live WebSocket base URL


class SimUrls(msgspec.Struct):
    """Where the simulator listens; ``urls.<venue id>`` is that venue's :class:`VenueUrls`
    (None for an installed venue not simulated now)."""

    host: str
    port: int
    control: str
    venues: dict[str, VenueUrls] = {}

    def __getattr__(self, name: str) -> VenueUrls | None:
        if not name.startswith("_"):
            found = self.venues.get(name)
            if found is not None or name in sim_venues():
                return found
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def flat(self) -> dict[str, Any]:
        """``{"host", "port", "control", "<venue id>": {"rest", "ws"}, ...}`` (the CLI line)."""
        return {"host": self.host, "port": self.port, "control": self.control,
                **{k: msgspec.to_builtins(v) for k, v in self.venues.items()}}


class Simulator:
    """Public market data and trading of every simulated venue: each installed venue (the
    registry, :mod:`ttxt_mp.connectors.venue`) whose ``VENUE.sim`` names a wire adapter
    (a :class:`~ttxt_mp.sim.venue.VenueBase`).

    `symbols` maps venue id to symbol names or SymbolSpec (default: every simulated venue
    with ``DEFAULT_SYMBOLS``). Every (venue, symbol) has its own deterministic market derived
    from `seed`. Use as `async with Simulator(...) as sim:` or `urls = await sim.start()` /
    `await sim.stop()`. Other modules may add routes to `sim.venue(id).app` before
    `start()`. ``sim.restart_<id>(symbol)`` and ``sim.<id>_trading`` are shorthands for
    :meth:`restart` and ``sim.trading_apis[id]``.
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
        accounts: Mapping[str, tuple[Any, ...]] | Sequence[AccountSpec] | None = None,
        fees: tuple[str, str] = ("0.001", "0.001"),
        listen_key_ttl: float = 3600.0,
        blast_trades: float = 0.0,
    ) -> None:
        adapters = sim_venues()
        if symbols is None:
            symbols = {vid: list(DEFAULT_SYMBOLS) for vid in adapters}
        unknown = set(symbols) - set(adapters)
        if unknown:
            raise ValueError(f"unknown venue(s) {sorted(unknown)}; expected some of "
                             f"{tuple(adapters)}")  # fmt: skip
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
        self.venues: dict[str, VenueBase] = {
            vid: adapters[vid](ms, self.timings) for vid, ms in self.markets.items()
        }
        # Trading (signed endpoints, matching, private streams): one core per venue; every
        # account exists on each venue with its own balances. fees = (maker, taker) rates.
        self.trading: dict[str, TradingCore] = {
            name: TradingCore(self.markets[name], maker_fee=fees[0], taker_fee=fees[1])
            for name in self.venues
        }
        self.trading_apis: dict[str, Any] = {}
        for name, v in self.venues.items():
            api = v.attach_trading(self.trading[name], listen_key_ttl=listen_key_ttl)
            if api is not None:
                self.trading_apis[name] = api
        self._tick_hooks = [h for h in (getattr(a, "on_tick", None)
                                        for a in self.trading_apis.values()) if callable(h)]
        specs_in: list[AccountSpec] = []
        if isinstance(accounts, Mapping):
            specs_in = [AccountSpec(k, v[0], {a: str(x) for a, x in v[1].items()}, *v[2:])
                        for k, v in accounts.items()]
        elif accounts is not None:
            specs_in = list(accounts)
        for a in specs_in:
            for core in self.trading.values():
                core.add_account(a)
        # Blast mode (sim/blast.py): trade frames at `blast_trades`/s per subscribed
        # (connection, symbol), replacing the market's own trades on the trade streams.
        self.blasters = ([Blaster(v, blast_trades) for v in self.venues.values() if v.can_blast]
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
        self.urls = SimUrls(host=self.host, port=port, control=f"http://{base}/_sim", venues={
            name: VenueUrls(rest=f"http://{base}/{name}", ws=f"ws://{base}/{name}")
            for name in self.venues})  # fmt: skip
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
            for hook in self._tick_hooks:
                hook()
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
        return v.truth(m.spec.symbol, depth)

    def restart(self, venue: str | None = None, symbol: str | None = None) -> str:
        """Simulate a venue's service restart (what that is, is the venue's: e.g. its book
        streams start over with a snapshot) for `symbol` (all if None); returns the venue.
        `venue` None: the one simulated venue that has a restart (ValueError if not one)."""
        if venue is None:
            able = [n for n, v in self.venues.items() if v.restartable]
            if len(able) != 1:
                raise ValueError("restart: name the venue; simulated venues with a restart: "
                                 f"{', '.join(able) or 'none'}")  # fmt: skip
            venue = able[0]
        v = self.venue(venue)
        if not v.restartable:
            raise ValueError(f"venue {venue!r} simulates no restart")
        if symbol is not None:
            self.market(venue, symbol)
        v.restart(symbol)
        return venue

    def __getattr__(self, name: str) -> Any:
        """``restart_<venue id>`` and ``<venue id>_trading`` (see the class docstring)."""
        if not name.startswith("_"):
            head, _, tail = name.partition("_")
            vid = name[: -len("_trading")] if name.endswith("_trading") else None
            if head == "restart" and tail in sim_venues():
                return functools.partial(self.restart, tail)
            if vid is not None and vid in sim_venues():
                return self.__dict__.get("trading_apis", {}).get(vid)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
