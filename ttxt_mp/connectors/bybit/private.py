"""Bybit v5 private streams -> ``OrderUpdate`` / ``Wallet`` / ``PositionUpdate``; REST
reconciliation parsers.

Topics (``order``, ``execution``, ``wallet``, ``position`` and their ``.category``
forms): frames ``{"id", "topic", "creationTime", "data": [...]}``.

- ``order`` -> an ``OrderUpdate`` per order: status, cumulative qty, average price. It has
  no per-fill data, so ``last_fill_*``/``fee``/``trade_id`` are left empty there.
- ``execution`` -> an ``OrderUpdate`` per fill: ``execQty``/``execPrice``, ``execFee`` (and
  ``feeCurrency`` when present), ``execId`` as trade id; ``filled_qty`` = ``orderQty -
  leavesQty``; status ``Filled`` when nothing is left, else ``PartiallyFilled``.
  ``Funding`` executions are not fills and are skipped.
- ``wallet`` -> ``Wallet``: ``locked`` is the spot open-order lock; ``free`` is the
  classic-account ``free`` field when present, else ``walletBalance - locked``.
- ``position`` -> ``PositionUpdate`` (``size`` signed: ``Sell`` is negative).

Op replies (``auth``, ``subscribe``, ``pong``) return ``[]``; a failed op raises.
REST: ``GET /v5/order/realtime`` -> ``list[OrderUpdate]``; ``GET
/v5/account/wallet-balance`` -> ``Wallet``. Malformed -> ``MalformedFrame``.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

import msgspec

from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.events import (
    Balance,
    Event,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionUpdate,
    Side,
    TimeInForce,
    Wallet,
)

__all__ = ["BybitPrivateNormalizer"]

EXCHANGE = "bybit"
MS = 1_000_000
ZERO = Decimal(0)

_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_STATUS = {
    "New": OrderStatus.NEW,
    "Created": OrderStatus.NEW,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
    "Active": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}
_TYPES = {"Limit": OrderType.LIMIT, "Market": OrderType.MARKET}
_TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PostOnly": TimeInForce.POST_ONLY,
    "RPI": TimeInForce.POST_ONLY,  # documented as a post-only order
}


class _Op(msgspec.Struct):
    topic: str | None = None
    op: str | None = None
    success: bool | None = None
    ret_msg: str = ""
    data: msgspec.Raw = msgspec.Raw()
    creationTime: int = 0


class _Order(msgspec.Struct):
    symbol: str
    orderId: str
    side: str
    orderType: str
    orderStatus: str
    price: str = ""
    qty: str = ""
    orderLinkId: str = ""
    timeInForce: str = "GTC"
    cumExecQty: str = ""
    cumExecValue: str = ""
    avgPrice: str = ""
    updatedTime: str = ""


class _Execution(msgspec.Struct):
    symbol: str
    orderId: str
    side: str
    execId: str
    execPrice: str
    execQty: str
    orderQty: str = ""
    leavesQty: str = ""
    orderPrice: str = ""
    orderType: str = "Limit"
    orderLinkId: str = ""
    execFee: str = ""
    feeCurrency: str = ""
    execType: str = "Trade"
    execTime: str = ""


class _Coin(msgspec.Struct):
    coin: str
    walletBalance: str = ""
    locked: str = ""
    free: str = ""


class _Account(msgspec.Struct):
    coin: list[_Coin]
    accountType: str = ""


class _Position(msgspec.Struct):
    symbol: str
    side: str = ""
    size: str = ""
    entryPrice: str = ""
    avgPrice: str = ""
    markPrice: str = ""
    unrealisedPnl: str = ""
    leverage: str = ""
    updatedTime: str = ""


class _OrderList(msgspec.Struct):  # empty ({}) in error responses
    items: list[_Order] = msgspec.field(default_factory=list, name="list")


class _AccountList(msgspec.Struct):
    items: list[_Account] = msgspec.field(default_factory=list, name="list")


class _RestOrders(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: _OrderList | None = None


class _RestWallet(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: _AccountList | None = None


_OP = msgspec.json.Decoder(_Op)
_DATA = {
    "order": msgspec.json.Decoder(list[_Order]),
    "execution": msgspec.json.Decoder(list[_Execution]),
    "wallet": msgspec.json.Decoder(list[_Account]),
    "position": msgspec.json.Decoder(list[_Position]),
}
_REST_ORDERS = msgspec.json.Decoder(_RestOrders)
_REST_WALLET = msgspec.json.Decoder(_RestWallet)


def _num(text: str, field: str, frame) -> Decimal:
    if text == "":
        return ZERO
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise MalformedFrame(EXCHANGE, f"field {field} is not a number: {text!r}", frame) from None
    if not d.is_finite():
        raise MalformedFrame(EXCHANGE, f"field {field} is not finite: {text!r}", frame)
    return d


def _ms(text: str, field: str, frame) -> int:
    return int(_num(text, field, frame)) * MS


def _enum(table: dict, value: str, what: str, frame):
    try:
        return table[value]
    except KeyError:
        raise MalformedFrame(EXCHANGE, f"unknown {what} {value!r}", frame) from None


class BybitPrivateNormalizer:
    """Stateless translation of Bybit private frames and reconciliation bodies."""

    exchange = EXCHANGE

    def __init__(self, instruments: InstrumentBook | None = None) -> None:
        self.instruments = instruments

    def _symbol(self, native: str) -> str:
        return self.instruments.normalized(native) if self.instruments is not None else native

    def normalize(self, frame: bytes | str, local_ts: int | None = None) -> list[Event]:
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            head = _OP.decode(frame)
            if head.topic is None:
                if head.op is not None:
                    if head.success is False:
                        raise MalformedFrame(
                            EXCHANGE, f"op {head.op!r} failed: {head.ret_msg}", frame
                        )
                    return []
                raise MalformedFrame(EXCHANGE, "private frame without topic or op", frame)
            if not head.data:
                raise MalformedFrame(EXCHANGE, f"topic {head.topic!r} frame without data", frame)
            base = head.topic.split(".", 1)[0]
            decoder = _DATA.get(base)
            if decoder is None:
                raise MalformedFrame(EXCHANGE, f"unsupported private topic {head.topic!r}", frame)
            items = decoder.decode(head.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"private stream: {e}", frame) from None
        exch = head.creationTime * MS
        if base == "order":
            return [self._order(o, exch, recv, frame) for o in items]
        if base == "execution":
            return [self._execution(x, recv, frame) for x in items if x.execType != "Funding"]
        if base == "wallet":
            return [self._wallet(items, exch, recv, frame)]
        return [self._position(p, exch, recv, frame) for p in items]

    def _order(self, o: _Order, exch: int, recv: int, frame) -> OrderUpdate:
        return OrderUpdate(
            exchange=EXCHANGE, symbol=self._symbol(o.symbol),
            exch_ts=_ms(o.updatedTime, "updatedTime", frame) or exch, local_ts=recv,
            client_order_id=o.orderLinkId, order_id=o.orderId,
            side=_enum(_SIDES, o.side, "side", frame),
            order_type=_enum(_TYPES, o.orderType, "order type", frame),
            tif=_enum(_TIF, o.timeInForce, "time in force", frame),
            status=_enum(_STATUS, o.orderStatus, "order status", frame),
            price=float(_num(o.price, "price", frame)), qty=float(_num(o.qty, "qty", frame)),
            filled_qty=float(_num(o.cumExecQty, "cumExecQty", frame)),
            avg_price=float(_num(o.avgPrice, "avgPrice", frame)),
        )  # fmt: skip

    def _execution(self, x: _Execution, recv: int, frame) -> OrderUpdate:
        order_qty = _num(x.orderQty, "orderQty", frame)
        leaves = _num(x.leavesQty, "leavesQty", frame)
        return OrderUpdate(
            exchange=EXCHANGE, symbol=self._symbol(x.symbol),
            exch_ts=_ms(x.execTime, "execTime", frame), local_ts=recv,
            client_order_id=x.orderLinkId, order_id=x.orderId,
            side=_enum(_SIDES, x.side, "side", frame),
            order_type=_enum(_TYPES, x.orderType, "order type", frame),
            status=OrderStatus.FILLED if leaves == 0 else OrderStatus.PARTIALLY_FILLED,
            price=float(_num(x.orderPrice, "orderPrice", frame)), qty=float(order_qty),
            filled_qty=float(order_qty - leaves),
            last_fill_price=float(_num(x.execPrice, "execPrice", frame)),
            last_fill_qty=float(_num(x.execQty, "execQty", frame)),
            fee=float(_num(x.execFee, "execFee", frame)), fee_asset=x.feeCurrency,
            trade_id=x.execId,
        )  # fmt: skip

    @staticmethod
    def _wallet(accounts: list[_Account], exch: int, recv: int, frame) -> Wallet:
        out = []
        for acct in accounts:
            for c in acct.coin:
                locked = _num(c.locked, "locked", frame)
                free = (
                    _num(c.free, "free", frame) if c.free != ""
                    else _num(c.walletBalance, "walletBalance", frame) - locked
                )  # fmt: skip
                out.append(Balance(c.coin, float(free), float(locked)))
        return Wallet(exchange=EXCHANGE, exch_ts=exch, local_ts=recv, balances=tuple(out))

    def _position(self, p: _Position, exch: int, recv: int, frame) -> PositionUpdate:
        size = _num(p.size, "size", frame)
        if p.side == "Sell":
            size = -size
        elif p.side not in ("Buy", ""):
            raise MalformedFrame(EXCHANGE, f"unknown position side {p.side!r}", frame)
        entry = p.entryPrice if p.entryPrice != "" else p.avgPrice
        return PositionUpdate(
            exchange=EXCHANGE, symbol=self._symbol(p.symbol),
            exch_ts=_ms(p.updatedTime, "updatedTime", frame) or exch, local_ts=recv,
            size=float(size), entry_price=float(_num(entry, "entryPrice", frame)),
            mark_price=float(_num(p.markPrice, "markPrice", frame)),
            unrealized_pnl=float(_num(p.unrealisedPnl, "unrealisedPnl", frame)),
            leverage=float(_num(p.leverage, "leverage", frame)),
        )  # fmt: skip

    # -- REST reconciliation

    def parse_open_orders(self, body: bytes | str, local_ts: int | None = None) -> list[OrderUpdate]:
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            resp = _REST_ORDERS.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"GET /v5/order/realtime: {e}", body) from None
        if resp.retCode != 0 or resp.result is None:
            raise MalformedFrame(
                EXCHANGE, f"GET /v5/order/realtime failed: {resp.retCode} {resp.retMsg}", body
            )
        return [self._order(o, 0, recv, body) for o in resp.result.items]

    def parse_wallet_balance(self, body: bytes | str, local_ts: int | None = None) -> Wallet:
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            resp = _REST_WALLET.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"GET /v5/account/wallet-balance: {e}", body) from None
        if resp.retCode != 0 or resp.result is None:
            raise MalformedFrame(
                EXCHANGE,
                f"GET /v5/account/wallet-balance failed: {resp.retCode} {resp.retMsg}",
                body,
            )
        return self._wallet(resp.result.items, 0, recv, body)
