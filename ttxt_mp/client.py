"""User-side API: attach to an engine by name, handle events, run a client.

``attach("demo")`` finds every ring of the engine (live or replayed: the same names) and
yields their events merged; filters by exchange, symbol and kind are applied before an
event reaches user code. :class:`BaseClient` dispatches each event to one method per kind
and keeps a local :class:`~ttxt_mp.orderbook.OrderBook` per instrument, so the same
client runs unchanged on a live engine, a replay, or an in-process ``AsyncioQueue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ttxt_mp import events as ev
from ttxt_mp.clock import Clock, Timer, WallClock
from ttxt_mp.queues import IQueueConsumer, QueueClosed, QueueEmpty

if TYPE_CHECKING:
    from ttxt_mp.waitset import WaitSet

log = logging.getLogger("ttxt_mp.client")
POLL_INTERVAL = 0.002
"""Longest a run loop with pollers (a trading client) blocks on its feed, in seconds."""
_CLOCK: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("ttxt_clock", default=None)
"""The clock clients built in this context get (a backtest sets it while it builds and
runs its strategy); None: a new WallClock."""

KINDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (ev.Orderbook, ev.MarketTrades, ev.Kline, ev.BookTicker, ev.MarkPrice,
                ev.OpenInterest, ev.Liquidation, ev.ConnectorStatus, ev.GapNotice, ev.OrderAck, ev.OrderUpdate, ev.Wallet, ev.PositionUpdate)
}  # fmt: skip


class FeedNotFound(LookupError):
    """No ring of that engine exists (is it running? is the name right?)."""


class IEventHandler:
    """One optional method per event kind; unknown kinds go to :meth:`on_event`."""

    def on_orderbook(self, event: ev.Orderbook) -> None: ...
    def on_trades(self, event: ev.MarketTrades) -> None: ...
    def on_kline(self, event: ev.Kline) -> None: ...
    def on_book_ticker(self, event: ev.BookTicker) -> None: ...
    def on_mark_price(self, event: ev.MarkPrice) -> None: ...
    def on_open_interest(self, event: ev.OpenInterest) -> None: ...
    def on_liquidation(self, event: ev.Liquidation) -> None: ...
    def on_status(self, event: ev.ConnectorStatus) -> None: ...
    def on_gap(self, event: ev.GapNotice) -> None: ...
    def on_order_ack(self, event: ev.OrderAck) -> None: ...
    def on_order_update(self, event: ev.OrderUpdate) -> None: ...
    def on_wallet(self, event: ev.Wallet) -> None: ...
    def on_position(self, event: ev.PositionUpdate) -> None: ...
    def on_event(self, event: Any) -> None: ...


_DISPATCH = {
    ev.Orderbook: "on_orderbook", ev.MarketTrades: "on_trades", ev.Kline: "on_kline",
    ev.BookTicker: "on_book_ticker", ev.MarkPrice: "on_mark_price",
    ev.OpenInterest: "on_open_interest", ev.Liquidation: "on_liquidation",
    ev.ConnectorStatus: "on_status", ev.GapNotice: "on_gap",
    ev.OrderAck: "on_order_ack", ev.OrderUpdate: "on_order_update", ev.Wallet: "on_wallet",
    ev.PositionUpdate: "on_position",
}  # fmt: skip


_PRIVATE = frozenset({ev.OrderAck, ev.OrderUpdate, ev.Wallet, ev.PositionUpdate})
_ORDERBOOK = ev.Orderbook


def _kind_class(k: str | type | int) -> type:
    """An event class from a kind's name, class or id (custom kinds once registered)."""
    if isinstance(k, type):
        return k
    if isinstance(k, str | int) and not isinstance(k, bool):
        from ttxt_mp import codec

        return codec.event_class(k)  # LayoutError (a ValueError) naming the known ones
    raise TypeError(f"event kinds are names, classes or kind ids, got {k!r}")


