"""ConnectorBase: the connection life-cycle every market-data connector shares.

A venue subclass only translates (URLs, subscription frames, instrument list, how its
books resync); this class owns everything ttxt2 got wrong:

- connect with a timeout, subscribe every configured stream of every valid symbol;
- receive loop: frame -> venue normalizer -> book sync -> ``publisher.put(event)``;
- idle/stall detection (``cfg.heartbeat_timeout``) and app-level heartbeats;
- reconnect with exponential backoff + full jitter (``cfg.reconnect_backoff`` /
  ``cfg.reconnect_backoff_max``); the backoff resets once a connection stayed up for
  :data:`STABLE_AFTER_S`; books are rebuilt from a fresh snapshot after every
  (re)connect and never carried across one (the new snapshot event replaces the book of
  every consumer);
- a :class:`ConnectorStatus` on every state change, connector-wide (``symbol=""``) or per
  symbol (book resync, gap, unknown symbol), carrying the reconnect and gap counters and
  a message saying why;
- a malformed frame is reported as an ERROR status naming the frame (an excerpt) and
  the connector keeps going (ERROR statuses are rate limited to one per
  :data:`ERROR_STATUS_INTERVAL_S`, the suppressed ones are counted in the next);
- a connector-wide ERROR (bad frames, refused requests) is followed by an UP status once
  valid frames have flowed for :data:`ERROR_CLEAR_AFTER_S` without a new error;
- ``block`` rings never freeze the event loop: an event that finds the ring full waits in
  a backlog (order kept) that the receive loop drains with non-blocking puts; after
  :data:`BLOCKED_REPORT_AFTER_S` the state is ERROR with a message naming the consumer
  pid(s) holding the ring (in ``stats()`` at once, in the ring when room appears), and an
  UP status follows when the backlog is written. Heartbeats, reports and ``stop()`` keep
  working meanwhile;
- ``stats()`` counters and an optional ``on_report(stats)`` callback every
  ``report_interval`` seconds, for the engine's status reporting (the same timer beats the
  ring producer's heartbeat, so a quiet or blocked connector still looks alive);
- ``await run()`` until ``stop()``; shutdown closes the socket and the HTTP session it
  created and publishes STOPPED.

Published book stream: per symbol a snapshot after each (re)sync, then only deltas that
passed the venue's sequence checks, in order; after a detected gap nothing until the
next snapshot. A consumer applying them to its own ``OrderBook`` rebuilds the exact book.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Self

import msgspec

from ttxt_mp.config import (
    EXTRA_STREAMS,
    SYMBOL,
    ConnectorConfig,
    extra_stream_error,
)
from ttxt_mp.connectors.instruments import InstrumentsError
from ttxt_mp.connectors.normalizer import (
    Control,
    MalformedFrame,
    NormalizerBase,
    Stream,
    SymbolMap,
    excerpt,
)
from ttxt_mp.connectors.state import StateServer, open_board
from ttxt_mp.events import (
    BookTicker,
    ConnectorState,
    ConnectorStatus,
    Event,
    Kline,
    MarkPrice,
    OpenInterest,
    Orderbook,
)
from ttxt_mp.queues import IQueuePublisher, QueueClosed, QueueFull
from ttxt_mp.web import (
    AppHeartbeat,
    Backoff,
    FrameKind,
    RateLimiter,
    RESTAssistant,
    WebAssistantFactory,
    WebError,
    WSAssistant,
    WSError,
    WSResponse,
)

__all__ = [
    "BLOCKED_REPORT_AFTER_S",
    "ConnectorBase",
    "ConnectorError",
    "ERROR_CLEAR_AFTER_S",
    "ERROR_STATUS_INTERVAL_S",
    "STABLE_AFTER_S",
    "StreamPlan",
]

log = logging.getLogger("ttxt_mp.connectors")

STABLE_AFTER_S = 5.0
"""A connection that stayed up this long resets the reconnect backoff."""
ERROR_STATUS_INTERVAL_S = 1.0
"""At most one ERROR status per this many seconds for bad frames (a flood stays readable)."""
ERROR_CLEAR_AFTER_S = 1.0
"""A connector-wide ERROR clears (UP is published) after this long without a new error."""
BLOCKED_REPORT_AFTER_S = 1.0
"""A block ring full for this long is reported as ERROR naming the blocking consumer pids."""
_DRAIN_PAUSE_MAX_S = 0.01

S = ConnectorState
_LATEST_PER_SYMBOL = frozenset({ConnectorStatus, BookTicker, MarkPrice, OpenInterest})
"""Kinds whose last event per symbol is part of the state served to late joiners."""


class ConnectorError(RuntimeError):
    """A connector cannot run at all (e.g. none of its symbols exists on the venue)."""


class StreamPlan(msgspec.Struct, frozen=True):
    """What a connector listens to: ``depth`` is the book level count (0 = no book);
    ``book_ticker`` the venue's best bid/offer stream (channel ``book_ticker``);
    ``agg_trades`` takes the trades from its aggregate-trade stream (channel
    ``agg_trades`` instead of ``trades``); a derivative market's ``mark_price`` (mark,
    index, funding), ``open_interest`` and ``liquidations`` are channels of those names."""

    symbols: tuple[str, ...]
    depth: int
    trades: bool
    klines: tuple[str, ...]
    book_ticker: bool = False
    agg_trades: bool = False
    mark_price: bool = False
    open_interest: bool = False
    liquidations: bool = False

    def streams(self, symbols: Iterable[str] | None = None) -> list[Stream]:
        """Normalized subscriptions for ``symbols`` (default: all of the plan)."""
        out: list[Stream] = []
        trades = "agg_trades" if self.agg_trades else "trades"
        for sym in self.symbols if symbols is None else symbols:
            if self.depth:
                out.append(Stream("book", sym, depth=self.depth))
            if self.book_ticker:
                out.append(Stream("book_ticker", sym))
            if self.trades:
                out.append(Stream(trades, sym))
            out.extend(Stream("kline", sym, interval=iv) for iv in self.klines)
            out.extend(Stream(ch, sym) for ch in DERIVATIVE_CHANNELS if getattr(self, ch))
        return out


DERIVATIVE_CHANNELS = ("mark_price", "open_interest", "liquidations")
"""Optional channels of derivative markets, each a ``StreamPlan`` flag and a config stream."""


class _Reconnect(Exception):
    """Raised inside the connection cycle to drop the socket and reconnect."""


class ConnectorBase(ABC):
    """Connection life-cycle of one venue's public market data; see the module docstring.

    ``cfg`` gives symbols, streams, endpoints and timings; ``publisher`` receives every
    event (market data and ConnectorStatus). ``factory``: a WebAssistantFactory to share
    (default: one built for this connector with the venue's REST rate limits, closed on
    shutdown). ``on_report(stats)``: called every ``report_interval`` s and at the end.
    ``rng`` makes the backoff jitter deterministic in tests.
    """

    exchange: ClassVar[str]

    def __init__(
        self,
        cfg: ConnectorConfig,
        publisher: IQueuePublisher,
        *,
        factory: WebAssistantFactory | None = None,
        on_report: Callable[[dict[str, Any]], None] | None = None,
        report_interval: float = 1.0,
        connect_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        if cfg.exchange != self.exchange:
            raise ValueError(
                f"{type(self).__name__} serves exchange {self.exchange!r}, config says "
                f"{cfg.exchange!r}"
            )
        self.cfg = cfg
        self.publisher = publisher
        self._rng = rng
        self._own_factory = factory is None
        self.factory = factory if factory is not None else self._make_factory()
        self.on_report = on_report
        self.report_interval = report_interval
        self.connect_timeout = connect_timeout
        depth = cfg.depth_levels()
        st = cfg.streams
        self.spec = cfg.spec()
        """The venue as seen from this connector's market (endpoints, depths, streams)."""
        self.plan = StreamPlan(tuple(cfg.symbols), depth, st.trades, tuple(st.klines),
                               **{n: getattr(st, n) for n in EXTRA_STREAMS})  # fmt: skip
        self.symbol_map: SymbolMap | None = None
        self.normalizer: NormalizerBase | None = None
        self.active_symbols: tuple[str, ...] = ()
        self.unknown_symbols: tuple[str, ...] = ()
        self.state = S.STARTING
        self.symbol_states: dict[str, ConnectorState] = {}
        self.message = ""
        # counters
        self.events = 0
        self.statuses = 0
        self.reconnects = 0
        self.gaps = 0
        self.resyncs = 0
        self.malformed = 0
        self.errors = 0
        self.connections = 0
        self._suppressed = 0
        self._last_error_status = float("-inf")
        self._error_active = False  # a connector-wide ERROR was published, not yet cleared
        self._last_error_at = float("-inf")
        # block rings: events waiting for room, in publication order
        self._backlog: deque[Event] = deque()
        self._latest: dict[tuple[type, str, str], Event] = {}
        self.state_server: StateServer | None = None
        self._blocked_since = 0.0
        self._blocked_pids: list[int] = []
        self._blocked_reported = False
        self.blocked_s = 0.0  # total seconds spent waiting for a full ring
        self._ws: WSAssistant | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._running = False
        self._reconnect_reason = ""
        self._closer: asyncio.Future[None] | None = None
        self._started = 0.0

    # ------------------------------------------------------------------ fluent API

    def listening_market_stream(
        self,
        symbols: Sequence[str] | None = None,
        depth: int | bool | None = None,
        trades: bool | None = None,
        klines: Sequence[str] | str | None = None,
        book_ticker: bool | None = None,
        agg_trades: bool | None = None,
        mark_price: bool | None = None,
        open_interest: bool | None = None,
        liquidations: bool | None = None,
    ) -> Self:
        """Choose the public streams (before ``run()``); arguments left None keep the config.

        ``symbols``: ``BASE/QUOTE`` names (``BASE/QUOTE:SETTLE`` on a derivative market).
        ``depth``: book levels (one the venue offers), True for the configured/default
        level count, False or 0 for no book. ``trades``: public trades. ``klines``:
        intervals like ``"1m"`` (a list, or one string). ``book_ticker``: best bid/offer
        events; ``agg_trades``: trades from the aggregate stream; ``mark_price``,
        ``open_interest``, ``liquidations``: a derivative market's streams (each only
        where the venue's market offers it). Each call replaces the plan; returns
        ``self`` for chaining.
        """
        if self._running:
            raise RuntimeError("listening_market_stream() must be called before run()")
        plan = self.plan
        spec = self.spec
        ex = spec.label
        syms = plan.symbols if symbols is None else tuple(symbols)
        if isinstance(symbols, str):
            raise TypeError("symbols must be a list of 'BASE/QUOTE' names, not one string")
        if not syms:
            raise ValueError(f"{ex}: listening_market_stream needs at least one symbol")
        for s in syms:
            if not isinstance(s, str) or not SYMBOL.match(s):
                raise ValueError(
                    f"{ex}: symbol {s!r} is not BASE/QUOTE in capitals like 'BTC/USDT'"
                )
        if len(set(syms)) != len(syms):
            raise ValueError(f"{ex}: a symbol is listed twice in {list(syms)}")
        levels = plan.depth
        if depth is True:
            levels = plan.depth or (
                self.cfg.depth_levels() if self.cfg.streams.depth else spec.book_levels[-1]
            )
        elif depth is False:
            levels = 0
        elif depth is not None:
            if depth and depth not in spec.book_levels:
                raise ValueError(f"{ex} offers depth levels {spec.book_levels}, got {depth}")
            levels = int(depth)
        ivs = plan.klines
        if klines is not None:
            ivs = (klines,) if isinstance(klines, str) else tuple(klines)
            for iv in ivs:
                if iv not in spec.kline_intervals:
                    raise ValueError(f"{ex} kline intervals are "
                                     f"{', '.join(spec.kline_intervals)}; got {iv!r}")  # fmt: skip
        asked = {"book_ticker": book_ticker, "agg_trades": agg_trades, "mark_price": mark_price,
                 "open_interest": open_interest, "liquidations": liquidations}  # fmt: skip
        extra = {}
        for name, value in asked.items():
            extra[name] = getattr(plan, name) if value is None else bool(value)
            why = extra_stream_error(spec, name) if value else None
            if why:
                raise ValueError(why)
        want_trades = plan.trades if trades is None else bool(trades)
        if agg_trades and not want_trades:
            raise ValueError(f"{ex}: agg_trades needs trades")
        self.plan = StreamPlan(syms, levels, want_trades, ivs, **extra)
        return self

    # ------------------------------------------------------------------ venue hooks

    @abstractmethod
    def _make_factory(self) -> WebAssistantFactory:
        """A factory with the venue's REST rate limits."""

    @abstractmethod
    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        """The venue's instrument list for the planned symbols (validation + mapping)."""

    @abstractmethod
    def _make_normalizer(self, symbols: SymbolMap) -> NormalizerBase: ...

    @abstractmethod
    def _ws_url(self) -> str:
        """The WebSocket URL to connect to (may already name the streams)."""

    @abstractmethod
    async def _subscribe(self, ws: WSAssistant) -> None:
        """Send the subscription frames after connecting (may be nothing)."""

    def _heartbeat(self) -> AppHeartbeat | None:
        """Application-level pings, if the venue needs them."""
        return None

    @abstractmethod
    def _on_connected(self) -> None:
        """A new socket is subscribed: start fresh book syncs (nothing carried over)."""

    @abstractmethod
    def _on_book(self, ev: Orderbook) -> None:
        """One normalized book event from the stream: sync, publish what passes."""

    def _on_disconnected(self) -> None:  # noqa: B027 - optional hook
        """The socket is gone: forget the books (subclasses drop their sync state)."""

    # ------------------------------------------------------------------ venue helpers

    def resync_timeout(self) -> float:
        """Seconds to wait for a snapshot after (re)subscribing before reconnecting."""
        return max(5.0, 2 * self.cfg.heartbeat_timeout)

    def _rest_factory(self, rate_limiter: RateLimiter | None = None) -> WebAssistantFactory:
        """A factory for ``cfg.rest_url()`` with ``rate_limiter`` (for ``_make_factory``)."""
        return WebAssistantFactory(rate_limiter=rate_limiter, rest_base_url=self.cfg.rest_url(),
                                   rng=self._rng)  # fmt: skip

    # ------------------------------------------------------------------ life-cycle

    async def run(self) -> None:
        """Connect and stream until :meth:`stop`; always ends with a STOPPED status.

        Raises :class:`ConnectorError` if none of the symbols exists on the venue.
        """
        if self._running:
            raise RuntimeError(f"{self.cfg.id}: run() is already running")
        self._running = True
        self._started = time.monotonic()
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        self._set_state(S.STARTING, f"{self.cfg.id}: starting ({self._plan_text()})")
        main = asyncio.create_task(self._main(), name=f"{self.cfg.id}-main")
        stopper = asyncio.create_task(self._stop_event.wait())
        reporter = asyncio.create_task(self._report_loop()) if self.on_report else None
        if self.state_server is None:
            self.state_server = self._open_state_board()
        server = self.state_server
        states = asyncio.create_task(server.run(), name="state") if server else None
        reason = "stopped on request"
        try:
            await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if main.done() and not main.cancelled() and main.exception() is not None:
                exc = main.exception()
                reason = f"stopped: {exc}"
                raise exc  # type: ignore[misc]
        finally:
            for t in (main, stopper, reporter, states, *self._tasks):
                if t is not None:
                    t.cancel()
            await asyncio.gather(
                *(t for t in (main, stopper, reporter, states, *self._tasks) if t is not None),
                return_exceptions=True,
            )
            self._tasks.clear()
            await self._close()
            self._set_state(S.STOPPED, f"{self.cfg.id}: {reason}")
            self._report()
            self._running = False

    def stop(self) -> None:
        """Ask ``run()`` to finish (safe from a signal handler on the loop's thread)."""
        self._stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_requested

    async def _close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.disconnect()
        self._on_disconnected()
        if self._own_factory:
            with contextlib.suppress(Exception):
                await self.factory.close()

    def _backoff(self) -> Backoff:
        return Backoff(
            self.cfg.reconnect_backoff,
            max(self.cfg.reconnect_backoff_max, self.cfg.reconnect_backoff),
            rng=self._rng,
        )

    async def _main(self) -> None:
        backoff = self._backoff()
        await self._prepare(backoff)
        backoff.reset()
        while not self._stop_requested:
            up_since: float | None = None
            if self._backlog:
                await self.drain_backlog()
            try:
                up_since = await self._connect()
                await self._receive()
                reason = self._reconnect_reason or "connection closed"
            except (WSError, _Reconnect) as exc:
                reason = str(exc) or type(exc).__name__
            except WebError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not end the stream for good (ttxt2 did)
                log.exception("%s: unexpected error", self.cfg.id)
                self.errors += 1
                reason = f"unexpected {type(exc).__name__}: {exc}"
                self._status(S.ERROR, reason)
            finally:
                await self._drop_connection()
            if self._stop_requested:
                return
            if up_since is not None and time.monotonic() - up_since >= STABLE_AFTER_S:
                backoff.reset()
            self.reconnects += 1
            delay = backoff.next_delay()
            self._set_state(S.DOWN, f"{reason}; reconnect {self.reconnects} in {delay:.2f} s")
            await self._sleep(delay)

    async def _prepare(self, backoff: Backoff) -> None:
        """Fetch the instrument list (retrying with backoff) and keep the known symbols."""
        rest = self.factory.get_rest_assistant()
        while True:
            try:
                smap = await self._load_symbols(rest)
                break
            except (WebError, MalformedFrame, InstrumentsError) as exc:
                delay = backoff.next_delay()
                self._set_state(S.DOWN, f"instrument list failed: {exc}; retry in {delay:.2f} s")
                await self._sleep(delay)
                if self._stop_requested:
                    return
        known = {ins.symbol for ins in smap.instruments.values()}
        self.symbol_map = smap
        self.active_symbols = tuple(s for s in self.plan.symbols if s in known)
        self.unknown_symbols = tuple(s for s in self.plan.symbols if s not in known)
        for s in self.unknown_symbols:
            self.symbol_states[s] = S.ERROR
            self._status(
                S.ERROR,
                f"unknown symbol {s}: {self.exchange} does not list it; its streams are "
                "skipped, the other symbols run",
                symbol=s,
            )
        if not self.active_symbols:
            raise ConnectorError(
                f"{self.cfg.id}: none of the symbols {list(self.plan.symbols)} exists on "
                f"{self.exchange}"
            )
        self.normalizer = self._make_normalizer(smap)

    async def _connect(self) -> float:
        self._set_state(S.CONNECTING, f"connecting to {self._ws_url_for_log()}")
        self._reconnect_reason = ""
        ws = self._ws = self.factory.get_ws_assistant()
        await ws.connect(
            self._ws_url(),
            timeout=self.connect_timeout,
            idle_timeout=self.cfg.heartbeat_timeout,
            heartbeat=self._heartbeat(),
        )
        await self._subscribe(ws)
        self.connections += 1
        again = f" (reconnect {self.reconnects})" if self.reconnects else ""
        self._set_state(S.UP, f"connected and subscribed{again}")
        self._on_connected()
        return time.monotonic()

    async def _receive(self) -> None:
        ws = self._ws
        assert ws is not None
        handle = self._handle_frame
        backlog = self._backlog
        async for resp in ws.iter_messages():
            handle(resp)
            if backlog:
                await self.drain_backlog()

    async def _drop_connection(self) -> None:
        ws, self._ws = self._ws, None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        closer, self._closer = self._closer, None
        if closer is not None:
            await asyncio.gather(closer, return_exceptions=True)
        self._on_disconnected()
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.disconnect()
        for s in self.active_symbols:
            if self.plan.depth and self.symbol_states.get(s) not in (None, S.ERROR):
                self.symbol_states[s] = S.DOWN

    def request_reconnect(self, reason: str) -> None:
        """Drop the current socket; the main loop reconnects (and resyncs) with ``reason``.

        The close runs in its own task, awaited (never cancelled) when the connection is
        torn down, so the socket is always closed properly.
        """
        ws = self._ws
        if ws is None or self._closer is not None:
            return
        self._reconnect_reason = reason
        self._closer = asyncio.ensure_future(ws.disconnect())

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, ending early when stop() is called.

        Not ``wait_for``: on Python 3.11 it swallows a cancellation that arrives while the
        awaited event completes (stop() sets the event and run() cancels this task).
        """
        assert self._stop_event is not None
        waiter = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()

    def spawn(self, coro: Any, name: str = "") -> asyncio.Task[Any]:
        """A task tied to the current connection (cancelled when it drops)."""
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: task %s failed: %r", self.cfg.id, task.get_name(), exc)
            self.errors += 1
            self._status(S.ERROR, f"task {task.get_name()} failed: {type(exc).__name__}: {exc}")
            self.request_reconnect(f"after failure of {task.get_name()}")

    # ------------------------------------------------------------------ frames

    def _handle_frame(self, resp: WSResponse) -> None:
        norm = self.normalizer
        assert norm is not None
        try:
            events = norm.normalize(resp.data, resp.recv_ts_ns)
        except MalformedFrame as exc:
            self.malformed += 1
            self._error_status(f"malformed frame ({exc.reason}): {exc.excerpt!r}")
            return
        except Exception as exc:
            self.errors += 1
            log.exception("%s: cannot normalize frame", self.cfg.id)
            self._error_status(f"{type(exc).__name__}: {exc}; frame: {excerpt(resp.data)!r}")
            return
        if self._error_active:
            self._maybe_clear_error()
        if not events:
            if norm.controls:
                self._on_controls(norm.controls)
            return
        put = self._put
        for ev in events:
            if type(ev) is Orderbook:
                self._on_book(ev)
            else:
                put(ev)

    def _on_controls(self, controls: Any) -> None:
        while controls:
            ctl: Control = controls.popleft()
            if not ctl.ok:
                self.errors += 1
                self._error_status(
                    f"{self.exchange} refused a request (id {ctl.id!r}): {ctl.message}"
                )

    # ------------------------------------------------------------------ publishing

    def _put(self, ev: Event) -> None:
        """Publish without ever waiting: a full ``block`` ring sends the event (and every
        later one, to keep the order) to the backlog the receive loop drains."""
        if self._backlog:
            self._backlog.append(ev)
            return
        cls = ev.__class__
        if cls is Kline:
            self._latest[(cls, ev.symbol, ev.interval)] = ev  # type: ignore[attr-defined]
        elif cls in _LATEST_PER_SYMBOL:
            self._latest[(cls, ev.symbol, "")] = ev
        try:
            self.publisher.put(ev, 0)
        except QueueFull as exc:
            self._ring_full(ev, exc)
            return
        except QueueClosed:
            log.warning("%s: publisher closed; stopping", self.cfg.id)
            self.stop()
            return
        self.events += 1

    # ------------------------------------------------------------------ state on join

    def state_events(self) -> list[Event]:
        """Every stateful value a late joiner needs (see :mod:`ttxt_mp.connectors.state`):
        a snapshot of each synced book, the last kline per symbol and interval, the last
        book ticker per symbol, the last status per symbol and of the connector."""
        now = time.time_ns()
        syncs = getattr(self, "syncs", {})
        out: list[Event] = [s.book.to_event(now) for s in syncs.values() if s.book.synced]
        out.extend(self._latest.values())
        return out

    def state_consistent(self) -> bool:
        """The books equal what was published: nothing is waiting in the backlog."""
        return not self._backlog

    def _open_state_board(self) -> StateServer | None:
        """The state board of a shared-memory publisher (none for in-process queues)."""
        board = open_board(self.publisher, f"{self.cfg.id}: no state on join for late consumers")
        return None if board is None else StateServer(self, board)

    def _ring_full(self, ev: Event, exc: QueueFull) -> None:
        self._backlog.append(ev)
        if not self._blocked_since:
            self._blocked_since = time.monotonic()
        self._blocked_pids = self._blocking_pids(exc)

    def _blocking_pids(self, exc: QueueFull | None = None) -> list[int]:
        """Pids of the consumers holding a full block ring (from the exception, the
        publisher, or its slowest consumer)."""
        pids = getattr(exc, "blocking", None)
        if pids:
            return [int(p) for p in pids]
        pub: Any = self.publisher
        with contextlib.suppress(Exception):
            if hasattr(pub, "blocking_consumers"):
                return [int(p) for p in pub.blocking_consumers()]
            if hasattr(pub, "consumers"):
                cons = list(pub.consumers())
                if cons:
                    low = min(c["cursor"] for c in cons)
                    return [int(c["pid"]) for c in cons if c["cursor"] == low]
        return []

    def _ring_text(self) -> str:
        name = getattr(self.publisher, "name", "")
        return f"ring {name}" if isinstance(name, str) and name else "the queue"

    def _blocked_message(self, waited: float) -> str:
        pids = ", ".join(str(p) for p in self._blocked_pids) or "unknown"
        return (
            f"{self._ring_text()} is full (block policy): consumer pid {pids} has not read "
            f"for {waited:.1f} s; publishing paused, {len(self._backlog)} events waiting"
        )

    async def drain_backlog(self) -> None:
        """Write the backlog into the ring as room appears, polling with short sleeps (the
        loop keeps running: heartbeats, reports, stop()). Reports a blocked ring after
        :data:`BLOCKED_REPORT_AFTER_S`, and UP once everything is written."""
        backlog = self._backlog
        put = self.publisher.put
        pause = 0.0005
        while backlog:
            ev = backlog[0]
            try:
                put(ev, 0)
            except QueueFull as exc:
                self._still_full(exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _DRAIN_PAUSE_MAX_S)
                continue
            except QueueClosed:
                log.warning("%s: publisher closed; stopping", self.cfg.id)
                backlog.clear()
                self.stop()
                return
            backlog.popleft()
            if type(ev) is ConnectorStatus:
                self.statuses += 1
            else:
                self.events += 1
            pause = 0.0005
        self._unblocked()

    def _still_full(self, exc: QueueFull) -> None:
        now = time.monotonic()
        if not self._blocked_since:
            self._blocked_since = now
        waited = now - self._blocked_since
        if self._blocked_reported or waited < BLOCKED_REPORT_AFTER_S:
            return
        self._blocked_reported = True
        self._blocked_pids = self._blocking_pids(exc)
        msg = self._blocked_message(waited)
        self.message = msg
        log.warning("%s: ERROR %s", self.cfg.id, msg)
        # Cannot go into the full ring now: first thing written when room appears, and
        # reported to the supervisor at once.
        self._backlog.appendleft(self._make_status(S.ERROR, msg))
        self._report()

    def _unblocked(self) -> None:
        if not self._blocked_since:
            return
        waited = time.monotonic() - self._blocked_since
        self.blocked_s += waited
        self._blocked_since = 0.0
        if self._blocked_reported:
            self._blocked_reported = False
            pids = ", ".join(str(p) for p in self._blocked_pids) or "unknown"
            self._status(
                self.state,
                f"{self._ring_text()} has room again after {waited:.1f} s blocked by "
                f"consumer pid {pids}",
            )
        self._blocked_pids = []

    @property
    def blocked(self) -> bool:
        """True while a full ``block`` ring holds events back for longer than the report
        threshold."""
        return self._blocked_reported

    def publish_book(self, events: Iterable[Orderbook]) -> None:
        for ev in events:
            self._put(ev)

    def _make_status(self, state: ConnectorState, message: str, symbol: str = "") -> ConnectorStatus:
        return ConnectorStatus(
            exchange=self.exchange,
            symbol=symbol,
            local_ts=time.time_ns(),
            state=state,
            message=message,
            reconnects=self.reconnects,
            gaps=self.gaps,
        )

    def _status(self, state: ConnectorState, message: str, symbol: str = "") -> None:
        st = self._make_status(state, message, symbol)
        self.message = message
        log.log(logging.WARNING if state in (S.ERROR, S.DOWN, S.GAP) else logging.INFO,
                "%s%s: %s %s", self.cfg.id, f" {symbol}" if symbol else "", state.name, message)  # fmt: skip
        if not symbol:
            if state is S.ERROR:
                self._error_active = True
                self._last_error_at = time.monotonic()
            else:  # a connector-wide state change supersedes an earlier ERROR
                self._error_active = False
        if self._backlog:
            self._backlog.append(st)
            return
        try:
            self.publisher.put(st, 0)
        except QueueFull as exc:
            self._ring_full(st, exc)
            return
        except QueueClosed:
            self._stop_requested = True
            if self._stop_event is not None:
                self._stop_event.set()
            return
        self.statuses += 1

    def _set_state(self, state: ConnectorState, message: str) -> None:
        """Connector-wide state change (always published)."""
        self.state = state
        self._status(state, message)

    def set_symbol_state(self, symbol: str, state: ConnectorState, message: str) -> None:
        """Per-symbol state (book sync); published only when it changes."""
        if self.symbol_states.get(symbol) == state:
            return
        self.symbol_states[symbol] = state
        self._status(state, message, symbol)

    def _error_status(self, message: str, symbol: str = "") -> None:
        now = time.monotonic()
        if not symbol:
            self._last_error_at = now
        if now - self._last_error_status < ERROR_STATUS_INTERVAL_S:
            self._suppressed += 1
            self.message = message
            return
        if self._suppressed:
            message += f" (+{self._suppressed} similar errors suppressed)"
            self._suppressed = 0
        self._last_error_status = now
        self._status(S.ERROR, message, symbol)

    def _maybe_clear_error(self) -> None:
        """A valid frame after a connector-wide ERROR: publish UP once no error came for
        :data:`ERROR_CLEAR_AFTER_S` (the ERROR is not left standing while all is well)."""
        if time.monotonic() - self._last_error_at < ERROR_CLEAR_AFTER_S or self.state is not S.UP:
            return
        note = f" ({self._suppressed} more errors were suppressed)" if self._suppressed else ""
        self._suppressed = 0
        self._status(S.UP, f"recovered: frames are valid again ({self.malformed} malformed, "
                           f"{self.errors} errors so far{note})")  # fmt: skip

    # ------------------------------------------------------------------ reporting

    def overall_state(self) -> ConnectorState:
        """The connector state; ERROR while a connector-wide error stands or a block ring
        holds events back; RESYNCING/GAP while it is UP but a book is not synced."""
        if self.state is not S.UP:
            return self.state
        if self._error_active or self._blocked_reported:
            return S.ERROR
        books = [self.symbol_states.get(s) for s in self.active_symbols] if self.plan.depth else []
        if any(b is S.GAP for b in books):
            return S.GAP
        if any(b in (S.RESYNCING, S.DOWN, None) for b in books):
            return S.RESYNCING
        return S.UP

    def stats(self) -> dict[str, Any]:
        """Counters and states for status reporting (plain JSON-encodable values)."""
        return {
            "connector": self.cfg.id,
            "exchange": self.exchange,
            "state": self.overall_state().name,
            "connection": self.state.name,
            "events": self.events,
            "statuses": self.statuses,
            "reconnects": self.reconnects,
            "gaps": self.gaps,
            "resyncs": self.resyncs,
            "malformed": self.malformed,
            "errors": self.errors,
            "connections": self.connections,
            "blocked": self._blocked_reported,
            "blocking_pids": list(self._blocked_pids) if self._blocked_reported else [],
            "backlog": len(self._backlog),
            "symbols": {s: st.name for s, st in self.symbol_states.items()},
            "unknown_symbols": list(self.unknown_symbols),
            "uptime": time.monotonic() - self._started if self._started else 0.0,
            "message": self.message,
        }

    def _report(self) -> None:
        if self.on_report is not None:
            try:
                self.on_report(self.stats())
            except Exception:
                log.exception("%s: on_report callback failed", self.cfg.id)

    async def _report_loop(self) -> None:
        beat = getattr(self.publisher, "heartbeat", None)
        while True:
            await asyncio.sleep(self.report_interval)
            if callable(beat):  # the ring producer's liveness, also while quiet or blocked
                with contextlib.suppress(Exception):
                    beat()
            if self._blocked_reported:  # keep the message's wait time current
                self.message = self._blocked_message(time.monotonic() - self._blocked_since)
            self._report()

    # ------------------------------------------------------------------ helpers

    def _plan_text(self) -> str:
        p = self.plan
        parts = [f"symbols {', '.join(p.symbols)}"]
        if p.depth:
            parts.append(f"book {p.depth} levels")
        if p.book_ticker:
            parts.append("book ticker")
        if p.trades:
            parts.append("aggregate trades" if p.agg_trades else "trades")
        if p.klines:
            parts.append(f"klines {', '.join(p.klines)}")
        parts.extend(ch.replace("_", " ") for ch in DERIVATIVE_CHANNELS if getattr(p, ch))
        return "; ".join(parts)

    def _ws_url_for_log(self) -> str:
        from ttxt_mp.web import redact_url

        url = redact_url(self._ws_url())
        return url if len(url) <= 120 else url[:117] + "..."

    async def send_frames(self, frames: Iterable[bytes], pause: float = 0.0) -> None:
        """Send pre-encoded text frames on the current socket (``pause`` s apart)."""
        ws = self._ws
        if ws is None:
            raise _Reconnect("not connected")
        first = True
        for frame in frames:
            if pause and not first:
                await asyncio.sleep(pause)
            first = False
            await ws.connection.send_raw(frame, FrameKind.TEXT)
