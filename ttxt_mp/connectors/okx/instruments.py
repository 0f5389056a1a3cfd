"""OKX v5 instruments from ``GET /api/v5/public/instruments?instType=SPOT|SWAP``.

Spot names its coins (``baseCcy``, ``quoteCcy``); a swap leaves them empty and names its
underlying instead (``uly`` / ``instFamily`` ``BTC-USDT``), its settlement coin
(``settleCcy``) and its contract (``ctVal`` of ``ctValCcy`` per contract, ``ctType``
linear/inverse). So ``BTC-USDT`` is ``BTC/USDT`` and ``BTC-USDT-SWAP`` is ``BTC/USDT:USDT``.

Quantities on a swap are numbers of contracts (``lotSz``, ``minSz``, book sizes, trade
sizes): a linear BTC-USDT-SWAP contract is ``ctVal`` (0.01) BTC. :func:`contract_values`
gives ``ctVal`` per instrument for whoever needs base units.
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

__all__ = ["OkxInstrument", "contract_values", "okx_instrument_list", "okx_instruments"]

EXCHANGE = "okx"
KINDS = {"SPOT": "spot", "SWAP": "linear"}  # inverse swaps (ctType inverse) are left out


class OkxInstrument(msgspec.Struct):
    """The documented fields we use of one instrument."""

    instType: str
    instId: str
    tickSz: str
    lotSz: str
    minSz: str = ""
    baseCcy: str = ""
    quoteCcy: str = ""
    settleCcy: str = ""
    ctVal: str = ""
    ctValCcy: str = ""
    ctType: str = ""
    uly: str = ""
    instFamily: str = ""
    maxLmtSz: str = ""
    state: str = "live"


class _Reply(msgspec.Struct):
    code: str
    msg: str = ""
    data: list[OkxInstrument] = []


_decode = msgspec.json.Decoder(_Reply).decode


def okx_instrument_list(body: bytes | str) -> list[OkxInstrument]:
    """The instruments of a reply body; InstrumentsError for an error reply or a bad body."""
    try:
        reply = _decode(body)
    except msgspec.DecodeError as e:
        raise InstrumentsError(f"okx: malformed instruments reply: {e}") from None
    if reply.code != "0":
        raise InstrumentsError(f"okx: instruments request failed: code {reply.code} {reply.msg}")
    return reply.data


def _coins(i: OkxInstrument) -> tuple[str, str]:
    if i.instType == "SPOT":
        return i.baseCcy, i.quoteCcy
    base, _, quote = (i.uly or i.instFamily).partition("-")
    return base, quote


def okx_instruments(body: bytes | str) -> list[Instrument]:
    """Instruments of an OKX ``public/instruments`` reply (SPOT, or linear SWAP)."""
    out = []
    for i in okx_instrument_list(body):
        kind = KINDS.get(i.instType)
        if kind is None or (kind == "linear" and i.ctType not in ("", "linear")):
            continue
        base, quote = _coins(i)
        if not base or not quote:
            raise InstrumentsError(f"okx: {i.instId} names no base/quote coin")
        def d(text: str, what: str, i: OkxInstrument = i) -> Decimal:
            return decimal_field(text, f"{i.instId} {what}", EXCHANGE)

        out.append(make_instrument(
            EXCHANGE, i.instId, base, quote, kind, d(i.tickSz, "tickSz"), d(i.lotSz, "lotSz"),
            min_qty=d(i.minSz, "minSz"), max_qty=d(i.maxLmtSz, "maxLmtSz"), status=i.state,
            trading=i.state == "live", settle=i.settleCcy if kind != "spot" else "",
        ))  # fmt: skip
    return out


def contract_values(body: bytes | str) -> dict[str, float]:
    """instId -> ``ctVal`` (base units per contract) of every swap in the reply."""
    return {i.instId: float(i.ctVal) for i in okx_instrument_list(body) if i.ctVal}
