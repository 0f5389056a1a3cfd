"""Binance USDⓈ-M futures order entry: the Spot translation with the futures differences.

From the USDⓈ-M "New Order", "Cancel Order", "Modify Order" pages:

- CreateOrder -> ``POST /fapi/v1/order``: ``LIMIT`` + ``timeInForce`` (post-only is
  ``GTX``: there is no ``LIMIT_MAKER``), ``MARKET``; ``reduceOnly=true`` for a reduce-only
  order; ``positionSide`` ``LONG``/``SHORT`` in hedge mode (one-way mode: omitted, the
  default ``BOTH``).
- CancelOrder -> ``DELETE /fapi/v1/order`` (``orderId`` or ``origClientOrderId``).
- AmendOrder -> ``PUT /fapi/v1/order`` ("Modify Order": ``side``, ``quantity`` and
  ``price`` are all mandatory, so the order's latest known state is needed; a limit order
  only). Its answer is the modified order.
"""

from __future__ import annotations

import msgspec

from ttxt_mp.connectors.binance.denormalizer import BinanceOrderDenormalizer
from ttxt_mp.connectors.instruments import VenueRequest, format_price, format_qty, reject_ack
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    OrderAck,
    OrderAction,
    OrderType,
    OrderUpdate,
    PositionSide,
)

__all__ = ["BinanceFuturesOrderDenormalizer", "FUTURES_ORDER_PATH"]

FUTURES_ORDER_PATH = "/fapi/v1/order"
_POSITION_SIDE = {PositionSide.LONG: "LONG", PositionSide.SHORT: "SHORT"}


class BinanceFuturesOrderDenormalizer(BinanceOrderDenormalizer):
    """Pure translation of order commands for USDⓈ-M futures (see module docstring)."""

    def create(self, cmd: CreateOrder) -> VenueRequest | OrderAck:
        req = super().create(cmd)
        if isinstance(req, OrderAck):
            return req
        params = dict(req.params)
        if params.get("type") == "LIMIT_MAKER":
            params["type"], params["timeInForce"] = "LIMIT", "GTX"
        if cmd.reduce_only:
            params["reduceOnly"] = "true"
        if cmd.position_side in _POSITION_SIDE:
            params["positionSide"] = _POSITION_SIDE[cmd.position_side]
        params["newOrderRespType"] = self.response_type if self.response_type != "FULL" else "RESULT"
        return msgspec.structs.replace(req, path=FUTURES_ORDER_PATH, params=params)

    def cancel(self, cmd: CancelOrder) -> VenueRequest | OrderAck:
        req = super().cancel(cmd)
        return req if isinstance(req, OrderAck) else msgspec.structs.replace(
            req, path=FUTURES_ORDER_PATH)

    def amend(self, cmd: AmendOrder, current: OrderUpdate | None = None) -> VenueRequest | OrderAck:
        if (ack := self._precheck(cmd, OrderAction.AMEND)) is not None:
            return ack
        if current is None or current.order_type != OrderType.LIMIT:
            why = ("no state is known for this order" if current is None
                   else "only limit orders can be modified")  # fmt: skip
            return reject_ack(cmd, OrderAction.AMEND, f"a futures order modify needs the order's "
                              f"side, quantity and price: {why}", local_ts=cmd.local_ts)  # fmt: skip
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        params = {"symbol": inst.native_symbol}
        if cmd.order_id or current.order_id:
            params["orderId"] = cmd.order_id or current.order_id
        else:
            params["origClientOrderId"] = cmd.client_order_id
        params["side"] = current.side.name
        params["quantity"] = format_qty(inst, cmd.new_qty or current.qty)
        params["price"] = format_price(inst, cmd.new_price or current.price)
        return VenueRequest(
            method="PUT", path=FUTURES_ORDER_PATH, params=params, action=OrderAction.AMEND,
            client_order_id=cmd.client_order_id, symbol=cmd.symbol, exchange=self.exchange,
        )  # fmt: skip
