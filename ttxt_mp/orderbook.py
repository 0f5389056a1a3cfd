"""A local L2 order book maintained from ``Orderbook`` events, with per-venue sequence checks.

``OrderBook.update(event)`` applies a snapshot (which REPLACES the whole book) or a delta in
one call and returns an :class:`UpdateResult`:

- ``SNAPSHOT``   the book was replaced; it is now in sync.
- ``APPLIED``    a delta was applied.
- ``STALE``      an old, duplicate or out-of-order event; ignored and counted (``stale``).
- ``NOT_SYNCED`` a delta while the book has no valid snapshot (never had one, or after a
                 gap); ignored and counted (``not_synced``).
- ``GAP``        update ids show missed events: the book is cleared and marked out of
                 sync (``synced=False``), ``gaps`` is incremented and ``last_gap`` says why.
                 The caller must resync (new snapshot). With ``raise_on_gap=True`` a
                 :class:`BookGap` is raised instead of returning ``GAP``.

Sequence rules: which update ids are stale, missing or applicable is the venue's business,
so the book asks a :class:`SequenceRule` object. ``rules=None`` takes the rule of the
venue named by ``exchange`` from the venue registry (``VENUE.book_rule`` of its package,
see :mod:`ttxt_mp.connectors.venue`; each venue documents its ids there, in
``ttxt_mp.connectors.<id>.book_rule``); ``rules=`` may also be a rule object or a venue id.
An exchange name that is no installed venue gets :class:`NoRule`.

A rule keeps no state of its own (one object serves every book); it reads the book's:
``update_id``, ``synced``, ``fresh`` (no delta applied since the last snapshot),
``snapshots``, ``contiguous`` (a flag a rule may honour). For a delta it returns one of
``APPLIED``, ``STALE``, ``NOT_SYNCED``, ``SNAPSHOT`` (apply it as a snapshot) or
``Gap(reason)``; for a snapshot ``SNAPSHOT``, ``STALE`` or ``Gap(reason)``. The book does
the rest (counters, clearing on a gap, ``raise_on_gap``). ``OrderBook.rules`` is the rule
in use (assignable).

``none`` (:class:`NoRule`): snapshots replace, deltas apply, no id checks (deltas before
any snapshot build a book too).

Data layout: per side a dict price -> qty plus a sorted price list kept with ``bisect``;
best bid/ask are O(1) (last/first element). A removed price leaves the dict at once but
leaves the list lazily (remembered in a set, skipped on reads, never at the best end,
compacted when they exceed a quarter of the list): a delete is a set insert instead of a
list shift, which measured ~35% faster on a 1,000-level book. Levels are copied out of events (tuples of
floats), so the book never aliases an event and events stay immutable. Nothing is
truncated unless ``max_depth`` is given.
"""

from __future__ import annotations

import os
from bisect import insort
from enum import IntEnum

from ttxt_mp.events import Level, Orderbook

__all__ = [
    "BookGap",
    "Gap",
    "NoRule",
    "OrderBook",
    "SequenceRule",
    "UpdateResult",
    "rule_named",
    "rules_for",
]


class UpdateResult(IntEnum):
    APPLIED = 1
    SNAPSHOT = 2
    STALE = 3
    GAP = 4
    NOT_SYNCED = 5


APPLIED = UpdateResult.APPLIED
SNAPSHOT = UpdateResult.SNAPSHOT
STALE = UpdateResult.STALE
GAP = UpdateResult.GAP
NOT_SYNCED = UpdateResult.NOT_SYNCED


