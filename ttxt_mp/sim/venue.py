"""What every simulated venue shares: its aiohttp app (routes can be added by other modules, e.g.
signed trading endpoints, before the simulator starts), its markets, its live connections and
the fault hooks; and the interface the shared simulator drives a venue through.

A venue's wire adapter is a :class:`VenueBase` subclass in the venue's own package, named by
its ``VENUE.sim`` (see :mod:`ttxt_mp.connectors.venue`); :func:`sim_venues` lists the
installed ones. The simulator, its command line, the control API and ``ttxt-mp demo`` know
venues only through this interface:

- construction ``cls(markets, timings)``, ``app`` (mounted at ``/<venue id>``), ``on_tick``,
  ``close_all``, ``connections``, ``apply_fault`` (the generic fault hooks);
- ``knobs``: the venue's protocol timings (``VenueTimings(<id>_<knob>=...)`` and the
  simulator flags ``--<id>-<flag>``);
- ``wire_decimals``: decimals of prices and quantities on its wire (``px``/``qx``);
- :meth:`~VenueBase.truth` (with :meth:`~VenueBase.extra_truth`: per-stream ids);
- :meth:`~VenueBase.restart` (the venue's "service restart", if it has one);
- :meth:`~VenueBase.attach_trading` (signed endpoints and private streams over a
  :class:`~ttxt_mp.sim.trading.TradingCore`);
- :meth:`~VenueBase.blast_targets` / :meth:`~VenueBase.blast_payloads` (blast mode,
  :mod:`ttxt_mp.sim.blast`);
- ``demo_levels``: the book depth of its connector in ``ttxt-mp demo``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import msgspec
from aiohttp import WSMsgType, web

from ttxt_mp.connectors import venue as registry
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.faults import FaultSpec
from ttxt_mp.sim.fmt import Scale
from ttxt_mp.sim.klines import KlineStore
from ttxt_mp.sim.market import BookEvent, Market, Trade
from ttxt_mp.sim.specs import VenueTimings

if TYPE_CHECKING:
    from ttxt_mp.sim.trading import TradingCore

ENC = msgspec.json.Encoder()
log = logging.getLogger("ttxt_mp.sim")

BlastTarget = tuple[SimConnection, str, bool]
"""A blast target: connection, symbol, whether the connection wants the wrapped shape."""


class Knob(NamedTuple):
    """One protocol timing (or limit) of a venue, with its documented default.

    ``VenueTimings(<venue id>_<name>=value)`` sets it and the venue reads it back as
    ``self.timings.<venue id>_<name>``; with a ``flag`` the simulator's command line has
    ``--<venue id>-<flag>`` (parsed by ``type``)."""

    name: str
    default: Any
    help: str = ""
    flag: str | None = None
    type: Callable[[str], Any] | None = None


class TrueBook(msgspec.Struct):
    """The true book at one instant. `update_id` is the market's update id (what the venue
    sends as its book sequence); `topics` gives the venue's own per-stream ids, where it has
    them (:meth:`VenueBase.extra_truth`). Levels are best first, formatted as the venue
    formats them on the wire."""

    venue: str
    symbol: str
    update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    topics: dict[str, int] = {}

    def as_floats(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return ([(float(p), float(q)) for p, q in self.bids],
                [(float(p), float(q)) for p, q in self.asks])


def sim_venues() -> dict[str, type[VenueBase]]:
    """The simulated venues: every installed venue (the registry,
    :func:`ttxt_mp.connectors.venue.venues`) with a ``sim`` adapter, by id, in registry
    order; a market other than a venue's first whose override names its own ``sim``
    adapter is simulated as its own venue, ``<id>_<market>`` (:func:`sim_id`). An adapter
    that fails to import is logged and left out."""
    found: dict[str, type[VenueBase]] = {}
    for spec in registry.venues().values():
        for market in spec.markets:
            view = spec.for_market(market)
            own = market == spec.markets[0] or "sim" in spec.market_overrides.get(market, {})
            if view.sim and own:
                cls = _adapter(view)
                if cls is not None:
                    found[view.sim_id] = cls
    return found


def _adapter(view: registry.VenueSpec) -> type[VenueBase] | None:
    sid = view.sim_id
    try:
        cls = view.load("sim")
    except Exception as e:
        log.warning("venue %r: ignoring its simulator adapter %s: %s: %s", sid, view.sim,
                    type(e).__name__, e)  # fmt: skip
        return None
    if not (isinstance(cls, type) and issubclass(cls, VenueBase)):
        log.warning("venue %r: ignoring its simulator adapter %s: not a VenueBase", sid,
                    view.sim)  # fmt: skip
        return None
    if cls.name != sid:  # e.g. one adapter serving two venue ids: each its own name
        cls = type(cls.__name__, (cls,), {"name": sid, "__module__": cls.__module__})
    return cls


def sim_id(exchange: str, market: str = "spot") -> str:
    """The simulator's id of a venue's market (``exchange`` or ``exchange_market``)."""
    return registry.venue(exchange).for_market(market).sim_id


def timing_knobs() -> dict[str, Knob]:
    """Every simulated venue's knobs by their ``VenueTimings`` name, ``<venue id>_<knob>``."""
    return {f"{vid}_{k.name}": k for vid, cls in sim_venues().items() for k in cls.knobs}


