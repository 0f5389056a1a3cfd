"""The venue base class: what differs between venues (signing, endpoints, private stream,
reconciliation), and the lookup of a venue's class in the venue registry.

Each venue package's ``trading.py`` subclasses :class:`TradingVenue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import msgspec

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.instruments import InstrumentBook, VenueRequest, reject_ack
from ttxt_mp.connectors.trading.protocol import Command
from ttxt_mp.events import (
    CancelOrder,
    CreateOrder,
    OrderAck,
    OrderAction,
    OrderUpdate,
    PositionUpdate,
    SetLeverage,
    Wallet,
)
from ttxt_mp.secrets import Credentials
from ttxt_mp.web import (
    ConnectionFactory,
    RateLimiter,
    RESTAssistant,
    RESTError,
    WebAssistantFactory,
)

__all__ = [
    "CredentialsRejected",
    "TradingVenue",
    "UnknownOutcome",
    "signed_json_post",
    "venue_class",
]

_T = TypeVar("_T")
_JSON_HEADERS = {"Content-Type": "application/json"}


class CredentialsRejected(Exception):
    """The venue refused the credentials (wrong key, signature or passphrase): retrying
    with the same ones cannot succeed, so the private stream is not reconnected. The
    message names the venue's code and text, never a credential."""


class UnknownOutcome(Exception):
    """A request may or may not have executed (timeout, lost connection, unreadable reply)."""


async def signed_json_post(
    rest: RESTAssistant, path: str, body: dict, reply: msgspec.json.Decoder[_T]
) -> _T | RESTError:
    """The venue's decoded reply to a signed JSON POST, or its :class:`RESTError` when it
    answered with a client error (the venue maps its code). Why :class:`UnknownOutcome`
    for no answer, a 5xx or an unreadable body: the request may have executed, so the
    caller must query rather than report a rejection."""
    try:
        resp = await rest.request("POST", path, data=msgspec.json.encode(body),
                                  headers=dict(_JSON_HEADERS), signed=True, raw=True)  # fmt: skip
    except RESTError as e:
        if e.status is None or e.status >= 500:
            raise UnknownOutcome(str(e)) from None
        return e
    try:
        return reply.decode(resp.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise UnknownOutcome(f"unreadable response to {path}: {e}") from None


class TradingVenue(ABC):
    """What differs between venues: signing, endpoints, private stream, reconciliation.

    ``factory`` lends its pooled HTTP session and rate limiter; the signer is always this
    venue's own (built from ``creds``; the market-data factory has none).
    """

    exchange: ClassVar[str]
    clock_error_codes: ClassVar[frozenset[str]] = frozenset()
    query_sees_closed: ClassVar[bool] = True
    """Whether :meth:`query_order` also finds filled/canceled orders (else: open only)."""
    needs_passphrase: ClassVar[bool] = False
    """Whether the venue's API keys come with a passphrase (``Credentials.passphrase``)."""

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
    def _rate_limiter(self) -> RateLimiter:
        """The venue's REST limiter: the process's one for its host (``shared_limiter``), so
        market data and trading spend one budget."""

    @abstractmethod
    async def load_instruments(self, refresh: bool = False) -> InstrumentBook:
        """The instrument list (the process's, shared with market data: see
        :mod:`ttxt_mp.connectors.catalog`; ``refresh`` fetches it again); sets
        ``instruments``, ``denormalizer``, ``private``."""

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

    # -- contracts (a venue of a contract market overrides these)

    async def positions(self, symbol: str | None = None) -> list[PositionUpdate]:
        """The account's positions (of ``symbol``: even a flat one, with its leverage), for
        reconciliation; none on a spot market."""
        return []

    async def set_leverage(self, cmd: SetLeverage) -> OrderAck:
        """Apply a :class:`SetLeverage` (margin mode, then leverage); its ack.
        :class:`UnknownOutcome` when the venue's answer is unknown."""
        return reject_ack(cmd, OrderAction.SET_LEVERAGE,
                          f"{self.exchange} {self.cfg.market}: not a contract market, no "
                          "leverage or margin mode to set")  # fmt: skip

    def setting_ack(self, cmd: SetLeverage, code: str = "", message: str = "") -> OrderAck:
        """The ack of a :class:`SetLeverage`: accepted unless the venue gave an error code."""
        return OrderAck(exchange=self.exchange, symbol=cmd.symbol,
                        client_order_id=cmd.client_order_id, action=OrderAction.SET_LEVERAGE,
                        accepted=not code, code=code, message=message, local_ts=time.time_ns())  # fmt: skip

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


def venue_class(exchange: str, market: str = "spot") -> type[TradingVenue]:
    """The trading venue class the venue's package declares for ``market`` (its
    ``VENUE.trading``, or the market's override)."""
    from ttxt_mp.connectors.venue import venue

    try:
        return venue(exchange).for_market(market).load("trading")
    except LookupError:
        where = exchange if market == "spot" else f"{exchange} {market}"
        raise ValueError(f"no trading support for exchange {where!r}") from None