class EventFilter:
    """Keeps events whose exchange, symbol and kind are in the given sets (None: all).

    ``kinds``: names (``"Orderbook"``, or a custom kind's class name once registered with
    ``ttxt_mp.register_event``), classes or kind ids. An event without an ``exchange``
    (``symbol``) field never matches an exchange (symbol) filter. Notices are never
    filtered by kind: a ``GapNotice`` (data was lost) always passes, a
    ``ConnectorStatus`` passes when its exchange (and symbol, if it names one) is wanted.
    """

    def __init__(self, exchanges: Iterable[str] | None = None,
                 symbols: Iterable[str] | None = None,
                 kinds: Iterable[str | type | int] | None = None) -> None:  # fmt: skip
        self.exchanges = set(exchanges) if exchanges else None
        self.symbols = set(symbols) if symbols else None
        self.kinds: set[type] | None = None
        if kinds:
            self.kinds = {_kind_class(k) for k in kinds}

    @property
    def passes_all(self) -> bool:
        return self.exchanges is None and self.symbols is None and self.kinds is None

    def __call__(self, e: Any) -> bool:
        t = type(e)
        if t is ev.GapNotice:
            return True
        if t is ev.ConnectorStatus:
            return (self.exchanges is None or e.exchange in self.exchanges) and (
                self.symbols is None or not e.symbol or e.symbol in self.symbols
            )
        if self.kinds is not None and t not in self.kinds:
            return False
        try:
            if self.exchanges is not None and e.exchange not in self.exchanges:
                return False
            return self.symbols is None or e.symbol in self.symbols
        except AttributeError:  # a custom kind without that field
            return False


