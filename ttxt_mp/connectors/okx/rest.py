"""OKX v5 REST shared by the venue's connectors: the request budget (one limiter per process
and host) and the instrument list (fetched once per process, :mod:`ttxt_mp.connectors.catalog`).

- "Get instruments" (``GET /api/v5/public/instruments``): rate limit 20 requests per 2 s
  (IP + instType); one request gives every instrument of the type (no paging).
- "Get order book" (``GET /api/v5/market/books``): 40 requests per 2 s (IP); ``sz`` up to 400.
"""

from __future__ import annotations

from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.instruments import Instrument
from ttxt_mp.connectors.okx.instruments import okx_instruments
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, shared_limiter

__all__ = ["INST_TYPES", "RATE_LIMITS", "fetch_instruments", "instruments", "rate_limiter"]

INST_TYPES = {"spot": "SPOT", "linear": "SWAP"}  # market -> instType
RATE_LIMITS = (RateLimit("IP", 20, 2.0, is_global=True),)


def rate_limiter(rest_url: str) -> RateLimiter:
    """The process's limiter for OKX at ``rest_url``."""
    return shared_limiter("okx", rest_url, lambda: RateLimiter(RATE_LIMITS))


async def fetch_instruments(rest: RESTAssistant, rest_url: str, market: str = "spot"
                            ) -> list[Instrument]:  # fmt: skip
    """Every instrument of the market's instType, one request."""
    url = f"{rest_url.rstrip('/')}/api/v5/public/instruments"
    resp = await rest.request("GET", url, params={"instType": INST_TYPES[market]}, raw=True)
    return okx_instruments(resp.body)


async def instruments(rest: RESTAssistant, rest_url: str, market: str = "spot", *,
                      refresh: bool = False) -> tuple[Instrument, ...]:  # fmt: skip
    """The market's instruments, fetched through ``rest`` unless this process has them."""
    return await get_instruments(
        "okx", rest_url, lambda _: fetch_instruments(rest, rest_url, market),
        market=market, refresh=refresh,
    )  # fmt: skip
