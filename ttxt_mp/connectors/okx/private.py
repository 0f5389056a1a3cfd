"""OKX v5 private WebSocket (``/ws/v5/private``) -> ``OrderUpdate`` / ``Wallet`` /
``PositionUpdate``; REST reconciliation parsers. From the OKX v5 documentation: "Order
channel", "Account channel", "Positions channel", "Get order list" (orders-pending), "Get
order details", "Get balance", "Get positions", the WebSocket "Login"/"Subscribe" replies.

- Pushes: ``{"arg": {"channel", "instType", "uid"}, "data": [...]}``.
- ``orders``: one item per change of an order, with the order's cumulative state
  (``state`` live / partially_filled / filled / canceled / mmp_canceled, ``accFillSz``,
  ``avgPx``) **and** the fill that caused it, if any (``fillSz``, ``fillPx``, ``tradeId``,
  ``fillFee``, ``fillFeeCcy``): one message per fill, so no merging is needed. OKX fees are
  negative when charged (``fillFee`` -0.1 = 0.1 paid): ``OrderUpdate.fee`` is the paid
  amount, positive. ``clOrdId`` is decoded back to our client order id
  (:func:`~ttxt_mp.connectors.okx.denormalizer.from_cl_ord_id`).
- ``account``: ``data[0].details[]`` per currency: ``free`` = ``availBal`` (else
  ``cashBal - frozenBal``), ``locked`` = ``frozenBal``, so ``free + locked`` is the cash
  balance, which realized PnL, fees and funding move.
- ``positions``: ``pos`` is signed in net mode (negative = short); in long/short mode a
  ``short`` position is made negative. Swap sizes are contracts. ``avgPx`` entry,
  ``markPx``, ``upl``, ``lever``.
- Op replies (``login``, ``subscribe``, ``channel-conn-count``) and the text ``pong``
  return ``[]``; an ``error`` event raises ``MalformedFrame`` ("... failed"), which ends the
  stream (reconnect). REST answers whose ``code`` is not "0" raise ``MalformedFrame``.
- REST orders are states, not fills: their ``fillSz``/``fillPx`` (the last fill) are not
  reported as ``last_fill_*``.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

import msgspec

from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.okx.denormalizer import from_cl_ord_id
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

__all__ = ["OkxPrivateNormalizer"]

EXCHANGE = "okx"
MS = 1_000_000
ZERO = Decimal(0)

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_STATUS = {
    "live": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "mmp_canceled": OrderStatus.CANCELED,
}
# ordType -> (order type, time in force)
_TYPES = {
    "market": (OrderType.MARKET, TimeInForce.IOC),
    "limit": (OrderType.LIMIT, TimeInForce.GTC),
    "post_only": (OrderType.LIMIT, TimeInForce.POST_ONLY),
    "fok": (OrderType.LIMIT, TimeInForce.FOK),
    "ioc": (OrderType.LIMIT, TimeInForce.IOC),
    "optimal_limit_ioc": (OrderType.MARKET, TimeInForce.IOC),
}


class _Arg(msgspec.Struct):
    channel: str = ""
    instType: str = ""


class _Head(msgspec.Struct):
    event: str | None = None
    code: str = "0"
    msg: str = ""
    arg: _Arg | None = None
    data: msgspec.Raw = msgspec.Raw()


class _Order(msgspec.Struct):
    instId: str
    ordId: str
    side: str
    ordType: str
    state: str
    clOrdId: str = ""
    px: str = ""
    sz: str = ""
    accFillSz: str = ""
    avgPx: str = ""
    fillSz: str = ""
    fillPx: str = ""
    fillFee: str = ""
    fillFeeCcy: str = ""
    tradeId: str = ""
    uTime: str = ""


class _Detail(msgspec.Struct):
    ccy: str
    cashBal: str = ""
    availBal: str = ""
    frozenBal: str = ""


class _Account(msgspec.Struct):
    details: list[_Detail] = []
    uTime: str = ""


class _Position(msgspec.Struct):
    instId: str
    pos: str = ""
    posSide: str = "net"
    mgnMode: str = ""
    avgPx: str = ""
    markPx: str = ""
    upl: str = ""
    lever: str = ""
    uTime: str = ""


class _Rest(msgspec.Struct):
    code: str
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw()


_HEAD = msgspec.json.Decoder(_Head)
_REST = msgspec.json.Decoder(_Rest)
_ORDERS = msgspec.json.Decoder(list[_Order])
_ACCOUNTS = msgspec.json.Decoder(list[_Account])
_POSITIONS = msgspec.json.Decoder(list[_Position])


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


def _enum(table: dict, value: str, what: str, frame):
    try:
        return table[value]
    except KeyError:
        raise MalformedFrame(EXCHANGE, f"unknown {what} {value!r}", frame) from None


class OkxPrivateNormalizer:
    """Stateless translation of OKX private frames and reconciliation bodies."""

    exchange = EXCHANGE

    def __init__(self, instruments: InstrumentBook | None = None,
                 margin_modes: dict[str, str] | None = None) -> None:  # fmt: skip
        self.instruments = instruments
        # symbol -> mgnMode of its open position, learned from positions (pushes and REST),
        # so orders after a restart keep the position's margin mode (the trading venue's)
        self.margin_modes = margin_modes

    def _symbol(self, native: str) -> str:
        return self.instruments.normalized(native) if self.instruments is not None else native

    def normalize(self, frame: bytes | str, local_ts: int | None = None) -> list[Event]:
        recv = time.time_ns() if local_ts is None else local_ts
        if frame in (b"pong", "pong"):
            return []
        try:
            head = _HEAD.decode(frame)
            if head.event is not None:
                if head.event == "error" or head.code not in ("0", ""):
                    raise MalformedFrame(EXCHANGE, f"op {head.event!r} failed: {head.code} "
                                         f"{head.msg}", frame)  # fmt: skip
                return []  # login, subscribe, unsubscribe, channel-conn-count
            if head.arg is None or not head.data:
                raise MalformedFrame(EXCHANGE, "private frame without event, arg or data", frame)
            channel = head.arg.channel
            if channel == "orders":
                return [self._order(o, recv, frame, fills=True) for o in _ORDERS.decode(head.data)]
            if channel == "account":
                return [self._wallet(_ACCOUNTS.decode(head.data), recv, frame)]
            if channel == "positions":
                return [self._position(p, recv, frame) for p in _POSITIONS.decode(head.data)]
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"private stream: {e}", frame) from None
        raise MalformedFrame(EXCHANGE, f"unsupported private channel {channel!r}", frame)

    def _order(self, o: _Order, recv: int, frame, fills: bool) -> OrderUpdate:
        order_type, tif = _enum(_TYPES, o.ordType, "ordType", frame)
        fill_qty = _num(o.fillSz, "fillSz", frame) if fills else ZERO
        has_fill = fill_qty > 0
        return OrderUpdate(
            exchange=EXCHANGE, symbol=self._symbol(o.instId),
            exch_ts=int(_num(o.uTime, "uTime", frame)) * MS, local_ts=recv,
            client_order_id=from_cl_ord_id(o.clOrdId), order_id=o.ordId,
            side=_enum(_SIDES, o.side, "side", frame), order_type=order_type, tif=tif,
            status=_enum(_STATUS, o.state, "state", frame),
            price=float(_num(o.px, "px", frame)), qty=float(_num(o.sz, "sz", frame)),
            filled_qty=float(_num(o.accFillSz, "accFillSz", frame)),
            avg_price=float(_num(o.avgPx, "avgPx", frame)),
            last_fill_price=float(_num(o.fillPx, "fillPx", frame)) if has_fill else 0.0,
            last_fill_qty=float(fill_qty),
            fee=float(-_num(o.fillFee, "fillFee", frame)) if has_fill else 0.0,
            fee_asset=o.fillFeeCcy if has_fill else "", trade_id=o.tradeId if has_fill else "",
        )  # fmt: skip

    @staticmethod
    def _wallet(accounts: list[_Account], recv: int, frame) -> Wallet:
        out = []
        ts = 0
        for acct in accounts:
            ts = max(ts, int(_num(acct.uTime, "uTime", frame)) * MS)
            for d in acct.details:
                locked = _num(d.frozenBal, "frozenBal", frame)
                free = (_num(d.availBal, "availBal", frame) if d.availBal != ""
                        else _num(d.cashBal, "cashBal", frame) - locked)  # fmt: skip
                out.append(Balance(d.ccy, float(free), float(locked)))
        return Wallet(exchange=EXCHANGE, exch_ts=ts, local_ts=recv, balances=tuple(out))

    def _position(self, p: _Position, recv: int, frame) -> PositionUpdate:
        size = _num(p.pos, "pos", frame)
        if p.posSide == "short":
            size = -abs(size)
        elif p.posSide not in ("net", "long", ""):
            raise MalformedFrame(EXCHANGE, f"unknown posSide {p.posSide!r}", frame)
        symbol = self._symbol(p.instId)
        if self.margin_modes is not None and size and p.mgnMode in ("cross", "isolated"):
            self.margin_modes[symbol] = p.mgnMode
        return PositionUpdate(
            exchange=EXCHANGE, symbol=symbol,
            exch_ts=int(_num(p.uTime, "uTime", frame)) * MS, local_ts=recv,
            size=float(size), entry_price=float(_num(p.avgPx, "avgPx", frame)),
            mark_price=float(_num(p.markPx, "markPx", frame)),
            unrealized_pnl=float(_num(p.upl, "upl", frame)),
            leverage=float(_num(p.lever, "lever", frame)),
        )  # fmt: skip

    # -- REST reconciliation

    @staticmethod
    def _rest_data(decoder: msgspec.json.Decoder, what: str, body: bytes | str) -> list:
        try:
            resp = _REST.decode(body)
            if resp.code != "0":
                raise MalformedFrame(EXCHANGE, f"{what} failed: {resp.code} {resp.msg}", body)
            return decoder.decode(resp.data) if resp.data else []
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"{what}: {e}", body) from None

    def parse_orders(self, body: bytes | str, what: str = "GET /api/v5/trade/orders-pending",
                     local_ts: int | None = None) -> list[OrderUpdate]:  # fmt: skip
        recv = time.time_ns() if local_ts is None else local_ts
        return [self._order(o, recv, body, fills=False) for o in self._rest_data(_ORDERS, what, body)]

    def parse_balance(self, body: bytes | str, local_ts: int | None = None) -> Wallet:
        recv = time.time_ns() if local_ts is None else local_ts
        return self._wallet(self._rest_data(_ACCOUNTS, "GET /api/v5/account/balance", body), recv,
                            body)  # fmt: skip

    def parse_positions(self, body: bytes | str, local_ts: int | None = None) -> list[PositionUpdate]:
        recv = time.time_ns() if local_ts is None else local_ts
        items = self._rest_data(_POSITIONS, "GET /api/v5/account/positions", body)
        return [self._position(p, recv, body) for p in items]
