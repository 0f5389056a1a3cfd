"""Client side of trading: send order commands to connector processes, follow the answers.

    from ttxt_mp.trading_client import TradingClient
    tc = TradingClient("demo", "alice")
    cid = tc.create_order("binance", "BTC/USDT", Side.BUY, 0.01, price=30000.0)
    ack = tc.wait_ack(cid, timeout=5)          # OrderAck: accepted, or the venue's reason
    tc.cancel_order("binance", "BTC/USDT", cid)

Per connector the client owns one command ring ``command_ring_name(engine, connector,
name)`` (block policy; see :mod:`ttxt_mp.connectors.trading` for the protocol) and reads
the connector's private ring, keeping what concerns it: acks and order updates whose
client order id starts with ``<name>-`` (ids it generated), wallets, positions and
statuses. It tracks its open orders, fills, wallets and positions from those events and
hands each event to an optional handler (e.g. a :class:`ttxt_mp.client.BaseClient`):
``on_order_ack``, ``on_order_update``, ``on_wallet``, ``on_position``, ``on_status``.

Each command is stamped with a strictly increasing ``local_ts`` (its number in the ring;
the connector's exactly-once journal relies on it). At most ``capacity // 2`` commands may
wait for their ack: beyond that the ring could overwrite what a restarting connector has
not read yet, so :class:`TradingError` is raised instead.

Trust: the command ring is created 0600, so only the engine's own uid may trade through
it (the connector ignores rings of other uids). ``group=<gid>`` shares it with that group
(0660) for an engine configured with ``[engine] trading_group``; the private ring is then
accepted from that group too. Otherwise the private ring must be this uid's and, while
the engine runs, carry its instance id (a ring planted under its name is refused).

After a connector restart, the connector re-reads open orders and balances and publishes
them between two statuses; an order this client believed open that is not in that
snapshot moves from ``open_orders`` to ``stale_orders`` (its final state was not seen),
so the view is never silently stale.

Contract markets: ``set_leverage(exchange, symbol, leverage, margin_mode)`` sends a
``SetLeverage`` (acked like an order, action SET_LEVERAGE); ``create_order`` takes
``reduce_only`` and ``position_side``; ``position(exchange, symbol)`` is the last
``PositionUpdate`` (from the stream, a reconciliation, or the state on join).

The bookkeeping (client order ids, commands, acks, own orders, fills, wallets, positions,
reconciliation) is :class:`TradingState`, shared with the backtest's trading object
(:mod:`ttxt_mp.backtest.trading`), which carries the commands to a simulated venue instead.

:class:`TradingMixin` adds ``create_order``/``cancel_order``/``amend_order``/``wait_ack``
(and ``set_leverage``) to a ``BaseClient`` subclass (call ``enable_trading(engine, name)`` first). Everything
works from any process: only shared-memory rings connect it to the connectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from ttxt_mp import events as ev
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    ConnectorState,
    ConnectorStatus,
    CreateOrder,
    MarginMode,
    OrderAck,
    OrderAction,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSide,
    PositionUpdate,
    SetLeverage,
    Side,
    TimeInForce,
    Wallet,
)
from ttxt_mp.queues import QueueClosed, QueueEmpty

__all__ = ["TradingClient", "TradingError", "TradingMixin", "TradingState"]

log = logging.getLogger("ttxt_mp.trading_client")
CLIENT_NAME = re.compile(r"^[A-Za-z0-9_]{1,16}$")
OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def engine_routes(engine: str) -> dict[tuple[str, str], str]:
    """(exchange, symbol) -> connector name, from the running engine's status (its
    connectors' exchange and symbols); empty if the engine does not answer (a client may
    start first: then connectors are found by exchange name)."""
    from ttxt_mp.engine.control import ControlError, EngineNotRunning, request

    try:
        children = request(engine, "status").get("children", [])
    except (EngineNotRunning, ControlError, OSError, ValueError, KeyError):
        return {}
    return {(c["exchange"], s): c["name"].partition(":")[2]
            for c in children if c.get("role") == "connector" and "exchange" in c
            for s in c.get("symbols", ())}  # fmt: skip


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


class TradingError(RuntimeError):
    """A command could not be handed to the connector (worded for the user)."""


class _Link:
    """The rings between this client and one connector."""

    def __init__(self, engine: str, connector: str, client: str, capacity: int,
                 slot_size: int, group: int | None = None) -> None:  # fmt: skip
        from ttxt_mp.engine.naming import command_ring_name, ring_name
        from ttxt_mp.shm import ShmQueue

        self.engine = engine
        self.connector = connector
        self.group = group
        self.private_name = ring_name(engine, connector, "private")
        self.commands = ShmQueue.create(
            command_ring_name(engine, connector, client), capacity, slot_size, "block",
            metadata={"client": client, "ring_id": uuid.uuid4().hex, "pid": os.getpid()},
            group=group,
        )  # fmt: skip
        self.capacity = capacity
        self.private: Any = None
        self._retry_at = 0.0
        self._refused = ""

    def _instance(self) -> int | None:
        """The running engine's instance id, checked on the private ring (None: no engine
        lock readable, e.g. a group member's, whose lock file is the engine uid's)."""
        from ttxt_mp.engine.naming import read_engine

        if self.group is not None:
            return None
        info = read_engine(self.engine)
        return info.instance_id if info is not None and info.alive else None

    def attach_private(self) -> Any:
        """The private ring consumer, (re)attached when the connector (re)created it."""
        from ttxt_mp.shm import RingError, ShmQueue
        from ttxt_mp.trust import UntrustedObject

        if self.private is not None:
            return self.private
        now = time.monotonic()
        if now < self._retry_at:
            return None
        self._retry_at = now + 0.05
        try:
            ring = ShmQueue.attach(self.private_name, start="oldest",
                                   instance_id=self._instance(), allow_gid=self.group)  # fmt: skip
        except UntrustedObject as e:  # foreign ring or lock file: say so once, keep away
            if str(e) != self._refused:
                self._refused = str(e)
                log.warning("not reading private ring %s: %s", self.private_name, e)
            return None
        except (RingError, OSError):
            return None
        if not ring.producer_alive:
            ring.close()
            return None
        # The ring from its oldest event: acks of commands sent before this attach are
        # there, and the reconcile protocol (statuses around the re-read orders) is in
        # order. Only if the ring lost its start (it wrapped) the connector's state comes
        # first: wallet, positions and open orders older than what the ring still holds.
        from ttxt_mp.join import JoinedRing

        self.private = JoinedRing(ring, instance_id=ring.instance_id, allow_gid=self.group,
                                  join=ring.history_start > 0)  # fmt: skip
        return self.private

    def drop_private(self) -> None:
        if self.private is not None:
            with contextlib.suppress(Exception):
                self.private.close()
            self.private = None

    def close(self) -> None:
        self.drop_private()
        with contextlib.suppress(Exception):
            self.commands.close()
        with contextlib.suppress(Exception):
            self.commands.unlink()


class TradingState:
    """What every trading front end shares, whatever carries its commands: client order
    ids, the commands built from a call, and the bookkeeping of the answers (acks, own
    orders, fills, wallets, positions, reconciliation statuses) handed to ``handler``.

    :class:`TradingClient` sends the commands through the engine's rings; the
    backtest's :class:`ttxt_mp.backtest.trading.BacktestTrading` to the simulated venue.
    Subclasses define :meth:`_send` (and :meth:`_time_ns`, the clock commands are
    stamped with)."""

    def __init__(self, name: str, *, handler: Any = None, session: str | None = None) -> None:
        if not CLIENT_NAME.match(name):
            raise ValueError(f"client name must be 1-16 letters, digits or '_', got {name!r}")
        self.name = name
        self.handler = handler
        self.prefix = f"{name}-"
        self._session = session if session is not None else \
            _base36(time.time_ns() // 1_000_000 % 36**8)
        self._ids = itertools.count(1)
        self._last_ts = 0
        self._outstanding: dict[tuple[str, OrderAction], int] = {}
        self._acks: dict[str, deque[OrderAck]] = {}
        self.open_orders: dict[str, OrderUpdate] = {}
        self.orders: dict[str, OrderUpdate] = {}
        """Latest state of every own order seen (open or not)."""
        self.stale_orders: dict[str, OrderUpdate] = {}
        self.fills: list[OrderUpdate] = []
        self.wallets: dict[str, dict[str, ev.Balance]] = {}
        """Balances per connector (its name; the exchange for an unnamed connector): a
        venue's spot and futures wallets are two."""
        self._order_connector: dict[str, str] = {}
        self.positions: dict[tuple[str, str], PositionUpdate] = {}
        self.statuses: list[ConnectorStatus] = []
        self.duplicate_acks = 0
        self._reconciling: dict[str, set[str]] = {}

    def _send(self, exchange: str, cmd: Any, action: OrderAction) -> str:
        raise NotImplementedError

    def _time_ns(self) -> int:
        return time.time_ns()

    def _count_sent(self, cmd: Any, action: OrderAction) -> str:
        key = (cmd.client_order_id, action)
        self._outstanding[key] = self._outstanding.get(key, 0) + 1
        return cmd.client_order_id

    # ------------------------------------------------------------------ commands

    def new_client_order_id(self) -> str:
        """``<name>-<session><n>``: unique per client session, valid on both venues."""
        return f"{self.prefix}{self._session}{_base36(next(self._ids))}"

    def _stamp(self) -> int:
        ts = max(self._time_ns(), self._last_ts + 1)
        self._last_ts = ts
        return ts

    def create_order(
        self,
        exchange: str,
        symbol: str,
        side: Side,
        qty: float,
        price: float | None = None,
        order_type: OrderType | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = False,
        position_side: PositionSide = PositionSide.BOTH,
    ) -> str:
        """Send a ``CreateOrder``; returns its client order id (limit if a price is given,
        else market, unless ``order_type`` says otherwise). ``reduce_only`` and
        ``position_side`` (hedge mode: LONG/SHORT) are for contract markets."""
        cid = client_order_id or self.new_client_order_id()
        if not cid.startswith(self.prefix):
            raise ValueError(f"client order ids of {self.name!r} must start with {self.prefix!r}")
        kind = order_type or (OrderType.MARKET if price is None else OrderType.LIMIT)
        cmd = CreateOrder(exchange=exchange, symbol=symbol, local_ts=self._stamp(),
                          client_order_id=cid, side=side, order_type=kind, qty=float(qty),
                          price=float(price or 0.0), tif=tif, reduce_only=reduce_only,
                          position_side=position_side)  # fmt: skip
        return self._send(exchange, cmd, OrderAction.CREATE)

    def set_leverage(self, exchange: str, symbol: str, leverage: float | None = None,
                     margin_mode: MarginMode = MarginMode.UNCHANGED) -> str:  # fmt: skip
        """Send a ``SetLeverage`` for the position on a contract ``symbol`` (None: leverage
        unchanged); returns the request's id, whose ``OrderAck`` (action SET_LEVERAGE)
        says whether the venue applied it (``wait_ack``)."""
        if not leverage and margin_mode == MarginMode.UNCHANGED:
            raise ValueError("set_leverage: give a leverage and/or a margin mode")
        cid = self.new_client_order_id()
        cmd = SetLeverage(exchange=exchange, symbol=symbol, local_ts=self._stamp(),
                          client_order_id=cid, leverage=float(leverage or 0.0),
                          margin_mode=margin_mode)  # fmt: skip
        return self._send(exchange, cmd, OrderAction.SET_LEVERAGE)

    def cancel_order(self, exchange: str, symbol: str, client_order_id: str,
                     order_id: str = "") -> str:  # fmt: skip
        cmd = CancelOrder(exchange=exchange, symbol=symbol, local_ts=self._stamp(),
                          client_order_id=client_order_id, order_id=order_id)  # fmt: skip
        return self._send(exchange, cmd, OrderAction.CANCEL)

    def amend_order(self, exchange: str, symbol: str, client_order_id: str, *,
                    new_price: float | None = None, new_qty: float | None = None,
                    order_id: str = "") -> str:  # fmt: skip
        """Change price and/or quantity (None: unchanged)."""
        cmd = AmendOrder(exchange=exchange, symbol=symbol, local_ts=self._stamp(),
                         client_order_id=client_order_id, order_id=order_id,
                         new_price=float(new_price or 0.0), new_qty=float(new_qty or 0.0))  # fmt: skip
        return self._send(exchange, cmd, OrderAction.AMEND)

    @property
    def outstanding(self) -> int:
        """Commands sent whose ack has not arrived yet."""
        return sum(self._outstanding.values())

    # ------------------------------------------------------------------ events

    def _mine(self, cid: str) -> bool:
        return cid.startswith(self.prefix)

    def handle(self, e: Any, connector: str | None = None) -> bool:
        """Track one private-ring event of ``connector`` (default: the one named like the
        event's exchange); True if it was kept (and handed to the handler)."""
        t = type(e)
        key = connector or e.exchange
        if t is OrderAck:
            if not self._mine(e.client_order_id):
                return False
            key = (e.client_order_id, e.action)
            n = self._outstanding.get(key, 0)
            if n <= 0:
                self.duplicate_acks += 1  # re-published after a connector restart
                return False
            if n == 1:
                del self._outstanding[key]
            else:
                self._outstanding[key] = n - 1
            self._acks.setdefault(e.client_order_id, deque()).append(e)
            self._call("on_order_ack", e)
            return True
        if t is OrderUpdate:
            if not self._mine(e.client_order_id):
                return False
            cid = e.client_order_id
            self.orders[cid] = e
            self._order_connector[cid] = key
            self.stale_orders.pop(cid, None)
            if e.status in OPEN:
                self.open_orders[cid] = e
            else:
                self.open_orders.pop(cid, None)
            if e.last_fill_qty:
                self.fills.append(e)
            for seen in self._reconciling.values():
                seen.add(cid)
            self._call("on_order_update", e)
            return True
        if t is Wallet:
            w = self.wallets.setdefault(key, {})
            for b in e.balances:
                w[b.asset] = b
            self._call("on_wallet", e)
            return True
        if t is PositionUpdate:
            self.positions[(e.exchange, e.symbol)] = e
            self._call("on_position", e)
            return True
        if t is ConnectorStatus:
            self._on_status(e, key)
            self._call("on_status", e)
            return True
        return False

    def _on_status(self, e: ConnectorStatus, connector: str) -> None:
        self.statuses.append(e)
        if e.state == ConnectorState.RESYNCING and e.message.startswith("trading: reconciling"):
            self._reconciling[connector] = set()
        elif e.state == ConnectorState.UP and e.message.startswith("trading: reconciled"):
            seen = self._reconciling.pop(connector, None)
            if seen is None:
                return
            for cid in list(self.open_orders):
                if self._order_connector.get(cid) == connector and cid not in seen:
                    self.stale_orders[cid] = self.open_orders.pop(cid)

    def _call(self, method: str, e: Any) -> None:
        if self.handler is not None:
            fn = getattr(self.handler, method, None)
            if fn is not None:
                fn(e)

    def take_ack(self, client_order_id: str, action: OrderAction | None = None) -> OrderAck | None:
        q = self._acks.get(client_order_id)
        if not q:
            return None
        for i, a in enumerate(q):
            if action is None or a.action == action:
                del q[i]
                if not q:
                    del self._acks[client_order_id]
                return a
        return None

    def balance(self, connector: str, asset: str) -> ev.Balance | None:
        """``asset``'s balance on ``connector`` (its name; the exchange if unnamed)."""
        return self.wallets.get(connector, {}).get(asset)

    def position(self, exchange: str, symbol: str) -> PositionUpdate | None:
        """The last ``PositionUpdate`` of ``symbol`` (from the stream or the state on join)."""
        return self.positions.get((exchange, symbol))

    def snapshot(self) -> dict[str, Any]:
        """Open orders, wallets and positions as plain data (for logs and tests)."""
        return {
            "open_orders": {k: msgspec.to_builtins(v) for k, v in self.open_orders.items()},
            "positions": {f"{x} {s}": [p.size, p.entry_price] for (x, s), p in self.positions.items()},
            "wallets": {x: {a: [b.free, b.locked] for a, b in w.items()}
                        for x, w in self.wallets.items()},  # fmt: skip
            "outstanding": self.outstanding,
        }




