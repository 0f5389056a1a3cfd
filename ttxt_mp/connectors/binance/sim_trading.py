"""Binance Spot signed endpoints and the user data stream, on the simulated Binance venue.

Written from github.com/binance/binance-spot-api-docs: rest-api.md ("SIGNED (TRADE and
USER_DATA) Endpoint security", "Timing security", "New order", "Cancel order", "Query
order", "Current open orders", "Account information", "Cancel an Existing Order and Send a
New Order", "Order Amend Keep Priority"), faqs/order_amend_keep_priority.md,
user-data-stream.md (listen keys, ``executionReport``, ``outboundAccountPosition``,
``balanceUpdate``, ``listenKeyExpired``), filters.md and errors.md. The signature is
verified here from those pages, not with the project's signer, so the two can disagree.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from ttxt_mp.connectors.binance.sim import BinanceVenue
from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.market import now_ms
from ttxt_mp.sim.matching import OrderEvent, Reject, Result
from ttxt_mp.sim.trading import TradingCore, ms
from ttxt_mp.sim.venue import ENC

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
LISTEN_KEY_TTL = 3600.0  # "A User Data Stream listenKey is valid for 60 minutes"
MIN_NOTIONAL = Decimal(5)  # exchangeInfo MIN_NOTIONAL.minNotional of the simulated symbols
MAX_QTY = Decimal(9000)  # LOT_SIZE.maxQty
MARKET_MAX_QTY = Decimal(100)  # MARKET_LOT_SIZE.maxQty
MAX_PRICE = Decimal(1_000_000)  # PRICE_FILTER.maxPrice
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_STATUS = {OrderStatus.NEW: "NEW", OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
           OrderStatus.FILLED: "FILLED", OrderStatus.CANCELED: "CANCELED",
           OrderStatus.EXPIRED: "EXPIRED", OrderStatus.REJECTED: "REJECTED"}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_MSG_REJECT = {  # errors.md "Messages for -1010, -2010 and -2011"
    Reject.INSUFFICIENT_BALANCE: "Account has insufficient balance for requested action.",
    Reject.WOULD_TAKE: "Order would immediately match and take.",
    Reject.DUPLICATE_CLIENT_ID: "Duplicate order sent.",
    Reject.UNKNOWN_ORDER: "Unknown order sent.",
}


class ApiError(Exception):
    """A documented error answer: {"code": code, "msg": msg} with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def d8(x: Decimal) -> str:
    return f"{x:.8f}"


