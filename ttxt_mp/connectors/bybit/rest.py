"""Bybit v5 REST shared by the venue's market-data connector and its trading venue: the
request budget (one limiter per process and host) and the instrument list (fetched once per
process, :mod:`ttxt_mp.connectors.catalog`).

- Limits ("Rate Limit"): 600 requests per 5 s per IP for HTTP; order create/amend/cancel
  20/s (spot) are enforced by the venue.
- Instruments: ``GET /v5/market/instruments-info?category=spot``, the whole category.
"""

from __future__ import annotations

from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.instruments import Instrument
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, shared_limiter

__all__ = ["RATE_LIMITS", "fetch_instruments", "instruments", "rate_limiter"]

RATE_LIMITS = (RateLimit("IP", 600, 5.0, is_global=True),)


def rate_limiter(rest_url: str) -> RateLimiter:
    """The process's limiter for Bybit at ``rest_url`` (market data and trading share it)."""
    return shared_limiter("bybit", rest_url, lambda: RateLimiter(RATE_LIMITS))


async def fetch_instruments(
    rest: RESTAssistant, rest_url: str, category: str = "spot"
) -> list[Instrument]:
    """One ``instruments-info`` request: every instrument of ``category``."""
    url = f"{rest_url.rstrip('/')}/v5/market/instruments-info"
    resp = await rest.request("GET", url, params={"category": category}, raw=True)
    return bybit_instruments(resp.body)


async def instruments(
    rest: RESTAssistant, rest_url: str, category: str = "spot", *, refresh: bool = False
) -> tuple[Instrument, ...]:
    """The instruments of ``category``, fetched through ``rest`` unless this process has them."""
    return await get_instruments(
        "bybit", rest_url, lambda _: fetch_instruments(rest, rest_url, category),
        market=category, refresh=refresh,
    )  # fmt: skip
