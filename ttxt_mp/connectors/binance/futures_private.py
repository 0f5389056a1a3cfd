"""Binance USDⓈ-M futures user data -> ``OrderUpdate`` / ``Wallet`` / ``PositionUpdate``;
REST reconciliation parsers. The Spot normalizer's frame handling with the futures events
(USDⓈ-M "User Data Streams" pages):

- ``ORDER_TRADE_UPDATE`` -> ``OrderUpdate``: ``o.c`` client order id, ``o.x``/``o.X``
  execution type and status, ``o.l``/``o.L`` last fill, ``o.z`` cumulative qty, ``o.ap``
  average price, ``o.n``/``o.N`` fee of this fill and its asset, ``o.t`` trade id. ``GTX``
  is post-only. Stop/take-profit types are limit or market orders once triggered.
- ``ACCOUNT_UPDATE`` (reason ``a.m``: ORDER, FUNDING_FEE, DEPOSIT, ...) -> a ``Wallet`` of
  the balances ``a.B`` (``free`` = the wallet balance ``wb``, ``locked`` 0: futures margin
  is not a lock of the coin, so ``free + locked`` is the wallet balance that realized
  PnL, fees and funding move) and a ``PositionUpdate`` per position ``a.P`` (``pa`` signed
  size, ``ep`` entry, ``up`` unrealized PnL; the leverage last known for the symbol).
- ``ACCOUNT_CONFIG_UPDATE`` ``ac`` (a symbol's new leverage) -> the symbol's last known
  position with that leverage (none if no position was seen yet: the leverage is kept).
- ``listenKeyExpired`` -> ``ConnectorStatus(DOWN)`` (resubscribe and reconcile);
  ``MARGIN_CALL``, ``TRADE_LITE``, strategy and grid updates carry nothing here.

One-way mode (``ps`` ``BOTH``) is what a ``PositionUpdate`` per symbol describes.
REST: ``GET /fapi/v1/openOrders`` (and ``/fapi/v1/order``) -> ``list[OrderUpdate]``;
``GET /fapi/v2/balance`` -> ``Wallet``; ``GET /fapi/v2/positionRisk`` ->
``list[PositionUpdate]``.
"""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec

from ttxt_mp.connectors.binance.private import (
    _SIDES,
    _STATUS,
    EXCHANGE,
    MS,
    BinancePrivateNormalizer,
    _enum,
    _num,
)
from ttxt_mp.connectors.binance.private import _RestOrder as _SpotRestOrder
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.events import (
    Balance,
    Event,
    OrderType,
    OrderUpdate,
    PositionUpdate,
    TimeInForce,
    Wallet,
)

__all__ = ["BinanceFuturesPrivateNormalizer"]

_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
        "GTX": TimeInForce.POST_ONLY, "GTD": TimeInForce.GTC}  # fmt: skip
_MARKET_TYPES = frozenset({"MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET",
                           "LIQUIDATION"})  # fmt: skip
_LIMIT_TYPES = frozenset({"LIMIT", "STOP", "TAKE_PROFIT"})


class _Order(msgspec.Struct):
    symbol: str = msgspec.field(name="s")
    client_order_id: str = msgspec.field(name="c")
    side: str = msgspec.field(name="S")
    order_type: str = msgspec.field(name="o")
    tif: str = msgspec.field(name="f")
    qty: str = msgspec.field(name="q")
    price: str = msgspec.field(name="p")
    avg_price: str = msgspec.field(name="ap")
    exec_type: str = msgspec.field(name="x")
    status: str = msgspec.field(name="X")
    order_id: int = msgspec.field(name="i")
    last_qty: str = msgspec.field(name="l")
    cum_qty: str = msgspec.field(name="z")
    last_price: str = msgspec.field(name="L")
    trade_time: int = msgspec.field(name="T")
    trade_id: int = msgspec.field(default=0, name="t")
    fee: str = msgspec.field(default="0", name="n")  # "will not push if no commission"
    fee_asset: str = msgspec.field(default="", name="N")


class _OrderTradeUpdate(msgspec.Struct):
    event_time: int = msgspec.field(name="E")
    order: _Order = msgspec.field(name="o")


