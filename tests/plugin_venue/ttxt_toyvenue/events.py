"""``ToyTicker``: the toy venue's own event kind (id 4242), next to Orderbook/MarketTrades.

Importing this module registers the kind. Every process of an engine running the toy
venue must import it, which the engine config arranges::

    [events]
    modules = ["ttxt_toyvenue.events"]

and so must any process attaching to that engine (``import ttxt_toyvenue.events``).
"""

from __future__ import annotations

import ttxt_mp
from ttxt_mp import Fixed
from ttxt_mp.events import Event

__all__ = ["TOY_TICKER_KIND", "ToyTicker"]

TOY_TICKER_KIND = 4242


class ToyTicker(Event, frozen=True, kw_only=True):
    """The toy exchange's ticker: last trade price, best bid/ask, 24 h volume, and the
    book sequence number it was taken at (``seq``)."""

    last: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    volume: float = 0.0
    seq: int = 0


ttxt_mp.register_event(TOY_TICKER_KIND, ToyTicker, [
    Fixed("exchange", "S16"), Fixed("symbol", "S32"), Fixed("exch_ts", "i8"),
    Fixed("local_ts", "i8"), Fixed("last", "f8"), Fixed("bid", "f8"), Fixed("ask", "f8"),
    Fixed("volume", "f8"), Fixed("seq", "i8"),
])  # fmt: skip
