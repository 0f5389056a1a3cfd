"""A venue's instrument list, fetched once per process and shared by market data and trading.

A connector process runs a venue's market-data connector and, with credentials, its
trading venue; both need the same list (:class:`~ttxt_mp.connectors.instruments.Instrument`,
the one model: the connector derives its ``SymbolMap``, trading its ``InstrumentBook``).
:func:`get_instruments` fetches it once per (venue, REST URL, market): concurrent callers
wait for the same request (an ``asyncio`` lock per key), later ones get the list kept, and
``refresh=True`` fetches it again (callers waiting meanwhile share that one request too).

``symbols`` (normalized names) lets a venue fetch only part of its list (Binance's
``exchangeInfo?symbols=``): a kept list serves a caller whose symbols were all asked for
before; otherwise the list is fetched again for the union. ``None`` asks for everything.

One catalog per event loop (a process runs one), so tests that each run their own loop
never see another's lists. A failed fetch keeps nothing: every waiting caller gets the
exception and retries on its own schedule.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence

import msgspec

from ttxt_mp.connectors.instruments import Instrument

__all__ = ["Fetch", "InstrumentCatalog", "catalog", "get_instruments"]

Fetch = Callable[[tuple[str, ...] | None], Awaitable[Sequence[Instrument]]]
"""``fetch(symbols)``: the venue's request and parser; ``symbols`` None = the whole list."""


class _Key(msgspec.Struct, frozen=True):
    venue: str
    rest_url: str
    market: str


class _Entry:
    __slots__ = ("instruments", "symbols", "at")

    def __init__(self, instruments: tuple[Instrument, ...], symbols: frozenset[str] | None,
                 at: float) -> None:  # fmt: skip
        self.instruments = instruments
        self.symbols = symbols  # asked for; None: the whole list
        self.at = at

    def covers(self, symbols: frozenset[str] | None) -> bool:
        return self.symbols is None or (symbols is not None and symbols <= self.symbols)


class InstrumentCatalog:
    """Instrument lists by (venue, REST URL, market); see the module docstring."""

    def __init__(self) -> None:
        self._entries: dict[_Key, _Entry] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}
        self.fetches: dict[tuple[str, str, str], int] = {}
        """Requests made per (venue, REST URL, market), for statistics and tests."""

    @staticmethod
    def key(venue: str, rest_url: str, market: str = "spot") -> _Key:
        return _Key(venue, rest_url.rstrip("/"), market)

    async def get(
        self,
        venue: str,
        rest_url: str,
        fetch: Fetch,
        *,
        market: str = "spot",
        symbols: Iterable[str] | None = None,
        refresh: bool = False,
    ) -> tuple[Instrument, ...]:
        key = self.key(venue, rest_url, market)
        wanted = None if symbols is None else frozenset(symbols)
        asked_at = time.monotonic()
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            fresh = entry is not None and (not refresh or entry.at >= asked_at)
            if entry is not None and fresh and entry.covers(wanted):
                return entry.instruments
            ask = wanted
            if ask is not None and entry is not None and entry.symbols is not None:
                ask = ask | entry.symbols  # keep serving the callers served before
            k = (key.venue, key.rest_url, key.market)
            self.fetches[k] = self.fetches.get(k, 0) + 1
            got = tuple(await fetch(None if ask is None else tuple(sorted(ask))))
            self._entries[key] = _Entry(got, ask, time.monotonic())
            return got

    def cached(self, venue: str, rest_url: str, market: str = "spot") -> tuple[Instrument, ...] | None:
        entry = self._entries.get(self.key(venue, rest_url, market))
        return None if entry is None else entry.instruments

    def invalidate(self, venue: str | None = None, rest_url: str | None = None) -> None:
        """Forget the kept lists (of one venue, or one venue and URL); the next caller fetches."""
        url = None if rest_url is None else rest_url.rstrip("/")
        for key in list(self._entries):
            if (venue is None or key.venue == venue) and (url is None or key.rest_url == url):
                del self._entries[key]


_catalogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, InstrumentCatalog] = (
    weakref.WeakKeyDictionary()
)


def catalog() -> InstrumentCatalog:
    """The catalog of the running event loop (one per process)."""
    loop = asyncio.get_running_loop()
    cat = _catalogs.get(loop)
    if cat is None:
        cat = _catalogs[loop] = InstrumentCatalog()
    return cat


async def get_instruments(
    venue: str,
    rest_url: str,
    fetch: Fetch,
    *,
    market: str = "spot",
    symbols: Iterable[str] | None = None,
    refresh: bool = False,
) -> tuple[Instrument, ...]:
    """The instruments of ``venue`` at ``rest_url`` (``market``), fetched with ``fetch``
    only when this process has not got them yet (see the module docstring)."""
    return await catalog().get(venue, rest_url, fetch, market=market, symbols=symbols,
                               refresh=refresh)  # fmt: skip
