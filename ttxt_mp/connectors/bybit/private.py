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
  classic-account ``free`` field when present, else ``walletBalance - locked``. So
  ``free + locked`` is the wallet balance, which realized PnL, fees and funding move;
  contract margin (``totalOrderIM``/``totalPositionIM``) is not subtracted: on a unified
  account it is backed by the whole account's collateral, not by one coin.
- ``position`` -> ``PositionUpdate`` (``size`` signed: ``Sell`` is negative).
- Linear fills carry no ``feeCurrency`` (a spot field): their fee asset is the
  instrument's settle coin.

These are per-message translations (:class:`BybitPrivateNormalizer`, stateless): the two
topics report the same fill twice. The connector uses :class:`BybitPrivateStream`, which
merges them per ``orderId`` into one ``OrderUpdate`` per change of the order (one
``FILLED``, ``avg_price`` from the cumulative value, executions deduplicated by ``execId``).

Op replies (``auth``, ``subscribe``, ``pong``) return ``[]``; a failed op raises.
REST: ``GET /v5/order/realtime`` -> ``list[OrderUpdate]``; ``GET
/v5/account/wallet-balance`` -> ``Wallet``; ``GET /v5/position/list`` ->
``list[PositionUpdate]``. Malformed -> ``MalformedFrame``.
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

__all__ = ["BybitPrivateNormalizer", "BybitPrivateStream"]

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
    cumExecFee: str = ""
    feeCurrency: str = ""
    cumFeeDetail: msgspec.Raw = msgspec.Raw()  # {"<coin>": "<fee>"}; read only if needed
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


class _PositionList(msgspec.Struct):
    items: list[_Position] = msgspec.field(default_factory=list, name="list")


class _RestPositions(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: _PositionList | None = None


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
_REST_POSITIONS = msgspec.json.Decoder(_RestPositions)


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

    def _fee_asset(self, symbol: str, given: str) -> str:
        """A fill's fee asset: as given (spot), else the contract's settle coin."""
        if given or self.instruments is None:
            return given
        inst = self.instruments.get(symbol)
        return inst.settle if inst is not None else ""

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
            return self._on_orders(items, exch, recv, frame)
        if base == "execution":
            return self._on_executions([x for x in items if x.execType != "Funding"], recv, frame)
        if base == "wallet":
            return [self._wallet(items, exch, recv, frame)]
        return [self._position(p, exch, recv, frame) for p in items]

    def _on_orders(self, items: list[_Order], exch: int, recv: int, frame) -> list[Event]:
        return [self._order(o, exch, recv, frame) for o in items]

    def _on_executions(self, items: list[_Execution], recv: int, frame) -> list[Event]:
        return [self._execution(x, recv, frame) for x in items]

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
            fee=float(_num(x.execFee, "execFee", frame)),
            fee_asset=self._fee_asset(self._symbol(x.symbol), x.feeCurrency), trade_id=x.execId,
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

    @staticmethod
    def _rest_items(decoder: msgspec.json.Decoder, what: str, body: bytes | str) -> list:
        """The ``result.list`` of a v5 REST answer; anything else is one ``MalformedFrame``."""
        try:
            resp = decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise MalformedFrame(EXCHANGE, f"{what}: {e}", body) from None
        if resp.retCode != 0 or resp.result is None:
            raise MalformedFrame(EXCHANGE, f"{what} failed: {resp.retCode} {resp.retMsg}", body)
        return resp.result.items

    def parse_open_orders(self, body: bytes | str, local_ts: int | None = None) -> list[OrderUpdate]:
        recv = time.time_ns() if local_ts is None else local_ts
        items = self._rest_items(_REST_ORDERS, "GET /v5/order/realtime", body)
        return [self._order(o, 0, recv, body) for o in items]

    def parse_wallet_balance(self, body: bytes | str, local_ts: int | None = None) -> Wallet:
        recv = time.time_ns() if local_ts is None else local_ts
        items = self._rest_items(_REST_WALLET, "GET /v5/account/wallet-balance", body)
        return self._wallet(items, 0, recv, body)

    def parse_positions(self, body: bytes | str, local_ts: int | None = None) -> list[PositionUpdate]:
        recv = time.time_ns() if local_ts is None else local_ts
        items = self._rest_items(_REST_POSITIONS, "GET /v5/position/list", body)
        return [self._position(p, 0, recv, body) for p in items]


# ----------------------------------------------------------------------------- merged stream

MAX_ACTIVE_ORDERS = 100_000
"""Orders followed at once; beyond it the least recently updated one is forgotten (an
order that closed while the stream was down never sends its final state)."""
RECENT_FINISHED = 10_000
"""Closed orders remembered so that late or replayed messages about them are dropped."""
_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                       OrderStatus.EXPIRED})  # fmt: skip
_FEE_DETAIL = msgspec.json.Decoder(dict[str, str])


