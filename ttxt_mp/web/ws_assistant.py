"""WSAssistant: what a connector uses for one stream.

Adds to WSConnection the things every venue needs: remembering subscriptions so a
reconnect can replay them, connecting with exponential backoff + full jitter, and an
async iterator that ends quietly on our own disconnect but raises on every other end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from .backoff import Backoff
from .connection_factory import ConnectionFactory
from .errors import BackoffExhausted, WSClosed, WSConnectError
from .ws_connection import WSConnection
from .ws_types import WSRequest, WSResponse

log = logging.getLogger("ttxt_mp.web.ws")


class WSAssistant:
    """One logical stream; connect options given once are reused by reconnect()."""

    def __init__(
        self,
        connection_factory: ConnectionFactory | None = None,
        *,
        connection: WSConnection | None = None,
    ) -> None:
        self._conn = connection or WSConnection(connection_factory)
        self._url: str | None = None
        self._connect_kwargs: dict[str, Any] = {}
        self._subscriptions: list[WSRequest] = []

    @property
    def connection(self) -> WSConnection:
        return self._conn

    @property
    def connected(self) -> bool:
        return self._conn.connected

    @property
    def subscriptions(self) -> tuple[WSRequest, ...]:
        return tuple(self._subscriptions)

    async def connect(self, url: str, **connect_kwargs: Any) -> None:
        """Open the socket; kwargs are WSConnection.connect's (timeout, idle_timeout...)."""
        self._url = url
        self._connect_kwargs = connect_kwargs
        await self._conn.connect(url, **connect_kwargs)

    async def connect_with_backoff(
        self,
        url: str,
        backoff: Backoff,
        *,
        on_retry: Callable[[int, float, Exception], None] | None = None,
        **connect_kwargs: Any,
    ) -> None:
        """Connect, retrying failed handshakes after backoff delays; replays subscriptions.

        Raises the last WSConnectError when `backoff` runs out of attempts. `on_retry`
        (attempt, delay, error) lets a connector publish a status before each wait.
        """
        while True:
            try:
                await self.connect(url, **connect_kwargs)
                break
            except WSConnectError as exc:
                try:
                    delay = backoff.next_delay()
                except BackoffExhausted:
                    raise exc from None
                log.warning("%s; retry %d in %.3f s", exc, backoff.attempt, delay)
                if on_retry is not None:
                    on_retry(backoff.attempt, delay, exc)
                await asyncio.sleep(delay)
        for request in self._subscriptions:
            await self._conn.send(request)

    async def reconnect(
        self,
        backoff: Backoff,
        on_retry: Callable[[int, float, Exception], None] | None = None,
    ) -> None:
        """Drop the current socket (if any), connect again with backoff, resubscribe."""
        if self._url is None:
            raise RuntimeError("reconnect() before connect(): no URL known")
        await self._conn.disconnect()
        await self.connect_with_backoff(
            self._url, backoff, on_retry=on_retry, **self._connect_kwargs
        )

    async def disconnect(self) -> None:
        await self._conn.disconnect()

    async def subscribe(self, request: WSRequest) -> None:
        """Send a subscription and remember it for reconnects."""
        await self._conn.send(request)
        self._subscriptions.append(request)

    def forget_subscriptions(self) -> None:
        self._subscriptions.clear()

    async def send(self, request: WSRequest) -> None:
        """Send a one-off request (not replayed on reconnect)."""
        await self._conn.send(request)

    async def receive(self) -> WSResponse:
        return await self._conn.receive()

    async def iter_messages(self) -> AsyncIterator[WSResponse]:
        """Frames until disconnect() (ends quietly) or a failure (raises a WSError)."""
        receive = self._conn.receive
        while True:
            try:
                response = await receive()
            except WSClosed as exc:
                if exc.by_peer:
                    raise
                return
            yield response

    async def __aenter__(self) -> WSAssistant:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()
