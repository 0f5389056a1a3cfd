"""Binance Spot order entry: commands -> REST requests, responses -> ``OrderAck``.

- CreateOrder -> ``POST /api/v3/order`` (``LIMIT`` + ``timeInForce``, ``MARKET``, and
  post-only as ``LIMIT_MAKER``), ``newClientOrderId`` = the command's client order id.
- CancelOrder -> ``DELETE /api/v3/order`` by ``orderId`` (faster, per the docs) or
  ``origClientOrderId``.
- AmendOrder -> ``PUT /api/v3/order/amend/keepPriority`` when only the quantity goes down
  (the only change it allows; queue priority is kept), else
  ``POST /api/v3/order/cancelReplace`` (``STOP_ON_FAILURE``; the new order loses priority
  and needs the order's side/type/time in force, so the latest known ``OrderUpdate`` of the
  order must be given).

Every command either becomes a :class:`VenueRequest` or, if it cannot be valid, a rejected
``OrderAck`` with code ``LOCAL`` and the reason; no request is sent for it.
"""

from __future__ import annotations

import re

import msgspec

from ttxt_mp.connectors.instruments import (
    InstrumentBook,
    VenueRequest,
    format_price,
    format_qty,
    reject_ack,
    to_decimal,
)
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    OrderAck,
    OrderAction,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

__all__ = ["BinanceOrderDenormalizer", "CLIENT_ID_RE"]

EXCHANGE = "binance"
CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
"""Binance's documented pattern for client order ids."""

ORDER_PATH = "/api/v3/order"
AMEND_KEEP_PRIORITY_PATH = "/api/v3/order/amend/keepPriority"
CANCEL_REPLACE_PATH = "/api/v3/order/cancelReplace"

_SIDE = {Side.BUY: "BUY", Side.SELL: "SELL"}
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}


def _limit_type(params: dict[str, str], tif: TimeInForce) -> None:
    """A limit order's ``type``: post-only is ``LIMIT_MAKER`` (no time in force)."""
    if tif == TimeInForce.POST_ONLY:
        params["type"] = "LIMIT_MAKER"
    else:
        params["type"] = "LIMIT"
        params["timeInForce"] = _TIF[tif]


def _order_ref(native_symbol: str, cmd: CancelOrder | AmendOrder) -> dict[str, str]:
    """Which order: by ``orderId`` when known (faster, per the docs), else the client id."""
    if cmd.order_id:
        return {"symbol": native_symbol, "orderId": cmd.order_id}
    return {"symbol": native_symbol, "origClientOrderId": cmd.client_order_id}


def _request(
    method: str, path: str, params: dict[str, str], action: OrderAction,
    cmd: CreateOrder | CancelOrder | AmendOrder,
) -> VenueRequest:
    return VenueRequest(
        method=method, path=path, params=params, action=action,
        client_order_id=cmd.client_order_id, symbol=cmd.symbol, exchange=EXCHANGE,
    )  # fmt: skip


# --------------------------------------------------------------------------- response shapes


class _Error(msgspec.Struct):
    code: int
    msg: str = ""


class _OrderResp(msgspec.Struct):
    """ACK/RESULT/FULL order response, cancel response, amended order (fields used)."""

    orderId: int | None = None
    clientOrderId: str = ""
    origClientOrderId: str = ""
    status: str = ""


class _AmendResp(msgspec.Struct):
    amendedOrder: _OrderResp


class _CancelReplaceResp(msgspec.Struct):
    cancelResult: str
    newOrderResult: str
    cancelResponse: _OrderResp | None = None
    newOrderResponse: _OrderResp | None = None


class _CRPart(msgspec.Struct):
    code: int | None = None
    msg: str = ""
    orderId: int | None = None


class _CRData(msgspec.Struct):
    cancelResult: str = ""
    newOrderResult: str = ""
    cancelResponse: _CRPart | None = None
    newOrderResponse: _CRPart | None = None


