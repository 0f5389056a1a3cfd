"""Bybit v5 trading venue: signed REST order entry, private WebSocket, reconciliation.

- Instruments: ``GET /v5/market/instruments-info?category=spot``, the list market data
  uses too (fetched once per process), and the process's one REST limiter for the host
  (:mod:`ttxt_mp.connectors.bybit.rest`); server time: ``GET /v5/market/time``
  (``timeNano``).
- Orders: :class:`BybitOrderDenormalizer` (``/v5/order/create|cancel|amend``), signed with
  the ``X-BAPI-*`` headers by :class:`BybitSigner`. Errors are HTTP 200 with a non-zero
  ``retCode`` (10002: timestamp outside the window, 10004: bad signature).
- Private stream ``<ws>/v5/private``: ``auth`` (expires + signature), then ``subscribe``
  to ``order``, ``execution``, ``wallet``, ``position``; ``{"op": "ping"}`` every
  :data:`PING_INTERVAL_S` (the docs: every 20 s). Reconciliation starts once the
  subscription is confirmed, so nothing falls between the REST snapshot and the stream.
- Reconciliation: ``GET /v5/order/realtime?category=spot`` and ``GET
  /v5/account/wallet-balance?accountType=UNIFIED``; one order: ``/v5/order/realtime`` with
  ``orderLinkId``. The simulator (like the docs' default ``openOnly=0`` for spot) returns
  open orders only there, so ``query_sees_closed`` is False.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import msgspec

from ttxt_mp.connectors.bybit import rest as venue_rest
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.connectors.bybit.denormalizer import BybitOrderDenormalizer
from ttxt_mp.connectors.bybit.private import BybitPrivateStream
from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.trading import TradingVenue
from ttxt_mp.events import OrderUpdate, Wallet
from ttxt_mp.secrets import Credentials
from ttxt_mp.web import RateLimiter, WSAssistant, WSJSONRequest

__all__ = ["BybitTrading", "PING_INTERVAL_S", "PRIVATE_TOPICS"]

PING_INTERVAL_S = 20.0
PRIVATE_TOPICS = ("order", "execution", "wallet", "position")
SUBSCRIBE_TIMEOUT_S = 10.0


class _Time(msgspec.Struct):
    timeNano: str


class _TimeResp(msgspec.Struct):
    retCode: int
    result: _Time


class _Op(msgspec.Struct):
    op: str | None = None
    success: bool | None = None
    ret_msg: str = ""


_OP = msgspec.json.Decoder(_Op)


class BybitTrading(TradingVenue):
    exchange = "bybit"
    clock_error_codes = frozenset({"10002"})
    query_sees_closed = False
    ping_interval_s = PING_INTERVAL_S

    def _make_signer(self, creds: Credentials, recv_window_ms: int) -> BybitSigner:
        return BybitSigner(creds, recv_window_ms=recv_window_ms)

    def _rate_limiter(self) -> RateLimiter:
        # "Rate Limit": 600 requests per 5 s per IP, the process's one budget (market data
        # spends it too); order create/amend/cancel 20/s (spot) are the venue's to enforce.
        return venue_rest.rate_limiter(self.cfg.rest_url())

    async def load_instruments(self, refresh: bool = False) -> InstrumentBook:
        insts = await venue_rest.instruments(self.rest, self.cfg.rest_url(), "spot",
                                             refresh=refresh)  # fmt: skip
        book = InstrumentBook("bybit", insts)
        self.instruments = book
        self.denormalizer = BybitOrderDenormalizer(book)
        self.private = BybitPrivateStream(book)
        return book

    async def server_time_ms(self) -> int:
        resp = await self.rest.request("GET", "/v5/market/time", response_type=_TimeResp)
        return int(resp.result.timeNano) // 1_000_000

    async def open_orders(self) -> list[OrderUpdate]:
        resp = await self.rest.request("GET", "/v5/order/realtime", params={"category": "spot"},
                                       signed=True, raw=True)  # fmt: skip
        return self.private.parse_open_orders(resp.body)

    async def wallet(self) -> Wallet:
        resp = await self.rest.request("GET", "/v5/account/wallet-balance",
                                       params={"accountType": "UNIFIED"}, signed=True, raw=True)  # fmt: skip
        return self.private.parse_wallet_balance(resp.body)

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdate | None:
        inst = self.instruments.get(symbol) if self.instruments else None
        native = inst.native_symbol if inst else symbol.replace("/", "")
        resp = await self.rest.request(
            "GET", "/v5/order/realtime",
            params={"category": "spot", "symbol": native, "orderLinkId": client_order_id},
            signed=True, raw=True,
        )  # fmt: skip
        found = [o for o in self.private.parse_open_orders(resp.body)
                 if o.client_order_id == client_order_id]  # fmt: skip
        return found[0] if found else None

    async def private_stream(
        self, on_up: Callable[[], Awaitable[None]], on_frame: Callable[[bytes], Awaitable[None]]
    ) -> None:
        ws = WSAssistant(self.connections)
        ids = itertools.count(1)
        try:
            await ws.connect(f"{self.cfg.ws_url().rstrip('/')}/v5/private", timeout=10.0)
            await ws.send(WSJSONRequest(self.signer.ws_auth(req_id="auth")))
            await ws.send(WSJSONRequest({"req_id": "sub", "op": "subscribe",
                                         "args": list(PRIVATE_TOPICS)}))  # fmt: skip
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                while True:
                    frame = (await ws.receive()).data
                    op = _OP.decode(frame)
                    if op.op in ("auth", "subscribe") and op.success is False:
                        raise MalformedFrame("bybit", f"op {op.op!r} failed: {op.ret_msg}", frame)
                    if op.op == "subscribe":
                        break
                    await on_frame(frame)

            async def ping() -> None:
                while True:
                    await asyncio.sleep(self.ping_interval_s)
                    await ws.send(WSJSONRequest({"req_id": f"p{next(ids)}", "op": "ping"}))

            pinger = asyncio.ensure_future(ping())
            try:
                await on_up()
                await self.pump(ws, on_frame, pinger)
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)
        finally:
            await ws.disconnect()
