"""Event types shared by every process (names kept from ttxt2).

Every event is an immutable ``msgspec.Struct`` (``frozen=True``): an event handed to one
client can never be changed under another (ttxt2 stored delta levels by reference).
Each kind also has a fixed binary layout, declared next to it with :func:`layout` and
compiled by :mod:`ttxt_mp.codec`; rings and recordings carry those bytes.

Conventions: prices and quantities are float64; timestamps are int64 nanoseconds since
the epoch, ``exch_ts`` from the exchange and ``local_ts`` at local receipt; ``symbol``
is normalized ``BASE/QUOTE`` (e.g. ``BTC/USDT``); ``exchange`` is lower case.
"""

from __future__ import annotations

from enum import IntEnum

import msgspec

from ttxt_mp.codec import Array, Fixed, Text, register_event


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    POST_ONLY = 4


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 4
    REJECTED = 5
    EXPIRED = 6


class OrderAction(IntEnum):
    CREATE = 1
    CANCEL = 2
    AMEND = 3
    SET_LEVERAGE = 4


class MarginMode(IntEnum):
    """Margin mode a :class:`SetLeverage` asks for (UNCHANGED: leave it as it is)."""

    UNCHANGED = 0
    CROSS = 1
    ISOLATED = 2


class PositionSide(IntEnum):
    """Which position an order trades: BOTH in one-way mode; LONG/SHORT in hedge mode."""

    BOTH = 0
    LONG = 1
    SHORT = 2


class ConnectorState(IntEnum):
    """Life-cycle of one connector (or one of its streams when ``symbol`` is set)."""

    STARTING = 1
    CONNECTING = 2
    UP = 3
    RESYNCING = 4
    GAP = 5
    DOWN = 6
    ERROR = 7
    STOPPED = 8
    DISABLED = 9


class Connection(IntEnum):
    """Which of a connector's connections a ``ConnectorStatus`` is about."""

    MARKET = 1  # public market data (the WebSocket streams and REST snapshots)
    PRIVATE = 2  # the account's private stream (orders, fills, wallets)
    ORDER_ENTRY = 3  # the order entry session (signed REST / command rings)


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Fields every event carries.

    ``gc=False`` (inherited by every event class): events are frozen and hold only
    scalars, text and tuples of values, so they can never be part of a reference cycle,
    and the cyclic collector need not track the millions a replay or a busy consumer
    makes (it traversed them on every young-generation pass)."""

    exchange: str
    symbol: str = ""
    exch_ts: int = 0
    local_ts: int = 0


# --------------------------------------------------------------------------- market data


Level = tuple[float, float]
"""One price level: (price, quantity). Quantity 0 in a delta removes the level."""


class Orderbook(Event, frozen=True, kw_only=True):
    """A snapshot (replaces the whole book) or a delta (changes levels).

    ``first_update_id``/``last_update_id`` are the venue's update ids (Binance ``U``/``u``,
    Bybit ``u`` in both); ``prev_update_id`` is Binance futures' ``pu`` (-1 if absent);
    ``seq`` is Bybit's cross sequence (-1 if absent). Never truncated.
    """

    is_snapshot: bool = False
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    first_update_id: int = 0
    last_update_id: int = 0
    prev_update_id: int = -1
    seq: int = -1


class Trade(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One public trade. ``side`` is the taker's side."""

    id: str
    price: float
    qty: float
    side: Side
    ts: int


class MarketTrades(Event, frozen=True, kw_only=True):
    trades: tuple[Trade, ...] = ()


class Kline(Event, frozen=True, kw_only=True):
    interval: str = "1m"
    open_ts: int = 0
    close_ts: int = 0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: float = 0.0
    quote_volume: float = 0.0
    trades: int = 0
    closed: bool = False


class BookTicker(Event, frozen=True, kw_only=True):
    """The best bid and offer of one instrument, from the venue's own stream (Binance
    ``<sym>@bookTicker``, Bybit's level-1 book ``orderbook.1.<SYM>``), not from a book.

    ``update_id`` is the venue's book update id (Binance ``u``, Bybit ``u``), -1 if it
    sends none. A side without orders has price and quantity 0. ``exch_ts`` is 0 when the
    venue sends no time (Binance's bookTicker has none)."""

    bid: float = 0.0
    bid_qty: float = 0.0
    ask: float = 0.0
    ask_qty: float = 0.0
    update_id: int = -1


class MarkPrice(Event, frozen=True, kw_only=True):
    """A derivative's mark price, with the index price and the funding rate the venue
    publishes beside it (Binance ``<sym>@markPrice``, Bybit ``tickers.<SYM>``).

    ``index_price`` and ``funding_rate`` are 0 when the venue's message has none (a dated
    future has no funding); ``next_funding_ts`` is the next funding time in ns, 0 if
    unknown. Mark prices drive liquidations and unrealised PnL, so strategies on
    perpetuals watch it rather than the last trade."""

    mark_price: float = 0.0
    index_price: float = 0.0
    funding_rate: float = 0.0
    next_funding_ts: int = 0


