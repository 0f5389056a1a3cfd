"""The trading session: the trading half of a connector process (commands in, one
``OrderAck`` per command out, the private stream followed and reconciled)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.instruments import reject_ack
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.trading.journal import CommandJournal, PendingCommand
from ttxt_mp.connectors.trading.protocol import (
    ACTION,
    COMMANDS,
    ERROR_CODE,
    RECONCILED,
    RECONCILING,
    RESOLVED_CODE,
    Command,
)
from ttxt_mp.connectors.trading.venue import (
    CredentialsRejected,
    TradingVenue,
    UnknownOutcome,
    venue_class,
)
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
    SetLeverage,
    Wallet,
)
from ttxt_mp.queues import IQueueConsumer, IQueuePublisher, QueueClosed, QueueEmpty
from ttxt_mp.secrets import Credentials
from ttxt_mp.web import Backoff, WebAssistantFactory, WebError

__all__ = ["TradingSession"]

log = logging.getLogger("ttxt_mp.trading")

S = ConnectorState
OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
CLOCK_MARGIN_MS = 1_000
MAX_IN_FLIGHT = 64
MAX_BATCH = 256
STREAM_WAIT_S = 5.0
"""Commands wait this long at start for the private stream (so their updates are seen);
then they run anyway (e.g. bad credentials: each command gets the venue's rejection)."""


class TradingSession:
    """The trading half of a connector process (see :mod:`ttxt_mp.connectors.trading`).

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
        self.venue = venue or venue_class(cfg.exchange, cfg.market)(
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
        private stream and of order entry. Statuses first: a client in the middle of a
        reconcile ("reconciling" ... "reconciled") then counts the state's orders as seen."""
        out: list[Event] = list(self._statuses.values())
        if self._wallet is not None:
            out.append(msgspec.structs.replace(self._wallet,
                                               balances=tuple(self._balances.values())))  # fmt: skip
        out.extend(self._positions.values())
        out.extend(self.orders.values())
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
            elif isinstance(cmd, SetLeverage):
                sent_ms = time.time_ns() // 1_000_000
                try:
                    ack = await self.venue.set_leverage(cmd)
                except UnknownOutcome as e:
                    ack = await self.resolve(cmd, sent_ms, f"outcome unknown ({e})")
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
        if isinstance(cmd, SetLeverage):
            return await self._resolve_setting(cmd, deadline, why)
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

    async def _resolve_setting(self, cmd: SetLeverage, deadline_ms: int, why: str) -> OrderAck:
        """A :class:`SetLeverage` whose answer was lost: once its request surely expired,
        the position's leverage says whether it was applied (a margin-mode-only request
        cannot be told apart: rejected with :data:`ERROR_CODE`, the client may re-send)."""
        await asyncio.sleep(max(0.0, (deadline_ms - time.time_ns() // 1_000_000) / 1e3))
        give_up = time.monotonic() + 30.0
        while True:
            try:
                found = await self.venue.positions(cmd.symbol)
                break
            except (WebError, MalformedFrame) as e:
                if time.monotonic() >= give_up:
                    return reject_ack(cmd, OrderAction.SET_LEVERAGE, f"{why}; the venue could "
                                      f"not be queried: {e}", code=ERROR_CODE)  # fmt: skip
                await asyncio.sleep(0.5)
        for p in found:
            self._positions[p.symbol] = p
        lev = next((p.leverage for p in found if p.symbol == cmd.symbol), None)
        if not cmd.leverage or lev is None:
            return reject_ack(cmd, OrderAction.SET_LEVERAGE, f"{why}; the venue does not show "
                              "whether it was applied", code=ERROR_CODE)  # fmt: skip
        ok = lev == cmd.leverage
        return OrderAck(
            exchange=self.exchange, symbol=cmd.symbol, client_order_id=cmd.client_order_id,
            action=OrderAction.SET_LEVERAGE, accepted=ok, code=RESOLVED_CODE,
            message=f"{why}; resolved by querying the venue: leverage is {lev:g}",
        )  # fmt: skip

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
            except CredentialsRejected as e:
                self.counters["errors"] += 1
                self._status(S.ERROR, f"trading: {self.cfg.exchange} refused the credentials "
                             f"({e}); private stream not retried: fix the credentials and "
                             "restart the connector")  # fmt: skip
                return
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
        positions = await self.venue.positions()
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
        seen = {p.symbol for p in positions}
        for p in positions:
            await self._publish(p)
        for sym, old in list(self._positions.items()):
            if sym not in seen and old.size:  # closed meanwhile: the venue lists open ones
                await self._publish(msgspec.structs.replace(old, size=0.0, entry_price=0.0,
                                                            unrealized_pnl=0.0,
                                                            local_ts=time.time_ns()))  # fmt: skip
        self.counters["reconciles"] += 1
        self.stream_up.set()
        self._status(S.UP, f"{RECONCILED} {len(orders)} open orders and "
                     f"{len(wallet.balances)} balances; private stream up")  # fmt: skip

    def stats(self) -> dict[str, Any]:
        return {"state": self.state.name, "open_orders": len(self.orders), **self.counters}


class _StreamEnded(Exception):
    """The venue ended the private stream (e.g. Binance listenKeyExpired)."""