class TradingClient(TradingState):
    """Order entry and private-state tracking for one client (see the module docstring).

    ``connectors`` maps an exchange to the connector id serving it (default: the exchange
    name, i.e. unnamed connectors). ``handler`` receives every event kept. With
    ``link_now`` (default) it links to every trading connector of the running engine at
    once, so :meth:`poll` brings its open orders and wallets (the connectors' state on
    join) before it sends anything; otherwise a connector is linked by its first command.
    """

    def __init__(
        self,
        engine: str,
        name: str,
        *,
        connectors: dict[str, str] | None = None,
        handler: Any = None,
        capacity: int = 1024,
        slot_size: int = 256,
        put_timeout: float = 2.0,
        group: int | str | None = None,
        link_now: bool = True,
    ) -> None:
        super().__init__(name, handler=handler)
        self.engine = engine
        self.connectors = dict(connectors or {})
        self.capacity = capacity
        self.slot_size = slot_size
        self.put_timeout = put_timeout
        self.group: int | None = None
        """gid the command rings are shared with (the engine's ``trading_group``)."""
        if group is not None:
            from ttxt_mp.config import resolve_group

            try:
                self.group = resolve_group(group)
            except KeyError as e:
                raise ValueError(f"TradingClient group: {e.args[0]}") from None
        self._links: dict[str, _Link] = {}
        self.routes: dict[tuple[str, str], str] = {}
        """(exchange, symbol) -> the engine's connector trading it (a venue's spot and
        perpetual connectors are two), from the engine's status; see :meth:`connector_for`."""
        if link_now:
            self.routes = engine_routes(engine)
            from ttxt_mp.engine.naming import discover

            for r in discover(engine, ("private",)):
                self._link(r.connector)

    # ------------------------------------------------------------------ rings

    def connector_for(self, exchange: str, symbol: str = "") -> str:
        """The connector for ``exchange`` (and ``symbol``): the ``connectors`` mapping
        given, else the engine connector listing that symbol, else the one named like the
        exchange (an unnamed connector)."""
        if exchange in self.connectors:
            return self.connectors[exchange]
        return self.routes.get((exchange, symbol), exchange)

    def link(self, exchange: str, symbol: str = "") -> _Link:
        return self._link(self.connector_for(exchange, symbol))

    def _link(self, conn: str) -> _Link:
        link = self._links.get(conn)
        if link is None:
            link = self._links[conn] = _Link(self.engine, conn, self.name, self.capacity,
                                             self.slot_size, self.group)  # fmt: skip
            link.attach_private()
        return link

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()

    def __enter__(self) -> TradingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands

    def _send(self, exchange: str, cmd: Any, action: OrderAction) -> str:
        link = self.link(exchange, cmd.symbol)
        waiting = sum(self._outstanding.values())
        if waiting >= self.capacity // 2:
            raise TradingError(
                f"{waiting} commands are waiting for their ack (limit {self.capacity // 2}, "
                f"half the command ring): is the {link.connector} connector running?"
            )
        link.attach_private()
        from ttxt_mp.queues import QueueFull

        try:
            link.commands.put(cmd, timeout=self.put_timeout)
        except QueueFull as e:
            raise TradingError(f"connector {link.connector} does not read commands: {e}") from None
        return self._count_sent(cmd, action)

    def _read(self, link: _Link, timeout: float | None) -> Any:
        ring = link.attach_private()
        if ring is None:
            if timeout:
                time.sleep(min(timeout, 0.01))
            return None
        from ttxt_mp.shm import RingError

        try:
            return ring.get(timeout) if timeout else ring.get_nowait()
        except QueueEmpty:
            return None
        except (QueueClosed, RingError):  # the connector went away: re-attach to its ring
            link.drop_private()
            return None

    def poll(self, timeout: float = 0.0) -> int:
        """Process the events available now (waiting up to ``timeout`` for the first);
        returns how many were kept."""
        kept = 0
        deadline = time.monotonic() + timeout
        links = list(self._links.values())
        while True:
            got = False
            for link in links:
                left = deadline - time.monotonic() if len(links) == 1 and not got else 0.0
                e = self._read(link, left if left > 0 else None)
                while e is not None:
                    got = True
                    kept += self.handle(e, link.connector)
                    e = self._read(link, None)
            if got or time.monotonic() >= deadline:
                return kept
            if len(links) != 1:
                time.sleep(0.0005)

    def wait_ack(self, client_order_id: str, timeout: float = 5.0,
                 action: OrderAction | None = None) -> OrderAck:  # fmt: skip
        """The next unread ack of ``client_order_id`` (of ``action`` if given)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.take_ack(client_order_id, action)
            if got is not None:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no ack for {client_order_id} within {timeout:g} s")
            self.poll(left)

    def wait_for(self, predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
        """Poll until ``predicate()`` is true."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what} not reached within {timeout:g} s")
            self.poll(min(left, 0.05))

    async def await_ack(self, client_order_id: str, timeout: float = 5.0,
                        action: OrderAction | None = None) -> OrderAck:  # fmt: skip
        """``wait_ack`` for asyncio code (polls the rings without blocking the loop)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.take_ack(client_order_id, action)
            if got is not None:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no ack for {client_order_id} within {timeout:g} s")
            if not self.poll(0.0):
                await asyncio.sleep(0.0002)


TradingFactory = Callable[[Any, str], TradingState]
BACKTEST_TRADING: contextvars.ContextVar[TradingFactory | None] = contextvars.ContextVar(
    "ttxt_backtest_trading", default=None)  # fmt: skip
"""Set by a backtest while it builds and runs its strategy: ``enable_trading`` then gets
the backtest's trading object (same methods and state) instead of engine rings."""


