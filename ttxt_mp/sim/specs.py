"""Configuration of the simulated markets: symbols, tick/step sizes, event rates, venue timings."""

from __future__ import annotations

import copy
from typing import Any

import msgspec


class SymbolSpec(msgspec.Struct, frozen=True):
    """One instrument: realistic increments and a starting price."""

    symbol: str
    base: str
    quote: str
    tick: str  # price increment (what the venues list as the symbol's tick size)
    step: str  # quantity increment (the venues' lot step / base precision)
    price: float  # starting mid price
    typical_qty: float  # median resting quantity of one level, in base units


# Increments close to what the venues list for these pairs (they change over time; these are
# plausible, not authoritative).
_KNOWN: dict[str, tuple[str, str, str, str, float, float]] = {
    "BTCUSDT": ("BTC", "USDT", "0.01", "0.00001", 65000.0, 0.25),
    "ETHUSDT": ("ETH", "USDT", "0.01", "0.0001", 3200.0, 3.0),
    "SOLUSDT": ("SOL", "USDT", "0.01", "0.001", 150.0, 40.0),
    "BNBUSDT": ("BNB", "USDT", "0.01", "0.001", 600.0, 8.0),
    "XRPUSDT": ("XRP", "USDT", "0.0001", "0.1", 0.6, 5000.0),
    "DOGEUSDT": ("DOGE", "USDT", "0.00001", "1", 0.15, 20000.0),
    "ETHBTC": ("ETH", "BTC", "0.00001", "0.0001", 0.05, 3.0),
}
_QUOTES = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "EUR")


def known_symbols() -> list[str]:
    """The pairs simulated with realistic increments, as ``BASE/QUOTE`` (the demo's choice)."""
    return [f"{v[0]}/{v[1]}" for v in _KNOWN.values()]


def default_spec(symbol: str) -> SymbolSpec:
    """Spec for a symbol: a known pair, or a generic one split on a common quote asset."""
    sym = symbol.upper()
    if not sym.isalnum():
        raise ValueError(f"symbol must be alphanumeric like BTCUSDT, got {symbol!r}")
    if sym in _KNOWN:
        base, quote, tick, step, price, qty = _KNOWN[sym]
        return SymbolSpec(sym, base, quote, tick, step, price, qty)
    for q in _QUOTES:
        if sym.endswith(q) and len(sym) > len(q):
            return SymbolSpec(sym, sym[: -len(q)], q, "0.001", "0.01", 10.0, 100.0)
    raise ValueError(f"cannot split {symbol!r} into base and quote; pass a SymbolSpec")


class Rates(msgspec.Struct):
    """Market event rates and book shape (per symbol)."""

    updates_per_sec: float = 200.0  # limit-order arrivals and cancels
    trades_per_sec: float = 5.0  # market orders (crossing limit orders also trade)
    levels: int = 1000  # initial levels per side
    max_levels: int = 5000  # farthest levels are removed beyond this many per side
    volatility: float = 0.5  # annualised, drives the random-walk mid
    cancel_ratio: float = 0.45  # share of update events that cancel/reduce a level


class VenueTimings:
    """Protocol timings and limits; defaults are the documented values, tests shrink them.

    Each venue's adapter declares its own (``VenueBase.knobs``); here they are named
    ``<venue id>_<knob>``: ``VenueTimings(<id>_ping_interval=0.3)`` sets one, an unknown
    name is a TypeError, and an unset one reads as the venue's default. ``max_send_queue``
    applies to every venue."""

    def __init__(self, *, max_send_queue: int = 200_000, **knobs: Any) -> None:
        self.max_send_queue = max_send_queue  # frames queued for a slow client before a drop
        if knobs:
            known = _knobs()
            for name, value in knobs.items():
                if name not in known:
                    raise TypeError(f"Unexpected keyword argument {name!r}; the simulated venues' "
                                    f"timings are {', '.join(sorted(known)) or 'none'}")  # fmt: skip
                setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:  # an unset knob: the venue's default, kept
        if name.startswith("_"):
            raise AttributeError(name)
        knob = _knobs().get(name)
        if knob is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = copy.deepcopy(knob.default)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VenueTimings):
            return NotImplemented
        names = set(_knobs()) | {"max_send_queue"}
        return all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]


def _knobs() -> dict[str, Any]:
    from ttxt_mp.sim.venue import timing_knobs  # the adapters import this module

    return timing_knobs()
