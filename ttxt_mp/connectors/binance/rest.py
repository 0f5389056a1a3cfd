"""Binance Spot REST shared by the venue's market-data connector and its trading venue: the
request budget (one limiter per process and host) and the instrument list (fetched once per
process, :mod:`ttxt_mp.connectors.catalog`).

- Limits: ``REQUEST_WEIGHT`` 6000 per minute (``exchangeInfo`` ``rateLimits`` of Spot),
  charged by every request; the per-account ``ORDERS`` count limits are enforced by the
  venue (its -1015 reaches the client as an ack).
- Instruments: ``GET /api/v3/exchangeInfo?symbols=[...]`` (weight 20) for the configured
  symbols; if one is unknown (-1121, HTTP 400, for the whole request) the full list, so the
  others still run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.instruments import Instrument
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, RESTError, shared_limiter

__all__ = ["EXCHANGE_INFO_WEIGHT", "RATE_LIMITS", "fetch_instruments", "instruments",
           "rate_limiter"]  # fmt: skip

RATE_LIMITS = (RateLimit("REQUEST_WEIGHT", 6000, 60.0, is_global=True),)
EXCHANGE_INFO_WEIGHT = 20


def rate_limiter(rest_url: str) -> RateLimiter:
    """The process's limiter for Binance at ``rest_url`` (market data and trading share it)."""
    return shared_limiter("binance", rest_url, lambda: RateLimiter(RATE_LIMITS))


async def fetch_instruments(
    rest: RESTAssistant, rest_url: str, symbols: Iterable[str] | None
) -> list[Instrument]:
    """One ``exchangeInfo`` request (two if a symbol is unknown); ``symbols`` normalized."""
    url = f"{rest_url.rstrip('/')}/api/v3/exchangeInfo"
    if symbols:
        natives = [s.replace("/", "") for s in symbols]
        try:
            resp = await rest.request(
                "GET", url, params={"symbols": json.dumps(natives, separators=(",", ":"))},
                weight=EXCHANGE_INFO_WEIGHT, raw=True,
            )  # fmt: skip
            return binance_instruments(resp.body)
        except RESTError as exc:
            if exc.status != 400:
                raise
    resp = await rest.request("GET", url, weight=EXCHANGE_INFO_WEIGHT, raw=True)
    return binance_instruments(resp.body)


async def instruments(
    rest: RESTAssistant, rest_url: str, symbols: Iterable[str], *, refresh: bool = False
) -> tuple[Instrument, ...]:
    """The instruments of ``symbols``, fetched through ``rest`` unless this process has them."""
    return await get_instruments(
        "binance", rest_url, lambda syms: fetch_instruments(rest, rest_url, syms),
        symbols=symbols, refresh=refresh,
    )  # fmt: skip
