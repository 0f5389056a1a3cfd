"""Binance connector package: the venue ``binance``, markets Spot and USDⓈ-M futures
(``linear``: perpetuals and delivery contracts margined in USDT/USDC)."""

from ttxt_mp.connectors.venue import VenueSpec

VENUE = VenueSpec(
    id="binance",
    title="Binance Spot",
    markets=("spot", "linear"),
    endpoints={
        "live": ("wss://stream.binance.com:9443", "https://api.binance.com"),
        "testnet": ("wss://stream.testnet.binance.vision", "https://testnet.binance.vision"),
    },
    book_levels=(5, 10, 20, 100, 500, 1000, 5000),
    depth=1000,
    kline_intervals=("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                     "1d", "3d", "1w", "1M"),  # fmt: skip
    extra_streams=("book_ticker", "agg_trades"),
    connector="ttxt_mp.connectors.binance.connector:BinanceConnector",
    book_rule="ttxt_mp.connectors.binance.book_rule:RULE",
    trading="ttxt_mp.connectors.binance.trading:BinanceTrading",
    instruments="ttxt_mp.connectors.binance.instruments:binance_instruments",
    sim="ttxt_mp.connectors.binance.sim:BinanceVenue",
    backtest="ttxt_mp.connectors.binance.backtest:SPOT",
    market_overrides={
        "linear": {
            "title": "Binance USDⓈ-M Futures",
            # USDⓈ-M "General Info" / "WebSocket Market Streams" (testnet: "Testnet API
            # Information": REST demo-fapi.binance.com, streams fstream.binancefuture.com)
            "endpoints": {
                "live": ("wss://fstream.binance.com", "https://fapi.binance.com"),
                "testnet": ("wss://fstream.binancefuture.com", "https://demo-fapi.binance.com"),
            },
            "book_levels": (5, 10, 20, 50, 100, 500, 1000),  # GET /fapi/v1/depth limits
            "depth": 1000,
            "kline_intervals": ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h",
                                "12h", "1d", "3d", "1w", "1M"),
            # trades always come from @aggTrade; agg_trades is accepted (same stream)
            "extra_streams": ("book_ticker", "agg_trades", "mark_price", "open_interest",
                              "liquidations"),
            "connector": "ttxt_mp.connectors.binance.connector:BinanceLinearConnector",
            "instruments": "ttxt_mp.connectors.binance.instruments:binance_linear_instruments",
            "sim": "ttxt_mp.connectors.binance.sim_linear:BinanceLinearVenue",
            "backtest": "ttxt_mp.connectors.binance.backtest:LINEAR",
            "trading": "ttxt_mp.connectors.binance.futures_trading:BinanceFuturesTrading",
        },
    },
)
