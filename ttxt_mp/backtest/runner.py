"""The backtest event loop: the live strategy class on recorded data.

One heap of ``(time, seq, action)`` orders everything that happens in simulated time:

- a market event reaches the venue at its recorded time ``t`` (books updated, resting
  orders matched) and the strategy at ``t + data latency``;
- a command the strategy sends at ``now`` reaches the venue at ``now + entry latency``;
- what the venue answers or causes (acks, order updates, wallets, positions) reaches the
  strategy at ``t + ack latency``, through the same ``on_*`` hooks and trading state as
  live;
- the strategy's timers (``call_later``, ``every``) fire at their simulated time;
- the account is marked to market every ``equity_interval_s`` and at every fill.

Ties are broken by ``seq``, the order things were scheduled in, so a run is a pure
function of the recording, the strategy and the settings. The recording is streamed (one
replayer block at a time), never loaded whole; the run ends one round trip (data + entry +
ack latency) after the last recorded event, so that event reaches the strategy and an
order it sends gets its answer; what is scheduled later never happens.

A gap in the recording (a ``GapNotice``: events were lost; a connector's ``GAP`` status:
its book lost sync; a damaged chunk the replayer skipped) is always reported. With
``on_gap="stop"`` the run ends there; with ``"continue"`` the instrument's events are
withheld from venue and strategy until its next book snapshot, so no order is ever
matched across the hole. A strategy that raises ends the run too: the results so far are
kept and ``Results.error`` says what was raised, at which simulated time, on which event.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ttxt_mp import events as ev
from ttxt_mp.client import _CLOCK, BaseClient
from ttxt_mp.clock import Clock, Timer
from ttxt_mp.storage.replayer import MarketDataReplayer, TimeLike, recording_paths, to_ns
from ttxt_mp.trading_client import BACKTEST_TRADING, TradingMixin

if TYPE_CHECKING:
    from ttxt_mp.backtest.results import Results, ResultsBuilder
    from ttxt_mp.backtest.venue import FeeSchedule
    from ttxt_mp.storage.format import Problem

__all__ = ["Backtest", "Latency", "StrategyError"]

ON_GAP = ("stop", "continue")
_VENUE_KINDS = frozenset({ev.Orderbook, ev.MarketTrades, ev.MarkPrice})
"""What the simulated venue trades on; other kinds only reach the strategy."""
_GAP_NOTICE, _STATUS = ev.GapNotice, ev.ConnectorStatus

# heap actions
_TO_STRATEGY, _COMMAND, _PRIVATE, _TIMER, _EQUITY, _GAP = range(6)


class Latency(msgspec.Struct, frozen=True):
    """Simulated delays, in milliseconds."""

    entry_ms: float = 0.0  # strategy -> venue
    data_ms: float = 0.0  # venue market event -> strategy
    ack_ms: float = 0.0  # venue private event -> strategy

    def __post_init__(self) -> None:
        for name in ("entry_ms", "data_ms", "ack_ms"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"latency {name} must be a finite number >= 0 ms, got {v!r}")

    def ns(self) -> tuple[int, int, int]:
        return (round(self.entry_ms * 1e6), round(self.data_ms * 1e6), round(self.ack_ms * 1e6))


NO_LATENCY = Latency()


class StrategyError(RuntimeError):
    """The strategy raised (kept in ``Results.error``; the traceback in ``Backtest.traceback``)."""


def iso_ns(ns: int) -> str:
    """``2026-12-06T12:00:00.123456789Z``: a simulated time as the user reads it."""
    sec, frac = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def describe(item: Any) -> str:
    """One short line naming an event (or timer) for an error message."""
    if isinstance(item, Timer):
        return f"timer {getattr(item.fn, '__qualname__', repr(item.fn)).rpartition('<locals>.')[2]}"
    name = type(item).__name__
    where = " ".join(x for x in (getattr(item, "exchange", ""), getattr(item, "symbol", "")) if x)
    cid = getattr(item, "client_order_id", "")
    return f"{name} {where}" + (f" {cid}" if cid else "") if where else name


def quote_of(symbol: str) -> str:
    """The valuation asset of an instrument: the settle asset of ``BTC/USDT:USDT``, the
    quote of ``BTC/USDT``."""
    base_quote, _, settle = symbol.partition(":")
    return settle.partition("-")[0] if settle else base_quote.partition("/")[2]


class _SimClock(Clock):
    """The strategy's clock in a backtest: the run's simulated time; timers are heap
    entries."""

    def __init__(self, run: _Run) -> None:
        self._run = run

    def now(self) -> int:
        return self._run.now

    def schedule(self, timer: Timer) -> None:
        self._run.push(max(timer.due, self._run.now), _TIMER, timer)


class Backtest:
    """Run ``strategy`` (a ``BaseClient`` [+ ``TradingMixin``] class, or an instance) on
    ``recording`` (directories and/or files) and return its :class:`Results`.

    ``symbols``/``start``/``end`` select what is replayed (``start`` inclusive, ``end``
    exclusive; ns, float seconds, ISO 8601 text or aware datetime); ``fees`` and
    ``balances`` are per venue (the recording's exchange names; default: no fees, empty
    wallets). ``on_gap``: ``"stop"`` or ``"continue"`` (see the module docstring)."""

    def __init__(self, recording: str | Path | list, strategy: BaseClient | type, *,
                 symbols: list[str] | None = None, start: TimeLike = None,
                 end: TimeLike = None, latency: Latency = NO_LATENCY,
                 fees: dict[str, FeeSchedule] | None = None,
                 balances: dict[str, dict[str, float]] | None = None,
                 on_gap: str = "stop", equity_interval_s: float = 60.0) -> None:  # fmt: skip
        if on_gap not in ON_GAP:
            raise ValueError(f"on_gap must be 'stop' or 'continue', got {on_gap!r}")
        if not (isinstance(equity_interval_s, int | float) and equity_interval_s > 0
                and math.isfinite(equity_interval_s)):  # fmt: skip
            raise ValueError(f"equity_interval_s must be a number > 0, got {equity_interval_s!r}")
        if not isinstance(latency, Latency):
            raise TypeError(f"latency must be a Latency, got {type(latency).__name__}")
        if isinstance(strategy, type):
            if not issubclass(strategy, BaseClient):
                raise TypeError(f"strategy {strategy.__qualname__} is not a BaseClient subclass")
        elif not isinstance(strategy, BaseClient):
            raise TypeError(f"strategy must be a BaseClient subclass or instance, got "
                            f"{type(strategy).__name__}")  # fmt: skip
        self.paths = recording_paths(recording if isinstance(recording, list) else [recording])
        if not self.paths:
            raise FileNotFoundError(f"no recording files (*.bin) in {recording}")
        self.recording = recording
        self.strategy = strategy
        self.symbols = list(symbols) if symbols else None
        self.start, self.end = to_ns(start), to_ns(end)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"--from {iso_ns(self.start)} is not before --to {iso_ns(self.end)}")
        self.latency = latency
        self.fees = dict(fees or {})
        self.balances = {x: dict(b) for x, b in (balances or {}).items()}
        for x, bal in self.balances.items():
            for asset, amount in bal.items():
                if not (isinstance(amount, int | float) and math.isfinite(amount) and amount >= 0):
                    raise ValueError(f"balance {x}:{asset}={amount!r}: expected a number >= 0")
        self.on_gap = on_gap
        self.equity_interval_ns = max(1, round(equity_interval_s * 1e9))
        self.client: BaseClient | None = None
        """The strategy instance of the last run (built by the run when a class was given)."""
        self.traceback: str = ""
        """The strategy's traceback when it raised (``Results.error`` has the one line)."""

    def run(self, *, progress: bool | Callable[[int, int], None] = False) -> Results:
        """Replay, match, and collect the results (``progress``: a rich progress bar, or a
        callable ``(events, sim_ns)`` called every few thousand events)."""
        from ttxt_mp.backtest.results import ResultsBuilder

        sink = ResultsBuilder()
        run = _Run(self, sink)
        report = progress if callable(progress) else None
        with contextlib.ExitStack() as stack:
            if progress is True:
                report = stack.enter_context(_progress_bar(run.time_range()))
            return run.execute(report)


