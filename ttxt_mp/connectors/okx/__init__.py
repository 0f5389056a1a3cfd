"""OKX v5 connector package: the venue ``okx`` (spot, and USDT-margined perpetual swaps as
the market ``linear``)."""

from ttxt_mp.connectors.venue import VenueSpec

VENUE = VenueSpec(
    id="okx",
    title="OKX v5 Spot",
    markets=("spot", "linear"),
    # The WebSocket base: the connector adds /ws/v5/public (books, trades, derivatives) and
    # /ws/v5/business (candles); REST paths start with /api/v5.
    endpoints={
        "live": ("wss://ws.okx.com:8443", "https://www.okx.com"),
    },
    book_levels=(1, 5, 400),  # bbo-tbt, books5, books (400 levels, snapshot + updates)
    depth=400,
    kline_intervals=("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h",
                     "1d", "2d", "3d", "1w", "1M", "3M"),  # fmt: skip
    extra_streams=("book_ticker",),
    connector="ttxt_mp.connectors.okx.connector:OkxConnector",
    book_rule="ttxt_mp.connectors.okx.book_rule:RULE",
    instruments="ttxt_mp.connectors.okx.instruments:okx_instruments",
    trading="ttxt_mp.connectors.okx.trading:OkxTrading",
    sim="ttxt_mp.connectors.okx.sim:OkxVenue",
    market_overrides={"linear": {
        # Same hosts and channels; instType SWAP (instId BTC-USDT-SWAP), sizes in contracts.
        "title": "OKX v5 USDT-margined perpetual swaps (linear)",
        "extra_streams": ("book_ticker", "mark_price", "open_interest", "liquidations"),
        "sim": "ttxt_mp.connectors.okx.sim_linear:OkxLinearVenue",
    }},
)
