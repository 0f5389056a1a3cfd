"""One WebSocket connection: connect, send, receive frames, heartbeat, idle timeout.

The receive path is the hot path of every connector: it wraps each aiohttp data frame
in one WSResponse (raw bytes + local receive time) and does nothing else per frame.
Idle detection therefore does not use aiohttp's per-call receive timeout (a Timeout
object and a timer per frame); a watchdog task wakes 4 times per idle period and checks
a flag the receive path sets.

Failures always surface as a WSError subclass and always release the socket and the
helper tasks: server close frame -> WSClosed(code, reason); TCP drop -> WSConnectionLost
(code 1006); silent-but-open socket -> WSStalledError; protocol violation -> WSProtocolError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from time import time_ns

import aiohttp
import msgspec
from aiohttp import WSMsgType

from .connection_factory import ConnectionFactory
from .errors import (
    WSClosed,
    WSConnectError,
    WSConnectionLost,
    WSError,
    WSNotConnectedError,
    WSProtocolError,
    WSStalledError,
)
from .redact import redact_url, scrub
from .ws_types import FrameKind, WSRequest, WSResponse, encode_request

log = logging.getLogger("ttxt_mp.web.ws")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_KIND_TEXT = FrameKind.TEXT
_KIND_BINARY = FrameKind.BINARY
_OPCODE = {FrameKind.TEXT: WSMsgType.TEXT, FrameKind.BINARY: WSMsgType.BINARY}
_GOING_AWAY = 1001


class AppHeartbeat(msgspec.Struct, frozen=True):
    """Application-level ping a venue requires, e.g. Bybit's {"op": "ping"} every 20 s.

    `make_request` is called for every ping so payloads can carry a fresh id/timestamp.
    """

    interval_s: float
    make_request: Callable[[], WSRequest]


class WSConnection:
    """Wraps aiohttp's ClientWebSocketResponse with the guarantees listed above."""

    def __init__(self, connection_factory: ConnectionFactory | None = None) -> None:
        self._factory = connection_factory or ConnectionFactory.default()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._url = ""
        self._raw_url = ""
        self._idle_timeout: float | None = None
        self._seen = False
        self._in_recv = False
        self._stalled = False
        self._closing_locally = False

    @property
    def url(self) -> str:
        """The connected URL with credentials redacted."""
        return self._url

    @property
    def connected(self) -> bool:
        ws = self._ws
        return ws is not None and not ws.closed

    async def connect(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        idle_timeout: float | None = None,
        heartbeat: AppHeartbeat | None = None,
        protocol_ping_interval: float | None = None,
        close_timeout: float = 2.0,
        max_msg_size: int = 16 * 1024 * 1024,
        decode_text: bool = False,
        compress: int = 0,
    ) -> None:
        """Open the socket within `timeout` seconds, then start heartbeat and watchdog.

        idle_timeout: raise WSStalledError if no frame arrives for that long while a
        receive is pending. heartbeat: app-level pings. protocol_ping_interval: RFC 6455
        pings sent by aiohttp (a missing pong closes the socket). decode_text=False keeps
        TEXT frames as bytes for msgspec.
        """
        if self._ws is not None:
            raise WSError(f"already connected to {self._url}; disconnect() first")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds or None, got {idle_timeout!r}")
        if heartbeat is not None and not heartbeat.interval_s > 0:
            raise ValueError(f"heartbeat interval_s must be > 0, got {heartbeat.interval_s!r}")
        safe_url = redact_url(url)
        session = self._factory.get_session()
        try:
            async with asyncio.timeout(timeout):
                ws = await session.ws_connect(
                    url,
                    headers=headers,
                    autoping=True,
                    autoclose=True,
                    heartbeat=protocol_ping_interval,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=close_timeout),
                    max_msg_size=max_msg_size,
                    decode_text=decode_text,
                    compress=compress,
                )
        except TimeoutError:
            raise WSConnectError(safe_url, f"no handshake within {timeout:g} s") from None
        except aiohttp.WSServerHandshakeError as exc:
            raise WSConnectError(
                safe_url, f"handshake refused: HTTP {exc.status} {exc.message}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise WSConnectError(safe_url, scrub(f"{type(exc).__name__}: {exc}", url)) from None
        self._ws = ws
        self._url = safe_url
        self._raw_url = url
        self._idle_timeout = idle_timeout
        self._seen = self._in_recv = self._stalled = self._closing_locally = False
        if idle_timeout is not None:
            self._tasks.append(asyncio.create_task(self._watchdog(ws, idle_timeout)))
        if heartbeat is not None:
            self._tasks.append(asyncio.create_task(self._heartbeat(ws, heartbeat)))
        log.info("connected to %s", safe_url)

    async def send(self, request: WSRequest) -> None:
        """Send a WSJSONRequest / WSPlainTextRequest / WSBinaryRequest."""
        data, kind = encode_request(request)
        await self.send_raw(data, kind)

    async def send_json(self, payload: object) -> None:
        await self.send_raw(msgspec.json.encode(payload), FrameKind.TEXT)

    async def send_text(self, text: str) -> None:
        await self.send_raw(text.encode(), FrameKind.TEXT)

    async def send_bytes(self, data: bytes) -> None:
        await self.send_raw(data, FrameKind.BINARY)

    async def send_raw(self, data: bytes, kind: FrameKind) -> None:
        """Send pre-encoded bytes as one TEXT or BINARY frame."""
        ws = self._ws
        if ws is None or ws.closed:
            raise WSNotConnectedError(f"cannot send: not connected ({self._url or 'never'})")
        try:
            await ws.send_frame(data, _OPCODE[kind])
        except (ConnectionError, aiohttp.ClientError) as exc:
            await self._cleanup()
            raise WSConnectionLost(f"send failed: {exc}") from exc

    async def receive(self) -> WSResponse:
        """Next TEXT/BINARY frame; pings are answered underneath. Raises WSError subclasses."""
        ws = self._ws
        if ws is None:
            if self._closing_locally:
                raise WSClosed(None, "closed by this client", by_peer=False)
            raise WSNotConnectedError(f"cannot receive: not connected ({self._url or 'never'})")
        while True:
            self._in_recv = True
            try:
                msg = await ws.receive()
            finally:
                self._in_recv = False
            t = msg.type
            if t is _TEXT:
                self._seen = True
                return WSResponse(msg.data, _KIND_TEXT, time_ns())
            if t is _BINARY:
                self._seen = True
                return WSResponse(msg.data, _KIND_BINARY, time_ns())
            await self._on_control(ws, msg)

    def __aiter__(self) -> WSConnection:
        return self

    async def __anext__(self) -> WSResponse:
        return await self.receive()

    async def _on_control(self, ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage) -> None:
        """Raise the WSError a non-data message means; return for ignorable ones."""
        t = msg.type
        if t is WSMsgType.PING or t is WSMsgType.PONG:
            return  # only reached with autoping off; aiohttp answers pings otherwise
        if self._stalled:
            await self._cleanup()
            raise WSStalledError(self._idle_timeout or 0.0, self._url)
        if self._closing_locally or t is WSMsgType.CLOSING:
            await self._cleanup()
            raise WSClosed(ws.close_code, "closed by this client", by_peer=False)
        if t is WSMsgType.CLOSE:
            await self._cleanup()
            reason = msg.extra or ""
            log.info("server closed %s: code=%s reason=%r", self._url, msg.data, reason)
            raise WSClosed(msg.data, reason)
        if t is WSMsgType.ERROR:
            exc = msg.data
            await self._cleanup()
            if isinstance(exc, aiohttp.WebSocketError):
                raise WSProtocolError(f"protocol error on {self._url}: {exc}") from exc
            raise WSConnectionLost(scrub(f"{type(exc).__name__}: {exc}", self._raw_url)) from exc
        # CLOSED without a close frame first: the TCP connection went away.
        cause = ws.exception()
        await self._cleanup()
        if cause is not None:
            raise WSConnectionLost(f"{type(cause).__name__}: {cause}") from cause
        raise WSConnectionLost()

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse, idle: float) -> None:
        loop = asyncio.get_running_loop()
        tick = idle / 4
        last = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            if self._seen or not self._in_recv:
                # A frame arrived, or the consumer is busy elsewhere (frames may be queued).
                self._seen = False
                last = now
                continue
            if now - last >= idle:
                self._stalled = True
                log.warning("%s stalled: no frame for %.3g s, closing", self._url, now - last)
                # close() from another task breaks the pending receive() with CLOSING.
                await ws.close(code=_GOING_AWAY, message=b"idle timeout")
                return

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse, hb: AppHeartbeat) -> None:
        while True:
            await asyncio.sleep(hb.interval_s)
            if ws.closed:
                return
            data, kind = encode_request(hb.make_request())
            try:
                await ws.send_frame(data, _OPCODE[kind])
            except (ConnectionError, aiohttp.ClientError) as exc:
                log.debug("heartbeat on %s stopped: %s", self._url, exc)
                return  # the receive path reports the broken connection

    async def disconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close with a close frame (bounded by close_timeout) and stop helper tasks."""
        self._closing_locally = True
        await self._cleanup(code, reason)

    async def _cleanup(self, code: int = 1000, reason: str = "") -> None:
        """Stop tasks and close the socket; idempotent, safe from any task."""
        ws, self._ws = self._ws, None
        tasks, self._tasks = self._tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=reason.encode())

    async def __aenter__(self) -> WSConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()
