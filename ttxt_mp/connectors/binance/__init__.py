"""Binance Spot (and USDⓈ-M futures diff depth) connector package: the venue ``binance``."""

from ttxt_mp.connectors.venue import VenueSpec

VENUE = VenueSpec(
    id="binance",
    title="Binance Spot",
    markets=("spot",),
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
)
