"""ttxt-mp: crypto exchange connectors in their own processes, over shared-memory rings."""

from ttxt_mp.client import BaseClient, EventFilter, Feed, FeedNotFound, IEventHandler, attach
from ttxt_mp.codec import Array, Fixed, LayoutError, Text
from ttxt_mp.codec import register_user_event as register_event
from ttxt_mp.config import Config, ConfigError, load_config
from ttxt_mp.events import (
    AmendOrder,
    Balance,
    BookTicker,
    CancelOrder,
    Connection,
    ConnectorState,
    ConnectorStatus,
    CreateOrder,
    Event,
    GapNotice,
    Kline,
    Liquidation,
    MarginMode,
    MarketTrades,
    MarkPrice,
    OpenInterest,
    OrderAck,
    OrderAction,
    Orderbook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSide,
    PositionUpdate,
    SetLeverage,
    Side,
    TimeInForce,
    Trade,
    Wallet,
)
from ttxt_mp.orderbook import BookGap, OrderBook, UpdateResult
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


def __getattr__(name: str):
    """Shared-memory and trading names load on first use (the rings refuse non-x86-64)."""
    if name == "ShmQueue":
        from ttxt_mp import shm

        return shm.ShmQueue
    if name in ("TradingClient", "TradingMixin", "TradingState"):
        from ttxt_mp import trading_client

        return getattr(trading_client, name)
    if name in ("BacktestVenue", "FeeSchedule", "VenueRules"):
        from ttxt_mp.backtest import venue

        return getattr(venue, name)
    if name in ("Backtest", "Latency"):
        from ttxt_mp.backtest import runner

        return getattr(runner, name)
    if name in ("Results", "ResultsBuilder", "Summary"):
        from ttxt_mp.backtest import results

        return getattr(results, name)
    if name in ("RedisStreamQueue", "BusConnectionError"):
        from ttxt_mp.bus import redis_queue

        return getattr(redis_queue, name)
    if name == "BusLayoutError":
        from ttxt_mp.bus.format import BusLayoutError

        return BusLayoutError
    raise AttributeError(f"module 'ttxt_mp' has no attribute {name!r}")

__all__ = [
    "AmendOrder", "Array", "AsyncioQueue", "Balance", "BaseClient", "BookGap", "BookTicker",
    "CancelOrder",
    "Config", "ConfigError", "Connection", "ConnectorState", "EventFilter", "Feed", "FeedNotFound",
    "IEventHandler", "OrderBook", "ShmQueue", "TradingClient", "TradingMixin", "UpdateResult",
    "Backtest", "Latency", "TradingState",
    "attach", "load_config",
    "ConnectorStatus", "CreateOrder", "Event", "Fixed", "GapNotice", "IQueue", "IQueueActor",
    "IQueueConsumer", "IQueuePublisher", "Kline", "LayoutError", "Liquidation", "MarketTrades",
    "MarginMode", "MarkPrice", "OpenInterest", "OrderAck", "PositionSide", "SetLeverage",
    "OrderAction", "OrderStatus", "OrderType", "OrderUpdate", "Orderbook", "PositionUpdate",
    "QueueClosed", "QueueEmpty", "QueueFull", "Side", "Text", "TimeInForce", "Trade",
    "Wallet", "register_event",
    "BacktestVenue", "FeeSchedule", "VenueRules",
    "Results", "ResultsBuilder", "Summary",
    "RedisStreamQueue", "BusConnectionError", "BusLayoutError",
]  # fmt: skip
