"""Binance USDⓈ-M futures signed endpoints and user data stream on the simulated
``binance_linear`` venue, over the simulator's contract accounts (:mod:`ttxt_mp.sim.contracts`).

The Spot adapter's signing checks, listen keys and user stream socket, with the futures
API, written from the USDⓈ-M documentation (developers.binance.com/docs/derivatives/
usds-margined-futures): "New Order" / "Cancel Order" / "Modify Order" / "Query Order" /
"Current All Open Orders" (``/fapi/v1/order``, ``/fapi/v1/openOrders``; ``reduceOnly``,
``positionSide``, ``GTX`` post-only, ``newOrderRespType`` ACK/RESULT), "Futures Account
Balance V2" (``/fapi/v2/balance``), "Position Information V2" (``/fapi/v2/positionRisk``),
"Change Initial Leverage" (``/fapi/v1/leverage``), "Change Margin Type"
(``/fapi/v1/marginType``), "Start/Keepalive/Close User Data Stream" (``/fapi/v1/listenKey``;
keep-alive takes no parameters), the user data events ``ORDER_TRADE_UPDATE``,
``ACCOUNT_UPDATE`` (reasons ORDER, FUNDING_FEE, DEPOSIT; on funding of a cross position
only the balance, of an isolated one also that position) and ``ACCOUNT_CONFIG_UPDATE``,
and "Error Codes" (-2019 margin, -2022 reduce-only, -4028 leverage, -4046/-4047/-4048
margin type, -4061 position side, -5022 post-only, -5027 modify, -4164 notional). One-way
mode only (``positionSide`` BOTH).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from aiohttp import web

from ttxt_mp.connectors.binance.sim_trading import (
    _STATUS,
    ApiError,
    BinanceTrading,
    NewOrder,
    _mandatory,
    new_client_id,
)
from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.contracts import ISOLATED, Position
from ttxt_mp.sim.market import now_ms
from ttxt_mp.sim.matching import OrderEvent, Reject, Result
from ttxt_mp.sim.trading import TradingCore, ms

__all__ = ["BinanceFuturesTrading"]

MAX_LEVERAGE = 125
DEFAULT_LEVERAGE = 20
MIN_NOTIONAL = Decimal(5)  # the simulated exchangeInfo's MIN_NOTIONAL "notional"
MAX_QTY, MARKET_MAX_QTY = Decimal(1000), Decimal(120)  # LOT_SIZE / MARKET_LOT_SIZE maxQty
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
        "GTX": TimeInForce.POST_ONLY}  # fmt: skip
_TIF_NAME = {v: k for k, v in _TIF.items()}
_REJECT = {
    Reject.INSUFFICIENT_BALANCE: (-2019, "Margin is insufficient."),
    Reject.REDUCE_ONLY: (-2022, "ReduceOnly Order is rejected."),
    Reject.WOULD_TAKE: (-5022, "Due to the order could not be executed as maker, the Post Only "
                        "order will be rejected. The order will not be recorded in the order "
                        "history"),
}


def dec(x: Decimal) -> str:
    """Futures numbers: plain decimals (``"0.010"`` style is the venue's; exact here)."""
    s = format(x.normalize(), "f")
    return "0" if s == "-0" else s


class BinanceFuturesTrading(BinanceTrading):
    """See the module docstring."""

    def __init__(self, venue: Any, core: TradingCore, listen_key_ttl: float) -> None:
        super().__init__(venue, core, listen_key_ttl)
        core.use_contracts(max_leverage=MAX_LEVERAGE, default_leverage=DEFAULT_LEVERAGE,
                           funding_interval_s=float(venue.knob("funding_interval_h")) * 3600)  # fmt: skip
        core.mark_source = lambda s: Decimal(f"{venue.mark_index(s)[0]:.8f}")
        core.rate_source = lambda s: Decimal(venue._mark_price(s, now_ms())["r"])
        core.contract_listeners.append(self._on_contract)
        self.reduce_only: dict[int, bool] = {}

    def _routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/fapi/v1/order", self.post_order)
        r.add_delete("/fapi/v1/order", self.delete_order)
        r.add_put("/fapi/v1/order", self.put_order)
        r.add_get("/fapi/v1/order", self.get_order)
        r.add_get("/fapi/v1/openOrders", self.get_open_orders)
        r.add_get("/fapi/v2/balance", self.get_balance)
        r.add_get("/fapi/v2/positionRisk", self.get_position_risk)
        r.add_post("/fapi/v1/leverage", self.post_leverage)
        r.add_post("/fapi/v1/marginType", self.post_margin_type)
        r.add_post("/fapi/v1/listenKey", self.listen_key_new)
        r.add_put("/fapi/v1/listenKey", self.listen_key_keepalive)
        r.add_delete("/fapi/v1/listenKey", self.listen_key_close)

    # ================================================================ orders

    def _parse_new(self, p: dict[str, str]) -> NewOrder:
        sym = self._symbol(p)
        side_raw, typ = p.get("side"), p.get("type")
        if not side_raw:
            raise _mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        if not typ:
            raise _mandatory("type")
        if typ not in ("LIMIT", "MARKET"):
            raise ApiError(-1116, "Invalid orderType.")
        if p.get("positionSide", "BOTH") != "BOTH":
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        ro_raw = p.get("reduceOnly", "false")
        if ro_raw not in ("true", "false"):
            raise ApiError(-1100, "Illegal characters found in parameter 'reduceOnly'; legal "
                           "range is 'true, false'.")  # fmt: skip
        qty, price = self._decimal(p, "quantity"), self._decimal(p, "price")
        if not qty:
            raise _mandatory("quantity")
        tif_raw = p.get("timeInForce")
        if typ == "LIMIT":
            for name, val in (("timeInForce", tif_raw), ("price", price)):
                if not val:
                    raise _mandatory(name)
            if tif_raw not in _TIF:
                raise ApiError(-1115, "Invalid timeInForce.")
            tif = _TIF[tif_raw]  # type: ignore[index]
        else:
            if price is not None:
                raise ApiError(-1106, "Parameter 'price' sent when not required.")
            tif = TimeInForce.IOC
        resp = p.get("newOrderRespType", "ACK")
        if resp not in ("ACK", "RESULT"):
            raise ApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'; "
                           "legal range is 'ACK, RESULT'.")  # fmt: skip
        spec = self.core.specs[sym]
        if price is not None and price % spec.tick_size:
            raise ApiError(-4014, "Price not increased by tick size.")
        if qty % spec.step_size:
            raise ApiError(-4023, "Quantity not increased by step size.")
        if qty > (MARKET_MAX_QTY if typ == "MARKET" else MAX_QTY):
            raise ApiError(-4005, "Quantity greater than max quantity.")
        ref = price if price is not None else self.core.mid(sym)
        if ro_raw != "true" and ref * qty < MIN_NOTIONAL:
            raise ApiError(-4164, f"Order's notional must be no smaller than {MIN_NOTIONAL} "
                           "(unless you choose reduce only).")  # fmt: skip
        return NewOrder(symbol=sym, side=Side[side_raw], type=typ, tif=tif, qty=qty, price=price,
                        quote_qty=Decimal(0), cid=self._client_id(p, "newClientOrderId")
                        or new_client_id(), resp=resp, reduce_only=ro_raw == "true")  # fmt: skip

    def _place(self, key: str, o: NewOrder) -> dict[str, Any]:
        r = self.core.place(key, o.symbol, o.side, o.qty, o.price,
                            OrderType.MARKET if o.type == "MARKET" else OrderType.LIMIT, o.tif,
                            o.cid, reduce_only=o.reduce_only)  # fmt: skip
        if not r.accepted:
            code, msg = _REJECT.get(r.code, (-1013, r.reason))
            raise ApiError(code, msg)
        self.meta[r.order_id] = (o.type, _TIF_NAME[o.tif] if o.type == "LIMIT" else "GTC",
                                 Decimal(0))  # fmt: skip
        self.reduce_only[r.order_id] = o.reduce_only
        return self._order(self.core.orders[r.order_id].last)

    def _order(self, e: OrderEvent) -> dict[str, Any]:
        """One order as "New Order" (RESULT), "Query Order" and the open orders show it."""
        typ, tif, _ = self.meta.get(e.order_id, ("LIMIT", "GTC", Decimal(0)))
        rec = self.core.orders[e.order_id]
        avg = e.cum_quote / e.filled_qty if e.filled_qty else Decimal(0)
        return {
            "avgPrice": dec(avg), "clientOrderId": e.client_order_id, "cumQuote": dec(e.cum_quote),
            "executedQty": dec(e.filled_qty), "orderId": e.order_id, "origQty": dec(e.qty),
            "origType": typ, "price": dec(e.price), "reduceOnly": self.reduce_only.get(e.order_id, False),
            "side": e.side.name, "positionSide": "BOTH", "status": _STATUS[e.status],
            "stopPrice": "0", "closePosition": False, "symbol": e.symbol, "time": rec.created_ms,
            "timeInForce": tif, "type": typ, "activatePrice": "0", "priceRate": "0",
            "updateTime": rec.updated_ms, "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
        }  # fmt: skip

    def _query_fields(self, e: OrderEvent) -> dict[str, Any]:
        return self._order(e)

    def _forget(self, order_id: int) -> None:
        super()._forget(order_id)
        self.reduce_only.pop(order_id, None)

    async def post_order(self, request: web.Request) -> web.Response:
        return await self._handle(request, 0, True, lambda k, p: (200, self._place(k, self._parse_new(p))))

    async def delete_order(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            rec = self._lookup(k, self._symbol(p), p, "orderId", "origClientOrderId")
            if rec is None or rec.last.order_id not in self.core.engine.orders:
                raise ApiError(-2011, "Unknown order sent.")
            self.core.cancel(k, order_id=rec.last.order_id)
            return 200, self._order(self.core.orders[rec.last.order_id].last)
        return await self._handle(request, 1, True, run)

    async def put_order(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            sym = self._symbol(p)
            for name in ("side", "quantity", "price"):
                if not p.get(name):
                    raise _mandatory(name)
            qty, price = self._decimal(p, "quantity"), self._decimal(p, "price")
            rec = self._lookup(k, sym, p, "orderId", "origClientOrderId")
            if rec is None or rec.last.order_id not in self.core.engine.orders:
                raise ApiError(-2013, "Order does not exist.")
            e = rec.last
            if p["side"] != e.side.name:
                raise ApiError(-4061, "Order's side does not match the original order.")
            if qty == e.qty and price == e.price:
                raise ApiError(-5027, "No need to modify the order.")
            r = self.core.amend(k, e.order_id, new_qty=qty, new_price=price)
            if not r.accepted:
                code, msg = _REJECT.get(r.code, (-2013 if r.code == Reject.UNKNOWN_ORDER else -1013,
                                                 r.reason))  # fmt: skip
                raise ApiError(code, msg)
            return 200, self._order(self.core.orders[e.order_id].last)
        return await self._handle(request, 1, True, run)

    # ================================================================ account

    def _balances(self, key: str) -> list[dict[str, Any]]:
        out = []
        for asset, (free, locked) in sorted(self.core.wallet(key).items()):
            held = [x for x in self.core.positions(key) if self.core.specs[x.symbol].settle == asset]
            upnl = sum((x.upnl(self.core.mark(x.symbol)) for x in held), Decimal(0))
            out.append({"accountAlias": "SgsR", "asset": asset, "balance": dec(free + locked),
                        "crossWalletBalance": dec(free + locked), "crossUnPnl": dec(upnl),
                        "availableBalance": dec(free + min(upnl, Decimal(0))),
                        "maxWithdrawAmount": dec(max(free, Decimal(0))), "marginAvailable": True,
                        "updateTime": now_ms()})  # fmt: skip
        return out

    def _risk(self, x: Position) -> dict[str, Any]:
        """One position as in "Position Information V2"."""
        mark = self.core.mark(x.symbol)
        iso = x.margin_mode == ISOLATED
        return {
            "entryPrice": dec(x.entry), "breakEvenPrice": dec(x.entry), "marginType":
            "isolated" if iso else "cross", "isAutoAddMargin": "false",
            "isolatedMargin": dec(x.margin if iso else Decimal(0)), "leverage": str(int(x.leverage)),
            "liquidationPrice": "0", "markPrice": dec(mark), "maxNotionalValue": "1000000",
            "positionAmt": dec(x.size), "notional": dec(x.size * mark),
            "isolatedWallet": dec(x.margin if iso else Decimal(0)), "symbol": x.symbol,
            "unRealizedProfit": dec(x.upnl(mark)), "positionSide": "BOTH",
            "updateTime": x.updated_ns // 1_000_000,
        }  # fmt: skip

    async def get_balance(self, request: web.Request) -> web.Response:
        return await self._handle(request, 5, True, lambda k, p: (200, self._balances(k)))

    async def get_position_risk(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            syms = [self._symbol(p)] if "symbol" in p else sorted(self.core.specs)
            return 200, [self._risk(self.core.position(k, s)) for s in syms]
        return await self._handle(request, 5, True, run)

    async def post_leverage(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            sym = self._symbol(p)
            lev = self._long(p, "leverage")
            if lev is None:
                raise _mandatory("leverage")
            if not 1 <= lev <= MAX_LEVERAGE:
                raise ApiError(-4028, f"Leverage {lev} is not valid")
            if not self.core.set_leverage(k, sym, Decimal(lev)).accepted:
                raise ApiError(-2019, "Margin is insufficient.")
            return 200, {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sym}
        return await self._handle(request, 1, True, run)

    async def post_margin_type(self, request: web.Request) -> web.Response:
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            sym = self._symbol(p)
            mt = p.get("marginType")
            if not mt:
                raise _mandatory("marginType")
            if mt not in ("ISOLATED", "CROSSED"):
                raise ApiError(-4044, "The margin type is invalid.")
            x = self.core.position(k, sym)
            if (x.margin_mode == ISOLATED) == (mt == "ISOLATED"):
                raise ApiError(-4046, "No need to change margin type.")
            if x.size:
                raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
            if not self.core.set_margin_mode(k, sym, mt == "ISOLATED").accepted:
                raise ApiError(-4047, "Margin type cannot be changed if there exists open orders.")
            return 200, {"code": 200, "msg": "success"}
        return await self._handle(request, 1, True, run)

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        """"Keepalive User Data Stream": no parameters; the account's key is extended."""
        def run(k: str, p: dict[str, str]) -> tuple[int, Any]:
            self._expire_keys()
            for lk, (acct, _) in self.listen_keys.items():
                if acct == k:
                    self.listen_keys[lk] = (k, time.monotonic() + self.listen_key_ttl)
                    return 200, {"listenKey": lk}
            raise ApiError(-1125, "This listenKey does not exist.")
        return await self._handle(request, 1, False, run)

    # ================================================================ user data

    def _account_update(self, key: str, reason: str, symbols: set[str], t: int) -> dict[str, Any]:
        """"Balance and Position Update" for the settle assets and ``symbols``."""
        specs = [self.core.specs[s] for s in symbols] or list(self.core.specs.values())
        wallet = self.core.wallet(key)
        bal = [{"a": a, "wb": dec(sum(wallet.get(a, (Decimal(0), Decimal(0))))),
                "cw": dec(sum(wallet.get(a, (Decimal(0), Decimal(0))))), "bc": "0"}
               for a in sorted({s.settle for s in specs})]  # fmt: skip
        pos = []
        for s in sorted(symbols):
            x = self.core.position(key, s)
            mark = self.core.mark(s)
            iso = x.margin_mode == ISOLATED
            pos.append({"s": s, "pa": dec(x.size), "ep": dec(x.entry), "bep": dec(x.entry),
                        "cr": dec(x.realized), "up": dec(x.upnl(mark)),
                        "mt": "isolated" if iso else "cross",
                        "iw": dec(x.margin if iso else Decimal(0)), "ps": "BOTH"})  # fmt: skip
        return {"e": "ACCOUNT_UPDATE", "E": now_ms(), "T": t, "a": {"m": reason, "B": bal, "P": pos}}

    def _on_result(self, r: Result) -> None:
        t = 0
        traded: dict[str, set[str]] = {}
        for e in r.events:
            self._push(e.account, self._order_update(e))
            t = ms(e.ts)
            if e.exec_type == "TRADE":
                traded.setdefault(e.account, set()).add(e.symbol)
        for acct, symbols in traded.items():
            self._push(acct, self._account_update(acct, "ORDER", symbols, t))

    def _on_deposit(self, api_key: str, asset: str, delta: Decimal, t: int) -> None:
        wb = dec(sum(self.core.wallet(api_key).get(asset, (Decimal(0), Decimal(0)))))
        self._push(api_key, {"e": "ACCOUNT_UPDATE", "E": now_ms(), "T": t, "a": {
            "m": "DEPOSIT", "B": [{"a": asset, "wb": wb, "cw": wb, "bc": dec(delta)}], "P": []}})

    def _on_contract(self, key: str, symbol: str, what: str, amount: Decimal, t: int) -> None:
        if what == "LEVERAGE":  # "Account Configuration Update": leverage of a symbol
            lev = int(self.core.position(key, symbol).leverage)
            self._push(key, {"e": "ACCOUNT_CONFIG_UPDATE", "E": now_ms(), "T": t,
                             "ac": {"s": symbol, "l": lev}})  # fmt: skip
        elif what == "FUNDING":  # cross: the balance only; isolated: also that position
            iso = self.core.position(key, symbol).margin_mode == ISOLATED
            upd = self._account_update(key, "FUNDING_FEE", {symbol} if iso else set(), t)
            for b in upd["a"]["B"]:
                b["bc"] = "0"
            self._push(key, upd)

    def _order_update(self, e: OrderEvent) -> dict[str, Any]:
        """"Order Update" (ORDER_TRADE_UPDATE) of one order event."""
        typ, tif, _ = self.meta.get(e.order_id, ("LIMIT", "GTC", Decimal(0)))
        x = {"AMENDED": "AMENDMENT"}.get(e.exec_type, e.exec_type)
        trade = x == "TRADE"
        avg = e.cum_quote / e.filled_qty if e.filled_qty else Decimal(0)
        o: dict[str, Any] = {
            "s": e.symbol, "c": e.client_order_id, "S": e.side.name, "o": typ, "f": tif,
            "q": dec(e.qty), "p": dec(e.price), "ap": dec(avg), "sp": "0", "x": x,
            "X": _STATUS[e.status], "i": e.order_id, "l": dec(e.last_qty), "z": dec(e.filled_qty),
            "L": dec(e.last_price), "T": ms(e.ts), "t": e.trade_id if trade else 0, "b": "0",
            "a": "0", "m": e.is_maker if trade else False,
            "R": self.reduce_only.get(e.order_id, e.reduce_only), "wt": "CONTRACT_PRICE",
            "ot": typ, "ps": "BOTH", "cp": False, "rp": dec(e.realized_pnl), "pP": False,
            "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
        }  # fmt: skip
        if trade:  # "N"/"n": "will not push if no commission"
            o["N"], o["n"] = e.fee_asset, dec(e.fee)
        if e.status == OrderStatus.EXPIRED:
            o["er"] = "0"
        return {"e": "ORDER_TRADE_UPDATE", "E": now_ms(), "T": ms(e.ts), "o": o}
