"""Bybit v5 request signing (REST headers, private/trade WebSocket auth).

REST: ``X-BAPI-SIGN`` = hex HMAC-SHA256 of ``timestamp + api_key + recv_window + payload``
where the payload is the query string exactly as sent (GET) or the raw JSON body exactly
as sent (POST). Headers: ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` (ms),
``X-BAPI-RECV-WINDOW`` (ms, default 5000), ``X-BAPI-SIGN``, ``X-BAPI-SIGN-TYPE: 2``
(HMAC). The server accepts ``server_time - recv_window <= timestamp < server_time + 1000``.

WebSocket (``/v5/private``, ``/v5/trade``): ``{"op": "auth", "args": [api_key, expires,
signature]}`` with ``signature`` = hex HMAC-SHA256 of ``"GET/realtime" + str(expires)``
and ``expires`` a future timestamp in ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ttxt_mp.connectors.binance.auth import ServerClock, encode_query, hmac_sha256_hex
from ttxt_mp.secrets import Credentials

if TYPE_CHECKING:
    from ttxt_mp.web.rest_assistant import RequestParts

__all__ = ["BybitSigner", "ServerClock", "SIGN_TYPE_HMAC"]

SIGN_TYPE_HMAC = "2"
DEFAULT_RECV_WINDOW_MS = 5_000
DEFAULT_WS_EXPIRY_MS = 10_000


class BybitSigner:
    """Signs Bybit v5 REST requests and builds the WebSocket ``auth`` frame.

    - ``signer(parts)``: the REST assistant's interface (exact ``query``/``body``).
    - ``sign(method, path, params, body, headers)``: returns ``(params, body, headers)``;
      GET signs ``encode_query(params)``, other methods sign ``body`` as given.
    - ``ws_auth(...)``: the ``auth`` op for private and trade streams.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
        clock: ServerClock | None = None,
    ) -> None:
        if recv_window_ms <= 0:
            raise ValueError(f"recv_window_ms must be > 0, got {recv_window_ms}")
        self._creds = credentials
        self.recv_window_ms = recv_window_ms
        self.clock = clock if clock is not None else ServerClock()

    def __repr__(self) -> str:
        return f"BybitSigner(api_key={self._creds.api_key!r}, recv_window_ms={self.recv_window_ms})"

    def plaintext(self, timestamp_ms: int, payload: str) -> str:
        """The documented string to sign: timestamp + api_key + recv_window + payload."""
        return f"{timestamp_ms}{self._creds.api_key.reveal()}{self.recv_window_ms}{payload}"

    def signature(self, timestamp_ms: int, payload: str) -> str:
        return hmac_sha256_hex(self._creds.api_secret.reveal(), self.plaintext(timestamp_ms, payload))

    def headers(self, payload: str, *, timestamp_ms: int | None = None) -> dict[str, str]:
        ts = self.clock.now_ms() if timestamp_ms is None else int(timestamp_ms)
        return {
            "X-BAPI-API-KEY": self._creds.api_key.reveal(),
            "X-BAPI-TIMESTAMP": str(ts),
            "X-BAPI-RECV-WINDOW": str(self.recv_window_ms),
            "X-BAPI-SIGN": self.signature(ts, payload),
            "X-BAPI-SIGN-TYPE": SIGN_TYPE_HMAC,
        }

    @staticmethod
    def _payload(method: str, query: str, body: bytes | None) -> str:
        if query.startswith("?"):
            raise ValueError("query must not start with '?': pass the query string only")
        if method.upper() == "GET":
            if body:
                raise ValueError("a Bybit GET request carries no body")
            return query
        if query:
            raise ValueError(
                f"Bybit {method.upper()} requests carry their parameters in the JSON body, "
                "not in the query string"
            )
        return (body or b"").decode("utf-8")

    def __call__(self, parts: RequestParts) -> RequestParts:
        hdrs = dict(parts.headers)
        hdrs.update(self.headers(self._payload(parts.method, parts.query, parts.body)))
        if parts.method.upper() != "GET":
            hdrs.setdefault("Content-Type", "application/json")
        return msgspec.structs.replace(parts, headers=hdrs)

    def sign(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        *,
        timestamp_ms: int | None = None,
    ) -> tuple[dict[str, Any], bytes | None, dict[str, str]]:
        out = dict(params or {})
        payload = self._payload(method, encode_query(out), body)
        hdrs = dict(headers or {})
        hdrs.update(self.headers(payload, timestamp_ms=timestamp_ms))
        if method.upper() != "GET":
            hdrs.setdefault("Content-Type", "application/json")
        return out, body, hdrs

    def ws_auth(
        self,
        *,
        expires_ms: int | None = None,
        req_id: str | None = None,
        valid_for_ms: int = DEFAULT_WS_EXPIRY_MS,
    ) -> dict[str, Any]:
        """``{"op": "auth", "args": [api_key, expires, signature]}`` (plus ``req_id``)."""
        expires = self.clock.now_ms() + valid_for_ms if expires_ms is None else int(expires_ms)
        sig = hmac_sha256_hex(self._creds.api_secret.reveal(), f"GET/realtime{expires}")
        frame: dict[str, Any] = {"op": "auth", "args": [self._creds.api_key.reveal(), expires, sig]}
        if req_id is not None:
            frame = {"req_id": req_id, **frame}
        return frame
