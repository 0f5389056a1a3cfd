"""OKX v5 signed endpoints and the private WebSocket on the simulated ``okx`` (SPOT) and
``okx_linear`` (SWAP) venues, over the venue-neutral trading core.

Written from the OKX v5 documentation (www.okx.com/docs-v5/en), not from our connector:

- "REST Authentication": ``OK-ACCESS-KEY``/``-SIGN``/``-TIMESTAMP``/``-PASSPHRASE``; sign =
  Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)); requests more than
  30 s away from the server time are refused. Failures are HTTP 401 with the "Error Code"
  REST authentication codes: 50111 "Invalid OK-ACCESS-KEY", 50105 "Invalid
  OK-ACCESS-PASSPHRASE", 50112 "Invalid OK-ACCESS-TIMESTAMP", 50102 "Timestamp request
  expired", 50113 "Invalid Sign". An order request whose ``expTime`` header has passed is
  not executed (50102).
- "Place order" / "Cancel order" / "Amend order" (``POST /api/v5/trade/order``,
  ``cancel-order``, ``amend-order``) and the same operations over the private WebSocket
  ("WS / Place order": ``{"id", "op": "order", "args": [{...}]}`` answered by ``{"id",
  "op", "code", "msg", "data": [{"ordId", "clOrdId", "sCode", "sMsg"}]}``; an ``expTime``
  that has passed: not executed, 50102). Answers carry
  ``sCode``/``sMsg`` per order ("Error Code", trade 51xxx): 51000 "Parameter {x} error",
  51001 "Instrument ID does not exist", 51008 "Order failed. Insufficient {ccy} balance in
  account", 51016 "Duplicated clOrdId", 51020 "Your order should meet or exceed the
  minimum order amount", 51121 "Order quantity must be a multiple of the lot size", 51169
  (reduce-only without a position to reduce), 51400 (cancel: filled, canceled or does not
  exist), 51503 (amend: same), 51603 "Order does not exist"; the top-level ``code`` is
  "1" when the order failed. A ``post_only`` order that would take is accepted and then
  canceled (``cancelSource`` 31), as OKX does; ``fok``/``ioc`` remainders are canceled.
- "Get order list" (``GET /api/v5/trade/orders-pending``), "Get order details" (``GET
  /api/v5/trade/order``), "Get balance" (``GET /api/v5/account/balance``); the server time
  (``GET /api/v5/public/time``) is the public venue's.
- WebSocket "Login" (``op`` login; timestamp in seconds, within 30 s; sign of timestamp +
  ``GET`` + ``/users/self/verify``; failures ``{"event": "error", "code", "msg"}``: 60005
  "Invalid OK-ACCESS-KEY", 60024 "Wrong passphrase", 60007 "Invalid sign", 60006
  "Timestamp request expired", 60011 "Please log in" for a private channel before login),
  then the "Order channel" (``orders``, instType SPOT/SWAP/ANY), "Account channel"
  (``account``, a snapshot on subscribing) and, on swaps, "Positions channel"
  (``positions``) pushes; the text ``ping`` gets ``pong``.
- Swaps (``okx_linear``): sizes are contracts (``ctVal`` 1 here, so a contract is one
  unit of the base), ``tdMode`` cross or isolated (spot: cash), ``posSide`` net (one-way
  mode), ``reduceOnly``; "Set leverage" (``POST /api/v5/account/set-leverage``: ``instId``,
  ``lever`` 1..100, ``mgnMode``; the simulator's core keeps one margin mode per symbol,
  which changes only without a position or open orders), "Get leverage" (``GET
  /api/v5/account/leverage-info``), "Get positions" (``GET /api/v5/account/positions``,
  open positions only).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
import zlib
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.market import now_ms
from ttxt_mp.sim.matching import OrderEvent, Reject, Result
from ttxt_mp.sim.trading import OrderRecord, TradingCore, ms
from ttxt_mp.sim.venue import ENC

__all__ = ["OkxSimTrading"]

MAX_SKEW_MS = 30_000
MIN_ORDER_USD = Decimal(5)  # the simulated spot instruments' minimum order amount
MAX_LEVERAGE = 100
DEFAULT_LEVERAGE = 10
CL_ORD_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ORD_TYPES = {"limit": (OrderType.LIMIT, TimeInForce.GTC), "market": (OrderType.MARKET, TimeInForce.IOC),
              "post_only": (OrderType.LIMIT, TimeInForce.POST_ONLY),
              "fok": (OrderType.LIMIT, TimeInForce.FOK), "ioc": (OrderType.LIMIT, TimeInForce.IOC)}  # fmt: skip
_ORD_TYPE_NAME = {(OrderType.LIMIT, TimeInForce.GTC): "limit", (OrderType.LIMIT, TimeInForce.POST_ONLY): "post_only",
                  (OrderType.LIMIT, TimeInForce.FOK): "fok", (OrderType.LIMIT, TimeInForce.IOC): "ioc"}  # fmt: skip
# REST authentication failures (HTTP 401) and WebSocket login failures
E_KEY = ("50111", "Invalid OK-ACCESS-KEY")
E_PHRASE = ("50105", "Invalid OK-ACCESS-PASSPHRASE")
E_TS = ("50112", "Invalid OK-ACCESS-TIMESTAMP")
E_EXPIRED = ("50102", "Timestamp request expired")
E_SIGN = ("50113", "Invalid Sign")
WS_KEY = ("60005", "Invalid OK-ACCESS-KEY")
WS_EXPIRED = ("60006", "Timestamp request expired")
WS_SIGN = ("60007", "Invalid sign")
WS_LOGIN = ("60009", "Login failed.")
WS_PLEASE_LOGIN = ("60011", "Please log in")
WS_PHRASE = ("60024", "Wrong passphrase")
# trade errors (sCode)
E_INST = ("51001", "Instrument ID does not exist")
E_DUP = ("51016", "Duplicated clOrdId")
E_MIN_AMT = ("51020", "Your order should meet or exceed the minimum order amount.")
E_LOT = ("51121", "Order quantity must be a multiple of the lot size.")
E_REDUCE = ("51169", "Order failed because you don't have any positions in this direction for "
            "this contract to reduce or close.")  # fmt: skip
E_CANCEL = ("51400", "Order cancellation failed as the order has been filled, canceled or does "
            "not exist.")  # fmt: skip
E_AMEND = ("51503", "Order modification failed as the order has been filled, canceled or does "
           "not exist.")  # fmt: skip
E_NO_ORDER = ("51603", "Order does not exist")
E_LEV_MARGIN = ("59300", "Margin call failed. Position does not exist.")  # insufficient margin


class OkxError(Exception):
    def __init__(self, pair: tuple[str, str]) -> None:
        super().__init__(pair[1])
        self.code, self.msg = pair


def param_error(name: str) -> OkxError:
    return OkxError(("51000", f"Parameter {name} error"))


def dstr(x: Decimal) -> str:
    s = format(x.normalize(), "f")
    return s if s != "-0" else "0"


def okx_sign(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


class OkxSimTrading:
    """Adds the signed endpoints and ``/ws/v5/private`` to an OKX simulated venue."""

    def __init__(self, venue: Any, core: TradingCore) -> None:
        self.venue = venue
        self.core = core
        self.swap = venue.inst_type == "SWAP"
        self.cl_ids: dict[str, set[str]] = {}  # api key -> every clOrdId used
        self.td_modes: dict[int, str] = {}  # order id -> tdMode
        self.cancel_source: dict[int, str] = {}
        self.private: dict[int, tuple[SimConnection, str]] = {}  # conn id -> (conn, api key)
        self._phantom = itertools.count(8_000_000_000)  # post-only orders canceled on arrival
        self._pending_td = "cash"
        self.logins = {"ok": 0, "failed": 0}  # WebSocket login attempts (for tests)
        if self.swap:
            interval = 8 * 3600.0
            try:
                interval = float(venue.knob("funding_interval"))
            except (AttributeError, KeyError, ValueError):
                pass
            core.use_contracts(max_leverage=MAX_LEVERAGE, default_leverage=DEFAULT_LEVERAGE,
                               funding_interval_s=interval)  # fmt: skip
            core.contract_listeners.append(self._on_contract)
        core.listeners.append(self._on_result)
        core.forget_listeners.append(self._forget)
        r = venue.app.router
        r.add_post("/api/v5/trade/order", self._rest(self._place))
        r.add_post("/api/v5/trade/cancel-order", self._rest(self._cancel))
        r.add_post("/api/v5/trade/amend-order", self._rest(self._amend))
        r.add_get("/api/v5/trade/orders-pending", self._rest(self._pending))
        r.add_get("/api/v5/trade/order", self._rest(self._order_details))
        r.add_get("/api/v5/account/balance", self._rest(self._balance))
        if self.swap:
            r.add_get("/api/v5/account/positions", self._rest(self._positions))
            r.add_post("/api/v5/account/set-leverage", self._rest(self._set_leverage))
            r.add_get("/api/v5/account/leverage-info", self._rest(self._leverage_info))
        r.add_get("/ws/v5/private", self.ws_private)

    def _forget(self, order_id: int) -> None:
        self.td_modes.pop(order_id, None)
        self.cancel_source.pop(order_id, None)

    # ================================================================ REST plumbing

    @staticmethod
    def _reply(data: list[Any], code: str = "0", msg: str = "", status: int = 200) -> web.Response:
        return web.Response(body=ENC.encode({"code": code, "msg": msg, "data": data}), status=status,
                            content_type="application/json")  # fmt: skip

    async def _auth(self, request: web.Request, body: str) -> str:
        """The API key after the "REST Authentication" checks (HTTP 401 otherwise)."""
        h = request.headers
        key = h.get("OK-ACCESS-KEY", "")
        if not self.core.has_key(key):
            raise self._unauthorized(E_KEY)
        if not hmac.compare_digest(h.get("OK-ACCESS-PASSPHRASE", "").encode(),
                                   self.core.passphrase(key).encode()) or not self.core.passphrase(key):
            raise self._unauthorized(E_PHRASE)
        ts = h.get("OK-ACCESS-TIMESTAMP", "")
        try:
            t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            raise self._unauthorized(E_TS) from None
        if abs(int(t.timestamp() * 1000) - now_ms()) > MAX_SKEW_MS:
            raise self._unauthorized(E_EXPIRED)
        want = okx_sign(self.core.secret(key), f"{ts}{request.method}{request.raw_path}{body}")
        if not hmac.compare_digest(want.encode(), h.get("OK-ACCESS-SIGN", "").encode()):
            raise self._unauthorized(E_SIGN)
        return key

    @staticmethod
    def _unauthorized(pair: tuple[str, str]) -> OkxError:
        return OkxError(pair)

    def _rest(self, fn):  # noqa: ANN001, ANN202
        """A handler: authenticate, parse (query or JSON body), run ``fn(key, params)``."""

        async def handler(request: web.Request) -> web.Response:
            body = (await request.read()).decode("utf-8", "replace") if request.method == "POST" else ""
            try:
                key = await self._auth(request, body)
            except OkxError as e:  # "REST Authentication" failures: HTTP 401
                return self._reply([], e.code, e.msg, status=401)
            if request.method == "POST":
                exp = request.headers.get("expTime")
                if exp and exp.isdigit() and int(exp) < now_ms():
                    return self._reply([], *E_EXPIRED)
                try:
                    params = json.loads(body or "{}")
                except json.JSONDecodeError:
                    return self._reply([], "50002", "JSON syntax error")
                if not isinstance(params, dict):
                    return self._reply([], "50002", "JSON syntax error")
            else:
                params = dict(request.query)
            code, msg, data = fn(key, params)
            return self._reply(data, code, msg)

        return handler

    @staticmethod
    def _one(fn, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:  # noqa: ANN001
        """An order operation's answer: one data item with sCode/sMsg; code "1" on failure."""
        try:
            item = {**fn(key, p), "sCode": "0", "sMsg": ""}
            return "0", "", [item]
        except OkxError as e:
            cid = p.get("clOrdId", "") if isinstance(p.get("clOrdId"), str) else ""
            return "1", "All operations failed", [{"ordId": "", "clOrdId": cid, "tag": "",
                                                   "sCode": e.code, "sMsg": e.msg}]  # fmt: skip

    @staticmethod
    def _list(fn, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:  # noqa: ANN001
        try:
            return "0", "", fn(key, p)
        except OkxError as e:
            return e.code, e.msg, []

    def _place(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._one(self.place, key, p)

    def _cancel(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._one(self.cancel, key, p)

    def _amend(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._one(self.amend, key, p)

    def _pending(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._list(self.pending, key, p)

    def _order_details(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._list(self.order_details, key, p)

    def _balance(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._list(lambda k, q: [self.account(k, None)], key, p)

    def _positions(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._list(self.positions, key, p)

    def _set_leverage(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._list(self.set_leverage, key, p)

    def _leverage_info(self, key: str, p: dict[str, Any]) -> tuple[str, str, list[Any]]:
        return self._list(self.leverage_info, key, p)

    # ================================================================ helpers

    def _sym(self, p: dict[str, Any]) -> str:
        inst = p.get("instId")
        if not isinstance(inst, str) or not inst:
            raise param_error("instId")
        sym = self.venue.by_inst.get(inst)
        if sym is None:
            raise OkxError(E_INST)
        return sym

    @staticmethod
    def _dec(p: dict[str, Any], name: str, required: bool = True) -> Decimal | None:
        raw = p.get(name)
        if raw is None or raw == "":
            if required:
                raise param_error(name)
            return None
        try:
            d = Decimal(str(raw))
        except InvalidOperation:
            raise param_error(name) from None
        if not d.is_finite() or d <= 0:
            raise param_error(name)
        return d

    def _check(self, sym: str, px: Decimal | None, sz: Decimal | None, ref: Decimal | None) -> None:
        spec = self.core.specs[sym]
        if px is not None and px % spec.tick_size:
            raise param_error("px")
        if sz is not None:
            if sz % spec.step_size or sz < spec.step_size:
                raise OkxError(E_LOT)
            if not self.swap and (ref if ref is not None else self.core.mid(sym)) * sz < MIN_ORDER_USD:
                raise OkxError(E_MIN_AMT)

    def _find_open(self, key: str, sym: str, p: dict[str, Any], err: tuple[str, str]) -> OrderRecord:
        oid_raw, cid = p.get("ordId"), p.get("clOrdId")
        if not oid_raw and not cid:
            raise param_error("ordId")
        try:
            oid = int(oid_raw) if oid_raw else 0
        except (TypeError, ValueError):
            raise OkxError(err) from None
        rec = self.core.find(key, sym, order_id=oid, client_order_id=cid or "")
        if rec is None or rec.last.order_id not in self.core.engine.orders:
            raise OkxError(err)
        return rec

    # ================================================================ operations

    def place(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        sym = self._sym(p)
        td = p.get("tdMode")
        if td not in (("cross", "isolated") if self.swap else ("cash",)):
            raise param_error("tdMode")
        side_raw, typ = p.get("side"), p.get("ordType")
        if side_raw not in ("buy", "sell"):
            raise param_error("side")
        if typ not in _ORD_TYPES:
            raise param_error("ordType")
        order_type, tif = _ORD_TYPES[typ]
        side = Side.BUY if side_raw == "buy" else Side.SELL
        sz = self._dec(p, "sz")
        assert sz is not None
        cid = p.get("clOrdId", "")
        if not isinstance(cid, str) or len(cid) > 32 or not set(cid) <= CL_ORD_ID_CHARS:
            raise param_error("clOrdId")
        if cid and cid in self.cl_ids.get(key, ()):
            raise OkxError(E_DUP)
        reduce_only = False
        if self.swap:
            if p.get("posSide", "net") != "net":
                raise param_error("posSide")  # long/short mode is not simulated
            reduce_only = p.get("reduceOnly", False)
            if not isinstance(reduce_only, bool):
                raise param_error("reduceOnly")
        px: Decimal | None = None
        if order_type == OrderType.LIMIT:
            px = self._dec(p, "px")
            self._check(sym, px, sz, px)
        else:
            tgt = p.get("tgtCcy") or ("quote_ccy" if side == Side.BUY and not self.swap else "base_ccy")
            if self.swap or tgt not in ("base_ccy", "quote_ccy"):
                if self.swap and p.get("tgtCcy"):
                    raise param_error("tgtCcy")
                tgt = "base_ccy"
            if tgt == "quote_ccy":
                if sz < MIN_ORDER_USD:
                    raise OkxError(E_MIN_AMT)
                sz = self.core.qty_for_quote(sym, side, sz)
                if sz <= 0:
                    raise OkxError(E_LOT)
            else:
                self._check(sym, None, sz, None)
        self.cl_ids.setdefault(key, set())
        self._pending_td = td
        r = self.core.place(key, sym, side, sz, px, order_type, tif, cid, reduce_only=reduce_only)
        if not r.accepted:
            if r.code == Reject.WOULD_TAKE:
                oid = next(self._phantom)
                if cid:
                    self.cl_ids[key].add(cid)
                self._push_phantom_cancel(key, sym, side, sz, px or Decimal(0), cid, oid, td)
                return {"ordId": str(oid), "clOrdId": cid, "tag": "", "ts": str(now_ms())}
            if r.code == Reject.INSUFFICIENT_BALANCE:
                spec = self.core.specs[sym]
                ccy = spec.settle or (spec.quote if side == Side.BUY else spec.base)
                raise OkxError(("51008", f"Order failed. Insufficient {ccy} balance in account."))
            if r.code == Reject.REDUCE_ONLY:
                raise OkxError(E_REDUCE)
            if r.code == Reject.DUPLICATE_CLIENT_ID:
                raise OkxError(E_DUP)
            raise OkxError(("51000", f"Parameter sz error ({r.reason})"))
        if cid:
            self.cl_ids[key].add(cid)
        return {"ordId": str(r.order_id), "clOrdId": cid, "tag": "", "ts": str(now_ms())}

    def cancel(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        sym = self._sym(p)
        rec = self._find_open(key, sym, p, E_CANCEL)
        self.cancel_source[rec.last.order_id] = "1"  # "Order canceled by user"
        r = self.core.cancel(key, order_id=rec.last.order_id)
        if not r.accepted:
            raise OkxError(E_CANCEL)
        return {"ordId": str(rec.last.order_id), "clOrdId": rec.last.client_order_id,
                "ts": str(now_ms())}  # fmt: skip

    def amend(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        sym = self._sym(p)
        sz, px = self._dec(p, "newSz", False), self._dec(p, "newPx", False)
        if sz is None and px is None:
            raise param_error("newSz")
        rec = self._find_open(key, sym, p, E_AMEND)
        e = rec.last
        self._check(sym, px, sz, px or e.price)
        if sz is not None and sz <= e.filled_qty:
            raise param_error("newSz")
        r = self.core.amend(key, e.order_id, new_qty=sz, new_price=px)
        if not r.accepted:
            if r.code == Reject.INSUFFICIENT_BALANCE:
                raise OkxError(("51008", "Order failed. Insufficient balance in account."))
            raise OkxError(E_AMEND)
        return {"ordId": str(e.order_id), "clOrdId": e.client_order_id, "reqId": p.get("reqId", ""),
                "ts": str(now_ms())}  # fmt: skip

    def pending(self, key: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        inst_type = p.get("instType")
        if inst_type not in (None, self.venue.inst_type):
            return []
        sym = self._sym(p) if p.get("instId") else None
        recs = sorted(self.core.open_orders(key, sym), key=lambda r: -r.created_ms)
        return [self.order_shape(r) for r in recs]

    def order_details(self, key: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        sym = self._sym(p)
        oid_raw, cid = p.get("ordId"), p.get("clOrdId")
        if not oid_raw and not cid:
            raise param_error("ordId")
        try:
            oid = int(oid_raw) if oid_raw else 0
        except ValueError:
            raise OkxError(E_NO_ORDER) from None
        rec = self.core.find(key, sym, order_id=oid, client_order_id=cid or "")
        if rec is None:
            raise OkxError(E_NO_ORDER)
        return [self.order_shape(rec)]

    def positions(self, key: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        if p.get("instType") not in (None, "SWAP"):
            raise param_error("instType")
        sym = self._sym(p) if p.get("instId") else None
        return [self.position_shape(x) for x in self.core.positions(key)
                if x.size and (sym is None or x.symbol == sym)]  # fmt: skip

    def set_leverage(self, key: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        sym = self._sym(p)
        mode = p.get("mgnMode")
        if mode not in ("cross", "isolated"):
            raise param_error("mgnMode")
        lever = self._dec(p, "lever")
        assert lever is not None
        if lever > MAX_LEVERAGE or lever % Decimal("0.01"):
            raise param_error("lever")
        isolated = mode == "isolated"
        if (self.core.position(key, sym).margin_mode == "ISOLATED") != isolated:
            r = self.core.set_margin_mode(key, sym, isolated)
            if not r.accepted:
                raise OkxError(("59000", "Your settings failed as you have positions or open "
                                         "orders."))  # fmt: skip
        if self.core.position(key, sym).leverage != lever:
            r = self.core.set_leverage(key, sym, lever)
            if not r.accepted:
                raise OkxError(("59108", "Your account leverage is too low and has insufficient "
                                         "margins."))  # fmt: skip
        return [{"lever": dstr(lever), "mgnMode": mode, "instId": p["instId"], "posSide": ""}]

    def leverage_info(self, key: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        sym = self._sym(p)
        mode = p.get("mgnMode")
        if mode not in ("cross", "isolated"):
            raise param_error("mgnMode")
        pos = self.core.position(key, sym)
        return [{"instId": p["instId"], "mgnMode": mode, "posSide": "net", "lever": dstr(pos.leverage)}]

    # ================================================================ shapes

    def order_shape(self, rec: OrderRecord, fill: OrderEvent | None = None,
                    cancel_source: str = "") -> dict[str, Any]:  # fmt: skip
        """One order as in "Get order details" and the "Order channel" (``fill``: the fill
        this push reports)."""
        e = rec.last
        spec = self.core.specs[e.symbol]
        fee_ccy = spec.settle or (spec.base if e.side == Side.BUY else spec.quote)
        fee = rec.fees.get(fee_ccy, Decimal(0))
        state = {OrderStatus.NEW: "live", OrderStatus.PARTIALLY_FILLED: "partially_filled",
                 OrderStatus.FILLED: "filled"}.get(e.status, "canceled")  # fmt: skip
        avg = e.cum_quote / e.filled_qty if e.filled_qty else Decimal(0)
        market = e.order_type == OrderType.MARKET
        if e.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and not cancel_source:
            # "cancelSource": 1 by user, 13 FOK / 14 IOC (market) not fully filled, 0 by system
            default = "13" if e.tif == TimeInForce.FOK else "14" if e.tif == TimeInForce.IOC else "0"
            cancel_source = self.cancel_source.get(e.order_id, default)
        return {
            "instType": self.venue.inst_type, "instId": self.venue.inst[e.symbol], "tgtCcy": "" if self.swap else "base_ccy",
            "ccy": "", "ordId": str(e.order_id), "clOrdId": e.client_order_id, "tag": "",
            "px": "" if market else dstr(e.price), "sz": dstr(e.qty),
            "ordType": "market" if market else _ORD_TYPE_NAME[(e.order_type, e.tif)],
            "side": "buy" if e.side == Side.BUY else "sell", "posSide": "net" if self.swap else "",
            "tdMode": self.td_modes.get(e.order_id, "cross" if self.swap else "cash"),
            "fillPx": dstr(fill.last_price) if fill else "", "tradeId": str(fill.trade_id) if fill else "",
            "fillSz": dstr(fill.last_qty) if fill else "0",
            "fillTime": str(ms(fill.ts)) if fill else "", "fillFee": dstr(-fill.fee) if fill else "0",
            "fillFeeCcy": fill.fee_asset if fill else "",
            "execType": ("M" if fill.is_maker else "T") if fill else "",
            "accFillSz": dstr(e.filled_qty), "avgPx": dstr(avg) if e.filled_qty else "",
            "state": state, "lever": dstr(self.core.position(e.account, e.symbol).leverage) if self.swap else "",
            "feeCcy": fee_ccy, "fee": dstr(-fee), "rebateCcy": fee_ccy, "rebate": "0",
            "pnl": dstr(e.realized_pnl) if fill else "0", "source": "", "category": "normal",
            "cancelSource": cancel_source, "reduceOnly": "true" if e.reduce_only else "false",
            "uTime": str(rec.updated_ms), "cTime": str(rec.created_ms), "amendResult": "",
            "code": "0", "msg": "",
        }  # fmt: skip

    def _detail(self, key: str, asset: str, free: Decimal, locked: Decimal) -> dict[str, Any]:
        upl = Decimal(0)
        if self.swap:
            upl = sum((x.upnl(self.core.mark(x.symbol)) for x in self.core.positions(key)
                       if self.core.specs[x.symbol].settle == asset), Decimal(0))  # fmt: skip
        cash = free + locked
        now = str(now_ms())
        return {"ccy": asset, "eq": dstr(cash + upl), "cashBal": dstr(cash), "uTime": now,
                "isoEq": "0", "availEq": dstr(free + upl), "disEq": dstr(cash + upl),
                "availBal": dstr(free), "frozenBal": dstr(locked), "ordFrozen": dstr(locked),
                "liab": "0", "upl": dstr(upl), "uplLiab": "0", "crossLiab": "0", "isoLiab": "0",
                "mgnRatio": "", "interest": "0", "twap": "0", "maxLoan": "", "eqUsd": dstr(cash),
                "notionalLever": "", "stgyEq": "0", "isoUpl": "0", "spotInUseAmt": ""}  # fmt: skip

    def account(self, key: str, assets: set[str] | None) -> dict[str, Any]:
        w = self.core.wallet(key)
        details = [self._detail(key, a, f, lk) for a, (f, lk) in sorted(w.items())
                   if assets is None or a in assets]  # fmt: skip
        return {"uTime": str(now_ms()), "totalEq": "", "isoEq": "0", "adjEq": "", "ordFroz": "",
                "imr": "", "mmr": "", "mgnRatio": "", "notionalUsd": "", "upl": "",
                "details": details}  # fmt: skip

    def position_shape(self, x: Any) -> dict[str, Any]:
        mark = self.core.mark(x.symbol)
        t = str(x.updated_ns // 1_000_000)
        return {"instType": "SWAP", "mgnMode": "isolated" if x.margin_mode == "ISOLATED" else "cross",
                "posId": str(zlib.crc32(f"{x.account}:{x.symbol}".encode())), "posSide": "net",
                "pos": dstr(x.size), "baseBal": "", "quoteBal": "", "posCcy": "",
                "availPos": dstr(abs(x.size)), "avgPx": dstr(x.entry) if x.size else "",
                "upl": dstr(x.upnl(mark)), "uplRatio": "", "instId": self.venue.inst[x.symbol],
                "lever": dstr(x.leverage), "liqPx": "", "markPx": dstr(mark), "imr": dstr(x.margin),
                "margin": dstr(x.margin), "mgnRatio": "", "mmr": dstr(x.margin / 2), "liab": "",
                "liabCcy": "", "interest": "0", "tradeId": "", "notionalUsd": dstr(abs(x.size) * mark),
                "optVal": "", "adl": "1", "ccy": self.core.specs[x.symbol].settle, "last": dstr(mark),
                "realizedPnl": dstr(x.realized + x.funding), "pnl": dstr(x.realized),
                "fundingFee": dstr(x.funding), "cTime": t, "uTime": t, "pTime": str(now_ms())}  # fmt: skip

    # ================================================================ private WebSocket

    async def ws_private(self, request: web.Request) -> web.StreamResponse:
        ws, conn = await self.venue.open_ws(request)
        conn.conn_id = uuid.uuid4().hex[:8]  # type: ignore[attr-defined]
        conn.private_args = []  # type: ignore[attr-defined]
        watch = asyncio.get_running_loop().create_task(self.venue._idle_watch(conn))
        try:
            await self.venue.read_frames(ws, conn, self._op)
        finally:
            watch.cancel()
            self.private.pop(conn.id, None)
            self.venue.forget(conn)
        return ws

    def _send(self, conn: SimConnection, msg: dict[str, Any]) -> None:
        conn.send(ENC.encode({**msg, "connId": conn.conn_id}))  # type: ignore[attr-defined]

    def _error(self, conn: SimConnection, pair: tuple[str, str], rid: Any = None) -> None:
        out: dict[str, Any] = {"event": "error", "code": pair[0], "msg": pair[1]}
        self._send(conn, {"id": rid, **out} if rid is not None else out)

    def _op(self, conn: SimConnection, text: str) -> None:
        if text == "ping":
            conn.send(b"pong")
            return
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            self._error(conn, ("60012", f"Invalid request: {text[:200]}"))
            return
        op, rid, args = req["op"], req.get("id"), req.get("args")
        if op == "login":
            self._login(conn, args)
            return
        if op not in ("subscribe", "unsubscribe", "order", "cancel-order", "amend-order"):
            self._error(conn, ("60019", f"Invalid op: {op}"), rid)
            return
        if conn.id not in self.private:
            self._error(conn, WS_PLEASE_LOGIN, rid)
            return
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            self._error(conn, ("60013", "Invalid args"), rid)
            return
        key = self.private[conn.id][1]
        if op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, key, op, args, rid)
            return
        # "WS / Place order" etc.: one order per request here (batch ops are not simulated)
        if len(args) != 1:
            self._error(conn, ("60013", "Invalid args"), rid)
            return
        fn = {"order": self.place, "cancel-order": self.cancel, "amend-order": self.amend}[op]
        exp = req.get("expTime")
        if isinstance(exp, str) and exp.isdigit() and int(exp) < now_ms():  # not executed
            code, msg, data = E_EXPIRED[0], E_EXPIRED[1], []
        else:
            code, msg, data = self._one(fn, key, args[0])
        self._send(conn, {"id": rid or "", "op": op, "code": code, "msg": msg, "data": data,
                          "inTime": str(time.time_ns() // 1000), "outTime": str(time.time_ns() // 1000)})

    def _login(self, conn: SimConnection, args: Any) -> None:
        error = self._check_login(args)
        if error is not None:
            self.logins["failed"] += 1
            self._error(conn, error)
            return
        self.logins["ok"] += 1
        self.private[conn.id] = (conn, args[0]["apiKey"])
        self._send(conn, {"event": "login", "code": "0", "msg": ""})

    def _check_login(self, args: Any) -> tuple[str, str] | None:
        """The error of a ``login`` op, None if it is valid."""
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            return ("60013", "Invalid args")
        a = args[0]
        key, phrase, ts, sign = (a.get(k) for k in ("apiKey", "passphrase", "timestamp", "sign"))
        if not isinstance(key, str) or not self.core.has_key(key):
            return WS_KEY
        if not isinstance(phrase, str) or not self.core.passphrase(key) or not hmac.compare_digest(
                phrase.encode(), self.core.passphrase(key).encode()):
            return WS_PHRASE
        try:
            sec = int(ts)
        except (TypeError, ValueError):
            return ("60004", "Invalid timestamp")
        if abs(sec * 1000 - now_ms()) > MAX_SKEW_MS:
            return WS_EXPIRED
        want = okx_sign(self.core.secret(key), f"{ts}GET/users/self/verify")
        if not isinstance(sign, str) or not hmac.compare_digest(want.encode(), sign.encode()):
            return WS_SIGN
        return None

    def _subscribe(self, conn: SimConnection, key: str, op: str, args: list[dict[str, Any]],
                   rid: Any) -> None:  # fmt: skip
        for a in args:
            ch = a.get("channel")
            ok = ch == "account" or (ch == "orders" and a.get("instType") in (self.venue.inst_type, "ANY")) \
                or (ch == "positions" and self.swap and a.get("instType") in ("SWAP", "ANY"))
            if not ok:
                self._error(conn, ("60018", f"Wrong URL or channel:{ch},instId:{a.get('instType')} "
                                   "doesn't exist. Please use the correct URL, channel and "
                                   "parameters referring to API document."), rid)  # fmt: skip
                return
        subs: list = conn.private_args  # type: ignore[attr-defined]
        for a in args:
            arg = {k: a[k] for k in ("channel", "instType", "ccy") if k in a}
            ack = {"event": op, "arg": arg}
            self._send(conn, {"id": rid, **ack} if rid is not None else ack)
            if op == "unsubscribe":
                subs[:] = [s for s in subs if s != arg]
                continue
            if arg not in subs:
                subs.append(arg)
            uid = {"uid": key[:16]}
            if arg["channel"] == "account":  # "Account channel": a snapshot on subscribing
                self._send_raw(conn, {"arg": {"channel": "account", **uid},
                                      "data": [self.account(key, None)]})  # fmt: skip
            elif arg["channel"] == "positions":  # "Positions channel": initial snapshot
                data = [self.position_shape(x) for x in self.core.positions(key) if x.size]
                self._send_raw(conn, {"arg": {**arg, **uid}, "data": data})

    @staticmethod
    def _send_raw(conn: SimConnection, msg: dict[str, Any]) -> None:
        conn.send(ENC.encode(msg))

    def _push(self, key: str, channel: str, data: list[dict[str, Any]]) -> None:
        if not data:
            return
        for conn, acct in self.private.values():
            if acct != key:
                continue
            for arg in conn.private_args:  # type: ignore[attr-defined]
                if arg["channel"] == channel:
                    self._send_raw(conn, {"arg": {**arg, "uid": key[:16]}, "data": data})
                    break

    # ================================================================ pushes from the core

    def _push_phantom_cancel(self, key: str, sym: str, side: Side, sz: Decimal, px: Decimal,
                             cid: str, oid: int, td: str) -> None:  # fmt: skip
        t = now_ms() * 1_000_000
        e = OrderEvent(order_id=oid, client_order_id=cid, account=key, symbol=sym, side=side,
                       order_type=OrderType.LIMIT, tif=TimeInForce.POST_ONLY, price=px, qty=sz,
                       filled_qty=Decimal(0), cum_quote=Decimal(0), status=OrderStatus.CANCELED,
                       exec_type="EXPIRED", ts=t)  # fmt: skip
        self.td_modes[oid] = td
        # "cancelSource" 31: the post-only order would have taken liquidity
        self._push(key, "orders", [self.order_shape(OrderRecord(e, ms(t), ms(t), {}), None, "31")])
        self.td_modes.pop(oid, None)

    def _on_result(self, r: Result) -> None:
        for e in r.events:
            if e.exec_type == "NEW" and e.order_id not in self.td_modes:
                self.td_modes[e.order_id] = self._pending_td
        by_acct: dict[str, list[OrderEvent]] = {}
        for e in r.events:
            by_acct.setdefault(e.account, []).append(e)
        for acct, events in by_acct.items():
            items = []
            for e in events:
                rec = self.core.orders[e.order_id]
                snap = OrderRecord(e, rec.created_ms, ms(e.ts), rec.fees)
                items.append(self.order_shape(snap, e if e.exec_type == "TRADE" else None))
            self._push(acct, "orders", items)
            if self.swap:
                traded = sorted({e.symbol for e in events if e.exec_type == "TRADE"})
                self._push(acct, "positions", [self.position_shape(self.core.position(acct, s))
                                               for s in traded])  # fmt: skip
        for acct in r.accounts:
            specs = [self.core.specs[s] for s in {e.symbol for e in r.events}]
            assets = {a for s in specs for a in ((s.settle,) if s.settle else (s.base, s.quote))}
            self._push(acct, "account", [self.account(acct, assets)])

    def _on_contract(self, key: str, symbol: str, what: str, amount: Decimal, ts: int) -> None:
        self._push(key, "positions", [self.position_shape(self.core.position(key, symbol))])
        if what == "FUNDING":
            self._push(key, "account", [self.account(key, {self.core.specs[symbol].settle})])
