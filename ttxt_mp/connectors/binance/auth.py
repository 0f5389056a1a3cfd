"""Binance Spot request signing (REST, WebSocket API) and the server clock.

REST (``SIGNED`` endpoints): the signature is HMAC-SHA256, hex, keyed with the secret,
over ``totalParams`` = the query string *exactly as sent* concatenated (no separator)
with the request body; non-ASCII characters are percent-encoded (UTF-8) before signing.
``timestamp`` (ms) is required, ``recvWindow`` optional (default 5000, max 60000).
ttxt2 signed one string and sent another (a doubled ``?``, a double-encoded body); here
the signer is handed the exact query/body bytes and returns exactly what goes on the wire.

WebSocket API (``order.place``, ``userDataStream.subscribe.signature``...): the payload
is every request param except ``signature``, **sorted by name**, as ``k=v`` joined by
``&``, values in UTF-8 (not percent-encoded).

The ``X-MBX-APIKEY`` header carries the API key (also for ``USER_STREAM`` listen-key
endpoints, which are not signed).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import msgspec

from ttxt_mp.secrets import Credentials

if TYPE_CHECKING:  # the REST assistant's struct; any struct with these fields works
    from ttxt_mp.web.rest_assistant import RequestParts

__all__ = [
    "API_KEY_HEADER",
    "BinanceSigner",
    "MAX_RECV_WINDOW_MS",
    "ServerClock",
    "encode_query",
    "hmac_sha256_hex",
]

API_KEY_HEADER = "X-MBX-APIKEY"
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000


def hmac_sha256_hex(secret: str, payload: str | bytes) -> str:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()


def encode_query(params: Mapping[str, Any]) -> str:
    """``k=v&...`` in the given order, UTF-8 percent-encoded (as Binance's examples).

    Same encoding as the REST assistant's ``encode_query``: what is signed is what is sent.
    """
    return urlencode(
        [(k, ("true" if v else "false") if isinstance(v, bool) else v) for k, v in params.items()],
        quote_via=quote,
    )


class ServerClock:
    """Local clock corrected by the venue's server time (``GET /api/v3/time``).

    ``update(server_ms, sent_ns, received_ns)`` assumes the server stamped its reply at the
    midpoint of the round trip. Shared by every signer of a connector; thread-safe.
    """

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self._now_ns = now_ns
        self._offset_ms = 0
        self._lock = threading.Lock()

    @property
    def offset_ms(self) -> int:
        """server time - local time, in ms."""
        return self._offset_ms

    def update(self, server_ms: int, sent_ns: int, received_ns: int) -> int:
        if received_ns < sent_ns:
            raise ValueError("received_ns is earlier than sent_ns")
        midpoint_ms = (sent_ns + received_ns) // 2 // 1_000_000
        with self._lock:
            self._offset_ms = int(server_ms) - midpoint_ms
        return self._offset_ms

    def set_offset(self, offset_ms: int) -> None:
        with self._lock:
            self._offset_ms = int(offset_ms)

    def now_ms(self) -> int:
        return self._now_ns() // 1_000_000 + self._offset_ms


def _check_recv_window(recv_window_ms: int | None) -> None:
    if recv_window_ms is not None and not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
        raise ValueError(
            f"recvWindow must be in 1..{MAX_RECV_WINDOW_MS} ms, got {recv_window_ms}"
        )


class BinanceSigner:
    """Signs Binance Spot REST and WebSocket API requests.

    - ``signer(parts)``: the REST assistant's interface (``RequestParts`` with the exact
      ``query`` and ``body``); returns new parts with ``timestamp``, ``recvWindow`` and
      ``signature`` appended and the ``X-MBX-APIKEY`` header.
    - ``sign(method, path, params, body, headers)``: the same for a params dict (sent with
      :func:`encode_query`), returning ``(params, body, headers)``.
    - ``sign_ws_params(params)``: WebSocket API params with ``apiKey``/``timestamp``/
      ``signature``.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        recv_window_ms: int | None = DEFAULT_RECV_WINDOW_MS,
        clock: ServerClock | None = None,
    ) -> None:
        _check_recv_window(recv_window_ms)
        self._creds = credentials
        self.recv_window_ms = recv_window_ms
        self.clock = clock if clock is not None else ServerClock()

    def __repr__(self) -> str:
        return f"BinanceSigner(api_key={self._creds.api_key!r}, recv_window_ms={self.recv_window_ms})"

    # -- primitives

    def signature(self, payload: str | bytes) -> str:
        return hmac_sha256_hex(self._creds.api_secret.reveal(), payload)

    def api_key_headers(self) -> dict[str, str]:
        """Headers for ``USER_STREAM``/``MARKET_DATA`` endpoints (API key, no signature)."""
        return {API_KEY_HEADER: self._creds.api_key.reveal()}

    def _timing(self, timestamp_ms: int | None) -> str:
        """``recvWindow=..&timestamp=..``: the order of Binance's signing examples."""
        ts = self.clock.now_ms() if timestamp_ms is None else int(timestamp_ms)
        if self.recv_window_ms is None:
            return f"timestamp={ts}"
        return f"recvWindow={self.recv_window_ms}&timestamp={ts}"

    # -- REST, exact bytes

    def sign_parts(
        self, query: str, body: bytes | None, *, timestamp_ms: int | None = None
    ) -> tuple[str, bytes | None]:
        """(query, body) signed: ``recvWindow``/``timestamp``/``signature`` are appended to
        the body when there is one (Binance's mixed example), else to the query."""
        if query.startswith("?"):
            raise ValueError("query must not start with '?': pass the query string only")
        for part in (query, (body or b"").decode("utf-8", "replace")):
            if any(p.partition("=")[0] == "signature" for p in part.split("&")):
                raise ValueError("request is already signed (it has a signature parameter)")
        timing = self._timing(timestamp_ms)
        if body:
            sep = b"&" if not body.endswith(b"&") else b""
            body = body + sep + timing.encode()
            sig = self.signature(query.encode() + body)
            return query, body + b"&signature=" + sig.encode()
        query = f"{query}&{timing}" if query else timing
        return f"{query}&signature={self.signature(query)}", body

    def __call__(self, parts: RequestParts) -> RequestParts:
        query, body = self.sign_parts(parts.query, parts.body)
        headers = dict(parts.headers)
        headers[API_KEY_HEADER] = self._creds.api_key.reveal()
        return msgspec.structs.replace(parts, query=query, body=body, headers=headers)

    # -- REST, params dict

    def sign(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        *,
        timestamp_ms: int | None = None,
    ) -> tuple[dict[str, str], bytes | None, dict[str, str]]:
        """Params (to be sent with :func:`encode_query`, in order) with timing and
        signature appended; ``body`` (form bytes) is signed after the query, unchanged."""
        out = {k: v for k, v in (params or {}).items()}
        if "signature" in out:
            raise ValueError("params already contain a signature")
        for pair in self._timing(timestamp_ms).split("&"):
            k, v = pair.split("=", 1)
            out.setdefault(k, v)
        query = encode_query(out)
        out["signature"] = self.signature(query.encode() + (body or b""))
        hdrs = dict(headers or {})
        hdrs[API_KEY_HEADER] = self._creds.api_key.reveal()
        return out, body, hdrs

    # -- WebSocket API

    def ws_payload(self, params: Mapping[str, Any]) -> str:
        """The documented WebSocket API payload: params sorted by name, ``k=v`` joined."""
        items = sorted((k, v) for k, v in params.items() if k != "signature")
        return "&".join(f"{k}={_ws_value(v)}" for k, v in items)

    def sign_ws_params(
        self, params: Mapping[str, Any] | None = None, *, timestamp_ms: int | None = None
    ) -> dict[str, Any]:
        """``params`` + ``apiKey``, ``timestamp``, ``recvWindow`` (if set), ``signature``."""
        out: dict[str, Any] = dict(params or {})
        out.setdefault("apiKey", self._creds.api_key.reveal())
        if "timestamp" not in out:
            out["timestamp"] = self.clock.now_ms() if timestamp_ms is None else int(timestamp_ms)
        if self.recv_window_ms is not None:
            out.setdefault("recvWindow", self.recv_window_ms)
        out["signature"] = self.signature(self.ws_payload(out))
        return out

    def user_data_subscribe_request(
        self, req_id: str | int, *, timestamp_ms: int | None = None
    ) -> dict[str, Any]:
        """WebSocket API ``userDataStream.subscribe.signature`` request (the replacement of
        REST listen keys on Spot): events then arrive as ``{"subscriptionId", "event"}``."""
        return {
            "id": req_id,
            "method": "userDataStream.subscribe.signature",
            "params": self.sign_ws_params(timestamp_ms=timestamp_ms),
        }


def _ws_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