class TradingMixin:
    """Adds order entry to a :class:`ttxt_mp.client.BaseClient` subclass: its ``on_*``
    methods receive the private events; ``self.trading`` is the :class:`TradingClient`
    (in a backtest, :class:`ttxt_mp.backtest.trading.BacktestTrading`: same methods).

    Call ``enable_trading(engine, name)`` (e.g. in ``__init__``); a client run by
    ``run``/``arun`` then reads its private events by itself, between market events."""

    trading: TradingState

    def enable_trading(self, engine: str, name: str, **kwargs: Any) -> TradingState:
        factory = BACKTEST_TRADING.get()
        if factory is not None:
            self.trading = factory(self, name)
            return self.trading
        self.trading = TradingClient(engine, name, handler=self, **kwargs)
        add_poller = getattr(self, "add_poller", None)
        if add_poller is not None:  # a BaseClient: its run loop polls the private rings,
            add_poller(self.trading.poll)  # and private events from its feed are skipped
            self._private_via_trading = True  # (they would reach on_* twice)
        return self.trading

    def create_order(self, exchange: str, symbol: str, side: Side, qty: float,
                     price: float | None = None, order_type: OrderType | None = None,
                     tif: TimeInForce = TimeInForce.GTC, **kw: Any) -> str:  # fmt: skip
        return self.trading.create_order(exchange, symbol, side, qty, price, order_type, tif, **kw)

    def cancel_order(self, exchange: str, symbol: str, client_order_id: str,
                     order_id: str = "") -> str:  # fmt: skip
        return self.trading.cancel_order(exchange, symbol, client_order_id, order_id)

    def amend_order(self, exchange: str, symbol: str, client_order_id: str, **kw: Any) -> str:
        return self.trading.amend_order(exchange, symbol, client_order_id, **kw)

    def set_leverage(self, exchange: str, symbol: str, leverage: float | None = None,
                     margin_mode: MarginMode = MarginMode.UNCHANGED) -> str:  # fmt: skip
        return self.trading.set_leverage(exchange, symbol, leverage, margin_mode)

    def wait_ack(self, client_order_id: str, timeout: float = 5.0,
                 action: OrderAction | None = None) -> OrderAck:  # fmt: skip
        return self.trading.wait_ack(client_order_id, timeout, action)

    def poll_private(self, timeout: float = 0.0) -> int:
        return self.trading.poll(timeout)
