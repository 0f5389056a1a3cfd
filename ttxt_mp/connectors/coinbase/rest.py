"""Coinbase Advanced Trade public REST: the request budget (one limiter per process and host)
and the instrument list (fetched once per process, :mod:`ttxt_mp.connectors.catalog`).

- Limits ("Advanced Trade API Rate Limits"): public REST endpoints 10 requests per
  second per IP.
- Instruments: ``GET /api/v3/brokerage/market/products?product_type=SPOT`` ("List Public
  Products", no authentication), the whole list in one response.
- Book: ``GET /api/v3/brokerage/market/product_book?product_id=BTC-USD`` ("Get Public
  Product Book"), for a one-off look (the stream's level2 snapshot is what syncs books).
"""

from __future__ import annotations

from ttxt_mp.connectors.catalog import get_instruments
from ttxt_mp.connectors.coinbase.instruments import EXCHANGE, coinbase_instruments
from ttxt_mp.connectors.instruments import Instrument
from ttxt_mp.web import RateLimit, RateLimiter, RESTAssistant, shared_limiter

__all__ = ["PRODUCTS_PATH", "BOOK_PATH", "RATE_LIMITS", "instruments", "rate_limiter"]

RATE_LIMITS = (RateLimit("IP", 10, 1.0, is_global=True),)
PRODUCTS_PATH = "/api/v3/brokerage/market/products"
BOOK_PATH = "/api/v3/brokerage/market/product_book"


def rate_limiter(rest_url: str) -> RateLimiter:
    """The process's limiter for Coinbase at ``rest_url``."""
    return shared_limiter(EXCHANGE, rest_url, lambda: RateLimiter(RATE_LIMITS))


async def fetch_instruments(rest: RESTAssistant, rest_url: str) -> list[Instrument]:
    resp = await rest.request("GET", f"{rest_url.rstrip('/')}{PRODUCTS_PATH}",
                              params={"product_type": "SPOT"}, raw=True)  # fmt: skip
    return coinbase_instruments(resp.body)


async def instruments(
    rest: RESTAssistant, rest_url: str, *, refresh: bool = False
) -> tuple[Instrument, ...]:
    """The spot products, fetched through ``rest`` unless this process has them."""
    return await get_instruments(EXCHANGE, rest_url, lambda _: fetch_instruments(rest, rest_url),
                                 refresh=refresh)  # fmt: skip
