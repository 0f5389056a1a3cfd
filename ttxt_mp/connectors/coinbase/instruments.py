"""Coinbase Advanced Trade instruments from ``GET /api/v3/brokerage/market/products``
("List Public Products"): ``product_id`` ``BTC-USD`` is ``BTC/USD``;
``price_increment`` (else ``quote_increment``) is the tick, ``base_increment`` the step,
``base_min_size`` / ``base_max_size`` the quantity limits and ``quote_min_size`` /
``quote_max_size`` the order value limits. A product trades when its ``status`` is
``online`` and neither ``trading_disabled`` nor ``is_disabled`` is set. Only
``product_type`` ``SPOT`` is spot; futures are left out (market data of spot only)."""

from __future__ import annotations

import msgspec

from ttxt_mp.connectors.instruments import (
    Instrument,
    InstrumentsError,
    decimal_field,
    make_instrument,
)

__all__ = ["coinbase_instruments"]

EXCHANGE = "coinbase"


class _Product(msgspec.Struct):
    product_id: str
    base_increment: str
    quote_increment: str
    base_currency_id: str = ""
    quote_currency_id: str = ""
    price_increment: str = ""
    base_min_size: str = ""
    base_max_size: str = ""
    quote_min_size: str = ""
    quote_max_size: str = ""
    status: str = ""
    trading_disabled: bool = False
    is_disabled: bool = False
    product_type: str = "SPOT"


class _Products(msgspec.Struct):
    products: list[_Product]
    num_products: int = 0


_DEC = msgspec.json.Decoder(_Products)


def _pair(p: _Product) -> tuple[str, str]:
    base, quote = p.base_currency_id, p.quote_currency_id
    if not (base and quote):
        base, sep, quote = p.product_id.partition("-")
        if not sep or not base or not quote:
            raise InstrumentsError(f"{EXCHANGE}: product_id {p.product_id!r} is not BASE-QUOTE")
    return base.upper(), quote.upper()


def coinbase_instruments(body: bytes | str) -> list[Instrument]:
    """Spot instruments of a ``market/products`` body."""
    try:
        resp = _DEC.decode(body)
    except msgspec.DecodeError as e:
        raise InstrumentsError(f"{EXCHANGE}: malformed products list: {e}") from None
    out = []
    for p in resp.products:
        if p.product_type != "SPOT":
            continue
        base, quote = _pair(p)
        pid = p.product_id

        def dec(text: str, what: str, pid: str = pid) -> object:
            return decimal_field(text, f"{pid} {what}", EXCHANGE)

        online = p.status.lower() == "online" and not (p.trading_disabled or p.is_disabled)
        out.append(make_instrument(
            EXCHANGE, pid, base, quote, "spot",
            dec(p.price_increment or p.quote_increment, "price_increment"),  # type: ignore[arg-type]
            dec(p.base_increment, "base_increment"),  # type: ignore[arg-type]
            min_qty=dec(p.base_min_size, "base_min_size"), max_qty=dec(p.base_max_size, "base_max_size"),
            min_notional=dec(p.quote_min_size, "quote_min_size"),
            max_notional=dec(p.quote_max_size, "quote_max_size"),
            status=p.status, trading=online,
        ))  # fmt: skip
    return out
