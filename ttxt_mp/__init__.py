"""ttxt-mp: crypto exchange connectors in their own processes, over shared-memory rings."""

from ttxt_mp.codec import Array, Fixed, LayoutError, Text
from ttxt_mp.codec import register_user_event as register_event
from ttxt_mp.events import (
    AmendOrder,
    Balance,
    CancelOrder,
    ConnectorState,
    ConnectorStatus,
    CreateOrder,
    Event,
    GapNotice,
    Kline,
    MarketTrades,
    OrderAck,
    OrderAction,
    Orderbook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionUpdate,
    Side,
    TimeInForce,
    Trade,
    Wallet,
)
from ttxt_mp.queues import (
    AsyncioQueue,
    IQueue,
    IQueueActor,
    IQueueConsumer,
    IQueuePublisher,
    QueueClosed,
    QueueEmpty,
    QueueFull,
)

__version__ = "0.1.0"

__all__ = [
    "AmendOrder", "Array", "AsyncioQueue", "Balance", "CancelOrder", "ConnectorState",
    "ConnectorStatus", "CreateOrder", "Event", "Fixed", "GapNotice", "IQueue", "IQueueActor",
    "IQueueConsumer", "IQueuePublisher", "Kline", "LayoutError", "MarketTrades", "OrderAck",
    "OrderAction", "OrderStatus", "OrderType", "OrderUpdate", "Orderbook", "PositionUpdate",
    "QueueClosed", "QueueEmpty", "QueueFull", "Side", "Text", "TimeInForce", "Trade",
    "Wallet", "register_event",
]  # fmt: skip
