"""Bybit v5 linear ``tickers.{symbol}``: a snapshot, then deltas with only the changed fields
(docs, Ticker: "If a response param is not found in the message, then its value has not
changed"), merged here into the last snapshot per symbol.

From the merged state come :class:`MarkPrice` (``markPrice``, ``indexPrice``,
``fundingRate``, ``nextFundingTime``) and :class:`OpenInterest` (``openInterest``,
``openInterestValue``), each published only when one of its own fields changed (a delta of
best bid/ask alone publishes nothing). A snapshot publishes both: it is a fresh state (after
a subscription or a reconnect). Deltas before the first snapshot of a symbol are dropped
(counted in :attr:`TickerMerger.unsynced`): merged into nothing they would publish zeros.

Dated futures send ``""`` for ``fundingRate`` and ``nextFundingTime`` (no funding): 0.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from ttxt_mp.connectors.normalizer import Qty
from ttxt_mp.events import Event, MarkPrice, OpenInterest

__all__ = ["TickerData", "TickerFrame", "TickerMerger", "TickerNumbers", "decode_ticker",
           "decode_ticker_frame"]

_Field = str | UnsetType


class TickerData(Struct):
    """The fields of a linear ticker message that we normalize (all optional in a delta)."""

    symbol: str
    markPrice: _Field = UNSET
    indexPrice: _Field = UNSET
    fundingRate: _Field = UNSET
    nextFundingTime: _Field = UNSET
    openInterest: _Field = UNSET
    openInterestValue: _Field = UNSET


_Rate = Annotated[float, Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]
_Ms = Annotated[int, Meta(ge=0, le=10**15)]


class TickerNumbers(Struct):
    """The same fields decoded straight to numbers (the fast path; ``""``, the value of a
    dated future's funding fields, fails it and the text struct takes over)."""

    symbol: str
    markPrice: Qty | UnsetType = UNSET
    indexPrice: Qty | UnsetType = UNSET
    fundingRate: _Rate | UnsetType = UNSET
    nextFundingTime: _Ms | UnsetType = UNSET
    openInterest: Qty | UnsetType = UNSET
    openInterestValue: Qty | UnsetType = UNSET


class TickerFrame(Struct):
    """One-pass decode of a whole ``tickers`` frame (the envelope's other fields ignored)."""

    topic: str
    type: str
    ts: int
    data: TickerNumbers


decode_ticker = msgspec.json.Decoder(TickerData).decode
decode_ticker_frame = msgspec.json.Decoder(TickerFrame, strict=False).decode

# state slots; the first four make a MarkPrice, the last two an OpenInterest
_MARK, _INDEX, _FUNDING, _NEXT, _OI, _OIV = range(6)
_MARK_GROUP = 4


_INF = float("inf")


def _number(text: str, name: str, signed: bool = False) -> float:
    """A documented decimal string -> float ("" -> 0: the venue has none)."""
    if not text:
        return 0.0
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{name} is not a number: {text[:32]!r}") from None
    if not (-_INF < x < _INF and (signed or x >= 0.0)):  # NaN compares False
        raise ValueError(f"{name} must be a finite{'' if signed else ' non-negative'} number, "
                         f"got {text[:32]!r}")  # fmt: skip
    return x


def _ms(text: str, name: str) -> int:
    """A time in ms as a decimal string -> ns ("" -> 0: none)."""
    if not text:
        return 0
    if not text.isdigit() or len(text) > 15:
        raise ValueError(f"{name} is not a time in ms: {text[:32]!r}")
    return int(text) * 1_000_000


def _values(d: TickerData | TickerNumbers) -> tuple[float | int | None, ...]:
    """The six normalized fields of a message, None where absent (all parsed, so a bad
    field raises before anything is merged)."""
    if type(d) is TickerNumbers:
        return tuple([None if v is UNSET else v for v in (
            d.markPrice, d.indexPrice, d.fundingRate, d.nextFundingTime * 1_000_000
            if d.nextFundingTime is not UNSET else UNSET, d.openInterest,
            d.openInterestValue)])  # fmt: skip
    mp, ip, fr, nf, oi, oiv = (d.markPrice, d.indexPrice, d.fundingRate, d.nextFundingTime,
                               d.openInterest, d.openInterestValue)  # fmt: skip
    return (
        None if mp is UNSET else _number(mp, "markPrice"),
        None if ip is UNSET else _number(ip, "indexPrice"),
        None if fr is UNSET else _number(fr, "fundingRate", signed=True),
        None if nf is UNSET else _ms(nf, "nextFundingTime"),
        None if oi is UNSET else _number(oi, "openInterest"),
        None if oiv is UNSET else _number(oiv, "openInterestValue"),
    )


class TickerMerger:
    """Per-symbol merged ticker state -> MarkPrice / OpenInterest events (see module doc).
    ``mark_price`` / ``open_interest``: which of the two to publish."""

    def __init__(self, exchange: str, *, mark_price: bool = True, open_interest: bool = True
                 ) -> None:  # fmt: skip
        self.exchange = exchange
        self.mark_price = mark_price
        self.open_interest = open_interest
        self.state: dict[str, list[float | int]] = {}
        self.unsynced = 0

    def apply(self, snapshot: bool, d: TickerData | TickerNumbers, symbol: str, exch_ts: int, local_ts: int
              ) -> list[Event]:  # fmt: skip
        """Merge one message (``symbol`` normalized); ValueError names a bad field."""
        vals = _values(d)
        st = self.state.get(symbol)
        if snapshot:
            self.state[symbol] = st = [0.0 if v is None else v for v in vals]
            st[_NEXT] = int(st[_NEXT])
            mark = oi = True
        elif st is None:
            self.unsynced += 1
            return []
        else:
            mark = oi = False
            for slot, x in enumerate(vals):
                if x is not None and st[slot] != x:
                    st[slot] = x
                    if slot < _MARK_GROUP:
                        mark = True
                    else:
                        oi = True
        out: list[Event] = []
        if mark and self.mark_price:
            out.append(MarkPrice(exchange=self.exchange, symbol=symbol, exch_ts=exch_ts,
                                 local_ts=local_ts, mark_price=st[_MARK],
                                 index_price=st[_INDEX], funding_rate=st[_FUNDING],
                                 next_funding_ts=int(st[_NEXT])))  # fmt: skip
        if oi and self.open_interest:
            out.append(OpenInterest(exchange=self.exchange, symbol=symbol, exch_ts=exch_ts,
                                    local_ts=local_ts, open_interest=st[_OI],
                                    open_interest_value=st[_OIV]))  # fmt: skip
        return out
