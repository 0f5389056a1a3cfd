"""Bybit v5 instruments from ``GET /v5/market/instruments-info`` (``priceFilter``,
``lotSizeFilter``; spot, linear or inverse). Derivatives carry ``settleCoin`` and
``deliveryTime`` (ms, ``"0"`` for perpetuals), so a dated ``BTCUSDT-27DEC24`` is
``BTC/USDT:USDT-241227`` and never collides with spot ``BTC/USDT``.

Derivative lists are paged (``limit`` up to 1000, ``nextPageCursor``):
:func:`bybit_instruments_page` gives one page and its cursor."""

from __future__ import annotations

import datetime as dt

import msgspec

from ttxt_mp.connectors.instruments import (
    Instrument,
    InstrumentsError,
    decimal_field,
    make_instrument,
)

__all__ = ["bybit_instruments", "bybit_instruments_page"]


class _BbPriceFilter(msgspec.Struct):
    tickSize: str
    minPrice: str = ""
    maxPrice: str = ""


class _BbLotFilter(msgspec.Struct):
    basePrecision: str = ""  # spot: the quantity step
    qtyStep: str = ""  # derivatives: the quantity step
    minOrderQty: str = ""
    maxOrderQty: str = ""
    maxLimitOrderQty: str = ""
    minOrderAmt: str = ""  # spot: minimum order value (quote)
    minNotionalValue: str = ""  # linear: minimum notional


class _BbInstrument(msgspec.Struct):
    symbol: str
    baseCoin: str
    quoteCoin: str
    priceFilter: _BbPriceFilter
    lotSizeFilter: _BbLotFilter
    status: str = "Trading"
    settleCoin: str = ""  # linear / inverse
    deliveryTime: str = "0"  # dated contracts: delivery time in ms; "0": none


class _BbResult(msgspec.Struct):  # empty ({}) in error responses
    category: str = ""
    items: list[_BbInstrument] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""  # derivatives: the next page's cursor ("" on the last)


class _BbResponse(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: _BbResult | None = None


_BB_INFO = msgspec.json.Decoder(_BbResponse)


def _expiry(i: _BbInstrument) -> str:
    """The UTC delivery date as YYMMDD ("" for spot and perpetuals)."""
    try:
        ms = int(i.deliveryTime or 0)
    except ValueError:
        raise InstrumentsError(f"bybit: {i.symbol} deliveryTime is not a number: "
                               f"{i.deliveryTime!r}") from None  # fmt: skip
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%y%m%d") if ms > 0 else ""


def bybit_instruments(body: bytes | str) -> list[Instrument]:
    """Instruments of a Bybit v5 ``instruments-info`` body (spot, linear or inverse)."""
    return bybit_instruments_page(body)[0]


def bybit_instruments_page(body: bytes | str) -> tuple[list[Instrument], str]:
    """One ``instruments-info`` page: its instruments and ``nextPageCursor`` ("": last)."""
    try:
        resp = _BB_INFO.decode(body)
    except msgspec.DecodeError as e:
        raise InstrumentsError(f"bybit: malformed instruments-info: {e}") from None
    if resp.retCode != 0 or resp.result is None:
        raise InstrumentsError(f"bybit: instruments-info failed: {resp.retCode} {resp.retMsg}")
    kind = resp.result.category
    out = []
    for i in resp.result.items:
        lot = i.lotSizeFilter
        step_text = lot.basePrecision if kind == "spot" else lot.qtyStep
        step_text = step_text or lot.qtyStep or lot.basePrecision
        out.append(
            make_instrument(
                "bybit", i.symbol, i.baseCoin, i.quoteCoin, kind,
                decimal_field(i.priceFilter.tickSize, f"{i.symbol} tickSize", "bybit"),
                decimal_field(step_text, f"{i.symbol} qty step", "bybit"),
                min_qty=decimal_field(lot.minOrderQty, "minOrderQty", "bybit"),
                max_qty=decimal_field(lot.maxLimitOrderQty or lot.maxOrderQty, "maxOrderQty", "bybit"),
                min_price=decimal_field(i.priceFilter.minPrice, "minPrice", "bybit"),
                max_price=decimal_field(i.priceFilter.maxPrice, "maxPrice", "bybit"),
                min_notional=decimal_field(lot.minOrderAmt or lot.minNotionalValue, "min notional", "bybit"),
                status=i.status,
                trading=i.status == "Trading",
                settle="" if kind == "spot" else i.settleCoin,
                expiry="" if kind == "spot" else _expiry(i),
            )  # fmt: skip
        )
    return out, resp.result.nextPageCursor