class Feed(IQueueConsumer):
    """Events of several consumers merged, filtered. With one source it is a thin pass-
    through (no thread, no copy). With several, ``get`` serves every ring from the
    calling thread (:class:`ttxt_mp.waitset.WaitSet`: round-robin, an adaptive spin,
    then one ``poll`` on all the rings' wake-up fds); a source without an fd (e.g. a
    remote bus source) is read by a helper thread of its own. ``aget`` runs one task per
    source feeding an asyncio queue."""

    def __init__(self, sources: list[IQueueConsumer], flt: EventFilter | None = None, *,
                 spin_us: float = 50.0) -> None:  # fmt: skip
        if not sources:
            raise FeedNotFound("a feed needs at least one source")
        self.sources = sources
        self.filter = flt or EventFilter()
        self._spin_us = spin_us
        self._prefer(sources)

    def _prefer(self, sources: list[IQueueConsumer]) -> None:
        """Hand the filter to the rings: compiled ones pass other kinds and instruments
        over before decoding (read from the slot); the filter still runs on every event."""
        f = self.filter
        if f.kinds is not None:
            from ttxt_mp import codec

            ids = {codec.kind_of(k) for k in f.kinds}
            for src in sources:
                prefer = getattr(type(src), "prefer_kinds", None)
                if prefer is not None:
                    prefer(src, ids)
        if f.exchanges is not None or f.symbols is not None:
            for src in sources:
                prefer = getattr(type(src), "prefer_instruments", None)
                if prefer is not None:
                    prefer(src, f.exchanges, f.symbols)
        self._waitset: WaitSet | None = None
        self._live = len(sources)

    # --- single source: pass through; several: one wait set in the calling thread
    def get_nowait(self) -> Any:
        while True:
            e = self.sources[0].get_nowait() if len(self.sources) == 1 else self._take(0.0)
            if self.filter(e):
                return e

    def get(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            e = self.sources[0].get(left) if len(self.sources) == 1 else self._take(left)
            if self.filter(e):
                return e

    def _take(self, timeout: float | None) -> Any:
        """Next merged event; ``timeout`` 0 means do not wait."""
        ws = self._waitset
        if ws is None:
            from ttxt_mp.waitset import WaitSet

            ws = self._waitset = WaitSet(self.sources, spin_us=self._spin_us)
        if timeout == 0:
            e = ws.poll()
            if e is None:
                raise QueueEmpty
            return e
        return ws.get(timeout)

    def _source_ended(self, item: Any) -> bool:
        """True for a task's end marker (QueueClosed once all ended); raises a task's
        error here, in the consuming task, so it is never lost."""
        if isinstance(item, BaseException):
            raise item
        if not isinstance(item, _SourceEnded):
            return False
        self._live -= 1
        if self._live == 0:
            raise QueueClosed("every ring of the feed is closed")
        return True

    async def aget(self) -> Any:
        while True:
            if len(self.sources) == 1:
                e = await self.sources[0].aget()
            else:
                e = await self._aget_merged()
            if self.filter(e):
                return e

    async def _aget_merged(self) -> Any:
        if not hasattr(self, "_aq"):
            self._aq: asyncio.Queue = asyncio.Queue()
            self._atasks = [asyncio.create_task(self._apump(s)) for s in self.sources]
        while True:
            item = await self._aq.get()
            if not self._source_ended(item):
                return item

    async def _apump(self, src: IQueueConsumer) -> None:
        try:
            while True:
                await self._aq.put(await src.aget())
        except QueueClosed:
            pass
        except Exception as e:
            await self._aq.put(e)
        await self._aq.put(_SourceEnded())

    @property
    def last_ids(self) -> dict[str, str]:
        """A ``redis://`` feed's resume points, ring -> stream id of the last entry handed
        out: ``attach(url, start=feed.last_ids)`` goes on from there ({} for local rings)."""
        out: dict[str, str] = {}
        for src in self.sources:
            out.update(getattr(src, "last_ids", {}))
        return out

    def get_batch(self, max_n: int) -> np.ndarray:
        """Raw records (numpy) from the first source that has any; no filtering."""
        for src in self.sources:
            batch = src.get_batch(max_n)  # type: ignore[attr-defined]
            if len(batch):
                return batch
        return batch

    def close(self) -> None:
        for t in getattr(self, "_atasks", ()):
            t.cancel()
        if self._waitset is not None:
            self._waitset.close()
        for src in self.sources:
            close = getattr(src, "close", None)
            if close:
                close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Feed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class _SourceEnded:
    pass


def attach(
    engine: str,
    *,
    exchanges: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
    kinds: Iterable[str | type] | None = None,
    streams: tuple[str, ...] = ("market", "private"),
    start: str | Mapping[str, str] = "latest",
    wait: float = 0.0,
) -> Feed:
    """Attach to every ring of a running engine (or replay) named ``engine``.

    ``wait`` seconds are allowed for the rings to appear (an engine just launched).
    Only rings of this uid are read, and while an engine of that name runs, only rings
    carrying its instance id (from its lock file): a ring another user or another
    process named like the engine's is skipped with a warning naming it (never read, so
    it cannot feed forged data into the books, nor block the genuine rings); if no ring
    is left, that refusal is raised (``RingPermissionError``).

    Market rings are read through :class:`ttxt_mp.join.JoinedRing`: with ``start=
    "latest"`` the first events are the connector's state (a snapshot of every synced
    book, the last klines and statuses), so a client attaching to a running engine has
    its books at once; with ``"oldest"`` it reads the ring's history as it is. Either
    way, a lap (``GapNotice``) is followed by a fresh state.

    ``engine`` may also be a ``redis://[:password@]host:6379/0/ENGINE`` (or ``rediss://``)
    URL: the engine's rings as its bridge publishes them to Redis Streams, with the same
    filters, state on join and gaps; ``start`` may then also be a stream id to resume
    after (:mod:`ttxt_mp.bus.remote`).
    """
    from ttxt_mp.bus.remote_url import is_bus_url

    if is_bus_url(engine):
        from ttxt_mp.bus.remote import attach_remote

        return attach_remote(engine, exchanges=exchanges, symbols=symbols, kinds=kinds,
                             streams=streams, start=start, wait=wait)  # fmt: skip
    from ttxt_mp.engine.naming import check_engine_name, discover, read_engine
    from ttxt_mp.join import JoinedRing
    from ttxt_mp.shm import RingPermissionError, ShmQueue

    check_engine_name(engine)
    deadline = time.monotonic() + wait
    while True:
        info = read_engine(engine)  # an engine of another uid: UntrustedObject
        rings = discover(engine, streams)
        if exchanges is not None:
            wanted = set(exchanges)
            rings = [r for r in rings if r.connector in wanted] or rings
        if rings or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if not rings:
        raise FeedNotFound(
            f"no rings for engine {engine!r}: start it with `ttxt-mp launch CONFIG` "
            f"(engine.name = {engine!r}) or `ttxt-mp demo`, or check the name"
        )
    # Several rings: the feed's wait set spins over all of them (sync use); their own
    # wait (async use: a task each) sleeps on its FIFO at once, never holding the loop.
    spin_us = 50.0 if len(rings) == 1 else 0.0
    instance = info.instance_id if info is not None and info.alive else None
    sources: list[IQueueConsumer] = []
    refused: list[RingPermissionError] = []
    try:
        for r in rings:
            try:
                q = ShmQueue.attach(r.name, start=start, spin_us=spin_us, instance_id=instance)
            except RingPermissionError as e:
                refused.append(e)
                continue
            sources.append(JoinedRing(q, instance_id=instance, join=start == "latest")
                           if r.stream == "market" else q)  # fmt: skip
    except BaseException:
        for src in sources:
            src.close()  # type: ignore[attr-defined]
        raise
    if not sources:
        raise refused[0]
    for e in refused:  # said only when the genuine rings are read (else raised, once)
        log.warning("attach(%r): skipping a ring that is not the engine's: %s", engine, e)
    return Feed(sources, EventFilter(exchanges, symbols, kinds))


class BaseClient(IEventHandler):
    """Subclass, override the ``on_*`` methods you need, then ``run(queue)`` or
    ``await arun(queue)``. ``self.books`` holds a live book per (exchange, symbol).

    Time: ``self.now`` (ns since the epoch), ``call_later(delay_s, fn)`` and
    ``every(interval_s, fn)`` follow the client's clock: wall time when it runs live
    (``run``/``arun`` fire due timers between events), the replayed exchange time in a
    backtest (:class:`ttxt_mp.backtest.Backtest` installs its clock), so the same code
    runs in both."""

    keep_books = True

    def __init__(self, **args: Any) -> None:
        self.args = args
        self.books: dict[tuple[str, str], Any] = {}
        self.events = 0
        self._stop = False
        self._clock: Clock = _CLOCK.get() or WallClock()
        self._pollers: list[Callable[[], Any]] = []

    def stop(self) -> None:
        self._stop = True

    # ------------------------------------------------------------------ clock and timers

    @property
    def clock(self) -> Clock:
        c = self.__dict__.get("_clock")
        if c is None:  # a subclass that did not call BaseClient.__init__
            c = self._clock = _CLOCK.get() or WallClock()
        return c

    @property
    def now(self) -> int:
        """The current time in ns: wall time live, exchange time in a backtest."""
        return self.clock.now()

    def call_later(self, delay_s: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` once, ``delay_s`` seconds from now; ``.cancel()`` the result to
        call it off."""
        return self.clock.call_later(delay_s, fn)

    def every(self, interval_s: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn()`` every ``interval_s`` seconds, the first time one interval from
        now, until the returned timer is cancelled."""
        return self.clock.every(interval_s, fn)

    def install_clock(self, clock: Clock) -> None:
        """Move to ``clock`` (a backtest's), carrying the pending timers over: each keeps
        its remaining delay, counted from the new clock's now."""
        old = self.clock
        if old is clock:
            return
        was, now = old.now(), clock.now()
        for t in old.pending():
            t.cancel()
            moved = Timer(now + max(0, t.due - was), t.fn, t.interval)
            clock.schedule(moved)
        self._clock = clock

    def add_poller(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` after every event and while idle (at least every few ms) in
        ``run``/``arun``: how a :class:`~ttxt_mp.trading_client.TradingMixin` client reads
        its private events without asking for them."""
        if "_pollers" not in self.__dict__:
            self._pollers = []
        self._pollers.append(fn)

    def _service(self) -> float | None:
        """Run pollers and due timers; seconds the loop may block waiting for an event
        (None: no limit)."""
        for fn in self.__dict__.get("_pollers", ()):
            fn()
        clock = self.clock
        if not isinstance(clock, WallClock):
            return None
        clock.run_due()
        wait = clock.seconds_to_next()
        if self.__dict__.get("_pollers"):
            wait = POLL_INTERVAL if wait is None else min(wait, POLL_INTERVAL)
        return wait

    def dispatch(self, e: Any) -> None:
        self.events += 1
        t = type(e)
        if t is _ORDERBOOK:  # the commonest event: no dict look-ups to find its method
            if self.keep_books:
                self._apply_book(e)
            self.on_orderbook(e)
            return
        if t in _PRIVATE and self.__dict__.get("_private_via_trading"):
            return  # its trading client reads them itself (and tracks them): not twice
        name = _DISPATCH.get(t)
        getattr(self, name)(e) if name else self.on_event(e)

    def _apply_book(self, e: ev.Orderbook) -> None:
        key = (e.exchange, e.symbol)
        book = self.books.get(key)
        if book is None:  # imported here, once per instrument: clients need no book module
            from ttxt_mp.orderbook import OrderBook

            book = self.books[key] = OrderBook(e.exchange, e.symbol)
        book.update(e)

    def run(self, source: IQueueConsumer, *, max_events: int | None = None,
            duration: float | None = None) -> None:  # fmt: skip
        """Consume ``source`` in this thread until it closes, ``stop()``, a count or a time."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self._stop:
            wait = self._service()
            if self._stop or max_events is not None and self.events >= max_events:
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            timeout = min(x for x in (left, wait, 0.5) if x is not None)
            try:
                e = source.get(timeout=timeout) if timeout > 0 else source.get_nowait()
            except QueueEmpty:
                continue
            except QueueClosed:
                return
            self.dispatch(e)

    async def arun(self, source: IQueueConsumer) -> None:
        """Consume ``source`` on the running event loop; timers and pollers run on a task
        of their own between events (the loop is single-threaded: never during one)."""
        wake = asyncio.Event()
        clock = self.clock
        if isinstance(clock, WallClock):
            clock.on_schedule = wake.set
        main = asyncio.current_task()
        stopped: list[bool] = []
        ticker = asyncio.create_task(self._atick(wake, main, stopped))
        try:
            async for e in source:
                self.dispatch(e)
                if self._stop:
                    return
        except QueueClosed:
            return
        except asyncio.CancelledError:
            if not stopped or main is None:
                raise
            main.uncancel()  # a timer or poller called stop() while we waited for an event
        finally:
            ticker.cancel()
            if isinstance(clock, WallClock):
                clock.on_schedule = None
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _atick(self, wake: asyncio.Event, main: asyncio.Task | None,
                     stopped: list[bool]) -> None:  # fmt: skip
        while True:
            wake.clear()
            wait = self._service()
            if self._stop:
                stopped.append(True)
                if main is not None:
                    main.cancel()
                return
            if wait is None:
                await wake.wait()
            elif wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait)
            else:
                await asyncio.sleep(0)


def tail(engine: str, *, symbols: list[str] | None = None, kinds: list[str] | None = None,
         count: int | None = None, timeout: float | None = None,
         start: str = "latest") -> int:  # fmt: skip
    """``ttxt-mp tail``: print events as they arrive (``engine``: a name or a redis:// URL)."""
    n = 0
    with attach(engine, symbols=symbols, kinds=kinds, wait=2.0, start=start) as feed:
        while count is None or n < count:
            try:
                e = feed.get(timeout=timeout)
            except QueueEmpty:
                print(f"(no event for {timeout}s)")
                return 0
            except QueueClosed:
                return 0
            print(_one_line(e), flush=True)
            n += 1
    return 0


def _one_line(e: Any) -> str:
    t = type(e)
    if t is ev.Orderbook:
        bb = e.bids[0] if e.bids else None
        ba = e.asks[0] if e.asks else None
        return (f"{e.exchange:8} {e.symbol:10} book {'snap' if e.is_snapshot else 'delta'} "
                f"u={e.last_update_id} bids={len(e.bids)} asks={len(e.asks)} "
                f"first bid={bb} first ask={ba}")  # fmt: skip
    if t is ev.MarketTrades:
        return f"{e.exchange:8} {e.symbol:10} trades " + " ".join(
            f"{tr.side.name} {tr.qty}@{tr.price}" for tr in e.trades
        )
    if t is ev.BookTicker:
        return (f"{e.exchange:8} {e.symbol:10} ticker bid {e.bid_qty}@{e.bid} "
                f"ask {e.ask_qty}@{e.ask} u={e.update_id}")  # fmt: skip
    if t is ev.MarkPrice:
        return (f"{e.exchange:8} {e.symbol:10} mark {e.mark_price} index {e.index_price} "
                f"funding {e.funding_rate}")  # fmt: skip
    if t is ev.OpenInterest:
        return f"{e.exchange:8} {e.symbol:10} open interest {e.open_interest}"
    if t is ev.Liquidation:
        return f"{e.exchange:8} {e.symbol:10} liquidation {e.side.name} {e.qty}@{e.price}"
    return f"{e.exchange:8} {e.symbol:10} {e!r}"


def load_target(target: str) -> type:
    """Import ``package.module:ClassName``, a :class:`BaseClient` subclass; errors name the
    target and the cause: ImportError when it cannot be imported (whatever the module
    raised), TypeError when it is not a BaseClient subclass."""
    import importlib

    module, _, cls = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"cannot load client {target!r}: {e}") from None
    except Exception as e:  # the module itself failed (SyntaxError, NameError, ...)
        raise ImportError(f"cannot load client {target!r}: {type(e).__name__}: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseClient)):
        raise TypeError(f"client {target!r} is not a BaseClient subclass")
    return obj


if __name__ == "__main__":
    # Kept for ``python -m ttxt_mp.client``. The client process itself lives in
    # ttxt_mp.engine.client_main, which uses ttxt_mp.client.BaseClient: run as a script,
    # this file is a second module (``__main__``) whose BaseClient no client subclasses.
    from ttxt_mp.engine.client_main import main

    raise SystemExit(main())