class _CRError(msgspec.Struct):
    code: int
    msg: str = ""
    data: _CRData | None = None


_ERROR = msgspec.json.Decoder(_Error)
_ORDER = msgspec.json.Decoder(_OrderResp)
_AMEND = msgspec.json.Decoder(_AmendResp)
_CREPLACE = msgspec.json.Decoder(_CancelReplaceResp)
_CRERROR = msgspec.json.Decoder(_CRError)


class BinanceOrderDenormalizer:
    """Pure translation of order commands for Binance Spot (see module docstring)."""

    exchange = EXCHANGE

    def __init__(self, instruments: InstrumentBook, *, response_type: str = "ACK") -> None:
        if instruments.exchange != EXCHANGE:
            raise ValueError(f"instrument book is for {instruments.exchange}, not {EXCHANGE}")
        if response_type not in ("ACK", "RESULT", "FULL"):
            raise ValueError(f"newOrderRespType must be ACK, RESULT or FULL, got {response_type!r}")
        self.instruments = instruments
        self.response_type = response_type

    # -- commands -> requests

    def _precheck(self, cmd, action: OrderAction) -> OrderAck | None:
        reason = self.instruments.validate(cmd)
        if reason is None and cmd.client_order_id and not CLIENT_ID_RE.match(cmd.client_order_id):
            reason = (
                f"client_order_id {cmd.client_order_id!r} does not match Binance's pattern "
                f"{CLIENT_ID_RE.pattern}"
            )
        if reason is None and action == OrderAction.CREATE and not cmd.client_order_id:
            reason = "client_order_id is required to correlate the ack"
        return reject_ack(cmd, action, reason, local_ts=cmd.local_ts) if reason else None

    def create(self, cmd: CreateOrder) -> VenueRequest | OrderAck:
        if (ack := self._precheck(cmd, OrderAction.CREATE)) is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        params = {"symbol": inst.native_symbol, "side": _SIDE[cmd.side]}
        if cmd.order_type == OrderType.MARKET:
            params["type"] = "MARKET"
        else:
            _limit_type(params, cmd.tif)
        params["quantity"] = format_qty(inst, cmd.qty)
        if cmd.order_type == OrderType.LIMIT:
            params["price"] = format_price(inst, cmd.price)
        return self._new_order(ORDER_PATH, params, OrderAction.CREATE, cmd)

    def cancel(self, cmd: CancelOrder) -> VenueRequest | OrderAck:
        if (ack := self._precheck(cmd, OrderAction.CANCEL)) is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        params = _order_ref(inst.native_symbol, cmd)
        return _request("DELETE", ORDER_PATH, params, OrderAction.CANCEL, cmd)

    def amend(self, cmd: AmendOrder, current: OrderUpdate | None = None) -> VenueRequest | OrderAck:
        """``current``: the latest known state of the order (needed to change its price)."""
        if (ack := self._precheck(cmd, OrderAction.AMEND)) is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        price_changes = bool(cmd.new_price) and (current is None or cmd.new_price != current.price)
        qty_down = bool(cmd.new_qty) and (current is None or cmd.new_qty < current.qty)
        if not price_changes and qty_down:
            params = _order_ref(inst.native_symbol, cmd)
            params["newClientOrderId"] = cmd.client_order_id  # keep the id (documented)
            params["newQty"] = format_qty(inst, cmd.new_qty)
            return _request("PUT", AMEND_KEEP_PRIORITY_PATH, params, OrderAction.AMEND, cmd)
        if current is None:
            return reject_ack(
                cmd, OrderAction.AMEND,
                "changing the price (or raising the quantity) of a Binance order is a "
                "cancel-replace, which needs the order's current state (side, quantity, "
                "type); none is known for this order",
                local_ts=cmd.local_ts,
            )  # fmt: skip
        if current.order_type != OrderType.LIMIT:
            return reject_ack(cmd, OrderAction.AMEND, "only limit orders can be amended",
                              local_ts=cmd.local_ts)
        total = to_decimal(cmd.new_qty or current.qty)
        remaining = total - to_decimal(current.filled_qty)
        if remaining <= 0:
            return reject_ack(
                cmd, OrderAction.AMEND,
                f"new qty {total} does not exceed the filled qty {current.filled_qty}",
                local_ts=cmd.local_ts,
            )
        params = {
            "symbol": inst.native_symbol,
            "side": _SIDE[current.side],
            "cancelReplaceMode": "STOP_ON_FAILURE",
        }
        _limit_type(params, current.tif)
        params["quantity"] = format_qty(inst, remaining)
        params["price"] = format_price(inst, cmd.new_price or current.price)
        if cmd.order_id or current.order_id:
            params["cancelOrderId"] = cmd.order_id or current.order_id
        else:
            params["cancelOrigClientOrderId"] = cmd.client_order_id
        return self._new_order(CANCEL_REPLACE_PATH, params, OrderAction.AMEND, cmd)

    def _new_order(
        self, path: str, params: dict[str, str], action: OrderAction, cmd: CreateOrder | AmendOrder
    ) -> VenueRequest:
        """A POST that places an order: it carries the client order id and the response type."""
        params["newClientOrderId"] = cmd.client_order_id
        params["newOrderRespType"] = self.response_type
        return _request("POST", path, params, action, cmd)

    # -- responses -> acks

    def parse_ack(self, req: VenueRequest, status: int, body: bytes, local_ts: int = 0) -> OrderAck:
        """The ``OrderAck`` for the response to ``req`` (success or the venue's error)."""

        def ack(accepted: bool, order_id: str = "", code: str = "", message: str = "") -> OrderAck:
            return OrderAck(
                exchange=EXCHANGE, symbol=req.symbol, client_order_id=req.client_order_id,
                action=req.action, accepted=accepted, order_id=order_id, code=code,
                message=message, local_ts=local_ts,
            )  # fmt: skip

        try:
            if not 200 <= status < 300:
                if req.path == CANCEL_REPLACE_PATH:
                    err = _CRERROR.decode(body)
                    return ack(False, code=str(err.code), message=_cancel_replace_message(err))
                err = _ERROR.decode(body)
                return ack(False, code=str(err.code), message=err.msg)
            if req.path == AMEND_KEEP_PRIORITY_PATH:
                order = _AMEND.decode(body).amendedOrder
            elif req.path == CANCEL_REPLACE_PATH:
                cr = _CREPLACE.decode(body)
                order = cr.newOrderResponse or _OrderResp()
            else:
                order = _ORDER.decode(body)
        except msgspec.DecodeError as e:
            raise msgspec.DecodeError(
                f"binance: unexpected response to {req.method} {req.path} (HTTP {status}): {e}"
            ) from None
        if req.action == OrderAction.CREATE and order.clientOrderId != req.client_order_id:
            raise ValueError(
                f"binance: response clientOrderId {order.clientOrderId!r} does not match the "
                f"request's {req.client_order_id!r}"
            )
        return ack(True, "" if order.orderId is None else str(order.orderId))


def _cancel_replace_message(err: _CRError) -> str:
    """The error with both halves: a cancel that succeeded matters (the order is gone)."""
    if err.data is None:
        return err.msg
    d = err.data
    parts = [f"cancel: {d.cancelResult}"]
    if d.cancelResponse is not None and d.cancelResponse.code is not None:
        parts[-1] += f" ({d.cancelResponse.code} {d.cancelResponse.msg})"
    parts.append(f"new order: {d.newOrderResult}")
    if d.newOrderResponse is not None and d.newOrderResponse.code is not None:
        parts[-1] += f" ({d.newOrderResponse.code} {d.newOrderResponse.msg})"
    note = ""
    if d.cancelResult == "SUCCESS" and d.newOrderResult != "SUCCESS":
        note = "; the original order was canceled and not replaced"
    return f"{err.msg} [{'; '.join(parts)}]{note}"
