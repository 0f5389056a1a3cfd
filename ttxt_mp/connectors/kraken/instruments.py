"""Kraken spot instruments from REST ``GET /0/public/AssetPairs``.

The body is ``{"error": [], "result": {"XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD",
"base": "XXBT", "quote": "ZUSD", "pair_decimals": 1, "lot_decimals": 8, "ordermin": "0.0001",
"costmin": "0.5", "tick_size": "0.1", "status": "online", ...}}}`` ("Get Tradable Asset
Pairs"). REST names bitcoin ``XBT`` (and dogecoin ``XDG``) where WebSocket v2 says ``BTC``
(``DOGE``): the normalized symbol and the native one (the v2 ``symbol``, what the connector
subscribes with) both use the v2 names, so ``XBT/USD`` is ``BTC/USD``.

``pair_decimals`` and ``lot_decimals`` are the price and quantity precisions the v2 book
checksum formats levels with ("Book checksum (WebSocket v2)"), kept as the instrument's
``price_precision`` / ``qty_precision`` even where ``tick_size`` is coarser.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from ttxt_mp.connectors.instruments import (
    Instrument,
    InstrumentsError,
    decimal_field,
    make_instrument,
)

__all__ = ["V2_NAMES", "kraken_instruments", "v2_asset"]

EXCHANGE = "kraken"
V2_NAMES = {"XBT": "BTC", "XDG": "DOGE"}
"""REST / v1 asset names that WebSocket v2 (and ttxt-mp) spell differently."""
_STATUS_TRADING = "online"


class _Pair(msgspec.Struct):
    altname: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    wsname: str = ""
    ordermin: str = ""
    costmin: str = ""
    tick_size: str = ""
    status: str = _STATUS_TRADING


class _Reply(msgspec.Struct):
    error: list[str] = []
    result: dict[str, _Pair] | None = None


_DEC = msgspec.json.Decoder(_Reply)


def v2_asset(name: str) -> str:
    """A REST/v1 asset name as WebSocket v2 spells it (``XBT`` -> ``BTC``)."""
    return V2_NAMES.get(name, name)


def _instrument(key: str, p: _Pair) -> Instrument:
    base, sep, quote = p.wsname.partition("/")
    if not sep or not base or not quote:
        raise InstrumentsError(f"kraken: pair {key} has no wsname BASE/QUOTE: {p.wsname!r}")
    if not (0 <= p.pair_decimals <= 18 and 0 <= p.lot_decimals <= 18):
        raise InstrumentsError(f"kraken: pair {key} decimals out of range: "
                               f"{p.pair_decimals}, {p.lot_decimals}")  # fmt: skip
    base, quote = v2_asset(base), v2_asset(quote)
    tick = decimal_field(p.tick_size, f"{key} tick_size", EXCHANGE) or Decimal(1).scaleb(
        -p.pair_decimals)
    inst = make_instrument(
        EXCHANGE, f"{base}/{quote}", base, quote, "spot", tick, Decimal(1).scaleb(-p.lot_decimals),
        min_qty=decimal_field(p.ordermin, f"{key} ordermin", EXCHANGE),
        min_notional=decimal_field(p.costmin, f"{key} costmin", EXCHANGE),
        status=p.status, trading=p.status == _STATUS_TRADING,
    )  # fmt: skip
    return msgspec.structs.replace(inst, price_precision=p.pair_decimals,
                                   qty_precision=p.lot_decimals)  # fmt: skip


def kraken_instruments(body: bytes | str) -> list[Instrument]:
    """Instruments of an ``AssetPairs`` body; InstrumentsError for an error reply or a body
    that is not the documented shape."""
    try:
        reply = _DEC.decode(body)
    except msgspec.DecodeError as e:
        raise InstrumentsError(f"kraken: malformed AssetPairs: {e}") from None
    if reply.error or reply.result is None:
        raise InstrumentsError(f"kraken: AssetPairs failed: {'; '.join(reply.error) or 'no result'}")
    return [_instrument(k, p) for k, p in reply.result.items()]
