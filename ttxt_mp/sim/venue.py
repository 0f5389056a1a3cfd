"""What every simulated venue shares: its aiohttp app (routes can be added by other modules, e.g.
signed trading endpoints, before the simulator starts), its markets, its live connections and
the fault hooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from aiohttp import web

from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.faults import FaultSpec
from ttxt_mp.sim.klines import KlineStore
from ttxt_mp.sim.market import BookEvent, Market, Trade
from ttxt_mp.sim.specs import VenueTimings

ENC = msgspec.json.Encoder()


class VenueBase:
    """Base of one venue. Subclasses add routes and publishers; `on_tick` is called by the
    simulator clock after each market step."""

    name = "venue"

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        self.markets = markets
        self.timings = timings
        self.klines = KlineStore()
        self.app = web.Application()
        self.conns: dict[int, SimConnection] = {}
        self.blasting = False  # blast mode (sim/blast.py) owns the public trade streams

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