def new_client_id() -> str:
    """A 22-character id like the venue's generated ones ("6gCrw2kRUAF9CvJDGP16IP")."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(22))


class NewOrder:
    """A validated ``POST /api/v3/order`` request."""

    __slots__ = ("symbol", "side", "type", "tif", "qty", "price", "quote_qty", "cid", "resp",
                 "reduce_only")

    def __init__(self, **kw: Any) -> None:
        self.reduce_only = False  # futures
        for k, v in kw.items():
            setattr(self, k, v)


class BinanceTrading:
    """Adds the signed endpoints and the user data stream to a :class:`BinanceVenue`."""

    def __init__(self, venue: BinanceVenue, core: TradingCore, listen_key_ttl: float = LISTEN_KEY_TTL) -> None:
        self.venue = venue
        self.core = core
        self.listen_key_ttl = listen_key_ttl
        self.listen_keys: dict[str, tuple[str, float]] = {}  # key -> (api key, expiry monotonic)
        self.user_conns: dict[str, dict[int, SimConnection]] = {}  # listen key -> connections
        self.meta: dict[int, tuple[str, str, Decimal]] = {}  # order id -> (type, tif, quoteOrderQty)
        self._exec_seq = 0
        self._cancel_ids: dict[int, str] = {}  # order id -> the cancel's newClientOrderId
        core.listeners.append(self._on_result)
        core.balance_listeners.append(self._on_deposit)
        core.forget_listeners.append(self._forget)
        self._routes(venue.app.router)
        # /ws/<listenKey> shares its path pattern with /ws/<stream>: route it before dispatch.
        venue.app.middlewares.append(self._user_stream_middleware)

    def _routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/api/v3/order", self.post_order)
        r.add_delete("/api/v3/order", self.delete_order)
        r.add_get("/api/v3/order", self.get_order)
        r.add_get("/api/v3/openOrders", self.get_open_orders)
        r.add_get("/api/v3/account", self.get_account)
        r.add_put("/api/v3/order/amend/keepPriority", self.amend_keep_priority)
        r.add_post("/api/v3/order/cancelReplace", self.cancel_replace)
        r.add_post("/api/v3/userDataStream", self.listen_key_new)
        r.add_put("/api/v3/userDataStream", self.listen_key_keepalive)
        r.add_delete("/api/v3/userDataStream", self.listen_key_close)

    # ================================================================ auth

    async def _params(self, request: web.Request) -> tuple[dict[str, str], str, str]:
        """Parameters (query string wins over body), raw query and raw body."""
        query = request.raw_path.partition("?")[2]  # exactly as sent (query_string is decoded)
        body = (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
        params: dict[str, str] = {}
        for k, v in parse_qsl(body, keep_blank_values=True):
            params[k] = v
        for k, v in parse_qsl(query, keep_blank_values=True):
            params[k] = v  # "If a parameter sent in both ... the query string parameter will be used."
        return params, query, body

    def _api_key(self, request: web.Request) -> str:
        key = request.headers.get("X-MBX-APIKEY")
        if not key or not key.isprintable() or len(key) > 512:
            raise ApiError(-2014, "API-key format invalid.", 401)
        if not self.core.has_key(key):
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return key

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """Check a SIGNED request: API key, timestamp within recvWindow, HMAC over totalParams."""
        key = self._api_key(request)
        params, query, body = await self._params(request)
        ts_raw = params.get("timestamp")
        if not ts_raw:
            raise _mandatory("timestamp")
        if not re.fullmatch(r"[0-9]{1,20}", ts_raw):
            raise ApiError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.")
        rw_raw = params.get("recvWindow", str(DEFAULT_RECV_WINDOW))
        try:  # "Supports up to three decimal places of precision"
            recv_window = Decimal(rw_raw)
            if not recv_window.is_finite() or recv_window < 0:
                raise InvalidOperation
        except InvalidOperation as e:
            raise ApiError(-1100, "Illegal characters found in parameter 'recvWindow'; legal range is '^[0-9]{1,20}(\\.[0-9]{1,3})?$'.") from e
        if recv_window > MAX_RECV_WINDOW:
            raise ApiError(-1131, "recvWindow must be less than 60000")
        server = now_ms()
        ts = int(ts_raw)
        if ts >= server + 1000:
            raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server - ts > recv_window:
            raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
        sig = params.get("signature")
        if not sig:
            raise _mandatory("signature")
        total = _without_signature(query) + _without_signature(body)
        want = hmac.new(self.core.secret(key).encode(), total.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig.lower()):  # "The signature is not case sensitive."
            raise ApiError(-1022, "Signature for this request is not valid.")
        return key, params

    async def _handle(self, request: web.Request, weight: int, signed: bool, fn) -> web.Response:  # noqa: ANN001
        headers, over = self.venue._weigh(weight)
        if over is not None:
            return over
        try:
            if signed:
                key, params = await self._signed(request)
            else:
                key = self._api_key(request)
                params, _, _ = await self._params(request)
            status, body = fn(key, params)
        except ApiError as e:
            return web.Response(body=ENC.encode({"code": e.code, "msg": e.msg}), status=e.status,
                                content_type="application/json", headers=headers)
        return web.Response(body=ENC.encode(body), status=status, content_type="application/json",
                            headers=headers)

    # ================================================================ helpers

    def _symbol(self, params: dict[str, str]) -> str:
        sym = params.get("symbol")
        if not sym:
            raise _mandatory("symbol")
        if sym not in self.core.specs:
            raise ApiError(-1121, "Invalid symbol.")
        return sym

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not _DECIMAL.match(raw):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")
        return Decimal(raw)

    @staticmethod
    def _long(params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not re.fullmatch(r"[0-9]{1,20}", raw):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
        return int(raw)

    @staticmethod
    def _client_id(params: dict[str, str], name: str) -> str | None:
        raw = params.get(name)
        if raw is None:
            return None
        if not _CLIENT_ID.match(raw):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'.")
        return raw

    def _parse_new(self, p: dict[str, str]) -> NewOrder:
        """Mandatory parameters by type, then the symbol filters (filters.md)."""
        sym = self._symbol(p)
        side_raw = p.get("side")
        if not side_raw:
            raise _mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        typ = p.get("type")
        if not typ:
            raise _mandatory("type")
        if typ not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
            raise ApiError(-1116, "Invalid orderType.")
        qty = self._decimal(p, "quantity")
        quote_qty = self._decimal(p, "quoteOrderQty")
        price = self._decimal(p, "price")
        tif_raw = p.get("timeInForce")
        if typ == "LIMIT":
            for name, val in (("timeInForce", tif_raw), ("quantity", qty), ("price", price)):
                if not val:
                    raise _mandatory(name)
            if tif_raw not in _TIF:
                raise ApiError(-1115, "Invalid timeInForce.")
            tif = _TIF[tif_raw]  # type: ignore[index]
        elif typ == "LIMIT_MAKER":
            for name, val in (("quantity", qty), ("price", price)):
                if not val:
                    raise _mandatory(name)
            if tif_raw is not None:
                raise ApiError(-1106, "Parameter 'timeInForce' sent when not required.")
            tif = TimeInForce.POST_ONLY
        else:
            if not qty and not quote_qty:
                raise ApiError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if tif_raw is not None:
                raise ApiError(-1106, "Parameter 'timeInForce' sent when not required.")
            if price is not None:
                raise ApiError(-1106, "Parameter 'price' sent when not required.")
            tif = TimeInForce.IOC
        cid = self._client_id(p, "newClientOrderId") or new_client_id()
        resp = p.get("newOrderRespType", "FULL" if typ in ("LIMIT", "MARKET") else "ACK")
        if resp not in ("ACK", "RESULT", "FULL"):
            raise ApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.")
        spec = self.core.specs[sym]
        if price is not None and (price <= 0 or price > MAX_PRICE or price % spec.tick_size):
            raise ApiError(-1013, "Filter failure: PRICE_FILTER")
        if typ == "MARKET" and qty is None:
            assert quote_qty is not None
            qty = self.core.qty_for_quote(sym, Side[side_raw], quote_qty)
        assert qty is not None
        if qty < spec.step_size or qty > MAX_QTY or qty % spec.step_size:
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        if typ == "MARKET" and qty > MARKET_MAX_QTY:
            raise ApiError(-1013, "Filter failure: MARKET_LOT_SIZE")
        ref = price if price is not None else self.core.mid(sym)  # market orders: the average price
        if ref * qty < MIN_NOTIONAL:
            raise ApiError(-1013, "Filter failure: MIN_NOTIONAL")
        return NewOrder(symbol=sym, side=Side[side_raw], type=typ, tif=tif, qty=qty, price=price,
                        quote_qty=quote_qty or Decimal(0), cid=cid, resp=resp)

    def _place(self, key: str, o: NewOrder) -> dict[str, Any]:
        r = self.core.place(key, o.symbol, o.side, o.qty, o.price,
                            OrderType.MARKET if o.type == "MARKET" else OrderType.LIMIT, o.tif, o.cid)
        if not r.accepted:
            msg = _MSG_REJECT.get(r.code)
            if msg is None:
                raise ApiError(-1013, "Filter failure: LOT_SIZE" if r.code == Reject.INVALID_QTY
                               else "Filter failure: PRICE_FILTER")
            raise ApiError(-2010, msg)
        self.meta[r.order_id] = (o.type, "GTC" if o.type != "LIMIT" else o.tif.name, o.quote_qty)
        rec = self.core.orders[r.order_id]
        body: dict[str, Any] = {"symbol": o.symbol, "orderId": r.order_id, "orderListId": -1,
                                "clientOrderId": o.cid, "transactTime": rec.created_ms}
        if o.resp == "ACK":
            return body
        body.update(self._order_fields(rec.last, with_working=True))
        if o.resp == "FULL":
            body["fills"] = [{"price": d8(e.last_price), "qty": d8(e.last_qty),
                              "commission": d8(e.fee), "commissionAsset": e.fee_asset,
                              "tradeId": e.trade_id}
                             for e in r.events if e.order_id == r.order_id and e.exec_type == "TRADE"]
        return body

    def _order_fields(self, e: OrderEvent, with_working: bool = False) -> dict[str, Any]:
        typ, tif, quote_qty = self.meta.get(e.order_id, ("LIMIT", "GTC", Decimal(0)))
        out = {"price": d8(e.price), "origQty": d8(e.qty), "executedQty": d8(e.filled_qty),
               "origQuoteOrderQty": d8(quote_qty), "cummulativeQuoteQty": d8(e.cum_quote),
               "status": _STATUS[e.status], "timeInForce": tif, "type": typ, "side": e.side.name}
        if with_working:
            out["workingTime"] = self.core.orders[e.order_id].created_ms
        out["selfTradePreventionMode"] = "NONE"
        return out

    def _query_fields(self, e: OrderEvent) -> dict[str, Any]:
        """"Query order" / "Current open orders" shape."""
        rec = self.core.orders[e.order_id]
        f = self._order_fields(e)
        return {"symbol": e.symbol, "orderId": e.order_id, "orderListId": -1,
                "clientOrderId": e.client_order_id, "price": f["price"], "origQty": f["origQty"],
                "executedQty": f["executedQty"], "cummulativeQuoteQty": f["cummulativeQuoteQty"],
                "status": f["status"], "timeInForce": f["timeInForce"], "type": f["type"],
                "side": f["side"], "stopPrice": d8(Decimal(0)), "icebergQty": d8(Decimal(0)),
                "time": rec.created_ms, "updateTime": rec.updated_ms,
                "isWorking": e.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED),
                "workingTime": rec.created_ms, "origQuoteOrderQty": f["origQuoteOrderQty"],
                "selfTradePreventionMode": "NONE"}

    def _lookup(self, key: str, sym: str, p: dict[str, str], oid_name: str, cid_name: str):  # noqa: ANN202
        oid = self._long(p, oid_name)
        cid = p.get(cid_name)
        if not oid and not cid:
            raise ApiError(-1102, f"Param '{cid_name}' or '{oid_name}' must be sent, but both were empty/null!")
        rec = self.core.find(key, sym, order_id=oid or 0, client_order_id=cid or "")
        if rec is not None and oid and cid and rec.last.client_order_id != cid:
            return None  # "both conditions are not met the request will be rejected"
        return rec

    def _cancel(self, key: str, sym: str, p: dict[str, str], oid_name: str, cid_name: str,
                new_cid_name: str) -> dict[str, Any]:
        rec = self._lookup(key, sym, p, oid_name, cid_name)
        new_cid = self._client_id(p, new_cid_name) or new_client_id()
        if rec is None or rec.last.order_id not in self.core.engine.orders:
            raise ApiError(-2011, "Unknown order sent.")
        self._cancel_ids[rec.last.order_id] = new_cid
        r = self.core.cancel(key, order_id=rec.last.order_id)
        if not r.accepted:
            raise ApiError(-2011, "Unknown order sent.")
        e = self.core.orders[r.order_id].last
        return {"symbol": sym, "origClientOrderId": e.client_order_id, "orderId": e.order_id,
                "orderListId": -1, "clientOrderId": new_cid, "transactTime": ms(e.ts),
                **self._order_fields(e)}

    # ================================================================ REST handlers

    async def post_order(self, request: web.Request) -> web.Response:
        return await self._handle(request, 1, True, lambda k, p: (200, self._place(k, self._parse_new(p))))

    async def delete_order(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            return 200, self._cancel(k, self._symbol(p), p, "orderId", "origClientOrderId", "newClientOrderId")
        return await self._handle(request, 1, True, run)

    async def get_order(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            rec = self._lookup(k, self._symbol(p), p, "orderId", "origClientOrderId")
            if rec is None:
                raise ApiError(-2013, "Order does not exist.")
            return 200, self._query_fields(rec.last)
        return await self._handle(request, 4, True, run)

    async def get_open_orders(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            sym = self._symbol(p) if "symbol" in p else None
            recs = sorted(self.core.open_orders(k, sym), key=lambda r: r.last.order_id)
            return 200, [self._query_fields(r.last) for r in recs]
        return await self._handle(request, 6, True, run)

    async def get_account(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            omit = p.get("omitZeroBalances", "false") == "true"
            bal = [{"asset": a, "free": d8(f), "locked": d8(lk)}
                   for a, (f, lk) in sorted(self.core.wallet(k).items()) if not omit or f or lk]
            mk, tk = self.core.maker_fee, self.core.taker_fee
            return 200, {
                "makerCommission": int(mk * 10000), "takerCommission": int(tk * 10000),
                "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": d8(mk), "taker": d8(tk), "buyer": d8(Decimal(0)),
                                    "seller": d8(Decimal(0))},
                "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms(),
                "accountType": "SPOT", "balances": bal, "permissions": ["SPOT"],
                "uid": int(hashlib.sha256(k.encode()).hexdigest()[:8], 16),
            }
        return await self._handle(request, 20, True, run)

    async def amend_keep_priority(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            sym = self._symbol(p)
            new_qty = self._decimal(p, "newQty")
            if new_qty is None:
                raise _mandatory("newQty")
            new_cid = self._client_id(p, "newClientOrderId")
            rec = self._lookup(k, sym, p, "orderId", "origClientOrderId")
            if rec is None or rec.last.order_id not in self.core.engine.orders:
                raise ApiError(-2013, "Order does not exist.")
            e = rec.last
            spec = self.core.specs[sym]
            if new_qty > e.qty:
                raise ApiError(-2038, "Order amend (quantity increase) is not supported.")
            if new_qty == e.qty:
                raise ApiError(-2038, "The requested action would change no state; rejecting")
            if new_qty <= 0 or new_qty % spec.step_size or new_qty <= e.filled_qty:
                raise ApiError(-1013, "Filter failure: LOT_SIZE")
            orig_cid = e.client_order_id
            r = self.core.amend(k, e.order_id, new_qty=new_qty,
                                new_client_order_id=new_cid or new_client_id())
            if not r.accepted:
                raise ApiError(-2038, r.reason)
            a = self.core.orders[e.order_id].last
            f = self._order_fields(a, with_working=True)
            self._exec_seq += 1
            return 200, {"transactTime": ms(a.ts), "executionId": self._exec_seq, "amendedOrder": {
                "symbol": sym, "orderId": a.order_id, "orderListId": -1,
                "origClientOrderId": orig_cid, "clientOrderId": a.client_order_id,
                "price": f["price"], "qty": f["origQty"], "executedQty": f["executedQty"],
                "preventedQty": d8(Decimal(0)), "quoteOrderQty": f["origQuoteOrderQty"],
                "cumulativeQuoteQty": f["cummulativeQuoteQty"], "status": f["status"],
                "timeInForce": f["timeInForce"], "type": f["type"], "side": f["side"],
                "workingTime": f["workingTime"], "selfTradePreventionMode": "NONE"}}
        return await self._handle(request, 4, True, run)

    async def cancel_replace(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            mode = p.get("cancelReplaceMode")
            if not mode:
                raise _mandatory("cancelReplaceMode")
            if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
                raise ApiError(-1100, "Illegal characters found in parameter 'cancelReplaceMode'; legal range is 'STOP_ON_FAILURE, ALLOW_FAILURE'.")
            new = self._parse_new(p)  # "Filters ... are evaluated before the processing"
            cancel_resp: Any
            try:
                cancel_resp = self._cancel(k, new.symbol, p, "cancelOrderId", "cancelOrigClientOrderId",
                                           "cancelNewClientOrderId")
                cancel_ok = True
            except ApiError as e:
                if e.code == -1102:
                    raise
                cancel_resp, cancel_ok = {"code": e.code, "msg": e.msg}, False
            new_resp: Any = None
            new_result = "NOT_ATTEMPTED"
            if cancel_ok or mode == "ALLOW_FAILURE":
                try:
                    new_resp, new_result = self._place(k, new), "SUCCESS"
                except ApiError as e:
                    new_resp, new_result = {"code": e.code, "msg": e.msg}, "FAILURE"
            data = {"cancelResult": "SUCCESS" if cancel_ok else "FAILURE", "newOrderResult": new_result,
                    "cancelResponse": cancel_resp, "newOrderResponse": new_resp}
            if cancel_ok and new_result == "SUCCESS":
                return 200, data
            if cancel_ok or new_result == "SUCCESS":
                return 409, {"code": -2021, "msg": "Order cancel-replace partially failed.", "data": data}
            return 400, {"code": -2022, "msg": "Order cancel-replace failed.", "data": data}
        return await self._handle(request, 1, True, run)

    # ================================================================ listen keys

    def _expire_keys(self) -> None:
        now = time.monotonic()
        for lk, (_, exp) in list(self.listen_keys.items()):
            if now >= exp:
                del self.listen_keys[lk]
                # user-data-stream.md "Listen Key Expired"
                self._push_key(lk, {"e": "listenKeyExpired", "E": now_ms(), "listenKey": lk})
                for c in list(self.user_conns.pop(lk, {}).values()):
                    asyncio.get_running_loop().create_task(c.close(1000, "listenKey expired"))

    def on_tick(self) -> None:
        """Expire listen keys (called from the simulator clock)."""
        if self.listen_keys:
            self._expire_keys()

    async def listen_key_new(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            self._expire_keys()
            for lk, (acct, _) in self.listen_keys.items():
                if acct == k:  # "If the account has an active listenKey, that listenKey will be returned"
                    self.listen_keys[lk] = (k, time.monotonic() + self.listen_key_ttl)
                    return 200, {"listenKey": lk}
            lk = secrets.token_urlsafe(48).replace("-", "a").replace("_", "b")[:64]
            self.listen_keys[lk] = (k, time.monotonic() + self.listen_key_ttl)
            return 200, {"listenKey": lk}
        return await self._handle(request, 2, False, run)

    def _known_key(self, k: str, p: dict[str, str]) -> str:
        lk = p.get("listenKey")
        if not lk:
            raise _mandatory("listenKey")
        self._expire_keys()
        if lk not in self.listen_keys or self.listen_keys[lk][0] != k:
            raise ApiError(-1125, "This listenKey does not exist.")
        return lk

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            lk = self._known_key(k, p)
            self.listen_keys[lk] = (k, time.monotonic() + self.listen_key_ttl)
            return 200, {}
        return await self._handle(request, 2, False, run)

    async def listen_key_close(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            lk = self._known_key(k, p)
            del self.listen_keys[lk]
            for c in list(self.user_conns.pop(lk, {}).values()):
                asyncio.get_running_loop().create_task(c.close(1000, "listenKey closed"))
            return 200, {}
        return await self._handle(request, 2, False, run)

    # ================================================================ user data stream

    @web.middleware
    async def _user_stream_middleware(self, request: web.Request, handler):  # noqa: ANN001, ANN201
        head, _, last = request.path.rpartition("/")
        if head.endswith("/ws") and last in self.listen_keys:
            return await self._user_ws(request, last)
        return await handler(request)

    async def _user_ws(self, request: web.Request, lk: str) -> web.StreamResponse:
        v = self.venue
        ws, conn = await v.open_ws(request)
        self.user_conns.setdefault(lk, {})[conn.id] = conn
        keep = v.start_keepalive(conn)
        try:
            async for msg in ws:
                if conn.closed:
                    break
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    v.on_pong(conn, msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            keep.cancel()
            self.user_conns.get(lk, {}).pop(conn.id, None)
            v.forget(conn)
        return ws

    def _push_key(self, lk: str, payload: dict[str, Any]) -> None:
        raw = ENC.encode(payload)
        for c in self.user_conns.get(lk, {}).values():
            c.send(raw)

    def _push(self, api_key: str, payload: dict[str, Any]) -> None:
        for lk, (acct, _) in self.listen_keys.items():
            if acct == api_key:
                self._push_key(lk, payload)

    def _forget(self, order_id: int) -> None:
        """The core dropped a long-closed order: so do the venue's side tables."""
        self.meta.pop(order_id, None)
        self._cancel_ids.pop(order_id, None)

    def _on_deposit(self, api_key: str, asset: str, delta: Decimal, t: int) -> None:
        # "Balance Update occurs during ... Deposits or withdrawals"
        self._push(api_key, {"e": "balanceUpdate", "E": now_ms(), "a": asset, "d": d8(delta), "T": t})
        self._push_position(api_key, [asset], t)

    def _push_position(self, api_key: str, assets: list[str], t: int) -> None:
        wallet = self.core.wallet(api_key)
        self._push(api_key, {"e": "outboundAccountPosition", "E": now_ms(), "u": t, "B": [
            {"a": a, "f": d8(wallet.get(a, (Decimal(0),) * 2)[0]),
             "l": d8(wallet.get(a, (Decimal(0),) * 2)[1])} for a in assets]})

    def _on_result(self, r: Result) -> None:
        """One ``executionReport`` per order event, then ``outboundAccountPosition`` for
        every account whose balances changed."""
        t = 0
        for e in r.events:
            self._push(e.account, self._execution_report(e))
            t = ms(e.ts)
        symbols = {e.symbol for e in r.events}
        for acct in r.accounts:
            assets = sorted({a for s in symbols for a in (self.core.specs[s].base, self.core.specs[s].quote)})
            self._push_position(acct, assets, t)

    def _execution_report(self, e: OrderEvent) -> dict[str, Any]:
        typ, tif, quote_qty = self.meta.get(e.order_id, ("LIMIT", "GTC", Decimal(0)))
        rec = self.core.orders[e.order_id]
        x = {"AMENDED": "REPLACED"}.get(e.exec_type, e.exec_type)
        c, orig = e.client_order_id, ""
        if x == "CANCELED":
            c, orig = self._cancel_ids.pop(e.order_id, new_client_id()), e.client_order_id
        trade = x == "TRADE"
        # "Is the order on the book?": a NEW report already says where the command left it.
        on_book = e.on_book or (x == "NEW" and e.order_id in self.core.engine.orders)
        self._exec_seq += 1
        # user-data-stream.md "Order Update" payload, in its field order.
        out: dict[str, Any] = {
            "e": "executionReport", "E": now_ms(), "s": e.symbol, "c": c, "S": e.side.name,
            "o": typ, "f": tif, "q": d8(e.qty), "p": d8(e.price), "P": d8(Decimal(0)),
            "F": d8(Decimal(0)), "g": -1, "C": orig, "x": x, "X": _STATUS[e.status], "r": "NONE",
            "i": e.order_id, "l": d8(e.last_qty), "z": d8(e.filled_qty), "L": d8(e.last_price),
            "n": d8(e.fee) if trade else "0", "N": e.fee_asset if trade else None, "T": ms(e.ts),
            "t": e.trade_id if trade else -1, "I": self._exec_seq, "w": on_book,
            "m": e.is_maker if trade else False, "M": trade, "O": rec.created_ms,
            "Z": d8(e.cum_quote), "Y": d8(e.last_qty * e.last_price), "Q": d8(quote_qty),
        }
        if on_book or e.status != OrderStatus.NEW:
            out["W"] = rec.created_ms
        out["V"] = "NONE"
        return out


def _without_signature(part: str) -> str:
    """The raw query or body with its ``signature=`` parameter removed (it is not signed)."""
    return "&".join(kv for kv in part.split("&") if not kv.startswith("signature=")) if part else ""
