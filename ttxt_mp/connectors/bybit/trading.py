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
  A refused ``auth`` whose ``ret_msg`` names the key or the signature raises
  :class:`~ttxt_mp.connectors.trading.CredentialsRejected` (reported, not retried); any
  other refusal (e.g. "Params Error" for an expired ``expires``) is retried.
- Reconciliation: ``GET /v5/order/realtime?category=spot`` and ``GET
  /v5/account/wallet-balance?accountType=UNIFIED``; one order: ``/v5/order/realtime`` with
  ``orderLinkId``. The simulator (like the docs' default ``openOnly=0`` for spot) returns
  open orders only there, so ``query_sees_closed`` is False.

The market ``linear`` (USDT/USDC perpetuals and futures) is the same API with
``category=linear`` (the config's ``market``): instruments, orders (``reduceOnly``,
``positionIdx``) and open orders by ``settleCoin``; the categorised private topics
``order.linear``, ``execution.linear``, ``position.linear`` plus ``wallet`` (the docs: an
all-in-one and a categorised topic cannot share a subscription); positions ``GET
/v5/position/list?category=linear&settleCoin=`` (reconciliation); ``SetLeverage``: ``POST
/v5/account/set-margin-mode`` (``ISOLATED_MARGIN`` / ``REGULAR_MARGIN``, account-wide on a
unified account) then ``POST /v5/position/set-leverage`` (``buyLeverage`` =
``sellLeverage``, one-way mode); 110043 "Set leverage not modified" means it already is.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable

import msgspec

from ttxt_mp.connectors.bybit import rest as venue_rest
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.connectors.bybit.denormalizer import BybitOrderDenormalizer
from ttxt_mp.connectors.bybit.private import BybitPrivateStream
from ttxt_mp.connectors.instruments import InstrumentBook, reject_ack
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.trading import CredentialsRejected, TradingVenue, signed_json_post
from ttxt_mp.events import (
    MarginMode,
    OrderAck,
    OrderAction,
    OrderUpdate,
    PositionUpdate,
    SetLeverage,
    Wallet,
)
from ttxt_mp.secrets import Credentials
from ttxt_mp.web import RateLimiter, RESTError, WSAssistant, WSJSONRequest

__all__ = ["BybitTrading", "PING_INTERVAL_S", "PRIVATE_TOPICS"]

PING_INTERVAL_S = 20.0
PRIVATE_TOPICS = ("order", "execution", "wallet", "position")
LINEAR_TOPICS = ("order.linear", "execution.linear", "position.linear", "wallet")
SUBSCRIBE_TIMEOUT_S = 10.0
LEVERAGE_NOT_MODIFIED = 110043
_MODES = {MarginMode.CROSS: "REGULAR_MARGIN", MarginMode.ISOLATED: "ISOLATED_MARGIN"}


def credentials_refused(ret_msg: str) -> bool:
    """Whether a refused ``auth`` blames the key or its signature (permanent for these
    credentials), not the request (e.g. an ``expires`` already past, which a retry fixes)."""
    text = ret_msg.lower()
    return "key" in text or "sign" in text


class _Time(msgspec.Struct):
    timeNano: str


class _TimeResp(msgspec.Struct):
    retCode: int
    result: _Time


class _Ret(msgspec.Struct):
    retCode: int
    retMsg: str = ""


_RET = msgspec.json.Decoder(_Ret)


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

    @property
    def category(self) -> str:
        """The v5 ``category`` of the config's market (``spot`` or ``linear``)."""
        return self.cfg.market

    def _scope(self) -> dict[str, str]:
        """Open orders of the whole category: linear needs a ``settleCoin`` (the first
        one of the instruments'; USDT for the usual perpetuals)."""
        if self.category == "spot":
            return {"category": "spot"}
        coins = sorted({i.settle for i in self.instruments or () if i.settle}) or ["USDT"]
        return {"category": self.category, "settleCoin": "USDT" if "USDT" in coins else coins[0]}

    async def load_instruments(self, refresh: bool = False) -> InstrumentBook:
        insts = await venue_rest.instruments(self.rest, self.cfg.rest_url(), self.category,
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
        resp = await self.rest.request("GET", "/v5/order/realtime", params=self._scope(),
                                       signed=True, raw=True)  # fmt: skip
        return self.private.parse_open_orders(resp.body)

    async def positions(self, symbol: str | None = None) -> list[PositionUpdate]:
        if self.category == "spot":
            return []
        params = self._scope()
        if symbol is not None:
            inst = self.instruments.get(symbol) if self.instruments else None
            params = {"category": self.category, "symbol": inst.native_symbol if inst else symbol}
        resp = await self.rest.request("GET", "/v5/position/list", params=params, signed=True,
                                       raw=True)  # fmt: skip
        return self.private.parse_positions(resp.body)

    async def set_leverage(self, cmd: SetLeverage) -> OrderAck:
        inst = self.instruments.get(cmd.symbol) if self.instruments else None
        if inst is None:
            return reject_ack(cmd, OrderAction.SET_LEVERAGE, f"unknown symbol {cmd.symbol!r} on bybit")
        if inst.kind == "spot":
            return await super().set_leverage(cmd)
        if not math.isfinite(cmd.leverage) or cmd.leverage < 0:
            return reject_ack(cmd, OrderAction.SET_LEVERAGE, f"leverage {cmd.leverage} is not > 0")
        if cmd.margin_mode != MarginMode.UNCHANGED:
            code, msg = await self._post("/v5/account/set-margin-mode",
                                         {"setMarginMode": _MODES[cmd.margin_mode]})  # fmt: skip
            if code:
                return self.setting_ack(cmd, str(code), msg)
        if cmd.leverage:
            lev = f"{cmd.leverage:.2f}".rstrip("0").rstrip(".")
            code, msg = await self._post("/v5/position/set-leverage", {
                "category": inst.kind, "symbol": inst.native_symbol, "buyLeverage": lev,
                "sellLeverage": lev})  # fmt: skip
            if code and code != LEVERAGE_NOT_MODIFIED:
                return self.setting_ack(cmd, str(code), msg)
        return self.setting_ack(cmd)

    async def _post(self, path: str, body: dict) -> tuple[int, str]:
        """(retCode, retMsg) of a signed JSON POST; :class:`UnknownOutcome` if unknown."""
        r = await signed_json_post(self.rest, path, body, _RET)
        if isinstance(r, RESTError):
            text = str(r.code)
            return int(text) if text.lstrip("-").isdigit() else (r.status or 0), r.message
        return r.retCode, r.retMsg

    async def wallet(self) -> Wallet:
        resp = await self.rest.request("GET", "/v5/account/wallet-balance",
                                       params={"accountType": "UNIFIED"}, signed=True, raw=True)  # fmt: skip
        return self.private.parse_wallet_balance(resp.body)

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdate | None:
        inst = self.instruments.get(symbol) if self.instruments else None
        native = inst.native_symbol if inst else symbol.replace("/", "")
        resp = await self.rest.request(
            "GET", "/v5/order/realtime",
            params={"category": self.category, "symbol": native, "orderLinkId": client_order_id},
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
            topics = PRIVATE_TOPICS if self.category == "spot" else LINEAR_TOPICS
            await ws.send(WSJSONRequest({"req_id": "sub", "op": "subscribe",
                                         "args": list(topics)}))  # fmt: skip
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                while True:
                    frame = (await ws.receive()).data
                    op = _OP.decode(frame)
                    if op.op == "auth" and op.success is False and credentials_refused(op.ret_msg):
                        raise CredentialsRejected(f"auth refused: {op.ret_msg!r}")
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