class _Bal(msgspec.Struct):
    asset: str = msgspec.field(name="a")
    wallet: str = msgspec.field(name="wb")


class _Pos(msgspec.Struct):
    symbol: str = msgspec.field(name="s")
    amount: str = msgspec.field(name="pa")
    entry: str = msgspec.field(name="ep")
    upnl: str = msgspec.field(default="0", name="up")
    side: str = msgspec.field(default="BOTH", name="ps")


class _Update(msgspec.Struct):
    reason: str = msgspec.field(default="", name="m")
    balances: list[_Bal] = msgspec.field(default_factory=list, name="B")
    positions: list[_Pos] = msgspec.field(default_factory=list, name="P")


class _AccountUpdate(msgspec.Struct):
    event_time: int = msgspec.field(name="E")
    update: _Update = msgspec.field(name="a")


class _Leverage(msgspec.Struct):
    symbol: str = msgspec.field(name="s")
    leverage: int = msgspec.field(name="l")


class _ConfigUpdate(msgspec.Struct):
    event_time: int = msgspec.field(name="E")
    ac: _Leverage | None = None  # "ai" (multi-assets mode) carries no leverage


class _RestOrder(_SpotRestOrder):
    avgPrice: str = "0"


class _RestBalance(msgspec.Struct):
    asset: str
    balance: str
    updateTime: int = 0


class _RestPosition(msgspec.Struct):
    symbol: str
    positionAmt: str
    entryPrice: str
    markPrice: str = "0"
    unRealizedProfit: str = "0"
    leverage: str = "0"
    positionSide: str = "BOTH"
    updateTime: int = 0


_OPEN_ORDERS = msgspec.json.Decoder(list[_RestOrder])
_BALANCES = msgspec.json.Decoder(list[_RestBalance])
_POSITIONS = msgspec.json.Decoder(list[_RestPosition])


def _kind(order_type: str, tif: str, frame) -> tuple[OrderType, TimeInForce]:
    if order_type in _MARKET_TYPES:
        kind = OrderType.MARKET
    elif order_type in _LIMIT_TYPES:
        kind = OrderType.LIMIT
    else:
        raise MalformedFrame(EXCHANGE, f"unknown futures order type {order_type!r}", frame)
    return kind, _enum(_TIF, tif or "GTC", "time in force", frame)


