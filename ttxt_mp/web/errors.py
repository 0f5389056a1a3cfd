"""Exceptions of the web layer.

Every failure a connector must react to has its own type, so reconnect logic can
`except WSError` and REST callers can read `status`/`code` instead of parsing text
(ttxt2 surfaced a server close frame as a TypeError).
"""

from __future__ import annotations


class WebError(Exception):
    """Base class of every error raised by ttxt_mp.web."""


class WSError(WebError):
    """A WebSocket connection failed or is no longer usable; reconnect."""


class WSConnectError(WSError):
    """The WebSocket handshake failed or timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"WebSocket connect to {url} failed: {reason}")
        self.url = url
        self.reason = reason


class WSNotConnectedError(WSError):
    """send/receive called while no connection is open."""


class WSClosed(WSError):
    """The connection was closed; `code` is the RFC 6455 close code (1006 = no close frame)."""

    def __init__(self, code: int | None, reason: str = "", *, by_peer: bool = True) -> None:
        who = "server" if by_peer else "client"
        text = f"WebSocket closed by {who}: code={code}"
        if reason:
            text += f" reason={reason!r}"
        super().__init__(text)
        self.code = code
        self.reason = reason
        self.by_peer = by_peer


class WSConnectionLost(WSClosed):
    """The TCP connection dropped without a close frame (RFC 6455 code 1006)."""

    def __init__(self, reason: str = "connection lost without a close frame") -> None:
        super().__init__(1006, reason, by_peer=True)


class WSStalledError(WSError):
    """The socket stayed open but no frame arrived within the idle timeout."""

    def __init__(self, idle_timeout: float, url: str) -> None:
        super().__init__(
            f"WebSocket {url} stalled: no frame received for {idle_timeout:g} s (idle timeout)"
        )
        self.idle_timeout = idle_timeout
        self.url = url


class WSProtocolError(WSError):
    """The peer sent a frame that violates the WebSocket protocol (bad opcode, too big...)."""


class BackoffExhausted(WebError):
    """A Backoff ran out of attempts."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts")
        self.attempts = attempts


class RESTError(WebError):
    """An HTTP request failed for good.

    `status` is the HTTP status (None when no response arrived), `code`/`message` are the
    venue's error code and text when the body carried them, `url` never contains secrets.
    """

    def __init__(
        self,
        status: int | None,
        code: int | str | None,
        message: str,
        method: str,
        url: str,
    ) -> None:
        head = f"HTTP {status}" if status is not None else "request failed"
        text = f"{head} from {method} {url}"
        if code is not None:
            text += f": code {code}"
        text += f": {message}" if message else ""
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.url = url


class RESTTimeoutError(RESTError):
    """No complete response within the request timeout."""


class RESTConnectionError(RESTError):
    """The TCP/TLS connection failed before a response arrived."""
