"""Binance Spot user data -> ``OrderUpdate`` / ``Wallet``; REST reconciliation parsers.

Stream events (user-data-stream docs), bare (listen-key stream) or wrapped as
``{"subscriptionId": n, "event": {...}}`` (WebSocket API ``userDataStream.subscribe``):

- ``executionReport`` -> ``OrderUpdate``. ``c`` is the client order id, except on a
  cancel, where ``c`` is the cancel request's id and ``C`` the canceled order's (used).
  ``l``/``L`` last fill qty/price, ``z`` cumulative qty, ``Z/z`` average price, ``n``/``N``
  fee of this fill and its asset, ``t`` trade id (-1: no fill). ``LIMIT_MAKER`` is a
  post-only limit order.
- ``outboundAccountPosition`` -> ``Wallet`` (absolute free/locked of the changed assets).
- ``balanceUpdate`` (a deposit/withdrawal/transfer *delta*) -> ``Wallet`` for that asset
  when its balance is known from an earlier account snapshot or position event; unknown
  otherwise (Binance also sends ``outboundAccountPosition`` for every balance change).
- ``listenKeyExpired`` / ``eventStreamTerminated`` -> ``ConnectorStatus(DOWN)`` so the
  connector resubscribes and reconciles. ``listStatus``, ``externalLockUpdate`` and
  WebSocket API responses carry no event here.

REST: ``GET /api/v3/openOrders`` -> ``list[OrderUpdate]``; ``GET /api/v3/account`` ->
``Wallet`` (and resets the balance state used for ``balanceUpdate``).
Anything malformed raises ``MalformedFrame`` naming the venue and the cause.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

import msgspec

from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.events import (
    Balance,
    Connection,
    ConnectorState,
    ConnectorStatus,
    Event,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    Wallet,
)

__all__ = ["BinancePrivateNormalizer"]

EXCHANGE = "binance"
MS = 1_000_000

_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_MARKET_TYPES = frozenset({"MARKET", "STOP_LOSS", "TAKE_PROFIT"})


# --------------------------------------------------------------------------- wire types


class _Peek(msgspec.Struct):
    e: str | None = None
    event: msgspec.Raw = msgspec.Raw()
    id: str | int | None = None


class _ExecutionReport(msgspec.Struct):
    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    client_order_id: str = msgspec.field(name="c")
    side: str = msgspec.field(name="S")
    order_type: str = msgspec.field(name="o")
    tif: str = msgspec.field(name="f")
    qty: str = msgspec.field(name="q")
    price: str = msgspec.field(name="p")
    exec_type: str = msgspec.field(name="x")
    status: str = msgspec.field(name="X")
    order_id: int = msgspec.field(name="i")
    last_qty: str = msgspec.field(name="l")
    cum_qty: str = msgspec.field(name="z")
    last_price: str = msgspec.field(name="L")
    fee: str = msgspec.field(name="n")
    trade_time: int = msgspec.field(name="T")
    trade_id: int = msgspec.field(name="t")
    orig_client_order_id: str | None = msgspec.field(default=None, name="C")
    fee_asset: str | None = msgspec.field(default=None, name="N")
    cum_quote: str = msgspec.field(default="0", name="Z")
    reject_reason: str = msgspec.field(default="NONE", name="r")


class _BalanceItem(msgspec.Struct):
    asset: str = msgspec.field(name="a")
    free: str = msgspec.field(name="f")
    locked: str = msgspec.field(name="l")


class _AccountPosition(msgspec.Struct):
    event_time: int = msgspec.field(name="E")
    balances: list[_BalanceItem] = msgspec.field(name="B")


class _BalanceUpdate(msgspec.Struct):
    event_time: int = msgspec.field(name="E")
    asset: str = msgspec.field(name="a")
    delta: str = msgspec.field(name="d")


class _RestOrder(msgspec.Struct):
    symbol: str
    orderId: int
    clientOrderId: str
    price: str
    origQty: str
    executedQty: str
    status: str
    type: str
    side: str
    timeInForce: str = "GTC"
    cummulativeQuoteQty: str = "0"
    updateTime: int = 0


class _RestBalance(msgspec.Struct):
    asset: str
    free: str
    locked: str


class _RestAccount(msgspec.Struct):
    balances: list[_RestBalance]
    updateTime: int = 0


_PEEK = msgspec.json.Decoder(_Peek)
_DECODERS = {
    "executionReport": msgspec.json.Decoder(_ExecutionReport),
    "outboundAccountPosition": msgspec.json.Decoder(_AccountPosition),
    "balanceUpdate": msgspec.json.Decoder(_BalanceUpdate),
}
_OPEN_ORDERS = msgspec.json.Decoder(list[_RestOrder])
_ACCOUNT = msgspec.json.Decoder(_RestAccount)
_IGNORED = frozenset({"listStatus", "externalLockUpdate"})
_ENDED = frozenset({"listenKeyExpired", "eventStreamTerminated"})


def _num(text: str | None, field: str, frame) -> Decimal:
    try:
        d = Decimal(text) if text not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise MalformedFrame(EXCHANGE, f"field {field} is not a number: {text!r}", frame) from None
    if not d.is_finite():
        raise MalformedFrame(EXCHANGE, f"field {field} is not finite: {text!r}", frame)
    return d


def _order_kind(order_type: str, tif: str, frame) -> tuple[OrderType, TimeInForce]:
    if order_type == "LIMIT_MAKER":
        return OrderType.LIMIT, TimeInForce.POST_ONLY
    kind = OrderType.MARKET if order_type in _MARKET_TYPES else OrderType.LIMIT
    try:
        return kind, _TIF[tif] if tif else TimeInForce.GTC
    except KeyError:
        raise MalformedFrame(EXCHANGE, f"unknown time in force {tif!r}", frame) from None


def _enum(table: dict, value: str, what: str, frame):
    try:
        return table[value]
    except KeyError:
        raise MalformedFrame(EXCHANGE, f"unknown {what} {value!r}", frame) from None


class BinancePrivateNormalizer:
    """Stateful only for ``balanceUpdate`` deltas (last known balance per asset)."""

    exchange = EXCHANGE
    decoders: dict[str, msgspec.json.Decoder] = _DECODERS
    """User data event type -> its decoder (a market's subclass has its own events)."""
    ignored: frozenset[str] = _IGNORED

    def __init__(self, instruments: InstrumentBook | None = None) -> None:
        self.instruments = instruments
        self._balances: dict[str, tuple[Decimal, Decimal]] = {}

    def _symbol(self, native: str) -> str:
        return self.instruments.normalized(native) if self.instruments is not None else native

    # -- stream

    def normalize(self, frame: bytes | str, local_ts: int | None = None) -> list[Event]:
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            peek = _PEEK.decode(frame)
            raw: bytes | str | msgspec.Raw = frame
            if peek.event:  # WebSocket API wrapper
                raw = peek.event
                peek = _PEEK.decode(raw)
            kind = peek.e
            if kind is None:
                if peek.id is not None:
                    return []  # a WebSocket API response, handled by the connector
                raise MalformedFrame(EXCHANGE, "user data frame without an event type 'e'", frame)
            if kind in self.ignored:
                return []
            if kind in _ENDED:
                return [
                    ConnectorStatus(
                        exchange=EXCHANGE, state=ConnectorState.DOWN, local_ts=recv,
                        connection=Connection.PRIVATE,
                        message=f"user data stream ended ({kind}); resubscribe and reconcile",
                    )
                ]  # fmt: skip
            decoder = self.decoders.get(kind)
            if decoder is None:
                raise MalformedFrame(EXCHANGE, f"unknown user data event {kind!r}", frame)
            msg = decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"user data: {e}", frame) from None
        return self._on_message(msg, recv, frame)

    def _on_message(self, msg, recv: int, frame) -> list[Event]:  # noqa: ANN001 - a decoded event
        """The events of one decoded user data message (see ``decoders``)."""
        if isinstance(msg, _ExecutionReport):
            return [self._order_update(msg, recv, frame)]
        if isinstance(msg, _AccountPosition):
            return [self._wallet(msg.balances, msg.event_time, recv, frame)]
        return self._balance_delta(msg, recv, frame)

    def _order_update(self, m: _ExecutionReport, recv: int, frame) -> OrderUpdate:
        kind, tif = _order_kind(m.order_type, m.tif, frame)
        cum = _num(m.cum_qty, "z", frame)
        quote = _num(m.cum_quote, "Z", frame)
        canceled = m.exec_type == "CANCELED" or m.status == "CANCELED"
        cid = m.orig_client_order_id if canceled and m.orig_client_order_id else m.client_order_id
        trade = m.exec_type == "TRADE"
        return OrderUpdate(
            exchange=EXCHANGE, symbol=self._symbol(m.symbol), exch_ts=m.event_time * MS,
            local_ts=recv, client_order_id=cid, order_id=str(m.order_id),
            side=_enum(_SIDES, m.side, "side", frame), order_type=kind, tif=tif,
            status=_enum(_STATUS, m.status, "order status", frame),
            price=float(_num(m.price, "p", frame)), qty=float(_num(m.qty, "q", frame)),
            filled_qty=float(cum), avg_price=float(quote / cum) if cum else 0.0,
            last_fill_price=float(_num(m.last_price, "L", frame)) if trade else 0.0,
            last_fill_qty=float(_num(m.last_qty, "l", frame)) if trade else 0.0,
            fee=float(_num(m.fee, "n", frame)) if trade else 0.0,
            fee_asset=(m.fee_asset or "") if trade else "",
            trade_id=str(m.trade_id) if trade and m.trade_id >= 0 else "",
        )  # fmt: skip

    def _wallet(self, items, event_ms: int, recv: int, frame) -> Wallet:
        out = []
        for b in items:
            free, locked = _num(b.free, "free", frame), _num(b.locked, "locked", frame)
            self._balances[b.asset] = (free, locked)
            out.append(Balance(b.asset, float(free), float(locked)))
        return Wallet(exchange=EXCHANGE, exch_ts=event_ms * MS, local_ts=recv, balances=tuple(out))

    def _balance_delta(self, m: _BalanceUpdate, recv: int, frame) -> list[Event]:
        delta = _num(m.delta, "d", frame)
        known = self._balances.get(m.asset)
        if known is None:
            return []  # true balance unknown; the accompanying account event carries it
        free, locked = known[0] + delta, known[1]
        self._balances[m.asset] = (free, locked)
        return [
            Wallet(
                exchange=EXCHANGE, exch_ts=m.event_time * MS, local_ts=recv,
                balances=(Balance(m.asset, float(free), float(locked)),),
            )
        ]  # fmt: skip

    # -- REST reconciliation

    open_orders_decoder = _OPEN_ORDERS
    open_orders_path = "GET /api/v3/openOrders"

    def parse_open_orders(self, body: bytes | str, local_ts: int | None = None) -> list[OrderUpdate]:
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            orders = self.open_orders_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"{self.open_orders_path}: {e}", body) from None
        out = []
        for o in orders:
            kind, tif = self._order_kind(o.type, o.timeInForce, body)
            cum = _num(o.executedQty, "executedQty", body)
            out.append(
                OrderUpdate(
                    exchange=EXCHANGE, symbol=self._symbol(o.symbol), exch_ts=o.updateTime * MS,
                    local_ts=recv, client_order_id=o.clientOrderId, order_id=str(o.orderId),
                    side=_enum(_SIDES, o.side, "side", body), order_type=kind, tif=tif,
                    status=_enum(_STATUS, o.status, "order status", body),
                    price=float(_num(o.price, "price", body)),
                    qty=float(_num(o.origQty, "origQty", body)), filled_qty=float(cum),
                    avg_price=float(self._avg_price(o, cum, body)),
                )  # fmt: skip
            )
        return out

    @staticmethod
    def _order_kind(order_type: str, tif: str, frame) -> tuple[OrderType, TimeInForce]:
        return _order_kind(order_type, tif, frame)

    @staticmethod
    def _avg_price(o: _RestOrder, cum: Decimal, body) -> Decimal:
        quote = _num(o.cummulativeQuoteQty, "cummulativeQuoteQty", body)
        return quote / cum if cum > 0 and quote > 0 else Decimal(0)

    def parse_account(self, body: bytes | str, local_ts: int | None = None) -> Wallet:
        """All balances; also replaces the state used to apply ``balanceUpdate`` deltas."""
        recv = time.time_ns() if local_ts is None else local_ts
        try:
            acct = _ACCOUNT.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"GET /api/v3/account: {e}", body) from None
        self._balances.clear()
        return self._wallet(acct.balances, acct.updateTime, recv, body)
