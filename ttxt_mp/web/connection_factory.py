"""One pooled aiohttp ClientSession per process.

Every REST call and WebSocket of a connector process shares one session, so TCP/TLS
connections and the DNS cache are reused. The session is created lazily inside the
running event loop, recreated after a fork (a child must not touch its parent's
sockets), and closed by `close()`.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
import msgspec


class SessionSettings(msgspec.Struct, frozen=True):
    """TCP connector settings; defaults suit a few exchange hosts with many requests."""

    limit: int = 100  # total pooled connections
    limit_per_host: int = 0  # 0 = bounded only by `limit`
    ttl_dns_cache: int = 300  # exchange hosts change rarely; avoid a lookup per request
    keepalive_timeout: float = 30.0
    connect_timeout: float = 10.0
    happy_eyeballs_delay: float | None = 0.25
    user_agent: str = "ttxt-mp"


class ConnectionFactory:
    """Owns the process's ClientSession; call `get_session()` from inside a coroutine."""

    _default: ConnectionFactory | None = None

    def __init__(self, settings: SessionSettings | None = None) -> None:
        self.settings = settings if settings is not None else SessionSettings()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()

    @classmethod
    def default(cls) -> ConnectionFactory:
        """The process-wide factory (a new one in a forked child)."""
        inst = cls._default
        if inst is None or inst._pid != os.getpid():
            inst = cls._default = cls()
        return inst

    @property
    def has_session(self) -> bool:
        return self._session is not None and not self._session.closed

    def get_session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use in the running loop."""
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():
            # Inherited through fork: the parent's sockets and loop are not ours to close.
            self._session, self._loop, self._pid = None, None, os.getpid()
        session = self._session
        if session is not None and not session.closed:
            if self._loop is not loop:
                raise RuntimeError(
                    "ConnectionFactory session belongs to another event loop; "
                    "close() it on its loop first or use one factory per loop"
                )
            return session
        self._session = session = self._new_session()
        self._loop = loop
        return session

    def _new_session(self) -> aiohttp.ClientSession:
        s = self.settings
        connector = aiohttp.TCPConnector(
            limit=s.limit,
            limit_per_host=s.limit_per_host,
            ttl_dns_cache=s.ttl_dns_cache,
            keepalive_timeout=s.keepalive_timeout,
            happy_eyeballs_delay=s.happy_eyeballs_delay,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=s.connect_timeout),
            headers={"User-Agent": s.user_agent},
            trust_env=False,
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the session and its pooled connections; safe to call twice."""
        session, self._session, self._loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

    async def __aenter__(self) -> ConnectionFactory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