class _Run:
    """The state of one :meth:`Backtest.run`."""

    def __init__(self, bt: Backtest, sink: ResultsBuilder) -> None:
        self.bt = bt
        self.sink = sink
        self.replayer = MarketDataReplayer(bt.paths, start=bt.start, end=bt.end,
                                           symbols=bt.symbols, on_problem=self._problem)  # fmt: skip
        self.by_path = {f.path: (f.exchange, f.symbol) for f in self.replayer.files}
        self.exchanges = sorted({f.exchange for f in self.replayer.files if f.exchange})
        self._check_inputs()
        self.entry_ns, self.data_ns, self.ack_ns = bt.latency.ns()
        self.heap: list[tuple[int, int, int, Any]] = []
        self.seq = 0
        self.now = 0
        self.events = 0
        self.gaps: list[str] = []
        self.blocked: set[tuple[str, str]] = set()
        self.withheld = 0
        self.problems: list[Problem] = []
        self.error: str | None = None
        self.stop_reason = ""
        self.venues: dict[str, Any] = {}
        self.main: dict[str, str] = {}  # exchange -> the instrument its equity rows follow
        self.client: BaseClient | None = None
        self.dispatch: Callable[[Any], None] = lambda e: None  # the client's, once built
        self.in_strategy: Any = None  # the event or timer the strategy is handling
        self.trading: Any = None
        self.sampled_at = -1

    def _check_inputs(self) -> None:
        if self.bt.symbols:
            have = {f.symbol.upper() for f in self.replayer.files}
            missing = [s for s in self.bt.symbols if s.upper() not in have]
            if missing:
                self.replayer.close()
                with MarketDataReplayer(self.bt.paths) as every:
                    known = sorted({f.symbol for f in every.files if f.symbol})
                raise ValueError(f"symbol {missing[0]!r} is not in the recording (it has "
                                 f"{', '.join(known) or 'none'})")  # fmt: skip
        if not self.replayer.files:
            raise ValueError(f"no readable recording files in {self.bt.recording}")
        for what, given in (("fees", self.bt.fees), ("balances", self.bt.balances)):
            for x in given:
                if x not in self.exchanges:
                    raise ValueError(f"{what} for {x!r}: the recording has no such venue "
                                     f"(it has {', '.join(self.exchanges)})")  # fmt: skip

    def time_range(self) -> tuple[int, int]:
        files = [f for f in self.replayer.files if len(f.index)]
        lo = min((int(f.index.first_ts[0]) for f in files), default=0)
        hi = max((int(f.key_hi[-1]) for f in files), default=lo)
        if self.bt.start is not None:
            lo = max(lo, self.bt.start)
        if self.bt.end is not None:
            hi = min(hi, self.bt.end)
        return lo, max(lo, hi)

    # ------------------------------------------------------------------ scheduling

    def push(self, t: int, action: int, item: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, action, item))

    def submit(self, exchange: str, cmd: Any) -> None:
        """A command from the strategy (via its trading object) at ``now``."""
        self.push(self.now + self.entry_ns, _COMMAND, (exchange, cmd))

    def _problem(self, p: Problem) -> None:
        self.problems.append(p)

    # ------------------------------------------------------------------ set-up

    def _market(self) -> Iterator[tuple[int, Any]]:
        start = self.bt.start
        for batch in self.replayer.batches():
            keys = batch.key.tolist()
            if start is not None and keys[0] < start:  # a seek's book records before start:
                keys = [max(k, start) for k in keys]  # they build the books at the start
            yield from zip(keys, batch.events(), strict=True)

    def _make_venues(self) -> None:
        from ttxt_mp.backtest.venue import BacktestVenue, FeeSchedule, default_rules

        wanted = [s.upper() for s in self.bt.symbols or ()]
        for x in self.exchanges:
            have = sorted({f.symbol for f in self.replayer.files if f.exchange == x and f.symbol})
            chosen = [s for s in have if s.upper() in wanted]
            if chosen or have:
                self.main[x] = min(chosen, key=lambda s: wanted.index(s.upper())) if chosen \
                    else have[0]
        for x in self.exchanges:
            self.venues[x] = BacktestVenue(
                x, fees=self.bt.fees.get(x, FeeSchedule(maker=0.0, taker=0.0)),
                rules=default_rules(x), balances=dict(self.bt.balances.get(x, {})),
                sink=self.sink)  # fmt: skip

    def _make_client(self, start_ns: int) -> BaseClient:
        from ttxt_mp.backtest.trading import BacktestTrading

        def factory(client: Any, name: str) -> BacktestTrading:
            self.trading = BacktestTrading(name, handler=client, submit=self.submit,
                                           clock=lambda: self.now, exchanges=self.exchanges,
                                           start_ns=start_ns)  # fmt: skip
            return self.trading

        self._factory = factory
        strategy = self.bt.strategy
        if isinstance(strategy, type):
            return strategy()  # under the backtest's clock and trading factory
        client = strategy
        clock = _CLOCK.get()
        assert clock is not None
        client.install_clock(clock)
        old = getattr(client, "trading", None)
        if isinstance(client, TradingMixin):
            if old is not None and hasattr(old, "close"):
                old.close()  # built live before the backtest: its rings are not used
            client.trading = factory(client, getattr(old, "name", "backtest"))
        return client

    # ------------------------------------------------------------------ the loop

    def execute(self, report: Callable[[int, int], None] | None) -> Results:
        wall0 = time.perf_counter()
        market = self._market()
        nxt = next(market, None)
        # --from before the recording's first event: simulated time starts at that event
        # (a seek's book records before --from are handed out at --from)
        first = nxt[0] if nxt else None
        start_ns = (first or 0) if self.bt.start is None else max(self.bt.start, first or 0)
        self.now = nxt[0] if nxt else start_ns
        clock_token = _CLOCK.set(_SimClock(self))
        trading_token = None
        try:
            self._make_venues()
            trading_token = BACKTEST_TRADING.set(lambda c, n: self._factory(c, n))
            self.client = self.bt.client = self._guard(lambda: self._make_client(start_ns),
                                                       "the strategy's construction")  # fmt: skip
            if self.client is not None:
                self.dispatch = self.client.dispatch
                self._initial_wallets()
                self.push(start_ns + self.bt.equity_interval_ns, _EQUITY, None)
                self._loop(market, nxt, report)
        finally:
            if trading_token is not None:
                BACKTEST_TRADING.reset(trading_token)
            _CLOCK.reset(clock_token)
            with contextlib.suppress(Exception):
                market.close()  # type: ignore[attr-defined]
            self.replayer.close()
        if self.events and self.sampled_at != self.now:
            self._sample_equity(self.now, self.exchanges)
        meta = self._meta()
        return self.sink.finish(events=self.events, sim_start_ns=start_ns,
                                sim_end_ns=max(self.now, start_ns),
                                wall_s=time.perf_counter() - wall0, error=self.error,
                                gaps=list(self.gaps), meta=meta)  # fmt: skip

    def _loop(self, market: Iterator[tuple[int, Any]], nxt: tuple[int, Any] | None,
              report: Callable[[int, int], None] | None) -> None:  # fmt: skip
        try:
            self._run_loop(market, nxt, report)
        except Exception as e:
            if self.in_strategy is None:
                raise  # the runner's or the venue's own failure: a bug, not the strategy's
            self._strategy_failed(e, self.in_strategy)
        if report is not None:
            report(self.events, self.now)

    def _run_loop(self, market: Iterator[tuple[int, Any]], nxt: tuple[int, Any] | None,
                  report: Callable[[int, int], None] | None) -> None:  # fmt: skip
        # The market branch is written out here, not in a method: it runs for every
        # recorded event, and names bound once (heap, venues, dispatch) save look-ups.
        heap = self.heap
        client = self.client
        assert client is not None
        venues = self.venues
        dispatch = self.dispatch
        data_ns = self.data_ns
        heappop = heapq.heappop
        next_report = 0
        horizon = 0
        while True:
            if heap and (nxt is None or heap[0][0] <= nxt[0]):
                if nxt is None and heap[0][0] > horizon:
                    return  # the data ended one round trip ago: nothing more happens
                t, _, action, item = heappop(heap)
                self.now = t
                self._do(action, item)
            elif nxt is not None:
                t, e = nxt
                self.now = t
                self.events += 1
                typ = type(e)
                if (typ is _GAP_NOTICE or typ is _STATUS or self.blocked) and self._held(t, e):
                    pass  # stopped at a gap, or its instrument waits for a snapshot
                else:
                    if typ in _VENUE_KINDS:
                        venue = venues.get(e.exchange)
                        if venue is not None:
                            out = venue.on_market(e)
                            if out:
                                self._deliver_private(t, out, e.exchange)
                    if data_ns == 0 and (not heap or heap[0][0] > t):
                        # nothing else due at t: the heap would deliver it now
                        self.in_strategy = e  # what the error names if the strategy raises
                        dispatch(e)
                        self.in_strategy = None
                    else:
                        self.push(t + data_ns, _TO_STRATEGY, e)
                nxt = next(market, None)
                if nxt is None:  # the last event's delivery, an order it causes, its ack
                    horizon = self.now + self.data_ns + self.entry_ns + self.ack_ns
                if report is not None and self.events >= next_report:
                    report(self.events, self.now)
                    next_report = self.events + 16384
            else:
                return
            if self.problems:
                self._on_problems()
            if self.stop_reason or client._stop:
                if client._stop and not self.stop_reason:
                    self.stop_reason = f"the strategy stopped at {iso_ns(self.now)}"
                return

    def _held(self, t: int, e: Any) -> bool:
        """A recorded gap (reported; True if the run stops there) or an event withheld
        while its instrument waits for a snapshot after one: True if ``e`` goes no further."""
        typ = type(e)
        if typ is _GAP_NOTICE or (typ is _STATUS and e.state == ev.ConnectorState.GAP):
            self._gap(t, e.exchange, e.symbol, _gap_text(e))
            return bool(self.stop_reason)
        return bool(self.blocked) and self._withheld(e)

    def _do(self, action: int, item: Any) -> None:
        if action == _TO_STRATEGY:
            self._to_strategy(item)
        elif action == _PRIVATE:
            trading = self.trading
            if trading is not None:
                self.in_strategy = item
                trading.handle(item, item.exchange)
                self.in_strategy = None
        elif action == _COMMAND:
            exchange, cmd = item
            out = self.venues[exchange].submit(cmd, self.now)
            if out:
                self._deliver_private(self.now, out, exchange)
        elif action == _TIMER:
            self.in_strategy = item
            if Clock.fire(item):
                self.push(item.due, _TIMER, item)
            self.in_strategy = None
        elif action == _EQUITY:
            self._sample_equity(self.now, self.exchanges)
            self.push(self.now + self.bt.equity_interval_ns, _EQUITY, None)
        elif action == _GAP:
            self._gap(self.now, *item)

    def _to_strategy(self, e: Any) -> None:
        self.in_strategy = e  # what the error names if the strategy raises (see _loop)
        self.dispatch(e)
        self.in_strategy = None

    def _deliver_private(self, t: int, out: list[Any], exchange: str) -> None:
        filled = False
        for p in out:
            self.push(t + self.ack_ns, _PRIVATE, p)
            filled = filled or (type(p) is ev.OrderUpdate and p.last_fill_qty > 0)
        if filled:
            self._sample_equity(t, [exchange])

    def _guard(self, fn: Callable[[], Any], item: Any) -> Any:
        """Run strategy code once (its construction); if it raises, keep the error."""
        try:
            return fn()
        except Exception as e:
            self._strategy_failed(e, item)
            return None

    def _strategy_failed(self, e: Exception, item: Any) -> None:
        """End the run with the strategy's error kept (the results so far stay)."""
        where = item if isinstance(item, str) else describe(item)
        self.error = (f"strategy raised {type(e).__name__}: {e} at {iso_ns(self.now)} "
                      f"on {where}")  # fmt: skip
        self.bt.traceback = traceback.format_exc()

    # ------------------------------------------------------------------ accounts

    def _initial_wallets(self) -> None:
        """What a live TradingClient gets on join: each venue's wallet, at the start."""
        for x in self.exchanges:
            bal = self.bt.balances.get(x)
            if bal:
                w = ev.Wallet(exchange=x, exch_ts=self.now, local_ts=self.now,
                              balances=tuple(ev.Balance(a, float(v), 0.0)
                                             for a, v in sorted(bal.items())))  # fmt: skip
                self.push(self.now, _PRIVATE, w)

    def _sample_equity(self, t: int, exchanges: list[str]) -> None:
        for x in exchanges:
            sym = self.main.get(x)
            venue = self.venues.get(x)
            if sym and venue is not None:
                self.sink.add(venue.mark_to_market(t, sym, quote_of(sym)))
        self.sampled_at = t

    # ------------------------------------------------------------------ gaps

    def _gap(self, t: int, exchange: str, symbol: str, what: str) -> None:
        where = " ".join(x for x in (exchange, symbol) if x) or "every instrument"
        self.gaps.append(f"{iso_ns(t)} {where}: {what}")
        if self.bt.on_gap == "stop":
            self.stop_reason = f"stopped at the gap at {iso_ns(t)} ({where}; --on-gap continue " \
                               "resumes at the next book snapshot)"
            return
        if exchange and symbol:
            self.blocked.add((exchange, symbol))
        else:
            self.blocked.update((x, s) for x, s in self.by_path.values()
                                if s and (not exchange or x == exchange))  # fmt: skip

    def _withheld(self, e: Any) -> bool:
        """True while ``e``'s instrument waits for its first book snapshot after a gap."""
        key = (getattr(e, "exchange", ""), getattr(e, "symbol", ""))
        if key not in self.blocked:
            return False
        if type(e) is ev.Orderbook and e.is_snapshot:
            self.blocked.discard(key)
            return False
        self.withheld += 1
        return True

    def _on_problems(self) -> None:
        """Damaged chunks the replayer skipped (found when it reads a block, ahead of
        the events being played): each becomes a gap at its chunk's first time."""
        problems, self.problems = self.problems, []
        files = {f.path: f for f in self.replayer.files}
        for p in problems:
            exchange, symbol = self.by_path.get(p.path, ("", ""))
            t = self.now
            f = files.get(p.path)
            if f is not None and len(f.index):
                i = int(np.searchsorted(f.index.pos, p.offset))
                if i < len(f.index) and int(f.index.pos[i]) == p.offset:
                    t = max(t, int(f.key_lo[i]))
            what = f"damaged data skipped ({os.path.basename(p.path)} at byte {p.offset})"
            self.push(t, _GAP, (exchange, symbol, what))

    def _meta(self) -> dict[str, str]:
        bt = self.bt
        s = bt.strategy
        name = s.__qualname__ if isinstance(s, type) else type(s).__qualname__
        meta = {
            "strategy": f"{(s if isinstance(s, type) else type(s)).__module__}:{name}",
            "recording": ",".join(os.path.basename(os.path.normpath(p)) for p in
                                  (bt.recording if isinstance(bt.recording, list)
                                   else [bt.recording])),  # fmt: skip
            "venues": ",".join(self.exchanges),
            "symbols": ",".join(bt.symbols or sorted({s for _, s in self.by_path.values() if s})),
            "latency_ms": f"entry={bt.latency.entry_ms:g},data={bt.latency.data_ms:g},"
                          f"ack={bt.latency.ack_ms:g}",
            "on_gap": bt.on_gap,
        }
        if bt.start is not None:
            meta["from"] = iso_ns(bt.start)
        if bt.end is not None:
            meta["to"] = iso_ns(bt.end)
        if self.stop_reason:
            meta["stopped"] = self.stop_reason
        if self.withheld:
            meta["withheld_after_gaps"] = str(self.withheld)
        return meta


def _gap_text(e: Any) -> str:
    if type(e) is ev.GapNotice:
        return f"{e.lost} events lost (GapNotice)"
    return f"connector status GAP: {e.message}" if e.message else "connector status GAP"


@contextlib.contextmanager
def _progress_bar(span: tuple[int, int]) -> Iterator[Callable[[int, int], None]]:
    """A rich bar over simulated time, with events, simulated time and events/s."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    lo, hi = span
    t0 = time.perf_counter()
    bar = Progress(TextColumn("[bold]backtest[/]"), BarColumn(bar_width=16),
                   TextColumn("{task.fields[events]:>11,} events"),
                   TextColumn("{task.fields[sim]}"), TextColumn("{task.fields[rate]:>9,.0f} ev/s"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=False)  # fmt: skip
    task = bar.add_task("backtest", total=max(1, hi - lo), events=0, sim="", rate=0.0)

    def report(events: int, sim_ns: int) -> None:
        dt = time.perf_counter() - t0
        bar.update(task, completed=min(max(0, sim_ns - lo), hi - lo), events=events,
                   sim=iso_ns(sim_ns)[:19].replace("T", " "), rate=events / dt if dt else 0.0)  # fmt: skip

    with bar:
        yield report