class VenueBase:
    """Base of one venue. Subclasses add routes and publishers; `on_tick` is called by the
    simulator clock after each market step."""

    name = "venue"
    """The venue id (the simulator sets it to the registry's id)."""
    knobs: ClassVar[tuple[Knob, ...]] = ()
    """Its protocol timings and limits (see :class:`Knob`)."""
    wire_decimals: ClassVar[int | None] = None
    """Decimals of prices and quantities on its wire (None: those of the increment)."""
    demo_levels: ClassVar[int | None] = None
    """Book depth of its connector in ``ttxt-mp demo`` (None: the venue's default depth)."""

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        self.markets = markets
        self.timings = timings
        self.px = {s: Scale(m.spec.tick, self.wire_decimals) for s, m in markets.items()}
        self.qx = {s: Scale(m.spec.step, self.wire_decimals) for s, m in markets.items()}
        self.klines = KlineStore()
        self.app = web.Application()
        self.conns: dict[int, SimConnection] = {}
        self.blasting = False  # blast mode (sim/blast.py) owns the public trade streams

    def knob(self, name: str) -> Any:
        """This venue's value of one of its :attr:`knobs` (``timings.<id>_<name>``)."""
        return getattr(self.timings, f"{self.name}_{name}")

    # ------------------------------------------------------------ lifecycle

    def on_tick(self, mono: float, now_ms: int) -> None:
        """Flush time-driven publishers (diff windows, partial depth, klines, level-1 resend)."""

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close(1001, "server shutdown") for c in list(self.conns.values())),
                             return_exceptions=True)

    async def open_ws(self, request: web.Request) -> tuple[web.WebSocketResponse, SimConnection]:
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = SimConnection(self.name, request.path, ws, request, self.timings.max_send_queue)
        self.conns[conn.id] = conn
        return ws, conn

    @staticmethod
    async def read_frames(ws: web.WebSocketResponse, conn: SimConnection,
                          on_text: Callable[[SimConnection, str], None], *,
                          answer_stalled: bool = False) -> None:  # fmt: skip
        """One session's receive loop: text frames to ``on_text``, pings answered, until the
        connection closes. A stalled connection reads nothing unless ``answer_stalled``."""
        async for msg in ws:
            if conn.closed:
                break
            if conn.stalled and not answer_stalled:
                continue
            if msg.type == WSMsgType.TEXT:
                on_text(conn, msg.data)
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    def forget(self, conn: SimConnection) -> None:
        conn.finish()
        self.conns.pop(conn.id, None)
        self.unsubscribe_all(conn)

    def unsubscribe_all(self, conn: SimConnection) -> None:
        """Remove the connection from every publisher (subclasses)."""

    def listen_markets(self) -> None:
        """Route every market's book changes and trades to :meth:`_on_book` / :meth:`_on_trades`."""
        for sym, m in self.markets.items():
            m.book_listeners.append(lambda ev, s=sym: self._on_book(s, ev))
            m.trade_listeners.append(lambda tr, s=sym: self._on_trades(s, tr))

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        """Publish a book change (subclasses)."""

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        """Publish trades (subclasses)."""

    def market(self, symbol: str) -> Market | None:
        return self.markets.get(symbol.upper())

    # ------------------------------------------------------------ what the simulator asks

    def truth(self, symbol: str, depth: int | None = None) -> TrueBook:
        """All levels (or the top `depth`) of the true book of `symbol` (a market of this
        venue), formatted as on this venue's wire, with the current ids."""
        m = self.markets[symbol]
        px, qx = self.px[symbol], self.qx[symbol]
        uid, bids, asks = m.snapshot(depth)
        return TrueBook(self.name, symbol, uid, [(px.fmt(t), qx.fmt(q)) for t, q in bids],
                        [(px.fmt(t), qx.fmt(q)) for t, q in asks], self.extra_truth(symbol))

    def extra_truth(self, symbol: str) -> dict[str, int]:
        """The venue's own per-stream ids of `symbol` (:attr:`TrueBook.topics`); none here."""
        return {}

    @property
    def restartable(self) -> bool:
        """Whether the venue simulates a service restart (overrides :meth:`restart`)."""
        return type(self).restart is not VenueBase.restart

    def restart(self, symbol: str | None = None) -> None:
        """Simulate the venue's service restart for `symbol` (every symbol if None), as its
        documentation describes one; a venue without one keeps this (NotImplementedError)."""
        raise NotImplementedError(f"venue {self.name!r} simulates no restart")

    def attach_trading(self, core: TradingCore, *, listen_key_ttl: float) -> Any:
        """Add the signed endpoints and private streams over `core` (one account book per
        venue); returns the trading adapter (its ``on_tick()``, if any, runs on every clock
        tick), or None: market data only. `listen_key_ttl` is for venues with expiring
        stream keys."""
        return None

    @property
    def can_blast(self) -> bool:
        """Whether the venue has blast mode (overrides :meth:`blast_payloads`)."""
        return type(self).blast_payloads is not VenueBase.blast_payloads

    def blast_targets(self) -> Iterator[BlastTarget]:
        """(connection, symbol, wrapped) of every subscriber of a public trade stream."""
        return iter(())

    def blast_payloads(self, symbol: str, wrapped: bool) -> list[bytes]:
        """``TEMPLATE_FRAMES`` trade payloads of `symbol` in the wire shape (``wrapped``: the
        combined-stream shape, for venues that have one) with ``ID_MARK`` where the trade id
        goes and ``TS_MARK`` for every timestamp (see :mod:`ttxt_mp.sim.blast`)."""
        raise NotImplementedError(f"venue {self.name!r} has no blast mode")

    # ------------------------------------------------------------ faults

    def targets(self, conn_id: int | None) -> list[SimConnection]:
        if conn_id is None:
            return [c for c in self.conns.values() if not c.closed]
        c = self.conns.get(conn_id)
        if c is None:
            raise KeyError(f"no open {self.name} connection with id {conn_id}")
        return [c]

    def apply_fault(self, spec: FaultSpec) -> list[int]:
        """Apply one fault now; returns the ids of the connections it touched."""
        if spec.symbol is not None and self.market(spec.symbol) is None:
            raise KeyError(f"{self.name} has no symbol {spec.symbol!r}")
        hit = self.targets(spec.conn_id)
        for c in hit:
            if spec.kind == "drop":
                c.abort("fault: drop")
            elif spec.kind == "malformed":
                c.inject_malformed(spec.mode)
            elif spec.kind == "skip_update":
                c.skip_updates(spec.symbol, spec.count)
            elif spec.kind == "stall":
                c.stall(spec.duration)
            elif spec.kind == "delay":
                c.set_delay(spec.delay_ms, spec.duration)
        return [c.id for c in hit]

    def connections(self) -> list[dict[str, Any]]:
        return [c.info() for c in self.conns.values() if not c.closed]


class Fanout:
    """Subscribers of one stream/topic; encodes a payload once and sends it to each."""

    __slots__ = ("name", "symbol", "subs", "next_due", "state")

    def __init__(self, name: str, symbol: str) -> None:
        self.name = name
        self.symbol = symbol
        self.subs: dict[int, SimConnection] = {}
        self.next_due = 0.0
        self.state: Any = None

    def __bool__(self) -> bool:
        return bool(self.subs)


def mono() -> float:
    return time.monotonic()
