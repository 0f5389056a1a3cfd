"""Binance instruments from ``exchangeInfo``: Spot ``GET /api/v3/exchangeInfo`` and USDⓈ-M
futures ``GET /fapi/v1/exchangeInfo`` (filters ``PRICE_FILTER``, ``LOT_SIZE``,
``MIN_NOTIONAL`` (Spot ``minNotional``, futures ``notional``), ``NOTIONAL``).

USDⓈ-M contracts are ``linear``, settled in their ``marginAsset``: a ``PERPETUAL`` is
``BASE/QUOTE:SETTLE`` (``BTCUSDT`` -> ``BTC/USDT:USDT``); a delivery contract
(``CURRENT_QUARTER``, ``NEXT_QUARTER``, ...) carries its UTC delivery date
(``BTCUSDT_250627`` -> ``BTC/USDT:USDT-250627``, from ``deliveryDate``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from ttxt_mp.connectors.instruments import (
    ZERO,
    Instrument,
    InstrumentsError,
    decimal_field,
    make_instrument,
)

__all__ = ["binance_instruments", "binance_linear_instruments"]


class _BnFilter(msgspec.Struct):
    filterType: str
    minPrice: str | None = None
    maxPrice: str | None = None
    tickSize: str | None = None
    minQty: str | None = None
    maxQty: str | None = None
    stepSize: str | None = None
    minNotional: str | None = None
    maxNotional: str | None = None
    notional: str | None = None  # futures MIN_NOTIONAL


class _BnSymbol(msgspec.Struct):
    symbol: str
    baseAsset: str
    quoteAsset: str
    status: str = "TRADING"
    baseAssetPrecision: int = 8
    quoteAssetPrecision: int = 8
    filters: list[_BnFilter] = []


class _FutSymbol(_BnSymbol):
    """A USDⓈ-M symbol: the Spot fields plus the contract's."""

    contractType: str = ""
    deliveryDate: int = 0
    marginAsset: str = ""
    pricePrecision: int = 8  # "please do not use it as tickSize": only a fallback
    quantityPrecision: int = 8


class _BnExchangeInfo(msgspec.Struct):
    symbols: list[_BnSymbol]


class _FutExchangeInfo(msgspec.Struct):
    symbols: list[_FutSymbol]


_BN_INFO = msgspec.json.Decoder(_BnExchangeInfo)
_FUT_INFO = msgspec.json.Decoder(_FutExchangeInfo)


def _decode(decoder: msgspec.json.Decoder, body: bytes | str) -> list:
    try:
        return decoder.decode(body).symbols
    except msgspec.DecodeError as e:
        raise InstrumentsError(f"binance: malformed exchangeInfo: {e}") from None


def _instrument(
    s: _BnSymbol, kind: str, price_places: int, qty_places: int, **contract: str
) -> Instrument:
    """One instrument from a symbol's filters; without ``PRICE_FILTER``/``LOT_SIZE`` (all
    filters are optional per the docs) tick/step fall back to the given precisions."""
    f = {flt.filterType: flt for flt in s.filters}
    price, lot, nt = f.get("PRICE_FILTER"), f.get("LOT_SIZE"), f.get("NOTIONAL")
    tick = decimal_field(price.tickSize, f"{s.symbol} tickSize", "binance") if price else ZERO
    step = decimal_field(lot.stepSize, f"{s.symbol} stepSize", "binance") if lot else ZERO
    min_notional = max(
        (decimal_field(f[k].minNotional or f[k].notional, f"{s.symbol} minNotional", "binance")
         for k in ("MIN_NOTIONAL", "NOTIONAL") if k in f),
        default=ZERO,
    )  # fmt: skip
    return make_instrument(
        "binance", s.symbol, s.baseAsset, s.quoteAsset, kind,
        tick if tick > 0 else Decimal(1).scaleb(-price_places),
        step if step > 0 else Decimal(1).scaleb(-qty_places),
        min_qty=decimal_field(lot.minQty, "minQty", "binance") if lot else ZERO,
        max_qty=decimal_field(lot.maxQty, "maxQty", "binance") if lot else ZERO,
        min_price=decimal_field(price.minPrice, "minPrice", "binance") if price else ZERO,
        max_price=decimal_field(price.maxPrice, "maxPrice", "binance") if price else ZERO,
        min_notional=min_notional,
        max_notional=decimal_field(nt.maxNotional, "maxNotional", "binance") if nt else ZERO,
        status=s.status,
        trading=s.status == "TRADING",
        **contract,
    )  # fmt: skip


def binance_instruments(body: bytes | str) -> list[Instrument]:
    """Instruments of a Binance Spot ``exchangeInfo`` body."""
    return [_instrument(s, "spot", s.quoteAssetPrecision, s.baseAssetPrecision)
            for s in _decode(_BN_INFO, body)]  # fmt: skip


def _expiry(s: _FutSymbol) -> str:
    """YYMMDD of a delivery contract's ``deliveryDate`` ("" for perpetuals: theirs is a
    placeholder far in the future, or the delisting time of a ``PERPETUAL_DELIVERING``)."""
    if "PERPETUAL" in s.contractType:
        return ""
    if s.deliveryDate <= 0:
        raise InstrumentsError(f"binance: {s.symbol} ({s.contractType or 'no contractType'}) "
                               f"has no deliveryDate")  # fmt: skip
    return dt.datetime.fromtimestamp(s.deliveryDate / 1000, dt.UTC).strftime("%y%m%d")


def binance_linear_instruments(body: bytes | str) -> list[Instrument]:
    """Instruments of a USDⓈ-M futures ``exchangeInfo`` body (kind ``linear``)."""
    return [
        _instrument(s, "linear", s.pricePrecision, s.quantityPrecision,
                    settle=s.marginAsset or s.quoteAsset, expiry=_expiry(s))
        for s in _decode(_FUT_INFO, body)
    ]  # fmt: skip
