"""Coinbase Advanced Trade (spot, public market data) connector package: the venue ``coinbase``."""

from ttxt_mp.connectors.venue import VenueSpec

VENUE = VenueSpec(
    id="coinbase",
    title="Coinbase Advanced Trade Spot",
    markets=("spot",),
    endpoints={"live": ("wss://advanced-trade-ws.coinbase.com", "https://api.coinbase.com")},
    # level2 is the whole book, one depth only (a number above any book's level count).
    book_levels=(10000,),
    kline_intervals=("5m",),  # the candles channel: 5-minute candles only
    extra_streams=("book_ticker",),  # best bid/offer from the ticker channel
    connector="ttxt_mp.connectors.coinbase.connector:CoinbaseConnector",
    book_rule="ttxt_mp.connectors.coinbase.book_rule:RULE",
    instruments="ttxt_mp.connectors.coinbase.instruments:coinbase_instruments",
    sim="ttxt_mp.connectors.coinbase.sim:CoinbaseVenue",
)
