"""Kraken Spot connector package (WebSocket API v2, public market data): the venue ``kraken``."""

from ttxt_mp.connectors.venue import VenueSpec

VENUE = VenueSpec(
    id="kraken",
    title="Kraken Spot (WebSocket API v2)",
    markets=("spot",),
    # "Spot WebSocket Introduction": public v2 data at wss://ws.kraken.com/v2 (the connector
    # appends /v2 to the configured base); REST at https://api.kraken.com/0/public/...
    endpoints={
        "live": ("wss://ws.kraken.com", "https://api.kraken.com"),
        "beta": ("wss://beta-ws.kraken.com", "https://api.kraken.com"),
    },
    book_levels=(10, 25, 100, 500, 1000),  # "Book": depth one of 10, 25, 100, 500, 1000
    depth=100,
    # "Candles (OHLC)": interval in minutes, one of 1, 5, 15, 30, 60, 240, 1440, 10080, 21600
    kline_intervals=("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "15d"),
    extra_streams=("book_ticker",),  # the v2 ticker channel with event_trigger=bbo
    connector="ttxt_mp.connectors.kraken.connector:KrakenConnector",
    book_rule="ttxt_mp.connectors.kraken.book_rule:RULE",
    instruments="ttxt_mp.connectors.kraken.instruments:kraken_instruments",
    sim="ttxt_mp.connectors.kraken.sim:KrakenVenue",
)
