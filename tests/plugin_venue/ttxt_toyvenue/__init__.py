"""ttxt-toyvenue: the venue ``toy`` for ttxt-mp, installed as a plug-in.

ttxt-mp finds it through the entry point ``toy = "ttxt_toyvenue:VENUE"`` of the group
``ttxt_mp.venues`` (see ``pyproject.toml``); nothing in ttxt-mp names it. Only this module
is imported to list the venue: the connector and the event kind load when used.
"""

from ttxt_mp.connectors.venue import VenueSpec

__all__ = ["EXCHANGE", "VENUE"]

EXCHANGE = "toy"

VENUE = VenueSpec(
    id=EXCHANGE,
    title="Toy exchange (test plug-in)",
    markets=("spot",),
    # Never reached: a config always points the toy venue at a ToyExchange it started.
    endpoints={"live": ("wss://toy.invalid", "https://toy.invalid")},
    book_levels=(50,),  # a toy book never holds more than 50 levels a side
    kline_intervals=(),  # no klines
    connector="ttxt_toyvenue.connector:ToyConnector",
)