class Gap:
    """A rule's verdict "missed events": the book is cleared and out of sync (``GAP``)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Gap({self.reason!r})"


Verdict = UpdateResult | Gap


class SequenceRule:
    """How a venue's update ids decide the fate of each book event.

    Subclass it (or provide the same two methods) and point ``VENUE.book_rule`` at an
    instance or at the class (built with no arguments). Called once per event on the hot
    path: keep it a few comparisons, and build a :class:`Gap` reason only on a gap. A rule
    keeps no state of its own (one instance serves every book); it reads the book's.
    The base class is the generic rule without id checks."""

    __slots__ = ()
    name = ""
    """Short name (the venue id; ``none`` for :class:`NoRule`), for display."""

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        """A delta for ``book``: ``APPLIED``, ``STALE``, ``NOT_SYNCED``, ``SNAPSHOT`` (treat it
        as a snapshot) or ``Gap(reason)``."""
        return APPLIED

    def snapshot(self, book: OrderBook, ev: Orderbook) -> Verdict:
        """A snapshot for ``book``: ``SNAPSHOT`` (replace the book), ``STALE`` or ``Gap``."""
        return SNAPSHOT

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class NoRule(SequenceRule):
    """``none``: snapshots replace, deltas apply, no id checks; deltas before any snapshot
    still build a book (it counts as synced)."""

    __slots__ = ()
    name = "none"

    def delta(self, book: OrderBook, ev: Orderbook) -> Verdict:
        if not book.synced and book.snapshots == 0:
            book.synced = True
        return APPLIED


NO_RULE = NoRule()
_SEPARATORS = frozenset("_-.:/ ")


def _load_rule(target: str) -> SequenceRule:
    from ttxt_mp.connectors.venue import load_target

    rule = load_target(target)
    return rule() if isinstance(rule, type) else rule


def rule_named(name: str) -> SequenceRule:
    """The rule of venue ``name`` (its ``book_rule``; :class:`NoRule` if it declares none),
    or NoRule for ``"none"``; ValueError for anything else."""
    if name == "none":
        return NO_RULE
    from ttxt_mp.connectors.venue import venues

    spec = venues().get(name)
    if spec is None:
        raise ValueError(f"rules must be one of {('none', *sorted(venues()))} or a "
                         f"SequenceRule, got {name!r}")  # fmt: skip
    return _load_rule(spec.book_rule) if spec.book_rule else NO_RULE


def rules_for(exchange: str) -> SequenceRule:
    """The default rule for an exchange name: the rule of the installed venue it names,
    exactly or as a prefix before a separator (``<id>_futures``, ``<id>-2``); else
    :class:`NoRule`."""
    from ttxt_mp.connectors.venue import venues

    ex = exchange.lower()
    found = venues()
    spec = found.get(ex)
    if spec is None:
        best = ""
        for vid in found:
            if len(vid) > len(best) and ex.startswith(vid) and ex[len(vid)] in _SEPARATORS:
                best = vid
        spec = found.get(best)
    if spec is None or not spec.book_rule:
        return NO_RULE
    return _load_rule(spec.book_rule)


class BookGap(Exception):
    """Missed updates: the book is out of sync and must be rebuilt from a snapshot."""

    def __init__(self, exchange: str, symbol: str, reason: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"{exchange} {symbol}: order book gap: {reason}")


def _apply(
    prices: dict[float, float],
    keys: list[float],
    stale: set[float],
    levels: tuple[Level, ...],
    insort=insort,
) -> None:
    """Apply absolute quantities to one side. Removal is lazy: the price leaves the dict
    and is remembered in ``stale`` (still in ``keys``) so a delete costs a set insert, not
    a list shift; a price that comes back is revived without touching the list."""
    for p, q in levels:
        if q:
            if p not in prices:
                if p in stale:
                    stale.discard(p)
                else:
                    insort(keys, p)
            prices[p] = q
        elif p in prices:
            del prices[p]
            stale.add(p)


def _apply_delta_py(
    bp: dict[float, float], bk: list[float], bs: set[float], bids: tuple[Level, ...],
    ap: dict[float, float], ak: list[float], as_: set[float], asks: tuple[Level, ...],
) -> bool:
    """A delta's levels on both sides; returns ``crossed``. Removed prices leave the best
    end at once; a side's list is compacted in place when they exceed a quarter of it.
    The reference for ``ttxt_mp._cbook.apply_delta`` (same containers, same steps)."""
    _apply(bp, bk, bs, bids)
    _apply(ap, ak, as_, asks)
    if bs:
        while bk and bk[-1] in bs:
            bs.discard(bk.pop())
        if len(bs) > 64 and len(bs) > len(bk) >> 2:
            bk[:] = [p for p in bk if p not in bs]
            bs.clear()
    if as_:
        n = 0
        for p in ak:
            if p not in as_:
                break
            as_.discard(p)
            n += 1
        if n:
            del ak[:n]
        if len(as_) > 64 and len(as_) > len(ak) >> 2:
            ak[:] = [p for p in ak if p not in as_]
            as_.clear()
    return bool(bk) and bool(ak) and bk[-1] >= ak[0]


try:
    from ttxt_mp import _cbook
except ImportError:  # not built (no compiler at install time): the pure book runs
    _cbook = None
    _apply_delta_c = _apply_delta_py
else:  # input it does not handle itself (odd types) goes to the pure function
    _cbook.set_fallback(_apply_delta_py)
    _apply_delta_c = _cbook.apply_delta

PURE_ENV = "TTXT_MP_PURE"
AVAILABLE: bool = _cbook is not None
"""The compiled book core (``ttxt_mp._cbook``) is importable (whether or not it is used)."""
IMPLEMENTATION: str = "c" if AVAILABLE and os.environ.get(PURE_ENV, "") in ("", "0") else "pure"
"""``"c"`` or ``"pure"``: what applies deltas to books in this process (``TTXT_MP_PURE=1``
keeps the pure-Python reference)."""
_apply_delta = _apply_delta_c if IMPLEMENTATION == "c" else _apply_delta_py


def implementation() -> str:
    """``"c"`` when book deltas are applied by the extension, else ``"pure"``."""
    return IMPLEMENTATION


def set_implementation(impl: str) -> None:
    """Switch every book of this process to ``"c"`` or ``"pure"`` (tests, benchmarks);
    production code selects with ``TTXT_MP_PURE``."""
    global IMPLEMENTATION, _apply_delta
    if impl not in ("c", "pure"):
        raise ValueError(f"implementation must be 'c' or 'pure', got {impl!r}")
    if impl == "c" and not AVAILABLE:
        raise RuntimeError("ttxt_mp._cbook is not built: only the pure book is available")
    IMPLEMENTATION = impl
    _apply_delta = _apply_delta_c if impl == "c" else _apply_delta_py


def _levels(prices: dict[float, float], keys, n: int | None) -> list[Level]:
    """(price, qty) for ``keys`` in order, skipping removed prices, at most ``n``."""
    if n is None:
        return [(p, prices[p]) for p in keys if p in prices]
    out: list[Level] = []
    if n <= 0:
        return out
    get = prices.get
    for p in keys:
        q = get(p)
        if q is not None:
            out.append((p, q))
            if len(out) == n:
                break
    return out


class OrderBook:
    """Local book for one instrument. See the module docstring for the rules."""

    __slots__ = (
        "exchange", "symbol", "max_depth", "_rule", "_on_delta", "_on_snapshot", "contiguous",
        "raise_on_gap", "_bp", "_bk", "_bs", "_ap", "_ak", "_as", "update_id", "seq", "synced",
        "crossed", "exch_ts", "local_ts", "stale", "gaps", "not_synced", "updates", "snapshots",
        "last_gap", "fresh",
    )  # fmt: skip

    def __init__(
        self,
        exchange: str,
        symbol: str,
        max_depth: int | None = None,
        *,
        rules: SequenceRule | str | None = None,
        contiguous: bool = True,
        raise_on_gap: bool = False,
    ) -> None:
        if max_depth is not None and max_depth < 1:
            raise ValueError(f"max_depth must be >= 1 or None, got {max_depth}")
        self.rules = rules_for(exchange) if rules is None else rules
        self.exchange = exchange
        self.symbol = symbol
        self.max_depth = max_depth
        # For a rule whose venue's ids are only "generally continuous": True asks it to
        # treat any skipped id as a gap, False to check only that ids never go backwards.
        self.contiguous = contiguous
        self.raise_on_gap = raise_on_gap
        # Per side: price -> qty, the sorted prices (ascending; may hold removed prices,
        # never at the best end), and the removed prices still in that list.
        self._bp: dict[float, float] = {}
        self._bk: list[float] = []  # best bid is last
        self._bs: set[float] = set()
        self._ap: dict[float, float] = {}
        self._ak: list[float] = []  # best ask is first
        self._as: set[float] = set()
        self.update_id = 0
        self.seq = -1
        self.synced = False
        self.crossed = False
        self.exch_ts = 0
        self.local_ts = 0
        self.stale = 0
        self.gaps = 0
        self.not_synced = 0
        self.updates = 0
        self.snapshots = 0
        self.last_gap = ""
        self.fresh = False  # the next delta is the first after a snapshot

    @property
    def rules(self) -> SequenceRule:
        """The sequence rule (assign a rule object, a venue id or ``"none"``)."""
        return self._rule

    @rules.setter
    def rules(self, rules: SequenceRule | str) -> None:
        if isinstance(rules, str):
            rules = rule_named(rules)
        elif not (callable(getattr(rules, "delta", None))
                  and callable(getattr(rules, "snapshot", None))):  # fmt: skip
            raise TypeError(f"rules must be a SequenceRule (delta() and snapshot()), a venue id "
                            f"or 'none', got {rules!r}")  # fmt: skip
        self._rule = rules
        # bound once: the hot path calls them without an attribute lookup on the rule
        self._on_delta = rules.delta
        self._on_snapshot = rules.snapshot

    # ----------------------------------------------------------------------- updates

    def update(self, ev: Orderbook) -> UpdateResult:
        """Apply one snapshot or delta; see :class:`UpdateResult`."""
        if ev.symbol != self.symbol or ev.exchange != self.exchange:
            raise ValueError(
                f"event for {ev.exchange} {ev.symbol} given to the book of "
                f"{self.exchange} {self.symbol}"
            )
        if ev.is_snapshot:
            r = self._on_snapshot(self, ev)
            return self._replace(ev) if r is SNAPSHOT else self._refuse(r, ev)
        r = self._on_delta(self, ev)
        if r is not APPLIED:
            return self._refuse(r, ev)
        crossed = _apply_delta(self._bp, self._bk, self._bs, ev.bids,
                               self._ap, self._ak, self._as, ev.asks)  # fmt: skip
        if self.max_depth is not None:
            self._truncate()
            bk = self._bk
            ak = self._ak
            crossed = bool(bk) and bool(ak) and bk[-1] >= ak[0]
        self.crossed = crossed
        u = ev.last_update_id
        if u:
            self.update_id = u
        if ev.seq != -1:
            self.seq = ev.seq
        self.exch_ts = ev.exch_ts
        self.local_ts = ev.local_ts
        self.fresh = False
        self.updates += 1
        return APPLIED

    def _refuse(self, r: Verdict, ev: Orderbook) -> UpdateResult:
        """Every verdict but the common one (off the hot path)."""
        if r is STALE:
            self.stale += 1
            return STALE
        if r is NOT_SYNCED:
            self.not_synced += 1
            return NOT_SYNCED
        if r is SNAPSHOT:
            return self._replace(ev)
        if isinstance(r, Gap):
            return self._gap(r.reason)
        if r is GAP:
            return self._gap("gap")
        raise TypeError(f"{self._rule!r} returned {r!r} for a "
                        f"{'snapshot' if ev.is_snapshot else 'delta'}")  # fmt: skip

    def _replace(self, ev: Orderbook) -> UpdateResult:
        """Replace the whole book by the snapshot ``ev``."""
        self._bp = bp = {p: q for p, q in ev.bids if q}
        self._ap = ap = {p: q for p, q in ev.asks if q}
        self._bk = sorted(bp)
        self._ak = sorted(ap)
        self._bs = set()
        self._as = set()
        if self.max_depth is not None:
            self._truncate()
        bk = self._bk
        ak = self._ak
        self.crossed = bool(bk) and bool(ak) and bk[-1] >= ak[0]
        self.update_id = ev.last_update_id
        self.seq = ev.seq
        self.exch_ts = ev.exch_ts
        self.local_ts = ev.local_ts
        self.synced = True
        self.fresh = True
        self.snapshots += 1
        return SNAPSHOT

    def _gap(self, reason: str) -> UpdateResult:
        self.gaps += 1
        self.last_gap = reason
        self.synced = False
        self.clear()
        if self.raise_on_gap:
            raise BookGap(self.exchange, self.symbol, reason)
        return GAP

    def _compact(self) -> None:
        if self._bs:
            self._bk = [p for p in self._bk if p not in self._bs]
            self._bs.clear()
        if self._as:
            self._ak = [p for p in self._ak if p not in self._as]
            self._as.clear()

    def _truncate(self) -> None:
        self._compact()
        n = self.max_depth
        bk = self._bk
        if len(bk) > n:
            cut = len(bk) - n
            bp = self._bp
            for p in bk[:cut]:
                del bp[p]
            del bk[:cut]
        ak = self._ak
        if len(ak) > n:
            ap = self._ap
            for p in ak[n:]:
                del ap[p]
            del ak[n:]

    def clear(self) -> None:
        """Empty both sides (ids and counters are kept)."""
        self._bp = {}
        self._bk = []
        self._bs = set()
        self._ap = {}
        self._ak = []
        self._as = set()
        self.crossed = False

    # ----------------------------------------------------------------------- reads

    @property
    def best_bid(self) -> Level | None:
        bk = self._bk
        if bk:
            p = bk[-1]
            return (p, self._bp[p])
        return None

    @property
    def best_ask(self) -> Level | None:
        ak = self._ak
        if ak:
            p = ak[0]
            return (p, self._ap[p])
        return None

    @property
    def mid(self) -> float | None:
        if self._bk and self._ak:
            return (self._bk[-1] + self._ak[0]) / 2.0
        return None

    @property
    def spread(self) -> float | None:
        if self._bk and self._ak:
            return self._ak[0] - self._bk[-1]
        return None

    def bids(self, n: int | None = None) -> list[Level]:
        """Bid levels, best (highest) first; all of them unless ``n`` is given."""
        return _levels(self._bp, reversed(self._bk), n)

    def asks(self, n: int | None = None) -> list[Level]:
        """Ask levels, best (lowest) first; all of them unless ``n`` is given."""
        return _levels(self._ap, self._ak, n)

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels of each side, best first."""
        return self.bids(n), self.asks(n)

    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels."""
        return len(self._bp), len(self._ap)

    def bid_qty(self, price: float) -> float:
        return self._bp.get(price, 0.0)

    def ask_qty(self, price: float) -> float:
        return self._ap.get(price, 0.0)

    def to_event(self, local_ts: int | None = None) -> Orderbook:
        """The whole book as a snapshot event (e.g. to publish or record)."""
        return Orderbook(
            exchange=self.exchange,
            symbol=self.symbol,
            exch_ts=self.exch_ts,
            local_ts=self.local_ts if local_ts is None else local_ts,
            is_snapshot=True,
            bids=tuple(self.bids()),
            asks=tuple(self.asks()),
            first_update_id=self.update_id,
            last_update_id=self.update_id,
            seq=self.seq,
        )

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.exchange} {self.symbol} id={self.update_id} synced={self.synced}"
            f" bids={len(self._bp)} asks={len(self._ap)} best={self.best_bid}/{self.best_ask}"
            f"{' CROSSED' if self.crossed else ''})"
        )