class OpenInterest(Event, frozen=True, kw_only=True):
    """Open interest of a derivative: ``open_interest`` in the venue's unit (base asset or
    contracts), ``open_interest_value`` in the quote asset, 0 if the venue does not say."""

    open_interest: float = 0.0
    open_interest_value: float = 0.0


class Liquidation(Event, frozen=True, kw_only=True):
    """A forced (liquidation) order printed by the venue: ``side`` is the side of that
    order, so SELL means a long position was liquidated; ``price`` and ``qty`` are what
    the venue reports for it (its fill price and quantity where it gives them)."""

    side: Side
    price: float = 0.0
    qty: float = 0.0


# --------------------------------------------------------------------------- commands


class CreateOrder(Event, frozen=True, kw_only=True):
    client_order_id: str
    side: Side
    order_type: OrderType = OrderType.LIMIT
    qty: float
    price: float = 0.0
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH


class CancelOrder(Event, frozen=True, kw_only=True):
    client_order_id: str
    order_id: str = ""


class AmendOrder(Event, frozen=True, kw_only=True):
    """Change price and/or quantity of a resting order; 0 means unchanged."""

    client_order_id: str
    order_id: str = ""
    new_price: float = 0.0
    new_qty: float = 0.0


class SetLeverage(Event, frozen=True, kw_only=True):
    """Set the leverage (0: unchanged) and/or the margin mode of the account's position on
    a contract ``symbol``; acked by an ``OrderAck`` (action SET_LEVERAGE) under
    ``client_order_id``, the request's own id (like an order's, from the client)."""

    client_order_id: str
    leverage: float = 0.0
    margin_mode: MarginMode = MarginMode.UNCHANGED


# --------------------------------------------------------------------------- private / status


class OrderAck(Event, frozen=True, kw_only=True):
    """Exactly one per command: accepted or rejected with the venue's code and message."""

    client_order_id: str
    action: OrderAction
    accepted: bool
    order_id: str = ""
    code: str = ""
    message: str = ""


class OrderUpdate(Event, frozen=True, kw_only=True):
    client_order_id: str
    order_id: str = ""
    side: Side
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    status: OrderStatus
    price: float = 0.0
    qty: float = 0.0
    filled_qty: float = 0.0
    avg_price: float = 0.0
    last_fill_price: float = 0.0
    last_fill_qty: float = 0.0
    fee: float = 0.0
    fee_asset: str = ""
    trade_id: str = ""


class Balance(msgspec.Struct, frozen=True, array_like=True, gc=False):
    asset: str
    free: float
    locked: float


class Wallet(Event, frozen=True, kw_only=True):
    balances: tuple[Balance, ...] = ()


class PositionUpdate(Event, frozen=True, kw_only=True):
    """Derivatives position; ``size`` is signed (negative = short)."""

    size: float = 0.0
    entry_price: float = 0.0
    mark_price: float = 0.0
    unrealized_pnl: float = 0.0
    leverage: float = 0.0


class ConnectorStatus(Event, frozen=True, kw_only=True):
    """Published on every state change of a connector (``symbol`` set for one stream)."""

    state: ConnectorState
    message: str = ""
    reconnects: int = 0
    """Reconnects of the connection this status is about."""
    gaps: int = 0
    connection: Connection = Connection.MARKET


class GapNotice(Event, frozen=True, kw_only=True):
    """Handed to a consumer that was lapped on an ``overwrite`` ring: ``lost`` events
    were overwritten before it could read them; it continues from the oldest valid one."""

    lost: int


# --------------------------------------------------------------------------- layouts

STR_EXCHANGE = "S16"
STR_SYMBOL = "S32"
STR_ID = "S48"
STR_ASSET = "S16"

_BASE = (
    Fixed("exchange", STR_EXCHANGE),
    Fixed("symbol", STR_SYMBOL),
    Fixed("exch_ts", "i8"),
    Fixed("local_ts", "i8"),
)