class _OrderMsg(msgspec.Struct):
    """One validated ``order`` item (numbers as Decimals)."""

    symbol: str
    order_id: str
    cid: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    status: OrderStatus
    price: Decimal
    qty: Decimal
    cum_qty: Decimal
    cum_value: Decimal | None  # None: neither cumExecValue nor avgPrice says it
    cum_fee: Decimal | None
    fee_asset: str
    ts: int


class _ExecMsg(msgspec.Struct):
    """One validated ``execution`` item."""

    symbol: str
    order_id: str
    cid: str
    side: Side
    order_type: OrderType
    exec_id: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    order_price: Decimal
    order_qty: Decimal
    leaves: Decimal | None  # None: leavesQty not given
    ts: int


class _Track:
    """What is known of one order, from both topics, and what was last published."""

    __slots__ = (
        "symbol", "order_id", "cid", "side", "order_type", "tif", "exec_price", "exec_qty",
        "ord_seen", "ord_ts", "ord_status", "ord_price", "ord_qty", "ord_cum_seen",
        "ord_target", "ord_cum", "ord_value", "ord_fee", "ord_fee_asset",
        "execs", "ex_fee_asset", "ex_target",
        "out", "out_status", "out_cum", "out_value", "out_fee", "out_pq",
    )  # fmt: skip

    def __init__(self, symbol: str, order_id: str, cid: str, side: Side,
                 order_type: OrderType) -> None:  # fmt: skip
        self.symbol, self.order_id, self.cid = symbol, order_id, cid
        self.side, self.order_type, self.tif = side, order_type, TimeInForce.GTC
        self.exec_price = self.exec_qty = ZERO  # order price/qty as executions state them
        # from order messages
        self.ord_seen = False
        self.ord_ts = -1
        self.ord_status = OrderStatus.NEW
        self.ord_price = self.ord_qty = ZERO
        self.ord_cum_seen = ZERO  # largest cumExecQty, value known or not
        self.ord_target: Decimal | None = None  # cumExecQty of a Filled order message
        self.ord_cum = self.ord_value = ZERO  # the largest cumExecQty whose value is known
        self.ord_fee: Decimal | None = None  # its cumExecFee
        self.ord_fee_asset = ""
        # from executions (each execId once)
        # execId -> (filled qty once it was done: orderQty - leavesQty, or None if not
        # stated), qty, quote value, fee
        self.execs: dict[str, tuple[Decimal | None, Decimal, Decimal, Decimal]] = {}
        self.ex_fee_asset = ""
        self.ex_target: Decimal | None = None  # orderQty of an execution leaving nothing
        # what was published last
        self.out = False
        self.out_status = OrderStatus.NEW
        self.out_cum = self.out_value = self.out_fee = ZERO
        self.out_pq: tuple[Decimal, Decimal] | None = None

    def known(self) -> tuple[Decimal, Decimal, Decimal]:
        """(filled qty, its quote value, its fee) of the fills known: the order message's
        cumulative numbers (the first ``ord_cum`` of the order's fills) plus the
        executions beyond them, each placed by its ``orderQty - leavesQty``. The set of
        fills this covers only grows, so each update adds real fills to the previous one.
        Executions that do not say where they are (no ``leavesQty``): the larger of
        their sums and the order message's numbers."""
        q, v, f = self.ord_cum, self.ord_value, ZERO
        inside_fee = sq = sv = sf = ZERO
        placed = True
        for pos, eq, ev, ef in self.execs.values():
            sq, sv, sf = sq + eq, sv + ev, sf + ef
            if pos is None:
                placed = False
            elif pos > self.ord_cum:
                q, v, f = q + eq, v + ev, f + ef
            else:
                inside_fee += ef
        if not placed:
            if self.ord_cum > sq:
                return self.ord_cum, self.ord_value, sf if self.ord_fee is None else self.ord_fee
            return sq, sv, sf
        return q, v, f + (self.ord_fee if self.ord_fee is not None else inside_fee)


