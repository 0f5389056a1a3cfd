"""OKX v5 request signing (REST headers, private WebSocket ``login``).

From the OKX v5 documentation (www.okx.com/docs-v5/en, "REST Authentication" and
"WebSocket: Login"):

- REST: every private request carries ``OK-ACCESS-KEY``, ``OK-ACCESS-SIGN``,
  ``OK-ACCESS-TIMESTAMP`` (UTC, ISO 8601 with milliseconds: ``2020-12-08T09:08:57.715Z``)
  and ``OK-ACCESS-PASSPHRASE`` (the passphrase chosen when the key was created).
  ``OK-ACCESS-SIGN`` = Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath +
  body)), where ``requestPath`` includes the query string of a GET (``/api/v5/account/
  balance?ccy=BTC``) and ``body`` is the JSON body exactly as sent (empty for a GET).
  A request is refused 30 s after its timestamp (50102 "Timestamp request expired").
- Order requests (``/api/v5/trade/...``) also carry ``expTime`` (ms): the venue drops a
  request that reaches its matching system after it. It is the signed timestamp plus
  ``recv_window_ms``, so a request whose answer was lost is final once that has passed,
  which the trading session's resolution relies on (as Binance's/Bybit's recvWindow).
- WebSocket ``login``: ``{"op": "login", "args": [{"apiKey", "passphrase", "timestamp",
  "sign"}]}`` with ``timestamp`` in Unix **seconds** and ``sign`` = Base64(HMAC-SHA256(
  secret, timestamp + "GET" + "/users/self/verify")).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

import msgspec

from ttxt_mp.connectors.binance.auth import ServerClock
from ttxt_mp.secrets import Credentials, CredentialsError

if TYPE_CHECKING:
    from ttxt_mp.web.rest_assistant import RequestParts

__all__ = ["OkxSigner", "ServerClock", "iso_ms", "okx_sign", "VERIFY_PATH"]

VERIFY_PATH = "/users/self/verify"
DEFAULT_RECV_WINDOW_MS = 5_000
TRADE_PREFIX = "/api/v5/trade/"


def iso_ms(ms: int) -> str:
    """``2020-12-08T09:08:57.715Z``: the OK-ACCESS-TIMESTAMP format."""
    sec, milli = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{milli:03d}Z"


def okx_sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))."""
    msg = f"{timestamp}{method.upper()}{request_path}{body}"
    return base64.b64encode(hmac.new(secret.encode(), msg.encode(), hashlib.sha256).digest()).decode()


class OkxSigner:
    """Signs OKX v5 REST requests (``signer(parts)``, the REST assistant's interface) and
    builds the WebSocket ``login`` op (``ws_login()``). The credentials need a passphrase."""

    def __init__(self, credentials: Credentials, *, recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
                 clock: ServerClock | None = None) -> None:  # fmt: skip
        if credentials.passphrase is None:
            raise CredentialsError("OKX API keys have a passphrase: name it (passphrase_env)")
        if recv_window_ms <= 0:
            raise ValueError(f"recv_window_ms must be > 0, got {recv_window_ms}")
        self._creds = credentials
        self.recv_window_ms = recv_window_ms
        self.clock = clock if clock is not None else ServerClock()

    def __repr__(self) -> str:
        return f"OkxSigner(api_key={self._creds.api_key!r}, recv_window_ms={self.recv_window_ms})"

    def headers(self, method: str, request_path: str, body: str = "", *,
                timestamp_ms: int | None = None) -> dict[str, str]:  # fmt: skip
        ts_ms = self.clock.now_ms() if timestamp_ms is None else int(timestamp_ms)
        ts = iso_ms(ts_ms)
        assert self._creds.passphrase is not None
        out = {
            "OK-ACCESS-KEY": self._creds.api_key.reveal(),
            "OK-ACCESS-SIGN": okx_sign(self._creds.api_secret.reveal(), ts, method, request_path,
                                       body),  # fmt: skip
            "OK-ACCESS-TIMESTAMP": ts,
            "OK-ACCESS-PASSPHRASE": self._creds.passphrase.reveal(),
        }
        if request_path.startswith(TRADE_PREFIX) and method.upper() == "POST":
            out["expTime"] = str(ts_ms + self.recv_window_ms)
        return out

    @staticmethod
    def request_path(path: str, query: str) -> str:
        if query.startswith("?"):
            raise ValueError("query must not start with '?': pass the query string only")
        return f"{path}?{query}" if query else path

    def __call__(self, parts: RequestParts) -> RequestParts:
        body = (parts.body or b"").decode("utf-8")
        if parts.method.upper() == "GET" and body:
            raise ValueError("an OKX GET request carries no body")
        hdrs = dict(parts.headers)
        hdrs.update(self.headers(parts.method, self.request_path(parts.path, parts.query), body))
        if parts.method.upper() != "GET":
            hdrs.setdefault("Content-Type", "application/json")
        return msgspec.structs.replace(parts, headers=hdrs)

    def ws_login(self, *, timestamp_s: int | None = None) -> dict[str, Any]:
        """The ``login`` op of the private WebSocket."""
        ts = str(self.clock.now_ms() // 1000 if timestamp_s is None else int(timestamp_s))
        assert self._creds.passphrase is not None
        return {"op": "login", "args": [{
            "apiKey": self._creds.api_key.reveal(),
            "passphrase": self._creds.passphrase.reveal(),
            "timestamp": ts,
            "sign": okx_sign(self._creds.api_secret.reveal(), ts, "GET", VERIFY_PATH),
        }]}  # fmt: skip
