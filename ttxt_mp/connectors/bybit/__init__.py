"""Bybit v5 connector package: the venue ``bybit``."""

from ttxt_mp.connectors.venue import VenueSpec

VENUE = VenueSpec(
    id="bybit",
    title="Bybit v5 Spot",
    markets=("spot", "linear"),
    endpoints={
        "live": ("wss://stream.bybit.com", "https://api.bybit.com"),
        "testnet": ("wss://stream-testnet.bybit.com", "https://api-testnet.bybit.com"),
    },
    book_levels=(1, 50, 200),
    kline_intervals=("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w",
                     "1M"),  # fmt: skip
    extra_streams=("book_ticker",),
    connector="ttxt_mp.connectors.bybit.connector:BybitConnector",
    book_rule="ttxt_mp.connectors.bybit.book_rule:RULE",
    trading="ttxt_mp.connectors.bybit.trading:BybitTrading",
    instruments="ttxt_mp.connectors.bybit.instruments:bybit_instruments",
    sim="ttxt_mp.connectors.bybit.sim:BybitVenue",
    backtest="ttxt_mp.connectors.bybit.backtest:SPOT",
    market_overrides={"linear": {
        # Same hosts; the connector's WebSocket path and REST category follow the market
        # (/v5/public/linear, category=linear).
        "title": "Bybit v5 USDT/USDC perpetuals and futures (linear)",
        "book_levels": (1, 50, 200, 1000),  # "Orderbook": Linear & inverse depths
        "depth": 200,
        "extra_streams": ("book_ticker", "mark_price", "open_interest", "liquidations"),
        "sim": "ttxt_mp.connectors.bybit.sim_linear:BybitLinearVenue",
        "backtest": "ttxt_mp.connectors.bybit.backtest:LINEAR",
    }},
)