class BybitPrivateStream(BybitPrivateNormalizer):
    """The private stream with the ``order`` and ``execution`` topics merged per order.

    Bybit sends both topics for the same fill, independently and in either order: ``order``
    carries the status and cumulative ``cumExecQty``/``cumExecValue``/``cumExecFee``
    (``avgPrice`` may be ``""`` or ``"0"``), ``execution`` one fill (``execId``,
    ``execQty``, ``execPrice``, ``execFee``, ``leavesQty``). Per ``orderId`` this keeps
    both views and publishes one ``OrderUpdate`` per real change (status, filled qty, or
    an order message's price/qty, i.e. an amendment), so a fill is published once:

    - ``filled_qty``/``avg_price``: the latest order message's cumulative qty and value
      plus the executions it does not cover yet (each ``execId`` counted once, so a
      replay after a reconnect counts nothing; see ``_Track.known``); ``avg_price`` =
      value / qty, exact, never 0 once something is filled. A cumulative qty whose value
      is unknown (``cumExecValue`` and ``avgPrice`` empty or 0) waits for its executions.
    - ``last_fill_qty``/``last_fill_price``/``fee``: what this update adds to the
      previous one (the execution's own numbers, and its ``execId`` as ``trade_id``, when
      one execution is the change), so the ``last_fill_*`` of an order add up to its fill.
    - ``FILLED`` once the known filled qty reaches the order's (``cumExecQty`` of a
      ``Filled`` order message, else ``orderQty`` of an execution with ``leavesQty`` 0),
      i.e. only when the average price is known; published once, then the order is
      forgotten and its id remembered (:data:`RECENT_FINISHED`) to drop late messages.
      Canceled/rejected orders are forgotten once their reported fills are known.
    """

    def __init__(self, instruments: InstrumentBook | None = None) -> None:
        super().__init__(instruments)
        self._active: dict[str, _Track] = {}  # insertion order = least recently updated first
        self._finished: dict[str, None] = {}  # insertion-ordered set

    @property
    def active_orders(self) -> int:
        return len(self._active)

    # -- parsing (everything validated before any state changes)

    def _order_msg(self, o: _Order, exch: int, frame) -> _OrderMsg:
        cum = _num(o.cumExecQty, "cumExecQty", frame)
        value: Decimal | None = _num(o.cumExecValue, "cumExecValue", frame)
        if not value:
            avg = _num(o.avgPrice, "avgPrice", frame)
            value = avg * cum if avg > 0 else None
        if not cum:
            value = ZERO
        fee: Decimal | None = None
        fee_asset = o.feeCurrency
        if o.cumExecFee != "":
            fee = _num(o.cumExecFee, "cumExecFee", frame)
        if o.cumFeeDetail:
            try:
                detail = _FEE_DETAIL.decode(o.cumFeeDetail)
            except (msgspec.DecodeError, msgspec.ValidationError):
                detail = {}
            if len(detail) == 1:
                ((coin, amount),) = detail.items()
                fee_asset = fee_asset or coin
                if fee is None:
                    fee = _num(amount, "cumFeeDetail", frame)
        return _OrderMsg(
            symbol=self._symbol(o.symbol), order_id=o.orderId, cid=o.orderLinkId,
            side=_enum(_SIDES, o.side, "side", frame),
            order_type=_enum(_TYPES, o.orderType, "order type", frame),
            tif=_enum(_TIF, o.timeInForce, "time in force", frame),
            status=_enum(_STATUS, o.orderStatus, "order status", frame),
            price=_num(o.price, "price", frame), qty=_num(o.qty, "qty", frame),
            cum_qty=cum, cum_value=value, cum_fee=fee, fee_asset=fee_asset,
            ts=_ms(o.updatedTime, "updatedTime", frame) or exch,
        )  # fmt: skip

    def _exec_msg(self, x: _Execution, frame) -> _ExecMsg:
        return _ExecMsg(
            symbol=self._symbol(x.symbol), order_id=x.orderId, cid=x.orderLinkId,
            side=_enum(_SIDES, x.side, "side", frame),
            order_type=_enum(_TYPES, x.orderType, "order type", frame), exec_id=x.execId,
            price=_num(x.execPrice, "execPrice", frame), qty=_num(x.execQty, "execQty", frame),
            fee=_num(x.execFee, "execFee", frame), fee_asset=x.feeCurrency,
            order_price=_num(x.orderPrice, "orderPrice", frame),
            order_qty=_num(x.orderQty, "orderQty", frame),
            leaves=_num(x.leavesQty, "leavesQty", frame) if x.leavesQty != "" else None,
            ts=_ms(x.execTime, "execTime", frame),
        )  # fmt: skip

    # -- merging

    def _track(self, order_id: str, symbol: str, cid: str, side: Side,
               order_type: OrderType) -> _Track | None:  # fmt: skip
        """The order's state (most recently updated now); None if it is finished."""
        if order_id in self._finished:
            return None
        t = self._active.pop(order_id, None)
        if t is None:
            t = _Track(symbol, order_id, cid, side, order_type)
            while len(self._active) >= MAX_ACTIVE_ORDERS:
                del self._active[next(iter(self._active))]
        self._active[order_id] = t
        if not t.cid:
            t.cid = cid
        return t

    def _finish(self, t: _Track) -> None:
        self._active.pop(t.order_id, None)
        self._finished[t.order_id] = None
        while len(self._finished) > RECENT_FINISHED:
            del self._finished[next(iter(self._finished))]

    def _on_orders(self, items: list[_Order], exch: int, recv: int, frame) -> list[Event]:
        out: list[Event] = []
        for m in [self._order_msg(o, exch, frame) for o in items]:
            t = self._track(m.order_id, m.symbol, m.cid, m.side, m.order_type)
            if t is None:
                continue
            if m.ts >= t.ord_ts:  # an older (replayed) message does not undo a newer one
                t.ord_seen, t.ord_ts, t.ord_status = True, m.ts, m.status
                t.ord_price, t.ord_qty = m.price, m.qty
                t.order_type, t.tif = m.order_type, m.tif
            t.ord_cum_seen = max(t.ord_cum_seen, m.cum_qty)
            if m.status == OrderStatus.FILLED and m.cum_qty > 0:
                t.ord_target = max(t.ord_target or ZERO, m.cum_qty)
            if m.cum_value is not None and m.cum_qty > t.ord_cum:
                t.ord_cum, t.ord_value = m.cum_qty, m.cum_value
                t.ord_fee = m.cum_fee
            if m.fee_asset:
                t.ord_fee_asset = m.fee_asset
            u = self._publish(t, m.ts, recv)
            if u is not None:
                out.append(u)
        return out

    def _on_executions(self, items: list[_Execution], recv: int, frame) -> list[Event]:
        out: list[Event] = []
        for x in [self._exec_msg(x, frame) for x in items]:
            t = self._track(x.order_id, x.symbol, x.cid, x.side, x.order_type)
            if t is None or x.exec_id in t.execs:
                continue
            pos = x.order_qty - x.leaves if x.leaves is not None else None
            if pos is not None and pos < x.qty:  # not in base-coin units: cannot be placed
                pos = None
            t.execs[x.exec_id] = (pos, x.qty, x.qty * x.price, x.fee)
            if x.fee_asset:
                t.ex_fee_asset = x.fee_asset
            t.exec_price, t.exec_qty = x.order_price, x.order_qty
            if x.leaves == 0 and x.order_qty > 0:
                t.ex_target = x.order_qty
            u = self._publish(t, x.ts, recv, x)
            if u is not None:
                out.append(u)
        return out

    def _publish(self, t: _Track, ts: int, recv: int,
                 x: _ExecMsg | None = None) -> OrderUpdate | None:  # fmt: skip
        cum, value, fee = t.known()
        if cum < t.out_cum:  # only inconsistent messages could do this: never go back
            cum, value, fee = t.out_cum, t.out_value, t.out_fee
        target = t.ord_target if t.ord_target is not None else t.ex_target
        if cum > 0 and target is not None and cum >= target:
            status = OrderStatus.FILLED
        elif t.ord_status in _TERMINAL and t.ord_status != OrderStatus.FILLED:
            status = t.ord_status
        elif cum > 0:
            status = OrderStatus.PARTIALLY_FILLED
        else:  # nothing known filled (a fill whose value is unknown yet waits for it)
            status = OrderStatus.NEW
        pq = (t.ord_price, t.ord_qty) if t.ord_seen else None
        if t.out_pq is None:  # prices/quantities in executions may be written differently
            t.out_pq = pq
        if t.out and status == t.out_status and cum == t.out_cum and pq == t.out_pq:
            return None
        last_qty = cum - t.out_cum
        last_px = fee_d = ZERO
        trade_id = ""
        if last_qty > 0:
            last_px = (value - t.out_value) / last_qty
            fee_d = max(fee - t.out_fee, ZERO)
            if x is not None and x.qty == last_qty and x.qty * x.price == value - t.out_value:
                trade_id = x.exec_id  # exactly this execution (else several, or unattributed)
        price, qty = pq if pq is not None else (t.exec_price, t.exec_qty)
        u = OrderUpdate(
            exchange=EXCHANGE, symbol=t.symbol, exch_ts=ts, local_ts=recv,
            client_order_id=t.cid, order_id=t.order_id, side=t.side,
            order_type=t.order_type, tif=t.tif, status=status, price=float(price),
            qty=float(qty), filled_qty=float(cum),
            avg_price=float(value / cum) if cum else 0.0,
            last_fill_price=float(last_px), last_fill_qty=float(last_qty), fee=float(fee_d),
            fee_asset=self._fee_asset(t.symbol, t.ex_fee_asset or t.ord_fee_asset)
            if last_qty > 0 else "",
            trade_id=trade_id,
        )  # fmt: skip
        t.out, t.out_status, t.out_cum, t.out_value, t.out_pq = True, status, cum, value, pq
        t.out_fee = max(t.out_fee, fee)
        if status in _TERMINAL and (status == OrderStatus.FILLED or cum >= t.ord_cum_seen):
            self._finish(t)
        return u
