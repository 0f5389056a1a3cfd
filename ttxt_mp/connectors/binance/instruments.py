"""Binance Spot instruments from ``GET /api/v3/exchangeInfo`` (filters ``PRICE_FILTER``,
``LOT_SIZE``, ``MIN_NOTIONAL``, ``NOTIONAL``)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from ttxt_mp.connectors.instruments import (
    ZERO,
    Instrument,
    InstrumentsError,
    decimal_field,
    make_instrument,
)

__all__ = ["binance_instruments"]


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


class _BnSymbol(msgspec.Struct):
    symbol: str
    baseAsset: str
    quoteAsset: str
    status: str = "TRADING"
    baseAssetPrecision: int = 8
    quoteAssetPrecision: int = 8
    filters: list[_BnFilter] = []


class _BnExchangeInfo(msgspec.Struct):
    symbols: list[_BnSymbol]


_BN_INFO = msgspec.json.Decoder(_BnExchangeInfo)


def binance_instruments(body: bytes | str) -> list[Instrument]:
    """Instruments of a Binance Spot ``exchangeInfo`` body.

    A symbol without ``PRICE_FILTER``/``LOT_SIZE`` (all filters are optional per the docs)
    falls back to its quote/base asset precision for tick/step.
    """
    try:
        info = _BN_INFO.decode(body)
    except msgspec.DecodeError as e:
        raise InstrumentsError(f"binance: malformed exchangeInfo: {e}") from None
    out = []
    for s in info.symbols:
        f = {flt.filterType: flt for flt in s.filters}
        price = f.get("PRICE_FILTER")
        lot = f.get("LOT_SIZE")
        tick = decimal_field(price.tickSize, f"{s.symbol} tickSize", "binance") if price else ZERO
        step = decimal_field(lot.stepSize, f"{s.symbol} stepSize", "binance") if lot else ZERO
        min_notional = max(
            (decimal_field(f[k].minNotional, f"{s.symbol} minNotional", "binance")
             for k in ("MIN_NOTIONAL", "NOTIONAL") if k in f),
            default=ZERO,
        )  # fmt: skip
        nt = f.get("NOTIONAL")
        out.append(
            make_instrument(
                "binance", s.symbol, s.baseAsset, s.quoteAsset, "spot",
                tick if tick > 0 else Decimal(1).scaleb(-s.quoteAssetPrecision),
                step if step > 0 else Decimal(1).scaleb(-s.baseAssetPrecision),
                min_qty=decimal_field(lot.minQty, "minQty", "binance") if lot else ZERO,
                max_qty=decimal_field(lot.maxQty, "maxQty", "binance") if lot else ZERO,
                min_price=decimal_field(price.minPrice, "minPrice", "binance") if price else ZERO,
                max_price=decimal_field(price.maxPrice, "maxPrice", "binance") if price else ZERO,
                min_notional=min_notional,
                max_notional=decimal_field(nt.maxNotional, "maxNotional", "binance") if nt else ZERO,
                status=s.status,
                trading=s.status == "TRADING",
            )  # fmt: skip
        )
    return out