register_event(
    1,
    Orderbook,
    _BASE
    + (
        Fixed("is_snapshot", "?"),
        Fixed("first_update_id", "i8"),
        Fixed("last_update_id", "i8"),
        Fixed("prev_update_id", "i8"),
        Fixed("seq", "i8"),
        Array("bids", [("price", "f8"), ("qty", "f8")]),
        Array("asks", [("price", "f8"), ("qty", "f8")]),
    ),
)
register_event(
    2,
    MarketTrades,
    _BASE
    + (
        Array(
            "trades",
            [("id", STR_ID), ("price", "f8"), ("qty", "f8"), ("side", "u1"), ("ts", "i8")],
            item=Trade,
            enums={"side": Side},
        ),
    ),
)
register_event(
    3,
    Kline,
    _BASE
    + (
        Fixed("interval", "S8"),
        Fixed("open_ts", "i8"),
        Fixed("close_ts", "i8"),
        Fixed("open", "f8"),
        Fixed("high", "f8"),
        Fixed("low", "f8"),
        Fixed("close", "f8"),
        Fixed("volume", "f8"),
        Fixed("quote_volume", "f8"),
        Fixed("trades", "i8"),
        Fixed("closed", "?"),
    ),
)
register_event(
    4,
    BookTicker,
    _BASE
    + (
        Fixed("bid", "f8"),
        Fixed("bid_qty", "f8"),
        Fixed("ask", "f8"),
        Fixed("ask_qty", "f8"),
        Fixed("update_id", "i8"),
    ),
)
register_event(
    5,
    MarkPrice,
    _BASE
    + (
        Fixed("mark_price", "f8"),
        Fixed("index_price", "f8"),
        Fixed("funding_rate", "f8"),
        Fixed("next_funding_ts", "i8"),
    ),
)
register_event(
    6,
    OpenInterest,
    _BASE + (Fixed("open_interest", "f8"), Fixed("open_interest_value", "f8")),
)
register_event(
    7,
    Liquidation,
    _BASE + (Fixed("side", "u1", enum=Side), Fixed("price", "f8"), Fixed("qty", "f8")),
)
register_event(
    10,
    CreateOrder,
    _BASE
    + (
        Fixed("client_order_id", STR_ID),
        Fixed("side", "u1", enum=Side),
        Fixed("order_type", "u1", enum=OrderType),
        Fixed("qty", "f8"),
        Fixed("price", "f8"),
        Fixed("tif", "u1", enum=TimeInForce),
        Fixed("reduce_only", "?"),
        Fixed("position_side", "u1", enum=PositionSide),
    ),
)
register_event(
    11,
    CancelOrder,
    _BASE + (Fixed("client_order_id", STR_ID), Fixed("order_id", STR_ID)),
)
register_event(
    12,
    AmendOrder,
    _BASE
    + (
        Fixed("client_order_id", STR_ID),
        Fixed("order_id", STR_ID),
        Fixed("new_price", "f8"),
        Fixed("new_qty", "f8"),
    ),
)
register_event(
    13,
    SetLeverage,
    _BASE
    + (
        Fixed("client_order_id", STR_ID),
        Fixed("leverage", "f8"),
        Fixed("margin_mode", "u1", enum=MarginMode),
    ),
)
register_event(
    20,
    OrderAck,
    _BASE
    + (
        Fixed("client_order_id", STR_ID),
        Fixed("action", "u1", enum=OrderAction),
        Fixed("accepted", "?"),
        Fixed("order_id", STR_ID),
        Fixed("code", "S24"),
        Text("message"),
    ),
)
register_event(
    21,
    OrderUpdate,
    _BASE
    + (
        Fixed("client_order_id", STR_ID),
        Fixed("order_id", STR_ID),
        Fixed("side", "u1", enum=Side),
        Fixed("order_type", "u1", enum=OrderType),
        Fixed("tif", "u1", enum=TimeInForce),
        Fixed("status", "u1", enum=OrderStatus),
        Fixed("price", "f8"),
        Fixed("qty", "f8"),
        Fixed("filled_qty", "f8"),
        Fixed("avg_price", "f8"),
        Fixed("last_fill_price", "f8"),
        Fixed("last_fill_qty", "f8"),
        Fixed("fee", "f8"),
        Fixed("fee_asset", STR_ASSET),
        Fixed("trade_id", STR_ID),
    ),
)
register_event(
    22,
    Wallet,
    _BASE
    + (
        Array(
            "balances",
            [("asset", STR_ASSET), ("free", "f8"), ("locked", "f8")],
            item=Balance,
        ),
    ),
)
register_event(
    23,
    PositionUpdate,
    _BASE
    + (
        Fixed("size", "f8"),
        Fixed("entry_price", "f8"),
        Fixed("mark_price", "f8"),
        Fixed("unrealized_pnl", "f8"),
        Fixed("leverage", "f8"),
    ),
)
register_event(
    30,
    ConnectorStatus,
    _BASE
    + (
        Fixed("state", "u1", enum=ConnectorState),
        Fixed("connection", "u1", enum=Connection),
        Fixed("reconnects", "i8"),
        Fixed("gaps", "i8"),
        Text("message"),
    ),
)
register_event(31, GapNotice, _BASE + (Fixed("lost", "i8"),))

MARKET_EVENTS = (Orderbook, MarketTrades, Kline, BookTicker, MarkPrice, OpenInterest,
                 Liquidation)  # fmt: skip
COMMAND_EVENTS = (CreateOrder, CancelOrder, AmendOrder, SetLeverage)
PRIVATE_EVENTS = (OrderAck, OrderUpdate, Wallet, PositionUpdate)
