"""Binance REST shared by the venue's market-data connector and its trading venue, per
market (Spot ``api.binance.com``, USDⓈ-M futures ``fapi.binance.com``): the request budget
(one limiter per process and host) and the instrument list (fetched once per process and
market, :mod:`ttxt_mp.connectors.catalog`).

- Spot: ``REQUEST_WEIGHT`` 6000 per minute (``exchangeInfo`` ``rateLimits``), charged by
  every request; ``GET /api/v3/exchangeInfo?symbols=[...]`` (weight 20) for the configured
  symbols; if one is unknown (-1121, HTTP 400, for the whole request) the full list, so the
  others still run. The per-account ``ORDERS`` count limits are enforced by the venue (its
  -1015 reaches the client as an ack).
- USDⓈ-M futures: ``REQUEST_WEIGHT`` 2400 per minute; ``GET /fapi/v1/exchangeInfo``
  (weight 1, no parameters: always the full list).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ttxt_mp.connectors.binance.instruments import (
    binance_instruments,
    binance_linear_instruments,
)
from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.instruments import Instrument
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, RESTError, shared_limiter

__all__ = ["EXCHANGE_INFO_WEIGHT", "MARKETS", "RATE_LIMITS", "RestMarket", "fetch_instruments",
           "instruments", "rate_limiter"]  # fmt: skip


class RestMarket(NamedTuple):
    """What differs between Binance's REST APIs of one market."""

    limits: tuple[RateLimit, ...]
    info_path: str
    info_weight: int
    parse: Callable[[bytes | str], list[Instrument]]
    symbols_param: bool  # exchangeInfo takes ``symbols=[...]``


RATE_LIMITS = (RateLimit("REQUEST_WEIGHT", 6000, 60.0, is_global=True),)
EXCHANGE_INFO_WEIGHT = 20

MARKETS: dict[str, RestMarket] = {
    "spot": RestMarket(RATE_LIMITS, "/api/v3/exchangeInfo", EXCHANGE_INFO_WEIGHT,
                       binance_instruments, True),
    "linear": RestMarket((RateLimit("REQUEST_WEIGHT", 2400, 60.0, is_global=True),),
                         "/fapi/v1/exchangeInfo", 1, binance_linear_instruments, False),
}  # fmt: skip


def rate_limiter(rest_url: str, market: str = "spot") -> RateLimiter:
    """The process's limiter for Binance at ``rest_url`` (market data and trading share it)."""
    limits = MARKETS[market].limits
    return shared_limiter("binance", rest_url, lambda: RateLimiter(limits))


async def fetch_instruments(
    rest: RESTAssistant, rest_url: str, symbols: Iterable[str] | None, market: str = "spot"
) -> list[Instrument]:
    """One ``exchangeInfo`` request (two if a Spot symbol is unknown); ``symbols`` normalized."""
    m = MARKETS[market]
    url = f"{rest_url.rstrip('/')}{m.info_path}"
    if symbols and m.symbols_param:
        natives = [s.replace("/", "") for s in symbols]
        try:
            resp = await rest.request(
                "GET", url, params={"symbols": json.dumps(natives, separators=(",", ":"))},
                weight=m.info_weight, raw=True,
            )  # fmt: skip
            return m.parse(resp.body)
        except RESTError as exc:
            if exc.status != 400:
                raise
    resp = await rest.request("GET", url, weight=m.info_weight, raw=True)
    return m.parse(resp.body)


async def instruments(
    rest: RESTAssistant, rest_url: str, symbols: Iterable[str], *, refresh: bool = False,
    market: str = "spot",
) -> tuple[Instrument, ...]:
    """The instruments of ``symbols`` (of ``market``), fetched through ``rest`` unless this
    process has them (a market whose list comes whole is kept whole)."""
    wanted = symbols if MARKETS[market].symbols_param else None
    return await get_instruments(
        "binance", rest_url, lambda syms: fetch_instruments(rest, rest_url, syms, market),
        market=market, symbols=wanted, refresh=refresh,
    )  # fmt: skip
