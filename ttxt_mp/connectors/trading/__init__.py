"""Connector-side trading: order commands in, ``OrderAck``/``OrderUpdate``/``Wallet`` out.

A :class:`TradingSession` runs inside a connector process next to the market-data
connector. It loads the venue's instruments, signs and sends order commands (several in
flight at once; never stopping on an exception, unlike ttxt2's loop), publishes exactly
one ``OrderAck`` per command, follows the venue's private stream and re-reads open orders
and balances over REST whenever that stream (re)connects, so a client's view is never
silently stale. Venue specifics live in a :class:`TradingVenue` subclass
(each venue package's ``trading.py``).

Command path between processes
-------------------------------
- Every trading client creates its own command ring
  ``command_ring_name(engine, connector, client)`` (``/dev/shm/ttxt-<engine>-<connector>-
  cmd_<client>``, policy ``block``) and is its only producer; its metadata carries a random
  ``ring_id``. The connector process lists ``/dev/shm`` every :data:`DISCOVERY_INTERVAL_S`
  (:class:`CommandRings`) and attaches to each new command ring as its consumer (start
  ``oldest``). Several clients therefore trade through one connector at once, each
  through its own single-producer/single-consumer ring: no lock anywhere on the path.
- Acks and updates go to the connector's private ring ``ring_name(engine, connector,
  "private")`` (block policy). Clients attach to it and keep what carries their own
  client order ids (prefixed with the client's name), plus wallets/positions/statuses.
- Commands are numbered by their ``local_ts``: the client stamps each one with a strictly
  increasing nanosecond time (:mod:`ttxt_mp.trading_client` does), which is its sequence
  number within its ring. A command with ``local_ts == 0`` is refused (it could not be
  told apart from a replay after a restart).

Exactly once
------------
:class:`CommandJournal` is an append-only file per connector under the engine's runtime
directory. For every batch of commands read from a ring, a ``D`` (dispatched) record per
command (ring id, number, the command itself) is written **and fsynced before any of
them is sent**; after a command's ack is published an ``A`` record follows. At start the
journal gives, per ring, the highest dispatched number ``P`` and the dispatched commands
without ``A`` (in flight when the process died). Then:

- a command numbered ``<= P`` is never sent again (it was sent, or is being resolved);
- a command numbered ``> P`` has no ``D`` record, so no request for it ever left this
  process (the ``D`` fsync precedes the send); it is read from the ring again and sent
  once;
- a command in flight at the crash is **not** re-sent: it is resolved by querying the
  venue by client order id. A request is only valid for ``recvWindow`` after its signed
  timestamp (both venues check it), so once ``restart time + recvWindow`` has passed, what
  the venue reports is final: the ack says what really happened (accepted, or not placed /
  not canceled / not amended), with the code ``RESOLVED``.
- a request whose outcome is unknown while running (timeout, connection lost, an
  unreadable response) is resolved the same way instead of being retried.

An ack published just before a crash whose ``A`` record was not yet written is resolved
and published again after the restart; :class:`ttxt_mp.trading_client.TradingClient`
drops such a duplicate (it keeps one outstanding entry per command). Nothing is lost in
the ring meanwhile: a client never has more than ``capacity / 2`` commands without an ack,
so the slots the connector has not processed are never overwritten. One narrow window
remains, reported to the lead: the ring layer has no "attach at sequence", so a ring
read whose cursor moved but whose ``D`` record was not yet written when the process was
killed relies on the ring still serving those commands from ``oldest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from ttxt_mp.config import ConnectorConfig, RingConfig
from ttxt_mp.connectors.instruments import (
    InstrumentBook,
    VenueRequest,
    reject_ack,
)
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.state import StateServer, open_board
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    Connection,
    ConnectorState,
    ConnectorStatus,
    CreateOrder,
    Event,
    OrderAck,
    OrderAction,
    OrderStatus,
    OrderUpdate,
    PositionUpdate,
    Wallet,
)
from ttxt_mp.queues import IQueueConsumer, IQueuePublisher, QueueClosed, QueueEmpty
from ttxt_mp.secrets import Credentials, CredentialsError, install_redaction, load_credentials
from ttxt_mp.trust import UntrustedObject, open_checked
from ttxt_mp.web import (
    Backoff,
    ConnectionFactory,
    RateLimiter,
    RESTAssistant,
    RESTError,
    WebAssistantFactory,
    WebError,
)

__all__ = [
    "CommandJournal",
    "CommandRings",
    "DISCOVERY_INTERVAL_S",
    "PendingCommand",
    "TradingRunner",
    "TradingSession",
    "TradingVenue",
    "UnknownOutcome",
    "credentials_for",
    "open_private_publisher",
    "venue_class",
]

log = logging.getLogger("ttxt_mp.trading")

S = ConnectorState
Command = CreateOrder | CancelOrder | AmendOrder
COMMANDS = (CreateOrder, CancelOrder, AmendOrder)
ACTION = {CreateOrder: OrderAction.CREATE, CancelOrder: OrderAction.CANCEL,
          AmendOrder: OrderAction.AMEND}  # fmt: skip
OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
RESOLVED_CODE = "RESOLVED"
ERROR_CODE = "ERROR"
DISCOVERY_INTERVAL_S = 0.5
CLOCK_MARGIN_MS = 1_000
MAX_IN_FLIGHT = 64
MAX_BATCH = 256
STREAM_WAIT_S = 5.0
"""Commands wait this long at start for the private stream (so their updates are seen);
then they run anyway (e.g. bad credentials: each command gets the venue's rejection)."""
RECONCILED = "trading: reconciled"
RECONCILING = "trading: reconciling"


class UnknownOutcome(Exception):
    """A request may or may not have executed (timeout, lost connection, unreadable reply)."""


# =========================================================================== venue


class TradingVenue(ABC):
    """What differs between venues: signing, endpoints, private stream, reconciliation.

    ``factory`` lends its pooled HTTP session and rate limiter; the signer is always this
    venue's own (built from ``creds``; the market-data factory has none).
    """

    exchange: ClassVar[str]
    clock_error_codes: ClassVar[frozenset[str]] = frozenset()
    query_sees_closed: ClassVar[bool] = True
    """Whether :meth:`query_order` also finds filled/canceled orders (else: open only)."""

    def __init__(
        self,
        cfg: ConnectorConfig,
        creds: Credentials,
        *,
        factory: WebAssistantFactory | None = None,
        recv_window_ms: int = 5_000,
    ) -> None:
        self.cfg = cfg
        self.recv_window_ms = recv_window_ms
        self.signer = self._make_signer(creds, recv_window_ms)
        # Its own pool by default: order traffic never queues behind market data.
        self.own_connections = factory is None
        self.connections = factory.connection_factory if factory else ConnectionFactory()
        limiter = factory.rate_limiter if factory and factory.rate_limiter else self._rate_limiter()
        self.rest = RESTAssistant(
            self.connections, base_url=cfg.rest_url(), rate_limiter=limiter, signer=self.signer
        )
        self.instruments: InstrumentBook | None = None
        self.denormalizer: Any = None
        self.private: Any = None

    # -- venue hooks

    @abstractmethod
    def _make_signer(self, creds: Credentials, recv_window_ms: int) -> Any: ...

    @abstractmethod
    def _rate_limiter(self) -> RateLimiter: ...

    @abstractmethod
    async def load_instruments(self) -> InstrumentBook:
        """Fetch the instrument list; sets ``instruments``, ``denormalizer``, ``private``."""

    @abstractmethod
    async def server_time_ms(self) -> int: ...

    @abstractmethod
    async def open_orders(self) -> list[OrderUpdate]: ...

    @abstractmethod
    async def wallet(self) -> Wallet: ...

    @abstractmethod
    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdate | None:
        """The venue's view of one order, None if it does not know it."""

    @abstractmethod
    async def private_stream(
        self, on_up: Callable[[], Awaitable[None]], on_frame: Callable[[bytes], Awaitable[None]]
    ) -> None:
        """Connect, authenticate and subscribe the private stream, ``await on_up()``, then
        hand every frame to ``on_frame`` until the stream fails (raises) or is cancelled."""

    # -- shared

    @staticmethod
    async def pump(
        ws: Any, on_frame: Callable[[bytes], Awaitable[None]], *helpers: asyncio.Task[Any]
    ) -> None:
        """Frames to ``on_frame`` until the socket ends; a failing helper task (keep-alive,
        ping) ends the stream with its exception."""

        async def receive() -> None:
            async for resp in ws.iter_messages():
                await on_frame(resp.data)

        recv = asyncio.ensure_future(receive())
        try:
            done, _ = await asyncio.wait({recv, *helpers}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        finally:
            recv.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await recv

    async def sync_clock(self) -> int:
        """Align the signer's clock with the venue's; returns the offset in ms."""
        sent = time.time_ns()
        server = await self.server_time_ms()
        return self.signer.clock.update(server, sent, time.time_ns())

    def build(self, cmd: Command, current: OrderUpdate | None) -> VenueRequest | OrderAck:
        d = self.denormalizer
        if isinstance(cmd, CreateOrder):
            return d.create(cmd)
        if isinstance(cmd, CancelOrder):
            return d.cancel(cmd)
        return d.amend(cmd, current)

    async def send(self, req: VenueRequest) -> OrderAck:
        """The ack for ``req``; :class:`UnknownOutcome` when the venue's answer is unknown."""
        try:
            resp = await self.rest.request(
                req.method, req.path, params=req.params or None, data=req.body,
                headers=req.headers or None, signed=True, raw=True,
            )  # fmt: skip
        except RESTError as e:
            if e.status is None or e.status >= 500:
                raise UnknownOutcome(str(e)) from None
            return req.rejected(e.code, e.message, local_ts=time.time_ns())
        try:
            return self.denormalizer.parse_ack(req, resp.status, resp.body, time.time_ns())
        except (ValueError, msgspec.DecodeError) as e:
            raise UnknownOutcome(f"unreadable response: {e}") from None


def venue_class(exchange: str) -> type[TradingVenue]:
    """The trading venue class the venue's package declares (its ``VENUE.trading``)."""
    from ttxt_mp.connectors.venue import venue

    try:
        return venue(exchange).load("trading")
    except LookupError:
        raise ValueError(f"no trading support for exchange {exchange!r}") from None


# =========================================================================== journal


class PendingCommand(msgspec.Struct, frozen=True):
    """A command dispatched but not acked when the journal was last read."""

    key: str
    number: int
    at_ms: int
    command: Any


class _Rec(msgspec.Struct, omit_defaults=True):
    t: str  # P: processed-up-to, D: dispatched, A: acked, O: order opened, X: closed
    r: str
    n: int
    at: int = 0
    k: str = ""
    c: msgspec.Raw = msgspec.Raw()


_KINDS: dict[str, type] = {c.__name__: c for c in COMMANDS}
_REC = msgspec.json.Decoder(_Rec)
_ENC = msgspec.json.Encoder()


class CommandJournal:
    """Exactly-once bookkeeping of one connector's commands (see the module docstring).

    One JSON line per record; a torn last line (crash mid-write) is ignored. The file is
    compacted at open and every :attr:`compact_every` records (atomic rename).
    """

    compact_every = 20_000

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.last: dict[str, int] = {}
        self.pending: dict[tuple[str, int], PendingCommand] = {}
        self.open_orders: dict[str, str] = {}
        """Client order id -> symbol of orders placed through this connector and not seen
        closed: after a restart, their final state is queried (reconciliation)."""
        self._records = 0
        self._fd = -1
        self._load()
        self._compact()

    def _load(self) -> None:
        try:
            fd = open_checked(self.path, os.O_RDONLY, what="trading journal")
        except FileNotFoundError:
            return
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
        for line in data.splitlines():
            try:
                rec = _REC.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("journal %s: skipping an unreadable record (torn write?)", self.path)
                continue
            if rec.t in ("P", "D"):
                self.last[rec.r] = max(self.last.get(rec.r, 0), rec.n)
            if rec.t == "D":
                cmd = msgspec.json.decode(rec.c, type=_KINDS[rec.k])
                self.pending[(rec.r, rec.n)] = PendingCommand(rec.r, rec.n, rec.at, cmd)
            elif rec.t == "A":
                self.pending.pop((rec.r, rec.n), None)
            elif rec.t == "O":
                self.open_orders[rec.r] = rec.k
            elif rec.t == "X":
                self.open_orders.pop(rec.r, None)

    def _compact(self) -> None:
        lines = [_ENC.encode(_Rec("P", k, n)) for k, n in self.last.items()]
        lines += [self._dispatch_line(p.key, p.number, p.command, p.at_ms)
                  for p in self.pending.values()]  # fmt: skip
        lines += [_ENC.encode(_Rec("O", cid, 0, k=sym)) for cid, sym in self.open_orders.items()]
        tmp = self.path.with_suffix(".tmp")
        # Never through a symlink, never a file of another uid (open_checked), 0600.
        fd = open_checked(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600,
                          what="trading journal")  # fmt: skip
        try:
            os.write(fd, b"".join(line + b"\n" for line in lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = open_checked(self.path, os.O_WRONLY | os.O_APPEND, 0o600,
                                what="trading journal")  # fmt: skip
        self._records = len(lines)

    @staticmethod
    def _dispatch_line(key: str, n: int, cmd: Any, at_ms: int) -> bytes:
        return _ENC.encode(_Rec("D", key, n, at_ms, type(cmd).__name__, msgspec.Raw(_ENC.encode(cmd))))

    def dispatched(self, key: str, commands: list[Any]) -> None:
        """Record (and fsync) that ``commands`` of ring ``key`` are about to be sent."""
        if not commands:
            return
        at = time.time_ns() // 1_000_000
        lines = [self._dispatch_line(key, c.local_ts, c, at) for c in commands]
        os.write(self._fd, b"\n".join(lines) + b"\n")
        if self.fsync:
            os.fdatasync(self._fd)
        self.last[key] = max(self.last.get(key, 0), commands[-1].local_ts)
        self._records += len(lines)

    def acked(self, key: str, number: int) -> None:
        """The ack of a command is published (no fsync: a lost record means one
        re-resolution after a crash, whose duplicate ack clients drop)."""
        self.pending.pop((key, number), None)
        self._append(_Rec("A", key, number))
        if self._records >= self.compact_every:
            self._compact()

    def _append(self, rec: _Rec) -> None:
        os.write(self._fd, _ENC.encode(rec) + b"\n")
        self._records += 1

    def opened(self, client_order_id: str, symbol: str) -> None:
        if client_order_id not in self.open_orders:
            self.open_orders[client_order_id] = symbol
            self._append(_Rec("O", client_order_id, 0, k=symbol))

    def closed(self, client_order_id: str) -> None:
        if self.open_orders.pop(client_order_id, None) is not None:
            self._append(_Rec("X", client_order_id, 0))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# =========================================================================== session


class TradingSession:
    """The trading half of a connector process (see the module docstring).

    ``private_publisher`` receives acks, order updates, wallets, positions and the
    session's ``ConnectorStatus`` events (messages start with ``trading:``). Command
    sources are added with :meth:`add_source` (rings, found by :class:`CommandRings`, or
    any ``IQueueConsumer``); ``journal`` makes them exactly-once across restarts.
    """

    def __init__(
        self,
        cfg: ConnectorConfig,
        creds: Credentials,
        private_publisher: IQueuePublisher,
        *,
        factory: WebAssistantFactory | None = None,
        venue: TradingVenue | None = None,
        journal: CommandJournal | None = None,
        recv_window_ms: int = 5_000,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.cfg = cfg
        self.exchange = cfg.exchange
        self.publisher = private_publisher
        self.venue = venue or venue_class(cfg.exchange)(
            cfg, creds, factory=factory, recv_window_ms=recv_window_ms
        )
        self.journal = journal
        self.orders: dict[str, OrderUpdate] = {}
        """Latest known state of each open order, by client order id."""
        self.ready = asyncio.Event()
        self.stream_up = asyncio.Event()
        self.state = S.STARTING
        self.counters = {"commands": 0, "accepted": 0, "rejected": 0, "local_rejects": 0,
                         "duplicates": 0, "resolved": 0, "errors": 0, "reconciles": 0,
                         "private_events": 0}  # fmt: skip
        self._sem = asyncio.Semaphore(max_in_flight)
        self._lanes: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._clock_task: asyncio.Task[Any] | None = None
        # What a late joiner of the private ring needs (see state_events)
        self._wallet: Wallet | None = None
        self._balances: dict[str, Any] = {}
        self._positions: dict[str, PositionUpdate] = {}
        self._statuses: dict[Connection, ConnectorStatus] = {}
        self._in_flight = 0  # events remembered but not yet in the ring

    # ------------------------------------------------------------------ life-cycle

    async def run(self) -> None:
        """Load instruments, resolve commands left in flight, follow the private stream
        and execute commands until :meth:`stop`. Never raises for venue trouble."""
        self._status(S.STARTING, "trading: starting", connection=Connection.ORDER_ENTRY)
        backoff = Backoff(self.cfg.reconnect_backoff, max(self.cfg.reconnect_backoff_max, 0.1))
        while not self._stop.is_set():
            try:
                book = await self.venue.load_instruments()
                break
            except (WebError, MalformedFrame, ValueError) as e:
                delay = backoff.next_delay()
                self._status(S.DOWN, f"trading: instrument list failed: {e}; retry in {delay:.2f} s",
                             connection=Connection.ORDER_ENTRY)
                await self._sleep(delay)
        else:
            return
        with contextlib.suppress(WebError, ValueError, MalformedFrame):
            await self.venue.sync_clock()
        log.info("%s trading: %d instruments loaded", self.cfg.id, len(book))
        if self.journal is not None:
            for p in sorted(self.journal.pending.values(), key=lambda p: (p.key, p.number)):
                self._spawn(self._recover(p))
        stream = asyncio.create_task(self._private_loop(), name=f"{self.cfg.id}-private")
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            stream.cancel()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(stream, *self._tasks, return_exceptions=True)
            if self.venue.own_connections:
                with contextlib.suppress(Exception):
                    await self.venue.connections.close()
            self._status(S.STOPPED, "trading: stopped", connection=Connection.ORDER_ENTRY)

    def stop(self) -> None:
        self._stop.set()

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stop.wait()), delay)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ publishing

    async def _publish(self, ev: Event) -> None:
        self._remember(ev)
        self._in_flight += 1
        try:
            await self.publisher.aput(ev)
        finally:
            self._in_flight -= 1

    def _remember(self, ev: Event) -> None:
        if isinstance(ev, Wallet):  # updates may carry only the changed assets: merge
            self._wallet = ev
            for b in ev.balances:
                self._balances[b.asset] = b
        elif isinstance(ev, PositionUpdate):
            self._positions[ev.symbol] = ev
        elif isinstance(ev, ConnectorStatus):
            self._statuses[ev.connection] = ev

    # ------------------------------------------------------------------ state on join

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def state_events(self) -> list[Event]:
        """What a client attaching to the private ring late needs first (served by
        :class:`ttxt_mp.connectors.state.StateServer`): the wallet with every balance
        known, each position, each open order's latest update, the last status of the
        private stream and of order entry."""
        out: list[Event] = []
        if self._wallet is not None:
            out.append(msgspec.structs.replace(self._wallet,
                                               balances=tuple(self._balances.values())))  # fmt: skip
        out.extend(self._positions.values())
        out.extend(self.orders.values())
        out.extend(self._statuses.values())
        return out

    def state_consistent(self) -> bool:
        """No event is between being tracked and being in the ring."""
        return self._in_flight == 0

    def _status(self, state: ConnectorState, message: str, *,
                connection: Connection = Connection.PRIVATE, reconnects: int = 0) -> None:  # fmt: skip
        """Publish a status of the private stream (default) or of order entry, with
        that connection's own reconnect count."""
        self.state = state
        level = logging.WARNING if state in (S.ERROR, S.DOWN, S.DISABLED) else logging.INFO
        log.log(level, "%s %s %s", self.cfg.id, state.name, message)
        st = ConnectorStatus(exchange=self.exchange, state=state, message=message,
                             local_ts=time.time_ns(), connection=connection,
                             reconnects=reconnects)  # fmt: skip
        try:
            self.publisher.put(st, timeout=1.0)
            self._remember(st)
        except Exception as e:  # a stuck consumer must not stop trading
            log.warning("%s: cannot publish status: %s", self.cfg.id, e)

    # ------------------------------------------------------------------ commands

    def add_source(
        self, source: IQueueConsumer, key: str, on_end: Callable[[], None] | None = None
    ) -> asyncio.Task[None]:
        """Execute the commands of ``source``; ``key`` names it in the journal."""
        task = asyncio.ensure_future(self._consume(source, key, on_end))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _consume(self, source: IQueueConsumer, key: str, on_end: Callable[[], None] | None
                       ) -> None:  # fmt: skip
        from ttxt_mp.shm import RingError

        await self.ready.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stream_up.wait(), STREAM_WAIT_S)
        try:
            while True:
                try:
                    batch = [await source.aget()]
                    with contextlib.suppress(QueueEmpty):
                        while len(batch) < MAX_BATCH:
                            batch.append(source.get_nowait())
                except (QueueClosed, RingError) as e:
                    log.info("%s: command source %s ended: %s", self.cfg.id, key, e)
                    return
                self.dispatch(batch, key)
        finally:
            if on_end is not None:
                on_end()

    def dispatch(self, batch: Iterable[Any], key: str) -> list[asyncio.Task[Any]]:
        """Journal then start the new commands of ``batch`` (skipping replays)."""
        last = self.journal.last.get(key, 0) if self.journal else 0
        fresh, refused = [], []
        for cmd in batch:
            if not isinstance(cmd, COMMANDS):
                log.warning("%s: %s is not an order command; ignored", self.cfg.id,
                            type(cmd).__name__)  # fmt: skip
            elif cmd.local_ts <= 0:
                refused.append(cmd)
            elif cmd.local_ts <= last:
                self.counters["duplicates"] += 1
                log.debug("%s: command %s of %s already processed", self.cfg.id, cmd.local_ts, key)
            else:
                fresh.append(cmd)
                last = cmd.local_ts
        if self.journal is not None:
            self.journal.dispatched(key, fresh)
        tasks = []
        for cmd in refused:
            ack = reject_ack(cmd, ACTION[type(cmd)], "a command needs local_ts > 0: its sequence "
                             "number in the ring (TradingClient sets it)")  # fmt: skip
            tasks.append(self._spawn(self._finish(cmd, key, ack, journaled=False)))
        for cmd in fresh:
            tasks.append(self._spawn(self._run_command(cmd, key, self._enter_lane(cmd))))
        return tasks

    def _enter_lane(self, cmd: Command) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """Commands on one order run in arrival order; different orders run concurrently."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        prev = self._lanes.get(cmd.client_order_id)
        self._lanes[cmd.client_order_id] = done
        return prev, done

    async def _run_command(self, cmd: Command, key: str, lane) -> None:
        prev, done = lane
        try:
            if prev is not None:
                await asyncio.shield(prev)
            async with self._sem:
                ack = await self.execute(cmd)
            await self._finish(cmd, key, ack)
        finally:
            done.set_result(None)
            if self._lanes.get(cmd.client_order_id) is done:
                del self._lanes[cmd.client_order_id]

    async def _finish(self, cmd: Command, key: str, ack: OrderAck, journaled: bool = True) -> None:
        await self._publish(ack)
        if journaled and self.journal is not None:
            self.journal.acked(key, cmd.local_ts)

    async def execute(self, cmd: Command) -> OrderAck:
        """Validate, sign, send one command; its ack (never raises)."""
        self.counters["commands"] += 1
        action = ACTION[type(cmd)]
        try:
            if cmd.exchange and cmd.exchange != self.exchange:
                ack = reject_ack(cmd, action, f"command for exchange {cmd.exchange!r} sent to "
                                 f"the {self.exchange} connector {self.cfg.id!r}")  # fmt: skip
            else:
                current = self.orders.get(cmd.client_order_id)
                built = self.venue.build(cmd, current)
                if isinstance(built, OrderAck):
                    self.counters["local_rejects"] += 1
                    ack = built
                else:
                    sent_ms = time.time_ns() // 1_000_000
                    try:
                        ack = await self.venue.send(built)
                    except UnknownOutcome as e:
                        ack = await self.resolve(cmd, sent_ms, f"outcome unknown ({e})")
        except Exception as e:  # one bad command must never stop trading (ttxt2's did)
            self.counters["errors"] += 1
            log.exception("%s: command %s failed", self.cfg.id, cmd.client_order_id)
            ack = reject_ack(cmd, action, f"internal error: {type(e).__name__}: {e}",
                             code=ERROR_CODE)  # fmt: skip
        ack = msgspec.structs.replace(ack, exchange=self.exchange, symbol=cmd.symbol,
                                      local_ts=time.time_ns())  # fmt: skip
        self._after_ack(cmd, ack)
        return ack

    def _after_ack(self, cmd: Command, ack: OrderAck) -> None:
        self.counters["accepted" if ack.accepted else "rejected"] += 1
        if not ack.accepted:
            if ack.code in self.venue.clock_error_codes:
                self._resync_clock()
            return
        cid = cmd.client_order_id
        cur = self.orders.get(cid)
        if isinstance(cmd, CreateOrder) and self.journal is not None:
            self.journal.opened(cid, cmd.symbol)
        if isinstance(cmd, CreateOrder) and cur is None:
            self.orders[cid] = OrderUpdate(
                exchange=self.exchange, symbol=cmd.symbol, client_order_id=cid,
                order_id=ack.order_id, side=cmd.side, order_type=cmd.order_type, tif=cmd.tif,
                status=OrderStatus.NEW, price=cmd.price, qty=cmd.qty,
            )  # fmt: skip
        elif isinstance(cmd, AmendOrder) and cur is not None:
            self.orders[cid] = msgspec.structs.replace(
                cur, order_id=ack.order_id or cur.order_id, price=cmd.new_price or cur.price,
                qty=cmd.new_qty or cur.qty,
            )  # fmt: skip

    def _resync_clock(self) -> None:
        if self._clock_task is not None and not self._clock_task.done():
            return

        async def sync() -> None:
            try:
                offset = await self.venue.sync_clock()
                log.warning("%s: clock resynced after a timestamp rejection (offset %d ms)",
                            self.cfg.id, offset)  # fmt: skip
            except (WebError, ValueError, MalformedFrame) as e:
                log.warning("%s: clock resync failed: %s", self.cfg.id, e)

        self._clock_task = self._spawn(sync())

    # ------------------------------------------------------------------ resolution

    async def _recover(self, p: PendingCommand) -> None:
        """A command dispatched before a restart and never acked: resolve, never re-send."""
        await self.ready.wait()
        cmd = p.command
        prev, done = self._enter_lane(cmd)
        try:
            if prev is not None:
                await asyncio.shield(prev)
            # The request, if it was sent, was signed before the crash, i.e. before now.
            ack = await self.resolve(cmd, time.time_ns() // 1_000_000,
                                     "in flight when the connector stopped")  # fmt: skip
            ack = msgspec.structs.replace(ack, exchange=self.exchange, symbol=cmd.symbol,
                                          local_ts=time.time_ns())  # fmt: skip
            self._after_ack(cmd, ack)
            await self._finish(cmd, p.key, ack)
        finally:
            done.set_result(None)
            if self._lanes.get(cmd.client_order_id) is done:
                del self._lanes[cmd.client_order_id]

    async def resolve(self, cmd: Command, signed_before_ms: int, why: str) -> OrderAck:
        """What a command whose request may have reached the venue actually did, by
        querying the order until the request's recvWindow has surely expired."""
        self.counters["resolved"] += 1
        deadline = signed_before_ms + self.venue.recv_window_ms + CLOCK_MARGIN_MS
        while True:
            final = time.time_ns() // 1_000_000 >= deadline
            try:
                state = await self.venue.query_order(cmd.symbol, cmd.client_order_id)
            except (WebError, MalformedFrame) as e:
                if final and time.time_ns() // 1_000_000 >= deadline + 30_000:
                    return reject_ack(cmd, ACTION[type(cmd)], f"{why}; the venue could not be "
                                      f"queried: {e}", code=ERROR_CODE)  # fmt: skip
                await asyncio.sleep(0.5)
                continue
            ack = self._judge(cmd, state, why, final)
            if ack is not None:
                if state is not None:
                    self._track(state)
                    await self._publish(state)
                return ack
            await asyncio.sleep(min(0.25, max(0.0, (deadline - time.time_ns() // 1e6) / 1e3)))

    def _judge(self, cmd: Command, st: OrderUpdate | None, why: str, final: bool) -> OrderAck | None:
        action = ACTION[type(cmd)]

        def ack(accepted: bool, message: str) -> OrderAck:
            return OrderAck(
                exchange=self.exchange, symbol=cmd.symbol, client_order_id=cmd.client_order_id,
                action=action, accepted=accepted, order_id=st.order_id if st else "",
                code=RESOLVED_CODE, message=f"{why}; resolved by querying the venue: {message}",
            )  # fmt: skip

        seen = f"order is {st.status.name}" if st is not None else "the venue has no such order"
        if isinstance(cmd, CreateOrder):
            if st is not None:
                return ack(True, f"placed ({seen})")
            return ack(False, "not placed (no order with this client order id)") if final else None
        if isinstance(cmd, CancelOrder):
            if st is None:
                if not self.venue.query_sees_closed:
                    return ack(True, "the order is no longer open") if final else None
                return ack(False, "unknown order") if final else None
            if st.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                return ack(True, f"canceled ({seen})")
            if st.status in OPEN:
                return ack(False, f"not canceled ({seen})") if final else None
            return ack(False, seen)
        if st is not None and st.status in OPEN and (
            (not cmd.new_price or st.price == cmd.new_price)
            and (not cmd.new_qty or st.qty == cmd.new_qty)
        ):
            return ack(True, f"amended ({seen}, price {st.price:g}, qty {st.qty:g})")
        return ack(False, f"not amended ({seen})") if final else None

    # ------------------------------------------------------------------ private stream

    def _track(self, ev: OrderUpdate) -> None:
        if ev.status in OPEN:
            self.orders[ev.client_order_id] = ev
        else:
            self.orders.pop(ev.client_order_id, None)
            if self.journal is not None:
                self.journal.closed(ev.client_order_id)

    async def _private_loop(self) -> None:
        backoff = Backoff(self.cfg.reconnect_backoff, max(self.cfg.reconnect_backoff_max, 0.1))
        reconnects = 0
        while not self._stop.is_set():
            up_since = None

            async def on_up() -> None:
                nonlocal up_since
                await self.reconcile()
                up_since = time.monotonic()

            try:
                await self.venue.private_stream(on_up, self._on_frame)
                reason = "private stream ended"
            except asyncio.CancelledError:
                raise
            except (WebError, MalformedFrame, _StreamEnded) as e:
                reason = f"{type(e).__name__}: {e}"
            except Exception as e:
                log.exception("%s: private stream failed", self.cfg.id)
                reason = f"unexpected {type(e).__name__}: {e}"
            if up_since is not None and time.monotonic() - up_since > 5.0:
                backoff.reset()
            reconnects += 1
            delay = backoff.next_delay()
            self._status(S.DOWN, f"trading: private stream down ({reason}); reconnect "
                         f"{reconnects} in {delay:.2f} s, then reconcile",
                         reconnects=reconnects)  # fmt: skip
            await self._sleep(delay)

    async def _on_frame(self, frame: bytes) -> None:
        try:
            events = self.venue.private.normalize(frame)
        except MalformedFrame as e:
            if "failed" in e.reason:  # a refused op (auth/subscribe): reconnect
                raise
            self.counters["errors"] += 1
            self._status(S.ERROR, f"trading: malformed private frame ({e.reason}): {e.excerpt!r}")
            return
        for ev in events:
            if isinstance(ev, ConnectorStatus):
                raise _StreamEnded(ev.message)
            if isinstance(ev, OrderUpdate):
                self._track(ev)
            self.counters["private_events"] += 1
            await self._publish(ev)

    async def reconcile(self) -> None:
        """Re-read open orders and balances over REST and publish them (between a
        RESYNCING and an UP status whose messages start with :data:`RECONCILING` /
        :data:`RECONCILED`), plus the final state of known orders that closed meanwhile."""
        self._status(S.RESYNCING, f"{RECONCILING} open orders and balances over REST")
        orders = await self.venue.open_orders()
        wallet = await self.venue.wallet()
        open_ids = {o.client_order_id for o in orders}
        known = {cid: st.symbol for cid, st in self.orders.items()}
        if self.journal is not None:
            known.update(self.journal.open_orders)  # placed before a restart
        for o in orders:
            self._track(o)
            await self._publish(o)
        for cid, symbol in known.items():
            if cid in open_ids:
                continue
            self.orders.pop(cid, None)
            final = None
            if self.venue.query_sees_closed:
                final = await self.venue.query_order(symbol, cid)
            if final is not None:
                self._track(final)
                await self._publish(final)
            elif self.journal is not None:
                self.journal.closed(cid)  # not open, final state unknown to this venue API
        await self._publish(wallet)
        self.counters["reconciles"] += 1
        self.stream_up.set()
        self._status(S.UP, f"{RECONCILED} {len(orders)} open orders and "
                     f"{len(wallet.balances)} balances; private stream up")  # fmt: skip

    def stats(self) -> dict[str, Any]:
        return {"state": self.state.name, "open_orders": len(self.orders), **self.counters}


class _StreamEnded(Exception):
    """The venue ended the private stream (e.g. Binance listenKeyExpired)."""


# =========================================================================== discovery


_CLIENT = re.compile(r"^[A-Za-z0-9_]+$")  # excludes the rings' wake-up FIFOs (``.w0``)


class CommandRings:
    """Finds the command rings of one connector and feeds them to a session."""

    def __init__(self, engine: str, connector_id: str, session: TradingSession,
                 interval: float = DISCOVERY_INTERVAL_S, *,
                 trading_gid: int | None = None) -> None:  # fmt: skip
        from ttxt_mp.engine.naming import command_ring_name

        self.session = session
        self.interval = interval
        self.trading_gid = trading_gid
        self.prefix = "ttxt-" + command_ring_name(engine, connector_id, "")
        self.attached: dict[str, Any] = {}
        self.finished: set[str] = set()  # ring ids drained to the end (producer gone)
        self.refused: dict[str, tuple[int, int]] = {}  # name -> (dev, ino) warned about once

    def scan(self) -> list[str]:
        from ttxt_mp.engine.naming import SHM_DIR

        try:
            entries = os.listdir(SHM_DIR)
        except OSError:
            return []
        n = len(self.prefix)
        return sorted(e[len("ttxt-"):] for e in entries
                      if e.startswith(self.prefix) and _CLIENT.match(e[n:]))  # fmt: skip

    def attach_new(self) -> int:
        from ttxt_mp.shm import RingError, ShmQueue

        added = 0
        for name in self.scan():
            if name in self.attached:
                continue
            why = self._untrusted(name)
            if why is not None:
                self._refuse(name, why)
                continue
            try:
                ring = ShmQueue.attach(name, start="oldest", allow_gid=self.trading_gid)
            except UntrustedObject as e:  # checked again on the fd: it changed meanwhile
                self._refuse(name, str(e))
                continue
            except (RingError, OSError, ValueError) as e:
                log.debug("cannot attach command ring %s: %s", name, e)
                continue
            meta = ring.metadata if isinstance(ring.metadata, dict) else {}
            key = str(meta.get("ring_id") or name)
            if key in self.finished:
                ring.close()
                continue
            self.attached[name] = ring

            def ended(name: str = name, key: str = key, ring: Any = ring) -> None:
                self.attached.pop(name, None)
                self.finished.add(key)
                with contextlib.suppress(Exception):
                    ring.close()

            self.session.add_source(ring, key, ended)
            log.info("attached command ring %s (client %s)", name, meta.get("client", "?"))
            added += 1
        return added

    def _untrusted(self, name: str) -> str | None:
        """Why ring ``name`` may not send orders, or None if it may.

        Why: a command ring is an order entry with the engine's API keys. Only rings of
        the engine's own uid are accepted, and, only when ``[engine] trading_group`` is
        configured, rings whose group is that group (never anything open to others).
        The shm layer checks the same on the opened fd, so a swap after this lstat
        gains nothing; this pre-check keeps foreign rings from being opened at all."""
        from ttxt_mp.engine.naming import SHM_DIR

        path = SHM_DIR / f"ttxt-{name}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None  # gone: attach will say so (debug)
        mode = stat.S_IMODE(st.st_mode)
        me = os.geteuid()
        who = f"owned by uid {st.st_uid}, gid {st.st_gid}, mode {mode:04o}"
        allowed = f"only uid {me}" + (f" or group {self.trading_gid}"
                                      if self.trading_gid is not None else "")  # fmt: skip
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is not a shared-memory object ({who})"
        group_ok = self.trading_gid is not None and st.st_gid == self.trading_gid
        if st.st_uid != me and not group_ok:
            return f"{who}; {allowed} may trade through this engine"
        if mode & 0o007 or (mode & 0o070 and not group_ok):
            return f"{who}; it is open to other users ({allowed} may trade)"
        return None

    def _refuse(self, name: str, why: str) -> None:
        """One WARNING per ring instance (not per scan), naming the ring and its owner."""
        from ttxt_mp.engine.naming import SHM_DIR

        try:
            st = os.lstat(SHM_DIR / f"ttxt-{name}")
            ident = (st.st_dev, st.st_ino)
        except OSError:
            ident = (0, 0)
        if self.refused.get(name) == ident:
            return
        self.refused[name] = ident
        log.warning("ignoring command ring %s: %s", name, why)

    async def run(self) -> None:
        await self.session.ready.wait()
        try:
            while True:
                try:
                    self.attach_new()
                except Exception:  # discovery trouble must not drop the attached rings
                    log.exception("command ring discovery failed")
                await asyncio.sleep(self.interval)
        finally:
            for ring in list(self.attached.values()):
                with contextlib.suppress(Exception):
                    ring.close()
            self.attached.clear()


# =========================================================================== process wiring


def credentials_for(cfg: ConnectorConfig) -> tuple[Credentials | None, str]:
    """(credentials, "") or (None, why trading is off); the reason never holds a value."""
    ref = cfg.credentials
    if ref is None:
        return None, (f"trading off for {cfg.id}: no credentials configured (add "
                      "[connectors.credentials] with api_key_env/api_secret_env or file)")  # fmt: skip
    try:
        creds = load_credentials(api_key_env=ref.api_key_env, api_secret_env=ref.api_secret_env,
                                 file=ref.file)  # fmt: skip
    except CredentialsError as e:
        return None, f"trading off for {cfg.id}: {e}"
    if creds is None:
        return None, f"trading off for {cfg.id}: no credentials configured"
    return creds, ""


def open_private_publisher(
    engine: str, connector_id: str, ring: RingConfig | None = None
) -> tuple[IQueuePublisher, Callable[[], None]]:
    """The producer end of ``<engine>-<connector>-private`` (a ``block`` ring)."""
    from ttxt_mp.connectors.run import open_ring_publisher

    ring = ring or RingConfig(capacity=4096, policy="block")
    return open_ring_publisher(engine, connector_id, "private", ring)


class TradingRunner:
    """Everything trading needs in a connector process, started by ``run.py``.

    Without credentials it only publishes ``ConnectorStatus(DISABLED)`` (naming the
    missing variable or file) into the market ring, and market data keeps running.
    """

    def __init__(self, engine: str, cfg: ConnectorConfig, market: IQueuePublisher,
                 private_ring: RingConfig | None = None, *, fsync: bool = True,
                 trading_gid: int | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.trading_gid = trading_gid
        """``[engine] trading_group``: its members' command rings are accepted too."""
        self.cfg = cfg
        self.market = market
        self.private_ring = private_ring
        self.fsync = fsync
        self.session: TradingSession | None = None
        self._cleanup: Callable[[], None] | None = None
        self._journal: CommandJournal | None = None
        self.disabled_reason = ""
        self._stopped = False

    async def run(self) -> None:
        creds, why = credentials_for(self.cfg)
        if creds is None:
            self.disabled_reason = why
            # Not configured is a choice (market data only); configured but unusable is not.
            (log.info if self.cfg.credentials is None else log.warning)("%s", why)
            self.market.put(ConnectorStatus(exchange=self.cfg.exchange, state=S.DISABLED,
                                            message=why, local_ts=time.time_ns()), timeout=1.0)  # fmt: skip
            return
        install_redaction()
        from ttxt_mp.engine.naming import runtime_dir

        try:  # a journal we cannot trust means no exactly-once: no trading at all
            path = runtime_dir() / f"{self.engine}-{self.cfg.id}.trading-journal"
            self._journal = CommandJournal(path, fsync=self.fsync)
        except UntrustedObject as e:
            self.disabled_reason = f"trading off for {self.cfg.id}: {e}"
            log.error("%s", self.disabled_reason)
            self.market.put(ConnectorStatus(exchange=self.cfg.exchange, state=S.DISABLED,
                                            message=self.disabled_reason,
                                            local_ts=time.time_ns()), timeout=1.0)  # fmt: skip
            return
        pub, self._cleanup = open_private_publisher(self.engine, self.cfg.id, self.private_ring)
        self.session = TradingSession(self.cfg, creds, pub, journal=self._journal)
        if self._stopped:
            self.session.stop()
        rings = CommandRings(self.engine, self.cfg.id, self.session,
                             trading_gid=self.trading_gid)  # fmt: skip
        tasks = [asyncio.ensure_future(rings.run())]
        board = open_board(pub, f"{self.cfg.id}: no state on join for late trading clients")
        if board is not None:
            tasks.append(asyncio.ensure_future(StateServer(self.session, board).run()))
        try:
            await self.session.run()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if board is not None:
                board.close()
            self.close()

    def stop(self) -> None:
        self._stopped = True
        if self.session is not None:
            self.session.stop()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None
