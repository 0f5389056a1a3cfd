"""Bybit v5 (spot, unified account) signed endpoints and the private WebSocket, on the
simulated Bybit venue.

Written from the Bybit v5 documentation (bybit-exchange.github.io/docs/v5): "Integration
Guidance" (X-BAPI-* headers, ``timestamp + api_key + recv_window + (queryString |
jsonBodyString)``, ``server_time - recv_window <= timestamp < server_time + 1000``),
"Place Order", "Amend Order", "Cancel Order", "Get Open & Closed Orders", "Get Wallet
Balance", "Error Codes" (general 1000x and the "Spot Trade" 170xxx table), WebSocket
"Connect" (``auth`` with ``GET/realtime{expires}``, ping/pong) and the private topics
"Order", "Execution", "Wallet". Verification is written here from those pages, not with
the project's signer.

The same endpoints serve the venue's category: ``spot`` on ``bybit``, ``linear`` on
``bybit_linear`` (USDT perpetuals over the simulator's contract accounts: ``reduceOnly``,
``positionIdx`` 0 (one-way), fees and margin in USDT, the contract error codes, and the
position endpoints and topic of :mod:`ttxt_mp.connectors.bybit.sim_positions`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from ttxt_mp.connectors.bybit.sim import BybitVenue, parse_op
from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.market import now_ms
from ttxt_mp.sim.matching import OrderEvent, Reject, Result
from ttxt_mp.sim.trading import OrderRecord, TradingCore, ms
from ttxt_mp.sim.venue import ENC

DEFAULT_RECV_WINDOW = 5000
MIN_ORDER_AMT = Decimal(5)  # instruments-info lotSizeFilter.minOrderAmt of the simulated symbols
MAX_ORDER_QTY = Decimal(10000)  # lotSizeFilter.maxOrderQty
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
        "PostOnly": TimeInForce.POST_ONLY}
PRIVATE_TOPICS = ("order", "execution", "wallet", "position", "order.spot", "execution.spot",
                  "order.linear", "execution.linear", "position.linear")
# "Error Codes": general and "Spot Trade" tables.
E_PARAMS = 10001
E_TIME = (10002, "The request time exceeds the time window range.")
E_KEY = (10003, "API key is invalid. Check whether the key and domain are matched, there are 4 env: "
         "mainnet, testnet, mainnet-demo, testnet-demo")
E_SIGN = (10004, "Error sign, please check your signature generation algorithm.")
E_BALANCE = (170131, "Balance insufficient")
E_PRICE_DP = (170134, "Order price decimal too long.")
E_QTY_LARGE = (170135, "Order quantity too large.")
E_QTY_MIN = (170136, "Order quantity lower than the minimum.")
E_QTY_DP = (170137, "Order volume decimal too long")
E_VALUE_MIN = (170140, "Order value exceeded lower limit")
E_DUP_LINK = (170141, "Duplicate clientOrderId")
E_NO_ORDER = (170213, "Order does not exist.")
E_AMEND_QTY = (170313, "The modified contract quantity cannot be less than to the filled quantity")


# "Error Codes", the contract (110xxx) table: what the linear category answers instead.
LINEAR_ERRORS = {
    E_BALANCE: (110007, "Insufficient available balance"),
    E_NO_ORDER: (110001, "Order does not exist"),
    E_DUP_LINK: (110072, "OrderLinkedID is duplicate"),
    E_AMEND_QTY: (110022, "Quantity has been restricted and orders cannot be modified to "
                  "increase the quantity"),
}


class BybitError(Exception):
    def __init__(self, code: int, msg: str, result: Any = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.result = code, msg, result


def _err(pair: tuple[int, str]) -> BybitError:
    return BybitError(*pair)


def _params_error(what: str) -> BybitError:
    return BybitError(E_PARAMS, f"params error: {what}")


def dstr(x: Decimal) -> str:
    """Bybit prints plain decimals without exponent or trailing zeros ("0.1", "30000")."""
    s = format(x.normalize(), "f")
    return s if s != "-0" else "0"


class BybitTrading:
    """Adds the signed endpoints and ``/v5/private`` to a :class:`BybitVenue`."""

    def __init__(self, venue: BybitVenue, core: TradingCore) -> None:
        self.venue = venue
        self.core = core
        self.link_ids: dict[str, set[str]] = {}  # api key -> every orderLinkId used
        self.market_unit: dict[int, str] = {}
        self._pending_unit = ""
        self.private: dict[int, tuple[SimConnection, str]] = {}  # conn id -> (conn, api key)
        self._phantom = itertools.count(9_000_000_000)  # ids of post-only orders canceled on arrival
        self._exec_ids = itertools.count(1)
        self.category = getattr(venue, "category", "spot")
        self.positions = None
        if self.category == "linear":
            from ttxt_mp.connectors.bybit.sim_positions import BybitPositions

            self.positions = BybitPositions(self)
        core.listeners.append(self._on_result)
        core.forget_listeners.append(lambda oid: self.market_unit.pop(oid, None))
        r = venue.app.router
        r.add_post("/v5/order/create", self.create)
        r.add_post("/v5/order/cancel", self.cancel)
        r.add_post("/v5/order/amend", self.amend)
        r.add_get("/v5/order/realtime", self.realtime)
        r.add_get("/v5/account/wallet-balance", self.wallet_balance)
        r.add_get("/v5/private", self.ws_private)

    # ================================================================ auth

    async def _auth(self, request: web.Request) -> tuple[str, str]:
        """(api key, signed payload) after the "Integration Guidance" checks."""
        key = request.headers.get("X-BAPI-API-KEY", "")
        if not self.core.has_key(key):
            raise self.error(E_KEY)
        try:
            ts = int(request.headers.get("X-BAPI-TIMESTAMP", ""))
            recv = int(request.headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW)))
        except ValueError as e:
            raise self.error(E_TIME) from e
        server = now_ms()
        if not server - recv <= ts < server + 1000:
            raise self.error(E_TIME)
        payload = request.raw_path.partition("?")[2] if request.method == "GET" else (await request.read()).decode("utf-8", "replace")
        plain = f"{ts}{key}{request.headers.get('X-BAPI-RECV-WINDOW', '')}{payload}"
        want = hmac.new(self.core.secret(key).encode(), plain.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, request.headers.get("X-BAPI-SIGN", "").lower()):
            raise self.error(E_SIGN)
        return key, payload

    async def _handle(self, request: web.Request, fn) -> web.Response:  # noqa: ANN001
        try:
            key, payload = await self._auth(request)
            if request.method == "GET":
                params: dict[str, Any] = dict(request.query)
            else:
                try:
                    params = json.loads(payload or "{}")
                except json.JSONDecodeError as e:
                    raise _params_error("request body is not valid JSON") from e
                if not isinstance(params, dict):
                    raise _params_error("request body must be a JSON object")
            result = fn(key, params)
        except BybitError as e:
            if e.result is not None:
                return web.json_response({"retCode": e.code, "retMsg": e.msg, "result": e.result,
                                          "retExtInfo": {}, "time": now_ms()})  # fmt: skip
            return self.venue._err(e.code, e.msg)
        return self.venue._ok(result)

    def error(self, pair: tuple[int, str], result: Any = None) -> BybitError:
        """The error of this category (a spot code's contract counterpart on linear)."""
        if self.positions is not None:
            pair = LINEAR_ERRORS.get(pair, pair)
        return BybitError(pair[0], pair[1], result)

    params_error = staticmethod(_params_error)

    # ================================================================ helpers

    def _symbol(self, p: dict[str, Any], required: bool = True) -> str | None:
        cat = p.get("category")
        if cat is None:
            raise _params_error("category is required")
        if cat != self.category:
            raise _params_error(f"category {cat} is not supported by this simulator")
        sym = p.get("symbol")
        if sym is None:
            if required:
                raise _params_error("symbol is required")
            return None
        if sym not in self.core.specs:
            raise BybitError(170121, "Invalid symbol.")
        return sym

    @staticmethod
    def _dec(p: dict[str, Any], name: str) -> Decimal | None:
        raw = p.get(name)
        if raw is None or raw == "":
            return None
        try:
            d = Decimal(str(raw))
        except InvalidOperation as e:
            raise BybitError(170130, f"Data sent for paramter '{name}' is not valid.") from e
        if not d.is_finite() or d <= 0:
            raise BybitError(170130, f"Data sent for paramter '{name}' is not valid.")
        return d

    def _check_price_qty(self, sym: str, price: Decimal | None, qty: Decimal | None,
                         notional_price: Decimal | None) -> None:
        spec = self.core.specs[sym]
        if price is not None and price % spec.tick_size:
            raise self.error(E_PRICE_DP)
        if qty is not None:
            if qty % spec.step_size:
                raise self.error(E_QTY_DP)
            if qty < spec.step_size:
                raise self.error(E_QTY_MIN)
            if qty > MAX_ORDER_QTY:
                raise self.error(E_QTY_LARGE)
            ref = notional_price if notional_price is not None else self.core.mid(sym)
            if ref * qty < MIN_ORDER_AMT:
                raise self.error(E_VALUE_MIN)

    def _find_open(self, key: str, sym: str, p: dict[str, Any]) -> OrderRecord:
        oid_raw, link = p.get("orderId"), p.get("orderLinkId")
        if not oid_raw and not link:
            raise _params_error("orderId or orderLinkId is required")
        try:
            oid = int(oid_raw) if oid_raw else 0
        except ValueError:
            oid = -1
        rec = self.core.find(key, sym, order_id=oid, client_order_id=link or "") if oid >= 0 else None
        if rec is None or rec.last.order_id not in self.core.engine.orders:
            raise self.error(E_NO_ORDER)
        return rec

    # ================================================================ REST

    async def create(self, request: web.Request) -> web.Response:
        return await self._handle(request, self._create)

    def _create(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        sym = self._symbol(p)
        assert sym is not None
        side_raw, typ = p.get("side"), p.get("orderType")
        if side_raw is None or typ is None or p.get("qty") in (None, ""):
            raise _params_error("side, orderType and qty are required")
        if side_raw not in ("Buy", "Sell"):
            raise BybitError(170117, "Invalid side.")
        if typ not in ("Market", "Limit"):
            raise BybitError(170116, "Invalid orderType.")
        side = Side.BUY if side_raw == "Buy" else Side.SELL
        tif_raw = p.get("timeInForce", "GTC" if typ == "Limit" else "IOC")
        if tif_raw not in _TIF:
            raise BybitError(170115, "Invalid timeInForce.")
        tif = _TIF[tif_raw]
        qty = self._dec(p, "qty")
        price = self._dec(p, "price")
        assert qty is not None
        link = p.get("orderLinkId") or ""
        if link and (len(link) > 36 or link in self.link_ids.get(key, ())):
            raise self.error(E_DUP_LINK)
        reduce_only = self._contract_flags(p)
        unit = ""
        if typ == "Limit":
            if price is None:
                raise _params_error("price is required for Limit orders")
            self._check_price_qty(sym, price, qty, price)
        else:
            price = None
            # "marketUnit": spot market Buy defaults to quoteCoin, Sell to baseCoin.
            unit = p.get("marketUnit") or ("quoteCoin" if side == Side.BUY and self.positions is None
                                           else "baseCoin")
            if unit not in ("baseCoin", "quoteCoin"):
                raise _params_error("marketUnit must be baseCoin or quoteCoin")
            if unit == "quoteCoin":
                if qty < MIN_ORDER_AMT:
                    raise self.error(E_VALUE_MIN)
                qty = self.core.qty_for_quote(sym, side, qty)
                if qty <= 0:
                    raise self.error(E_QTY_MIN)
            else:
                self._check_price_qty(sym, None, qty, None)
            tif = TimeInForce.IOC if tif not in (TimeInForce.IOC, TimeInForce.FOK) else tif
        self.link_ids.setdefault(key, set())
        if link:
            self.link_ids[key].add(link)
        self._pending_unit = unit  # the order id is known only once the stream is published
        r = self.core.place(key, sym, side, qty, price,
                            OrderType.MARKET if typ == "Market" else OrderType.LIMIT, tif, link,
                            reduce_only=reduce_only)  # fmt: skip
        if not r.accepted:
            if r.code in (Reject.INSUFFICIENT_BALANCE, Reject.REDUCE_ONLY):
                self.link_ids[key].discard(link)
                if r.code == Reject.REDUCE_ONLY:
                    from ttxt_mp.connectors.bybit.sim_positions import E_REDUCE_ONLY

                    raise self.error(E_REDUCE_ONLY)
                raise self.error(E_BALANCE)
            if r.code == Reject.WOULD_TAKE:
                # "PostOnly: if the order would be filled immediately ... it will be cancelled"
                oid = next(self._phantom)
                self._push_phantom_cancel(key, sym, side, qty, price or Decimal(0), link, oid)
                return {"orderId": str(oid), "orderLinkId": link}
            if r.code == Reject.DUPLICATE_CLIENT_ID:
                raise self.error(E_DUP_LINK)
            raise _params_error(r.reason)
        self._pending_unit = ""
        return {"orderId": str(r.order_id), "orderLinkId": link}

    def _contract_flags(self, p: dict[str, Any]) -> bool:
        """``reduceOnly`` (linear only; spot ignores it) after checking ``positionIdx``:
        one-way mode takes 0 only."""
        if self.positions is None:
            return False
        idx = p.get("positionIdx", 0)
        if idx not in (0, "0"):
            raise _params_error("position idx not match position mode")
        ro = p.get("reduceOnly", False)
        if not isinstance(ro, bool):
            raise _params_error("reduceOnly must be a boolean")
        return ro

    async def cancel(self, request: web.Request) -> web.Response:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            sym = self._symbol(p)
            assert sym is not None
            rec = self._find_open(key, sym, p)
            r = self.core.cancel(key, order_id=rec.last.order_id)
            if not r.accepted:
                raise self.error(E_NO_ORDER)
            return {"orderId": str(rec.last.order_id), "orderLinkId": rec.last.client_order_id}
        return await self._handle(request, run)

    async def amend(self, request: web.Request) -> web.Response:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            sym = self._symbol(p)
            assert sym is not None
            qty, price = self._dec(p, "qty"), self._dec(p, "price")
            if qty is None and price is None:
                raise _params_error("qty or price is required")
            rec = self._find_open(key, sym, p)
            e = rec.last
            self._check_price_qty(sym, price, qty, price or e.price)
            if qty is not None and qty <= e.filled_qty:
                raise self.error(E_AMEND_QTY)
            r = self.core.amend(key, e.order_id, new_qty=qty, new_price=price)
            if not r.accepted:
                if r.code == Reject.INSUFFICIENT_BALANCE:
                    raise self.error(E_BALANCE)
                if r.code == Reject.UNKNOWN_ORDER:
                    raise self.error(E_NO_ORDER)
                raise BybitError(170311, "Order modification failed")
            return {"orderId": str(e.order_id), "orderLinkId": e.client_order_id}
        return await self._handle(request, run)

    async def realtime(self, request: web.Request) -> web.Response:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            sym = self._symbol(p, required=False)
            recs = self.core.open_orders(key, sym)
            if p.get("orderId"):
                recs = [r for r in recs if str(r.last.order_id) == p["orderId"]]
            if p.get("orderLinkId"):
                recs = [r for r in recs if r.last.client_order_id == p["orderLinkId"]]
            recs.sort(key=lambda r: -r.created_ms)  # newest first
            return {"list": [self._order(r) for r in recs], "nextPageCursor": "",
                    "category": self.category}  # fmt: skip
        return await self._handle(request, run)

    async def wallet_balance(self, request: web.Request) -> web.Response:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            if p.get("accountType") is None:
                raise _params_error("accountType is required")
            if p["accountType"] != "UNIFIED":
                raise BybitError(E_PARAMS, "accountType only support UNIFIED.")
            coins = p.get("coin")
            wanted = set(coins.split(",")) if coins else None
            return {"list": [self._wallet(key, wanted)]}
        return await self._handle(request, run)

    # ================================================================ shapes

    @staticmethod
    def _status(e: OrderEvent) -> str:
        if e.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
            return "PartiallyFilledCanceled" if e.filled_qty else "Cancelled"
        return {OrderStatus.NEW: "New", OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
                OrderStatus.FILLED: "Filled", OrderStatus.REJECTED: "Rejected"}[e.status]

    def _order(self, rec: OrderRecord, reject: str = "EC_NoError") -> dict[str, Any]:
        """One order as in "Get Open & Closed Orders" and the "Order" topic (spot)."""
        e = rec.last
        leaves = e.qty - e.filled_qty if e.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) else Decimal(0)
        avg = e.cum_quote / e.filled_qty if e.filled_qty else Decimal(0)
        spec = self.core.specs[e.symbol]
        fee_coin = spec.settle or (spec.base if e.side == Side.BUY else spec.quote)
        fee = rec.fees.get(fee_coin, Decimal(0))
        cancel_type = "CancelByUser" if e.exec_type == "CANCELED" else "UNKNOWN"
        spot = self.positions is None
        out = {
            "category": self.category, "symbol": e.symbol, "orderId": str(e.order_id),
            "orderLinkId": e.client_order_id, "blockTradeId": "", "side": "Buy" if e.side == Side.BUY else "Sell",
            "isLeverage": "0" if spot else "", "positionIdx": 0, "orderStatus": self._status(e),
            "cancelType": cancel_type, "rejectReason": reject,
            "price": dstr(e.price) if e.order_type == OrderType.LIMIT else "0",
            "qty": dstr(e.qty), "avgPrice": dstr(avg), "leavesQty": dstr(leaves),
            "leavesValue": dstr(leaves * e.price), "cumExecQty": dstr(e.filled_qty),
            "cumExecValue": dstr(e.cum_quote), "cumExecFee": dstr(fee), "feeCurrency": fee_coin,
            "timeInForce": {TimeInForce.POST_ONLY: "PostOnly"}.get(e.tif, e.tif.name),
            "orderType": "Limit" if e.order_type == OrderType.LIMIT else "Market",
            "stopOrderType": "", "orderIv": "", "triggerPrice": "0", "takeProfit": "0", "stopLoss": "0",
            "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0, "triggerBy": "",
            "lastPriceOnCreated": "", "reduceOnly": e.reduce_only, "closeOnTrigger": False, "smpType": "None",
            "smpGroup": 0, "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "", "slLimitPrice": "",
            "placeType": "", "marketUnit": self.market_unit.get(e.order_id, ""), "closedPnl": "0",
            "createdTime": str(rec.created_ms), "updatedTime": str(rec.updated_ms),
            "cumFeeDetail": {fee_coin: dstr(fee)} if fee else {},
        }
        if not spot:  # feeCurrency and cumFeeDetail are spot fields; fees are in the settle coin
            del out["feeCurrency"], out["cumFeeDetail"]
        return out

    def _coin(self, key: str, asset: str, free: Decimal, locked: Decimal) -> dict[str, Any]:
        total = free + locked
        usd = total * self._usd_price(asset)
        order_im = pos_im = upnl = realized = Decimal(0)
        if self.positions is not None:  # contract margin: totalOrderIM / totalPositionIM
            held = [x for x in self.core.positions(key) if self.core.specs[x.symbol].settle == asset]
            pos_im = sum((x.margin for x in held), Decimal(0))
            order_im, locked = locked - pos_im, Decimal(0)
            upnl = sum((x.upnl(self.core.mark(x.symbol)) for x in held), Decimal(0))
            realized = sum((x.realized for x in held), Decimal(0))
        return {"coin": asset, "equity": dstr(total + upnl), "usdValue": dstr(usd), "walletBalance": dstr(total),
                "free": "", "locked": dstr(locked), "spotHedgingQty": "0", "borrowAmount": "0",
                "availableToWithdraw": "", "availableToBorrow": "", "accruedInterest": "0",
                "totalOrderIM": dstr(order_im), "totalPositionIM": dstr(pos_im), "totalPositionMM": "0",
                "unrealisedPnl": dstr(upnl), "cumRealisedPnl": dstr(realized), "bonus": "0",
                "collateralSwitch": True, "marginCollateral": True}

    def _usd_price(self, asset: str) -> Decimal:
        if asset in ("USDT", "USDC", "USD"):
            return Decimal(1)
        for sym, spec in self.core.specs.items():
            if spec.base == asset and spec.quote == "USDT":
                return self.core.mid(sym)
        return Decimal(0)

    def _wallet(self, key: str, wanted: set[str] | None) -> dict[str, Any]:
        w = self.core.wallet(key)
        coins = [self._coin(key, a, f, lk) for a, (f, lk) in sorted(w.items())
                 if wanted is None or a in wanted]
        total = sum((Decimal(c["usdValue"]) for c in coins), Decimal(0))
        locked = sum((lk * self._usd_price(a) for a, (_, lk) in w.items()), Decimal(0))
        return {"accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0",
                "accountLTV": "0", "totalEquity": dstr(total), "totalWalletBalance": dstr(total),
                "totalMarginBalance": dstr(total), "totalAvailableBalance": dstr(total - locked),
                "totalPerpUPL": "0", "totalInitialMargin": "0", "totalMaintenanceMargin": "0",
                "coin": coins}

    # ================================================================ private stream

    async def ws_private(self, request: web.Request) -> web.StreamResponse:
        return await self.venue.serve_ws(
            request, self._private_op, answer_stalled=True,
            on_open=self._private_open, on_close=self._private_close,
        )  # fmt: skip

    @staticmethod
    def _private_open(conn: SimConnection) -> None:
        conn.private_topics = set()  # type: ignore[attr-defined]

    def _private_close(self, conn: SimConnection) -> None:
        self.private.pop(conn.id, None)

    def _reply(self, conn: SimConnection, op: str, req: dict[str, Any], ok: bool, msg: str) -> None:
        out: dict[str, Any] = {"success": ok, "ret_msg": msg, "op": op, "conn_id": conn.conn_uuid}  # type: ignore[attr-defined]
        if "req_id" in req:
            out = {"req_id": req["req_id"], **out}
        conn.send(ENC.encode(out))

    def _private_op(self, conn: SimConnection, text: str) -> None:
        req = parse_op(text)
        if req is None:
            self._reply(conn, "", {}, False, f"Invalid request: {text[:64]}")
            return
        op = req["op"]
        if op == "ping":  # "Connect": private streams answer op "pong" with the server time
            conn.last_ping = time.monotonic()  # type: ignore[attr-defined]
            out: dict[str, Any] = {"op": "pong", "args": [str(now_ms())], "conn_id": conn.conn_uuid}  # type: ignore[attr-defined]
            if "req_id" in req:
                out = {"req_id": req["req_id"], **out}
            conn.send(ENC.encode(out))
        elif op == "auth":
            self._ws_auth(conn, req)
        elif op in ("subscribe", "unsubscribe"):
            if conn.id not in self.private:
                self._reply(conn, op, req, False, "Request not authorized")
                return
            args = req.get("args")
            if not isinstance(args, list) or not args or any(a not in PRIVATE_TOPICS for a in args):
                self._reply(conn, op, req, False, f"Invalid topic: {args}")
                return
            for a in args:
                if op == "subscribe":
                    conn.private_topics.add(a)  # type: ignore[attr-defined]
                else:
                    conn.private_topics.discard(a)  # type: ignore[attr-defined]
            self._reply(conn, op, req, True, "")
        else:
            self._reply(conn, op, req, False, f"Invalid op: {op}")

    def _ws_auth(self, conn: SimConnection, req: dict[str, Any]) -> None:
        args = req.get("args")
        if conn.id in self.private:
            self._reply(conn, "auth", req, False, "Repeat auth")
            return
        if not isinstance(args, list) or len(args) != 3:
            self._reply(conn, "auth", req, False, "Params Error")
            return
        key, expires, sig = args
        try:
            exp = int(expires)
        except (TypeError, ValueError):
            self._reply(conn, "auth", req, False, "Params Error")
            return
        if not isinstance(key, str) or not self.core.has_key(key):
            self._reply(conn, "auth", req, False, "API key is invalid.")
            return
        if exp <= now_ms():
            self._reply(conn, "auth", req, False, "Params Error")  # expires must be in the future
            return
        want = hmac.new(self.core.secret(key).encode(), f"GET/realtime{exp}".encode(), hashlib.sha256).hexdigest()
        if not isinstance(sig, str) or not hmac.compare_digest(want, sig.lower()):
            self._reply(conn, "auth", req, False, "Signature verification failed.")
            return
        self.private[conn.id] = (conn, key)
        self._reply(conn, "auth", req, True, "")

    def _push(self, key: str, topics: tuple[str, ...], data: list[dict[str, Any]]) -> None:
        for conn, acct in self.private.values():
            if acct != key:
                continue
            for t in topics:
                if t in conn.private_topics:  # type: ignore[attr-defined]
                    conn.send(ENC.encode({"id": uuid.uuid4().hex, "topic": t,
                                          "creationTime": now_ms(), "data": data}))
                    break

    def _push_phantom_cancel(self, key: str, sym: str, side: Side, qty: Decimal, price: Decimal,
                             link: str, oid: int) -> None:
        t = now_ms() * 1_000_000
        e = OrderEvent(order_id=oid, client_order_id=link, account=key, symbol=sym, side=side,
                       order_type=OrderType.LIMIT, tif=TimeInForce.POST_ONLY, price=price, qty=qty,
                       filled_qty=Decimal(0), cum_quote=Decimal(0), status=OrderStatus.CANCELED,
                       exec_type="EXPIRED", ts=t)
        rec = OrderRecord(e, ms(t), ms(t), {})
        self._push(key, self._topics("order"), [self._order(rec, "EC_PostOnlyWillTakeLiquidity")])

    def _topics(self, name: str) -> tuple[str, str]:
        """The all-in-one topic and this category's (``order`` / ``order.linear``)."""
        return name, f"{name}.{self.category}"

    def push_wallet(self, key: str, assets: set[str]) -> None:
        self._push(key, ("wallet",), [self._wallet(key, assets)])

    def _on_result(self, r: Result) -> None:
        if self._pending_unit:
            for e in r.events:
                if e.order_type == OrderType.MARKET and e.exec_type == "NEW":
                    self.market_unit[e.order_id] = self._pending_unit
        by_acct: dict[str, list[OrderEvent]] = {}
        for e in r.events:
            by_acct.setdefault(e.account, []).append(e)
        for acct, events in by_acct.items():
            execs = [self._execution(e) for e in events if e.exec_type == "TRADE"]
            if execs:
                self._push(acct, self._topics("execution"), execs)
            last: dict[int, OrderEvent] = {e.order_id: e for e in events}
            orders = []
            for oid, e in last.items():
                rec = self.core.orders[oid]
                orders.append(self._order(OrderRecord(e, rec.created_ms, ms(e.ts), rec.fees)))
            self._push(acct, self._topics("order"), orders)
            if self.positions is not None:
                traded = {e.symbol for e in events if e.exec_type == "TRADE"}
                if traded:
                    self.positions.push(acct, traded)
        for acct in r.accounts:
            specs = [self.core.specs[s] for s in {e.symbol for e in r.events}]
            assets = {a for s in specs for a in ((s.settle,) if s.settle else (s.base, s.quote))}
            self.push_wallet(acct, assets)

    def _execution(self, e: OrderEvent) -> dict[str, Any]:
        rate = self.core.maker_fee if e.is_maker else self.core.taker_fee
        out = {
            "category": self.category, "symbol": e.symbol, "execFee": dstr(e.fee), "execId": str(e.trade_id),
            "execPrice": dstr(e.last_price), "execQty": dstr(e.last_qty), "execType": "Trade",
            "execValue": dstr(e.last_price * e.last_qty), "isMaker": e.is_maker, "feeRate": dstr(rate),
            "tradeIv": "", "markIv": "", "blockTradeId": "", "markPrice": "", "indexPrice": "",
            "underlyingPrice": "", "leavesQty": dstr(e.qty - e.filled_qty), "orderId": str(e.order_id),
            "orderLinkId": e.client_order_id, "orderPrice": dstr(e.price), "orderQty": dstr(e.qty),
            "orderType": "Limit" if e.order_type == OrderType.LIMIT else "Market",
            "stopOrderType": "", "side": "Buy" if e.side == Side.BUY else "Sell",
            "execTime": str(ms(e.ts)), "isLeverage": "0", "closedSize": "", "seq": next(self._exec_ids),
            "feeCurrency": e.fee_asset,
        }
        if self.positions is not None:  # "closedSize": closed position size; no feeCurrency
            del out["feeCurrency"]
            out["isLeverage"] = ""
            out["closedSize"] = dstr(e.closed_qty)
            out["execPnl"] = dstr(e.realized_pnl)
        return out
