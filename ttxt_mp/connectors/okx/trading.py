"""OKX v5 trading venue: order entry (private WebSocket, REST fallback), private stream, reconciliation.

From the OKX v5 documentation (www.okx.com/docs-v5/en):

- Instruments: ``GET /api/v5/public/instruments`` (the list market data uses too, fetched
  once per process, :mod:`ttxt_mp.connectors.okx.rest`); server time ``GET
  /api/v5/public/time``. Signing: :class:`~ttxt_mp.connectors.okx.auth.OkxSigner` (key,
  secret **and passphrase**).
- Orders (:class:`~ttxt_mp.connectors.okx.denormalizer.OkxOrderDenormalizer`): over the
  logged-in private WebSocket while it is up ("WS / Place order", ``op`` ``order``/
  ``cancel-order``/``amend-order``, replies matched by ``id``), the low-latency path OKX
  offers: no request/TLS round trip of its own, the socket is already authenticated, and
  both paths share one rate limit per instrument (60 orders / 2 s). Each operation
  carries ``expTime`` (signed time + ``recv_window_ms``), so an operation whose reply is
  lost (timeout, socket closed) is an :class:`UnknownOutcome` that the session resolves
  by querying the order once it can no longer execute. While the private socket is down
  (before the first login, during a reconnect) orders go over REST, ``POST
  /api/v5/trade/order|cancel-order|amend-order``, with the same body, ``expTime`` header
  and answer shape. ``ws_orders = False`` keeps every order on REST.
- Private stream ``<ws>/ws/v5/private``: ``login`` (key, passphrase, timestamp in s,
  signature), then ``subscribe`` to ``orders`` (instType SPOT or SWAP), ``account`` and,
  on swaps, ``positions``; the text ``ping`` when nothing arrived for
  :data:`PING_AFTER_S` (OKX closes a connection silent for 30 s). A login refused for the
  credentials (60005 API key, 60007 signature, 60009 login failed, 60024 wrong passphrase)
  raises :class:`~ttxt_mp.connectors.trading.CredentialsRejected`: reported, not retried.
  Reconciliation starts once every subscription is confirmed.
- Reconciliation: ``GET /api/v5/trade/orders-pending?instType=``, ``GET
  /api/v5/account/balance``, ``GET /api/v5/account/positions?instType=SWAP``; one order:
  ``GET /api/v5/trade/order`` (by ``clOrdId``; OKX keeps filled and canceled orders
  queryable, so ``query_sees_closed``; 51603 "Order does not exist" means unknown).
- ``SetLeverage`` (swaps): margin mode is per order on OKX (``tdMode``), so the command's
  mode is remembered per symbol for the next orders, and the leverage is set with ``POST
  /api/v5/account/set-leverage`` (``instId``, ``lever``, ``mgnMode``; net mode, no
  ``posSide``). A flat position's leverage is read with ``GET
  /api/v5/account/leverage-info``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable

import msgspec

from ttxt_mp.connectors.instruments import InstrumentBook, VenueRequest, reject_ack
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.okx import rest as venue_rest
from ttxt_mp.connectors.okx.auth import OkxSigner
from ttxt_mp.connectors.okx.denormalizer import (
    AMEND_PATH,
    CANCEL_PATH,
    CREATE_PATH,
    TD_MODES,
    OkxOrderDenormalizer,
    to_cl_ord_id,
)
from ttxt_mp.connectors.okx.private import OkxPrivateNormalizer
from ttxt_mp.connectors.trading import (
    CredentialsRejected,
    TradingVenue,
    UnknownOutcome,
    signed_json_post,
)
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
from ttxt_mp.web import (
    RateLimiter,
    RESTError,
    WebError,
    WSAssistant,
    WSJSONRequest,
    WSPlainTextRequest,
)

__all__ = ["CREDENTIAL_ERRORS", "OkxTrading", "PING_AFTER_S"]

log = logging.getLogger(__name__)
PING_AFTER_S = 20.0
LOGIN_TIMEOUT_S = 10.0
CREDENTIAL_ERRORS = {"60005": "invalid API key", "60007": "invalid signature",
                     "60009": "login failed", "60024": "wrong passphrase"}  # fmt: skip
ORDER_NOT_FOUND = "51603"
WS_REPLY_TIMEOUT_S = 10.0
WS_OPS = {CREATE_PATH: "order", CANCEL_PATH: "cancel-order", AMEND_PATH: "amend-order"}


class _Ts(msgspec.Struct):
    ts: str


class _TimeResp(msgspec.Struct):
    code: str
    data: list[_Ts]


class _Lever(msgspec.Struct):
    instId: str
    lever: str
    mgnMode: str = ""


class _Rest(msgspec.Struct):
    code: str
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw()


class _Event(msgspec.Struct):
    event: str | None = None
    code: str = "0"
    msg: str = ""


class _OpReply(msgspec.Struct):
    id: str = ""
    op: str = ""


_EVENT = msgspec.json.Decoder(_Event)
_OP_REPLY = msgspec.json.Decoder(_OpReply)
_REST = msgspec.json.Decoder(_Rest)
_LEVERS = msgspec.json.Decoder(list[_Lever])


class OkxTrading(TradingVenue):
    exchange = "okx"
    clock_error_codes = frozenset({"50102"})
    query_sees_closed = True
    needs_passphrase = True
    ping_after_s = PING_AFTER_S
    ws_orders = True
    ws_reply_timeout_s = WS_REPLY_TIMEOUT_S

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.margin_modes: dict[str, str] = {}  # symbol -> tdMode of its next orders
        self._ws: WSAssistant | None = None  # the logged-in private socket, while it is up
        self._replies: dict[str, asyncio.Future[bytes]] = {}  # op id -> its reply
        self._op_ids = itertools.count(1)
        self.orders_sent = {"ws": 0, "rest": 0}

    # -- order entry

    async def send(self, req: VenueRequest) -> OrderAck:
        """Over the private WebSocket while it is up, else over REST (module docstring)."""
        ws = self._ws
        op = WS_OPS.get(req.path)
        if ws is None or op is None or not self.ws_orders:
            self.orders_sent["rest"] += 1
            return await super().send(req)
        rid = f"o{next(self._op_ids)}"
        frame = {"id": rid, "op": op, "expTime": str(self.signer.clock.now_ms() + self.recv_window_ms),
                 "args": [msgspec.json.decode(req.body or b"{}")]}  # fmt: skip
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        self.orders_sent["ws"] += 1
        log.debug("okx: %s %s (%s) over the private websocket", op, rid, req.client_order_id)
        try:
            await ws.send(WSJSONRequest(frame))
            reply = await asyncio.wait_for(fut, self.ws_reply_timeout_s)
        except (TimeoutError, WebError, ConnectionError) as e:
            raise UnknownOutcome(f"websocket {op} {rid}: {type(e).__name__}: {e}") from None
        finally:
            self._replies.pop(rid, None)
        try:
            return self.denormalizer.parse_ack(req, 200, reply, time.time_ns())
        except (ValueError, msgspec.DecodeError) as e:
            raise UnknownOutcome(f"unreadable reply to websocket {op}: {e}") from None

    def _op_reply(self, frame: bytes | str) -> bool:
        """Whether ``frame`` is the reply to one of our order ops (then it is delivered)."""
        raw = frame.encode() if isinstance(frame, str) else frame
        if b'"op"' not in raw or b'"id"' not in raw:
            return False
        try:
            r = _OP_REPLY.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        if r.op not in WS_OPS.values():
            return False
        fut = self._replies.get(r.id)
        if fut is not None and not fut.done():
            fut.set_result(raw)
        return True

    def _ws_down(self) -> None:
        self._ws = None
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the private WebSocket closed"))

    def _make_signer(self, creds: Credentials, recv_window_ms: int) -> OkxSigner:
        return OkxSigner(creds, recv_window_ms=recv_window_ms)

    def _rate_limiter(self) -> RateLimiter:
        return venue_rest.rate_limiter(self.cfg.rest_url())

    @property
    def inst_type(self) -> str:
        return venue_rest.INST_TYPES[self.cfg.market]

    async def load_instruments(self, refresh: bool = False) -> InstrumentBook:
        insts = await venue_rest.instruments(self.rest, self.cfg.rest_url(), self.cfg.market,
                                             refresh=refresh)  # fmt: skip
        book = InstrumentBook("okx", insts)
        self.instruments = book
        self.denormalizer = OkxOrderDenormalizer(book, self.margin_modes)
        self.private = OkxPrivateNormalizer(book, self.margin_modes)
        return book

    async def server_time_ms(self) -> int:
        resp = await self.rest.request("GET", "/api/v5/public/time", response_type=_TimeResp)
        return int(resp.data[0].ts)

    def _native(self, symbol: str) -> str:
        inst = self.instruments.get(symbol) if self.instruments else None
        return inst.native_symbol if inst else symbol.replace("/", "-")

    async def _get(self, path: str, params: dict[str, str]) -> bytes:
        resp = await self.rest.request("GET", path, params=params, signed=True, raw=True)
        return resp.body

    async def open_orders(self) -> list[OrderUpdate]:
        body = await self._get("/api/v5/trade/orders-pending", {"instType": self.inst_type})
        return self.private.parse_orders(body)

    async def wallet(self) -> Wallet:
        return self.private.parse_balance(await self._get("/api/v5/account/balance", {}))

    async def query_order(self, symbol: str, client_order_id: str) -> OrderUpdate | None:
        wire = to_cl_ord_id(client_order_id)
        if wire is None:
            return None
        try:
            body = await self._get("/api/v5/trade/order",
                                   {"instId": self._native(symbol), "clOrdId": wire})  # fmt: skip
        except RESTError as e:
            if str(e.code) == ORDER_NOT_FOUND:
                return None
            raise
        with contextlib.suppress(msgspec.DecodeError):
            if _REST.decode(body).code == ORDER_NOT_FOUND:
                return None
        found = [o for o in self.private.parse_orders(body, "GET /api/v5/trade/order")
                 if o.client_order_id == client_order_id]  # fmt: skip
        return found[0] if found else None

    async def positions(self, symbol: str | None = None) -> list[PositionUpdate]:
        if self.cfg.market == "spot":
            return []
        params = {"instType": self.inst_type}
        if symbol is not None:
            params["instId"] = self._native(symbol)
        found = self.private.parse_positions(await self._get("/api/v5/account/positions", params))
        if symbol is not None and not found:  # flat: its leverage from leverage-info
            mode = self.margin_modes.get(symbol, "cross")
            body = await self._get("/api/v5/account/leverage-info",
                                   {"instId": self._native(symbol), "mgnMode": mode})  # fmt: skip
            try:
                resp = _REST.decode(body)
                levers = _LEVERS.decode(resp.data) if resp.code == "0" and resp.data else []
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise MalformedFrame("okx", f"GET /api/v5/account/leverage-info: {e}", body) from None
            found = [PositionUpdate(exchange="okx", symbol=symbol, local_ts=time.time_ns(),
                                    leverage=float(lv.lever)) for lv in levers[:1]]  # fmt: skip
        return found

    async def set_leverage(self, cmd: SetLeverage) -> OrderAck:
        inst = self.instruments.get(cmd.symbol) if self.instruments else None
        if inst is None:
            return reject_ack(cmd, OrderAction.SET_LEVERAGE, f"unknown symbol {cmd.symbol!r} on okx")
        if inst.kind == "spot":
            return await super().set_leverage(cmd)
        if not math.isfinite(cmd.leverage) or cmd.leverage < 0:
            return reject_ack(cmd, OrderAction.SET_LEVERAGE, f"leverage {cmd.leverage} is not > 0")
        mode = TD_MODES.get(cmd.margin_mode, self.margin_modes.get(cmd.symbol, "cross"))
        if cmd.leverage:
            lev = f"{cmd.leverage:.2f}".rstrip("0").rstrip(".")
            code, msg = await self._post("/api/v5/account/set-leverage",
                                         {"instId": inst.native_symbol, "lever": lev,
                                          "mgnMode": mode})  # fmt: skip
            if code != "0":
                return self.setting_ack(cmd, code, msg)
        if cmd.margin_mode != MarginMode.UNCHANGED:
            self.margin_modes[cmd.symbol] = mode
        return self.setting_ack(cmd)

    async def _post(self, path: str, body: dict) -> tuple[str, str]:
        """(code, msg) of a signed JSON POST; :class:`UnknownOutcome` if unknown."""
        r = await signed_json_post(self.rest, path, body, _REST)
        if isinstance(r, RESTError):
            return str(r.code if r.code is not None else r.status), r.message
        return r.code, r.msg

    # -- private stream

    def _channels(self) -> list[dict[str, str]]:
        args = [{"channel": "orders", "instType": self.inst_type}, {"channel": "account"}]
        if self.cfg.market != "spot":
            args.append({"channel": "positions", "instType": self.inst_type})
        return args

    async def private_stream(
        self, on_up: Callable[[], Awaitable[None]], on_frame: Callable[[bytes], Awaitable[None]]
    ) -> None:
        ws = WSAssistant(self.connections)
        last_rx = [time.monotonic()]

        async def tracked(frame: bytes) -> None:
            last_rx[0] = time.monotonic()
            if not self._op_reply(frame):
                await on_frame(frame)

        try:
            await ws.connect(f"{self.cfg.ws_url().rstrip('/')}/ws/v5/private", timeout=10.0)
            await ws.send(WSJSONRequest(self.signer.ws_login()))
            args = self._channels()
            async with asyncio.timeout(LOGIN_TIMEOUT_S):
                await self._await_event(ws, "login", on_frame)
                await ws.send(WSJSONRequest({"id": "sub", "op": "subscribe", "args": args}))
                for _ in args:
                    await self._await_event(ws, "subscribe", on_frame)

            async def keepalive() -> None:
                while True:
                    await asyncio.sleep(max(0.05, last_rx[0] + self.ping_after_s - time.monotonic()))
                    if time.monotonic() - last_rx[0] >= self.ping_after_s:
                        last_rx[0] = time.monotonic()
                        await ws.send(WSPlainTextRequest("ping"))

            pinger = asyncio.ensure_future(keepalive())
            try:
                self._ws = ws  # order entry may use it from now on (replies come via pump)
                await on_up()
                await self.pump(ws, tracked, pinger)
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)
        finally:
            self._ws_down()
            await ws.disconnect()

    @staticmethod
    async def _await_event(ws: WSAssistant, event: str,
                           on_frame: Callable[[bytes], Awaitable[None]]) -> None:  # fmt: skip
        """Frames until the ``event`` reply (data frames go on to ``on_frame``); an error
        reply raises: :class:`CredentialsRejected` for a refused login."""
        while True:
            frame = (await ws.receive()).data
            if frame in (b"pong", "pong"):
                continue
            try:
                ev = _EVENT.decode(frame)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise MalformedFrame("okx", f"private stream: {e}", frame) from None
            if ev.event == "error" or (ev.event is not None and ev.code not in ("0", "")):
                if event == "login" and ev.code in CREDENTIAL_ERRORS:
                    raise CredentialsRejected(f"login error {ev.code} {ev.msg!r}: "
                                              f"{CREDENTIAL_ERRORS[ev.code]}")  # fmt: skip
                raise MalformedFrame("okx", f"op {event!r} failed: {ev.code} {ev.msg}", frame)
            if ev.event == event:
                return
            if ev.event is None:
                await on_frame(frame)
