"""Bybit v5 order entry: commands -> ``/v5/order/create|cancel|amend``, responses -> acks.

Bodies are compact JSON (``msgspec``), signed byte for byte by :class:`BybitSigner`.
``category`` comes from the instrument (``spot`` for spot pairs). ``orderLinkId`` is the
command's client order id (max 36 letters, digits, ``-``, ``_``). Spot market orders are
sent with ``marketUnit: baseCoin`` so ``qty`` is always in the base coin (a UTA spot
market *buy* is otherwise sized in the quote coin). Amend changes price and/or quantity in
place (``/v5/order/amend``); Bybit documents no priority rule for it.

Bybit answers HTTP 200 with ``retCode`` 0 on success and a non-zero ``retCode`` and
``retMsg`` on failure; both become an ``OrderAck``.
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
)
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    OrderAck,
    OrderAction,
    OrderType,
    Side,
    TimeInForce,
)

__all__ = ["BybitOrderDenormalizer", "ORDER_LINK_ID_RE"]

EXCHANGE = "bybit"
ORDER_LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
CREATE_PATH = "/v5/order/create"
CANCEL_PATH = "/v5/order/cancel"
AMEND_PATH = "/v5/order/amend"
JSON_HEADERS = {"Content-Type": "application/json"}

_SIDE = {Side.BUY: "Buy", Side.SELL: "Sell"}
_TIF = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.POST_ONLY: "PostOnly",
}
_ENCODE = msgspec.json.Encoder()


class _Result(msgspec.Struct):
    orderId: str = ""
    orderLinkId: str = ""


class _Response(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: _Result | None = None


_RESPONSE = msgspec.json.Decoder(_Response)


class BybitOrderDenormalizer:
    """Pure translation of order commands for Bybit v5 (see module docstring)."""

    exchange = EXCHANGE

    def __init__(self, instruments: InstrumentBook) -> None:
        if instruments.exchange != EXCHANGE:
            raise ValueError(f"instrument book is for {instruments.exchange}, not {EXCHANGE}")
        self.instruments = instruments

    def _precheck(self, cmd, action: OrderAction) -> OrderAck | None:
        reason = self.instruments.validate(cmd)
        cid = cmd.client_order_id
        if reason is None and cid and not ORDER_LINK_ID_RE.match(cid):
            reason = (
                f"client_order_id {cid!r} is not a valid Bybit orderLinkId "
                "(1-36 letters, digits, '-' or '_')"
            )
        if reason is None and action == OrderAction.CREATE and not cid:
            reason = "client_order_id is required to correlate the ack"
        return reject_ack(cmd, action, reason, local_ts=cmd.local_ts) if reason else None

    def _request(self, path: str, action: OrderAction, cmd, body: dict) -> VenueRequest:
        return VenueRequest(
            method="POST", path=path, body=_ENCODE.encode(body), headers=dict(JSON_HEADERS),
            action=action, client_order_id=cmd.client_order_id, symbol=cmd.symbol,
            exchange=EXCHANGE,
        )  # fmt: skip

    @staticmethod
    def _ids(body: dict, cmd: CancelOrder | AmendOrder) -> None:
        if cmd.order_id:
            body["orderId"] = cmd.order_id
        else:
            body["orderLinkId"] = cmd.client_order_id

    def create(self, cmd: CreateOrder) -> VenueRequest | OrderAck:
        if (ack := self._precheck(cmd, OrderAction.CREATE)) is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        body: dict = {
            "category": inst.kind,
            "symbol": inst.native_symbol,
            "side": _SIDE[cmd.side],
            "orderType": "Market" if cmd.order_type == OrderType.MARKET else "Limit",
            "qty": format_qty(inst, cmd.qty),
        }
        if cmd.order_type == OrderType.LIMIT:
            body["price"] = format_price(inst, cmd.price)
            body["timeInForce"] = _TIF[cmd.tif]
        else:
            body["timeInForce"] = "IOC"
            if inst.kind == "spot":
                body["marketUnit"] = "baseCoin"
        body["orderLinkId"] = cmd.client_order_id
        if cmd.reduce_only:
            body["reduceOnly"] = True
        if inst.kind != "spot":  # "positionIdx": 0 one-way, 1 hedge-mode buy side, 2 sell side
            body["positionIdx"] = int(cmd.position_side)
        return self._request(CREATE_PATH, OrderAction.CREATE, cmd, body)

    def cancel(self, cmd: CancelOrder) -> VenueRequest | OrderAck:
        if (ack := self._precheck(cmd, OrderAction.CANCEL)) is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        body: dict = {"category": inst.kind, "symbol": inst.native_symbol}
        self._ids(body, cmd)
        return self._request(CANCEL_PATH, OrderAction.CANCEL, cmd, body)

    def amend(self, cmd: AmendOrder, current: object = None) -> VenueRequest | OrderAck:
        """``current`` is accepted for symmetry with Binance; Bybit amends in place."""
        if (ack := self._precheck(cmd, OrderAction.AMEND)) is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        body: dict = {"category": inst.kind, "symbol": inst.native_symbol}
        self._ids(body, cmd)
        if cmd.new_qty:
            body["qty"] = format_qty(inst, cmd.new_qty)
        if cmd.new_price:
            body["price"] = format_price(inst, cmd.new_price)
        return self._request(AMEND_PATH, OrderAction.AMEND, cmd, body)

    def parse_ack(self, req: VenueRequest, status: int, body: bytes, local_ts: int = 0) -> OrderAck:
        try:
            resp = _RESPONSE.decode(body)
        except msgspec.DecodeError as e:
            raise msgspec.DecodeError(
                f"bybit: unexpected response to {req.method} {req.path} (HTTP {status}): {e}"
            ) from None
        ok = resp.retCode == 0 and 200 <= status < 300
        result = resp.result if resp.result is not None else _Result()
        if ok and req.action == OrderAction.CREATE and result.orderLinkId != req.client_order_id:
            raise ValueError(
                f"bybit: response orderLinkId {result.orderLinkId!r} does not match the "
                f"request's {req.client_order_id!r}"
            )
        return OrderAck(
            exchange=EXCHANGE, symbol=req.symbol, client_order_id=req.client_order_id,
            action=req.action, accepted=ok, order_id=result.orderId,
            code="" if ok else str(resp.retCode if resp.retCode else status),
            message="" if ok else (resp.retMsg or f"HTTP {status}"), local_ts=local_ts,
        )  # fmt: skip