class BinanceFuturesPrivateNormalizer(BinancePrivateNormalizer):
    """USDⓈ-M user data (see module docstring); remembers each symbol's leverage and last
    position (for ``ACCOUNT_CONFIG_UPDATE``)."""

    decoders = {
        "ORDER_TRADE_UPDATE": msgspec.json.Decoder(_OrderTradeUpdate),
        "ACCOUNT_UPDATE": msgspec.json.Decoder(_AccountUpdate),
        "ACCOUNT_CONFIG_UPDATE": msgspec.json.Decoder(_ConfigUpdate),
    }
    ignored = frozenset({"MARGIN_CALL", "TRADE_LITE", "STRATEGY_UPDATE", "GRID_UPDATE",
                         "CONDITIONAL_ORDER_TRIGGER_REJECT"})  # fmt: skip

    def __init__(self, instruments=None) -> None:  # noqa: ANN001 - InstrumentBook | None
        super().__init__(instruments)
        self.leverage: dict[str, float] = {}  # normalized symbol -> leverage
        self.last: dict[str, PositionUpdate] = {}

    def _on_message(self, msg, recv: int, frame) -> list[Event]:  # noqa: ANN001
        if isinstance(msg, _OrderTradeUpdate):
            return [self._order(msg.order, msg.event_time, recv, frame)]
        if isinstance(msg, _AccountUpdate):
            return self._account(msg, recv, frame)
        if msg.ac is None:
            return []
        sym = self._symbol(msg.ac.symbol)
        self.leverage[sym] = float(msg.ac.leverage)
        last = self.last.get(sym)
        if last is None:
            return []
        return [self._keep(msgspec.structs.replace(last, leverage=float(msg.ac.leverage),
                                                   exch_ts=msg.event_time * MS, local_ts=recv))]

    def _keep(self, p: PositionUpdate) -> PositionUpdate:
        self.last[p.symbol] = p
        return p

    def _order(self, o: _Order, event_ms: int, recv: int, frame) -> OrderUpdate:
        kind, tif = _kind(o.order_type, o.tif, frame)
        trade = o.exec_type == "TRADE"
        return OrderUpdate(
            exchange=EXCHANGE, symbol=self._symbol(o.symbol), exch_ts=event_ms * MS,
            local_ts=recv, client_order_id=o.client_order_id, order_id=str(o.order_id),
            side=_enum(_SIDES, o.side, "side", frame), order_type=kind, tif=tif,
            status=_enum(_STATUS, o.status, "order status", frame),
            price=float(_num(o.price, "p", frame)), qty=float(_num(o.qty, "q", frame)),
            filled_qty=float(_num(o.cum_qty, "z", frame)),
            avg_price=float(_num(o.avg_price, "ap", frame)),
            last_fill_price=float(_num(o.last_price, "L", frame)) if trade else 0.0,
            last_fill_qty=float(_num(o.last_qty, "l", frame)) if trade else 0.0,
            fee=float(_num(o.fee, "n", frame)) if trade else 0.0,
            fee_asset=o.fee_asset if trade else "",
            trade_id=str(o.trade_id) if trade else "",
        )  # fmt: skip

    def _account(self, m: _AccountUpdate, recv: int, frame) -> list[Event]:
        ts = m.event_time * MS
        out: list[Event] = []
        if m.update.balances:
            out.append(Wallet(exchange=EXCHANGE, exch_ts=ts, local_ts=recv, balances=tuple(
                Balance(b.asset, float(_num(b.wallet, "wb", frame)), 0.0)
                for b in m.update.balances)))  # fmt: skip
        for p in m.update.positions:
            sym = self._symbol(p.symbol)
            out.append(self._keep(PositionUpdate(
                exchange=EXCHANGE, symbol=sym, exch_ts=ts, local_ts=recv,
                size=float(_num(p.amount, "pa", frame)), entry_price=float(_num(p.entry, "ep", frame)),
                unrealized_pnl=float(_num(p.upnl, "up", frame)),
                leverage=self.leverage.get(sym, 0.0),
            )))  # fmt: skip
        return out

    # -- REST reconciliation

    open_orders_decoder = _OPEN_ORDERS
    open_orders_path = "GET /fapi/v1/openOrders"
    _order_kind = staticmethod(_kind)

    @staticmethod
    def _avg_price(o: _RestOrder, cum: Decimal, body) -> Decimal:  # noqa: ANN001
        return _num(o.avgPrice, "avgPrice", body)

    def parse_account(self, body: bytes | str, local_ts: int | None = None) -> Wallet:
        """``GET /fapi/v2/balance``: every asset's wallet balance (see module docstring)."""
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            items = _BALANCES.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"GET /fapi/v2/balance: {e}", body) from None
        ts = max((b.updateTime for b in items), default=0) * MS
        return Wallet(exchange=EXCHANGE, exch_ts=ts, local_ts=recv, balances=tuple(
            Balance(b.asset, float(_num(b.balance, "balance", body)), 0.0) for b in items))

    def parse_positions(self, body: bytes | str, local_ts: int | None = None,
                        symbol: str | None = None) -> list[PositionUpdate]:  # fmt: skip
        """``GET /fapi/v2/positionRisk``: the open positions (every symbol's leverage is
        remembered), or ``symbol``'s even when flat."""
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            items = _POSITIONS.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"GET /fapi/v2/positionRisk: {e}", body) from None
        out = []
        for p in items:
            sym = self._symbol(p.symbol)
            lev = float(_num(p.leverage, "leverage", body))
            self.leverage[sym] = lev
            size = _num(p.positionAmt, "positionAmt", body)
            if not size and sym != symbol:
                continue
            out.append(self._keep(PositionUpdate(
                exchange=EXCHANGE, symbol=sym, exch_ts=p.updateTime * MS, local_ts=recv,
                size=float(size), entry_price=float(_num(p.entryPrice, "entryPrice", body)),
                mark_price=float(_num(p.markPrice, "markPrice", body)),
                unrealized_pnl=float(_num(p.unRealizedProfit, "unRealizedProfit", body)),
                leverage=lev,
            )))  # fmt: skip
        return out
