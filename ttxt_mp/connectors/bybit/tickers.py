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

import math

import msgspec
from msgspec import UNSET, Struct, UnsetType

from ttxt_mp.events import Event, MarkPrice, OpenInterest

__all__ = ["TickerData", "TickerMerger", "decode_ticker"]

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


decode_ticker = msgspec.json.Decoder(TickerData).decode

# state slots; the first four make a MarkPrice, the last two an OpenInterest
_MARK, _INDEX, _FUNDING, _NEXT, _OI, _OIV = range(6)
_MARK_GROUP = 4


def _number(text: str, name: str, signed: bool = False) -> float:
    """A documented decimal string -> float ("" -> 0: the venue has none)."""
    if not text:
        return 0.0
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{name} is not a number: {text[:32]!r}") from None
    if not math.isfinite(x) or (x < 0 and not signed):
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


_FIELDS = (
    ("markPrice", _MARK, lambda t: _number(t, "markPrice")),
    ("indexPrice", _INDEX, lambda t: _number(t, "indexPrice")),
    ("fundingRate", _FUNDING, lambda t: _number(t, "fundingRate", signed=True)),
    ("nextFundingTime", _NEXT, lambda t: _ms(t, "nextFundingTime")),
    ("openInterest", _OI, lambda t: _number(t, "openInterest")),
    ("openInterestValue", _OIV, lambda t: _number(t, "openInterestValue")),
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

    def apply(self, snapshot: bool, d: TickerData, symbol: str, exch_ts: int, local_ts: int
              ) -> list[Event]:  # fmt: skip
        """Merge one message (``symbol`` normalized); ValueError names a bad field."""
        st = self.state.get(symbol)
        if snapshot:
            new: list[float | int] = [0.0, 0.0, 0.0, 0, 0.0, 0.0]
            for name, slot, parse in _FIELDS:
                v = getattr(d, name)
                if v is not UNSET:
                    new[slot] = parse(v)
            self.state[symbol] = st = new
            mark = oi = True
        elif st is None:
            self.unsynced += 1
            return []
        else:
            new_vals = []
            for name, slot, parse in _FIELDS:
                v = getattr(d, name)
                if v is not UNSET:
                    new_vals.append((slot, parse(v)))  # all parsed before any is kept
            mark = oi = False
            for slot, x in new_vals:
                if st[slot] != x:
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
