"""Kraken REST shared by the venue's connector (and a future trading venue): the request
budget (one limiter per process and host) and the instrument list (fetched once per process,
:mod:`ttxt_mp.connectors.catalog`).

- Limits ("Spot REST rate limits"): public endpoints are limited per IP to about one request
  per second (bursts are answered ``EGeneral:Too many requests``); one request per second
  is kept here.
- Instruments: ``GET /0/public/AssetPairs`` (every pair in one body).
"""

from __future__ import annotations

from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.instruments import Instrument
from ttxt_mp.connectors.kraken.instruments import kraken_instruments
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, shared_limiter

__all__ = ["ASSET_PAIRS", "RATE_LIMITS", "instruments", "rate_limiter"]

RATE_LIMITS = (RateLimit("IP", 1, 1.0, is_global=True),)
ASSET_PAIRS = "/0/public/AssetPairs"


def rate_limiter(rest_url: str) -> RateLimiter:
    """The process's limiter for Kraken at ``rest_url``."""
    return shared_limiter("kraken", rest_url, lambda: RateLimiter(RATE_LIMITS))


async def fetch_instruments(rest: RESTAssistant, rest_url: str) -> list[Instrument]:
    resp = await rest.request("GET", f"{rest_url.rstrip('/')}{ASSET_PAIRS}", raw=True)
    return kraken_instruments(resp.body)


async def instruments(
    rest: RESTAssistant, rest_url: str, *, refresh: bool = False
) -> tuple[Instrument, ...]:
    """Every spot pair, fetched through ``rest`` unless this process has them."""
    return await get_instruments(
        "kraken", rest_url, lambda _: fetch_instruments(rest, rest_url), market="spot",
        refresh=refresh,
    )  # fmt: skip
