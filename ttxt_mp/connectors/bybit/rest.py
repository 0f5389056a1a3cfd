"""Bybit v5 REST shared by the venue's market-data connector and its trading venue: the
request budget (one limiter per process and host) and the instrument list (fetched once per
process, :mod:`ttxt_mp.connectors.catalog`).

- Limits ("Rate Limit"): 600 requests per 5 s per IP for HTTP; order create/amend/cancel
  20/s (spot) are enforced by the venue.
- Instruments: ``GET /v5/market/instruments-info?category=<spot|linear>``, the whole
  category. Derivatives are paged ("you will need to use cursor for pagination"): pages of
  ``limit=1000`` (the maximum) following ``nextPageCursor`` until it is empty; spot is one
  page ("Spot does not support pagination").
"""

from __future__ import annotations

from ttxt_mp.connectors.bybit.instruments import bybit_instruments_page
from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.instruments import Instrument, InstrumentsError
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, shared_limiter

__all__ = ["RATE_LIMITS", "fetch_instruments", "instruments", "rate_limiter"]

RATE_LIMITS = (RateLimit("IP", 600, 5.0, is_global=True),)
PAGE_LIMIT = 1000  # "limit: Limit for data size per page. [1, 1000]"
MAX_PAGES = 100  # a cursor that never ends is a venue fault, not an endless loop


def rate_limiter(rest_url: str) -> RateLimiter:
    """The process's limiter for Bybit at ``rest_url`` (market data and trading share it)."""
    return shared_limiter("bybit", rest_url, lambda: RateLimiter(RATE_LIMITS))


async def fetch_instruments(
    rest: RESTAssistant, rest_url: str, category: str = "spot", *, page_limit: int = PAGE_LIMIT
) -> list[Instrument]:
    """Every instrument of ``category``: one ``instruments-info`` request for spot, pages of
    ``page_limit`` following ``nextPageCursor`` for derivatives."""
    url = f"{rest_url.rstrip('/')}/v5/market/instruments-info"
    params = {"category": category}
    if category != "spot":
        params["limit"] = str(page_limit)
    out: list[Instrument] = []
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        resp = await rest.request("GET", url, params=params, raw=True)
        page, cursor = bybit_instruments_page(resp.body)
        out += page
        if category == "spot" or not cursor or not page:
            return out
        if cursor in seen:
            raise InstrumentsError(f"bybit: instruments-info cursor {cursor[:40]!r} repeats")
        seen.add(cursor)
        params = {**params, "cursor": cursor}
    raise InstrumentsError(f"bybit: instruments-info has more than {MAX_PAGES} pages")


async def instruments(
    rest: RESTAssistant, rest_url: str, category: str = "spot", *, refresh: bool = False
) -> tuple[Instrument, ...]:
    """The instruments of ``category``, fetched through ``rest`` unless this process has them."""
    return await get_instruments(
        "bybit", rest_url, lambda _: fetch_instruments(rest, rest_url, category),
        market=category, refresh=refresh,
    )  # fmt: skip
