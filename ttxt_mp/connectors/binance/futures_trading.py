"""Binance USDⓈ-M futures trading venue (market ``linear``): the Spot venue
(:class:`~ttxt_mp.connectors.binance.trading.BinanceTrading`: signing, listen-key stream,
reconciliation) over the futures REST API, from the USDⓈ-M docs:

- Instruments ``GET /fapi/v1/exchangeInfo``; server time ``GET /fapi/v1/time``.
- Orders: :class:`BinanceFuturesOrderDenormalizer` (``POST/DELETE/PUT /fapi/v1/order``);
  user data: :class:`BinanceFuturesPrivateNormalizer` (``ORDER_TRADE_UPDATE``,
  ``ACCOUNT_UPDATE``, ``ACCOUNT_CONFIG_UPDATE``).
- User data stream: ``POST /fapi/v1/listenKey`` (weight 1), kept alive by ``PUT`` (no
  parameters) within its 60 minutes; the socket ``<ws>/ws/<listenKey>``.
- Reconciliation: ``GET /fapi/v1/openOrders`` (weight 40 without a symbol), ``GET
  /fapi/v2/balance`` (5), ``GET /fapi/v2/positionRisk`` (5); one order ``GET
  /fapi/v1/order`` (1; -2013 "Order does not exist.").
- ``SetLeverage``: ``POST /fapi/v1/marginType`` (``ISOLATED``/``CROSSED``; -4046 "No need
  to change margin type." means it already is) then ``POST /fapi/v1/leverage`` (an integer
  1..the symbol's maximum).
"""

from __future__ import annotations

import msgspec

from ttxt_mp.connectors.binance.futures_denormalizer import BinanceFuturesOrderDenormalizer
from ttxt_mp.connectors.binance.futures_private import BinanceFuturesPrivateNormalizer
from ttxt_mp.connectors.binance.trading import BinanceTrading
from ttxt_mp.connectors.instruments import reject_ack
from ttxt_mp.connectors.trading import UnknownOutcome
from ttxt_mp.events import MarginMode, OrderAck, OrderAction, PositionUpdate, SetLeverage
from ttxt_mp.web import RESTError

__all__ = ["BinanceFuturesTrading"]

NO_NEED_TO_CHANGE_MARGIN_TYPE = "-4046"
_MARGIN_TYPE = {MarginMode.CROSS: "CROSSED", MarginMode.ISOLATED: "ISOLATED"}


class BinanceFuturesTrading(BinanceTrading):
    time_path = "/fapi/v1/time"
    open_orders_call = ("/fapi/v1/openOrders", 40)
    account_call = ("/fapi/v2/balance", 5)
    order_call = ("/fapi/v1/order", 1)
    listen_key_call = ("/fapi/v1/listenKey", 1)
    listen_key_param = False
    positions_call = ("/fapi/v2/positionRisk", 5)
    denormalizer_class = BinanceFuturesOrderDenormalizer
    private_class = BinanceFuturesPrivateNormalizer

    async def positions(self, symbol: str | None = None) -> list[PositionUpdate]:
        params = None
        if symbol is not None:
            inst = self.instruments.get(symbol) if self.instruments else None
            params = {"symbol": inst.native_symbol if inst else symbol}
        body = await self._get(self.positions_call, params)
        return self.private.parse_positions(body, symbol=symbol)

    async def set_leverage(self, cmd: SetLeverage) -> OrderAck:
        inst = self.instruments.get(cmd.symbol) if self.instruments else None
        reason = None
        if inst is None:
            reason = f"unknown symbol {cmd.symbol!r} on binance linear"
        elif cmd.leverage and (cmd.leverage != int(cmd.leverage) or cmd.leverage < 1):
            reason = f"leverage {cmd.leverage:g} is not an integer >= 1 (USDⓈ-M leverage)"
        if reason is not None:
            return reject_ack(cmd, OrderAction.SET_LEVERAGE, reason)
        assert inst is not None
        if cmd.margin_mode != MarginMode.UNCHANGED:
            err = await self._post("/fapi/v1/marginType", {
                "symbol": inst.native_symbol, "marginType": _MARGIN_TYPE[cmd.margin_mode]})
            if err is not None and err[0] != NO_NEED_TO_CHANGE_MARGIN_TYPE:
                return self.setting_ack(cmd, *err)
        if cmd.leverage:
            err = await self._post("/fapi/v1/leverage", {
                "symbol": inst.native_symbol, "leverage": str(int(cmd.leverage))})
            if err is not None:
                return self.setting_ack(cmd, *err)
        return self.setting_ack(cmd)

    async def _post(self, path: str, params: dict[str, str]) -> tuple[str, str] | None:
        """A signed POST: None if it succeeded, else the venue's (code, message);
        :class:`UnknownOutcome` when no answer says which."""
        try:
            resp = await self.rest.request("POST", path, params=params, weight=1, signed=True,
                                           raw=True)  # fmt: skip
        except RESTError as e:
            if e.status is None or e.status >= 500:
                raise UnknownOutcome(str(e)) from None
            return str(e.code if e.code is not None else e.status), e.message
        try:
            msgspec.json.decode(resp.body)
        except msgspec.DecodeError as e:
            raise UnknownOutcome(f"unreadable response to {path}: {e}") from None
        return None
