"""Venues: what one exchange offers, declared by its package, found through one registry.

A venue is one package (the built-in ones are the subpackages ``ttxt_mp.connectors.<id>``) whose
``__init__`` defines ``VENUE = VenueSpec(...)``: its id, markets, endpoints, book depths,
kline intervals, and where its parts live (``"module:attribute"`` targets, imported only
when used, so choosing one venue never imports another). Shared code asks the registry
(:func:`venue`, :func:`venues`) and names no venue.

Third-party venues are found through the entry-point group ``ttxt_mp.venues``: an entry
point names a :class:`VenueSpec` (``myvenue = "myvenue:VENUE"``). ``pip install`` it and
``ttxt-mp launch`` accepts ``exchange = "myvenue"`` with no edit to ttxt-mp.
"""

from __future__ import annotations

import ast
import functools
import importlib
import logging
import pkgutil
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "builtin_packages",
    "ENTRY_POINTS",
    "UnknownVenue",
    "VenueSpec",
    "load_target",
    "venue",
    "venue_ids",
    "venues",
]

log = logging.getLogger("ttxt_mp.venues")

def builtin_packages() -> list[str]:
    """The built-in venues: the subpackages of :mod:`ttxt_mp.connectors` whose
    ``__init__`` assigns ``VENUE`` (found on disk without importing the others, so adding
    a venue is adding its folder)."""
    import ttxt_mp.connectors as pkg

    out = []
    for m in pkgutil.iter_modules(pkg.__path__):
        init = Path(pkg.__path__[0]) / m.name / "__init__.py"
        if m.ispkg and init.is_file() and _assigns_venue(init.read_text(encoding="utf-8")):
            out.append(f"{pkg.__name__}.{m.name}")
    return out


def _assigns_venue(source: str) -> bool:
    return any(isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "VENUE" for t in node.targets)
        for node in ast.parse(source).body)  # fmt: skip


ENTRY_POINTS = "ttxt_mp.venues"


class VenueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything shared code needs to know about one venue.

    Targets are ``"module:attribute"`` strings, imported on first use by :meth:`load`."""

    id: str
    """The config's ``exchange`` value (lower case)."""
    title: str = ""
    markets: tuple[str, ...] = ("spot",)
    """Markets it offers: ``spot``, ``linear``, ``inverse``."""
    endpoints: dict[str, tuple[str, str]] = {}
    """``{"live": (ws, rest), "testnet": (ws, rest)}``; ``live`` is the default."""
    book_levels: tuple[int, ...] = ()
    """Depths its book stream offers."""
    depth: int = 0
    """The depth subscribed when the config names none (0: the largest it offers)."""
    kline_intervals: tuple[str, ...] = ()
    extra_streams: tuple[str, ...] = ()
    """Optional streams it offers, by their config key (``[connectors] streams``):
    ``book_ticker`` (best bid/offer as ``BookTicker``), ``agg_trades`` (trades from its
    aggregate-trade stream)."""
    connector: str = ""
    """The market-data connector class (a :class:`~ttxt_mp.connectors.base.ConnectorBase`)."""
    trading: str = ""
    """The trading venue class (a :class:`~ttxt_mp.connectors.trading.TradingVenue`);
    empty: market data only."""
    book_rule: str = ""
    """The order-book sequence rule object the book sync calls (empty: no checks)."""
    instruments: str = ""
    """``parse(body) -> list[Instrument]`` of its instrument-list REST response."""
    sim: str = ""
    """Its simulator wire adapter (a venue of :mod:`ttxt_mp.sim`); empty: not simulated."""
    backtest: str = ""
    """Its :class:`~ttxt_mp.backtest.rules.VenueRules` (amend semantics, reject codes) for
    the backtester; empty: the generic rules."""
    market: str = ""
    """The market this view is of (set by :meth:`for_market`; "" on the registry's spec,
    which describes the first of :attr:`markets`)."""
    market_overrides: dict[str, dict[str, Any]] = {}
    """Per market other than the first, the fields that differ (endpoints, depths, kline
    intervals, streams, connector, instruments, trading, sim, ...): a perpetual market is
    the same venue with other wire details, declared in the same package."""

    def __post_init__(self) -> None:
        fields = set(self.__struct_fields__) - {"id", "markets", "market", "market_overrides"}
        for m, over in self.market_overrides.items():
            if m not in self.markets:
                raise ValueError(f"venue {self.id!r}: market_overrides names {m!r}, not one "
                                 f"of its markets {self.markets}")  # fmt: skip
            unknown = set(over) - fields
            if unknown:
                raise ValueError(f"venue {self.id!r}: market_overrides[{m!r}] has unknown "
                                 f"fields {sorted(unknown)}")  # fmt: skip

    def for_market(self, market: str) -> VenueSpec:
        """This venue as seen from ``market``: its overrides applied (LookupError if the
        venue does not offer it). A view keeps what it replaced under the first market's
        key, so any view gives any other market's view."""
        if market not in self.markets:
            raise LookupError(f"venue {self.id!r} offers the markets {', '.join(self.markets)}; "
                              f"not {market!r}")  # fmt: skip
        first = self.markets[0]
        current = self.market or first
        if market == current:
            return self if self.market else msgspec.structs.replace(self, market=market)
        overrides = dict(self.market_overrides)
        if current != first:  # back to the registry's spec first
            restore = overrides.pop(first, {})
            return msgspec.structs.replace(self, market=first, market_overrides=overrides,
                                           **restore).for_market(market)  # fmt: skip
        over = overrides.get(market, {})
        overrides[first] = {k: getattr(self, k) for k in over}
        return msgspec.structs.replace(self, market=market, market_overrides=overrides, **over)

    @property
    def label(self) -> str:
        """``id``, or ``id market`` for a market other than the first (for messages)."""
        if not self.market or self.market == self.markets[0]:
            return self.id
        return f"{self.id} {self.market}"

    @property
    def sim_id(self) -> str:
        """Its id in the simulator: ``id``, or ``id_market`` for a market other than the
        first (each market with its own wire adapter is simulated as its own venue)."""
        if not self.market or self.market == self.markets[0]:
            return self.id
        return f"{self.id}_{self.market}"

    @property
    def default_depth(self) -> int:
        return self.depth or (self.book_levels[-1] if self.book_levels else 0)

    def load(self, part: str) -> Any:
        """The object a part names (``spec.load("connector")``); LookupError if the venue
        has no such part."""
        target = getattr(self, part)
        if not target:
            raise LookupError(f"venue {self.id!r} has no {part}")
        return load_target(target)

    def endpoint(self, which: str = "live") -> tuple[str, str]:
        try:
            return self.endpoints[which]
        except KeyError:
            raise LookupError(f"venue {self.id!r} has no {which!r} endpoints; it has "
                              f"{', '.join(sorted(self.endpoints)) or 'none'}") from None  # fmt: skip


class UnknownVenue(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def load_target(target: str) -> Any:
    """``"module:attr.attr"`` -> the object."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for name in filter(None, attr.split(".")):
        obj = getattr(obj, name)
    return obj


@functools.cache
def venues() -> dict[str, VenueSpec]:
    """Every installed venue by id: the built-in ones, then the entry points' (a broken
    third-party venue is logged and skipped, never a crash of the engine)."""
    found: dict[str, VenueSpec] = {}
    for pkg in builtin_packages():
        spec = getattr(importlib.import_module(pkg), "VENUE", None)
        if isinstance(spec, VenueSpec):
            found[spec.id] = spec
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        try:
            spec = ep.load()
        except Exception as e:
            log.warning("ignoring venue plug-in %r (%s): %s: %s", ep.name, ep.value,
                        type(e).__name__, e)  # fmt: skip
            continue
        if not isinstance(spec, VenueSpec):
            log.warning("ignoring venue plug-in %r: %s is a %s, not a VenueSpec", ep.name,
                        ep.value, type(spec).__name__)  # fmt: skip
            continue
        if spec.id in found:
            log.warning("ignoring venue plug-in %r: venue %r is already installed", ep.name,
                        spec.id)  # fmt: skip
            continue
        found[spec.id] = spec
    return found


def venue_ids() -> list[str]:
    return sorted(venues())


def venue(venue_id: str) -> VenueSpec:
    """The venue ``venue_id``; :class:`UnknownVenue` names the installed ones."""
    try:
        return venues()[venue_id]
    except KeyError:
        raise UnknownVenue(f"unknown exchange {venue_id!r}; installed venues: "
                           f"{', '.join(venue_ids())}") from None  # fmt: skip
