"""Binance Spot trading venue: signed REST order entry, user data stream, reconciliation.

- Instruments: ``GET /api/v3/exchangeInfo``, the list market data uses too (fetched once
  per process), and the process's one REST limiter for the host
  (:mod:`ttxt_mp.connectors.binance.rest`); server time: ``GET /api/v3/time``.
- Orders: :class:`BinanceOrderDenormalizer` (``POST/DELETE /api/v3/order``, amend via
  ``order/amend/keepPriority`` or ``order/cancelReplace``), signed by :class:`BinanceSigner`.
- User data stream: a listen key from ``POST /api/v3/userDataStream`` (API key header,
  unsigned), the socket ``<ws>/ws/<listenKey>``, and ``PUT /api/v3/userDataStream`` every
  :data:`LISTEN_KEY_KEEPALIVE_S` (the docs: keys expire after 60 minutes without one; "send
  a ping about every 30 minutes"). ``listenKeyExpired`` ends the stream (reconnect and
  reconcile). A key the venue refuses there (-2014 "API-key format invalid.", -2015
  "Invalid API-key, IP, or permissions for action.") raises
  :class:`~ttxt_mp.connectors.trading.CredentialsRejected`: reported, not retried.
- Reconciliation: ``GET /api/v3/openOrders`` and ``GET /api/v3/account``; one order by
  client id: ``GET /api/v3/order?origClientOrderId=`` (also finds closed orders; -2013
  "Order does not exist." means unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ttxt_mp.connectors.binance import rest as venue_rest
from ttxt_mp.connectors.binance.auth import BinanceSigner
from ttxt_mp.connectors.binance.denormalizer import BinanceOrderDenormalizer
from ttxt_mp.connectors.binance.private import BinancePrivateNormalizer
from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.connectors.trading import CredentialsRejected, TradingVenue
from ttxt_mp.events import OrderUpdate, Wallet
from ttxt_mp.secrets import Credentials, register_secret
from ttxt_mp.web import RateLimiter, RESTError, WSAssistant

__all__ = ["BinanceTrading", "LISTEN_KEY_KEEPALIVE_S"]

LISTEN_KEY_KEEPALIVE_S = 30 * 60.0
ORDER_DOES_NOT_EXIST = -2013
REFUSED_KEY = {
    "-2014": "the API key's format is invalid",
    "-2015": "the API key is unknown, or this IP or its permissions are not allowed",
}
"""Binance codes for a key the venue refuses (retrying with the same key cannot help)."""


class _ServerTime(msgspec.Struct):
    serverTime: int


class _ListenKey(msgspec.Struct):
    listenKey: str


class BinanceTrading(TradingVenue):
    exchange = "binance"
    clock_error_codes = frozenset({"-1021"})
    query_sees_closed = True
    keepalive_s = LISTEN_KEY_KEEPALIVE_S
    # What differs between Binance's markets (USDⓈ-M futures: futures_trading.py):
    # (path, request weight) of each REST call, and the market's translators.
    time_path = "/api/v3/time"
    open_orders_call = ("/api/v3/openOrders", 80)
    account_call = ("/api/v3/account", 20)
    order_call = ("/api/v3/order", 4)
    listen_key_call = ("/api/v3/userDataStream", 2)
    listen_key_param = True  # keep-alive names the key (futures: "Parameters: None")
    denormalizer_class: type = BinanceOrderDenormalizer
    private_class: type = BinancePrivateNormalizer

    def _make_signer(self, creds: Credentials, recv_window_ms: int) -> BinanceSigner:
        return BinanceSigner(creds, recv_window_ms=recv_window_ms)

    def _rate_limiter(self) -> RateLimiter:
        # REQUEST_WEIGHT 6000/min, the process's one budget (market data spends it too)
        return venue_rest.rate_limiter(self.cfg.rest_url(), self.cfg.market)

    async def load_instruments(self, refresh: bool = False) -> InstrumentBook:
        insts = await venue_rest.instruments(self.rest, self.cfg.rest_url(), self.cfg.symbols,
                                             refresh=refresh, market=self.cfg.market)  # fmt: skip
        book = InstrumentBook("binance", insts)
        self.instruments = book
        self.denormalizer = self.denormalizer_class(book)
        self.private = self.private_class(book)
        return book

    async def server_time_ms(self) -> int:
        return (await self.rest.request("GET", self.time_path, response_type=_ServerTime)).serverTime

    async def _get(self, call: tuple[str, int], params: dict | None = None) -> bytes:
        path, weight = call
        resp = await self.rest.request("GET", path, params=params, weight=weight, signed=True,
                                       raw=True)  # fmt: skip
        return resp.body

    async def open_orders(self) -> list[OrderUpdate]:
        return self.private.parse_open_orders(await self._get(self.open_orders_call))

    async def wallet(self) -> Wallet:
        return self.private.parse_account(await self._get(self.account_call))

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdate | None:
        inst = self.instruments.get(symbol) if self.instruments else None
        native = inst.native_symbol if inst else symbol.replace("/", "")
        try:
            body = await self._get(self.order_call,
                                   {"symbol": native, "origClientOrderId": client_order_id})  # fmt: skip
        except RESTError as e:
            if str(e.code) == str(ORDER_DOES_NOT_EXIST):
                return None
            raise
        found = self.private.parse_open_orders(b"[" + body + b"]")
        return found[0] if found else None

    async def _listen_key(self, method: str, key: str | None = None) -> str:
        params = {"listenKey": key} if key and self.listen_key_param else None
        path, weight = self.listen_key_call
        resp = await self.rest.request(
            method, path, params=params, weight=weight, headers=self.signer.api_key_headers(),
            raw=True,
        )  # fmt: skip
        if method != "POST":
            return ""
        key = msgspec.json.decode(resp.body, type=_ListenKey).listenKey
        # The key grants read access to the account's private stream and travels in the
        # WebSocket path: mask it in every log record, at any level, from now on.
        register_secret(key)
        return key

    async def private_stream(
        self, on_up: Callable[[], Awaitable[None]], on_frame: Callable[[bytes], Awaitable[None]]
    ) -> None:
        try:
            key = await self._listen_key("POST")
        except RESTError as e:
            if str(e.code) in REFUSED_KEY:
                raise CredentialsRejected(f"listen key refused: {e.code} {e.message!r}: "
                                          f"{REFUSED_KEY[str(e.code)]}") from None  # fmt: skip
            raise
        ws = WSAssistant(self.connections)
        keeper: asyncio.Task[Any] | None = None
        try:
            await ws.connect(f"{self.cfg.ws_url().rstrip('/')}/ws/{key}", timeout=10.0,
                             protocol_ping_interval=None)  # fmt: skip
            keeper = asyncio.ensure_future(self._keepalive(key))
            await on_up()
            await self.pump(ws, on_frame, keeper)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await keeper
            await ws.disconnect()

    async def _keepalive(self, key: str) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            await self._listen_key("PUT", key)
