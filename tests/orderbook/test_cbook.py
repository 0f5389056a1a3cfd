"""Differential tests of the compiled book core (``ttxt_mp._cbook``) against the pure one.

``ttxt_mp.orderbook._apply_delta_py`` is the reference. Two books get the same event
sequence, one applying deltas with the extension and one with the pure function (the
implementation is switched before each update, in one process); after every event their
UpdateResults, counters, reads (bids(n), asks(n), best, mid, spread, top, depth, to_event)
and even their internal containers must be equal, and a bad input must fail the same way.
Sequences mix snapshots, deltas with contiguous, skipped, repeated and backward update
ids (gaps, stale, not-synced paths) under every installed venue's rule, ``max_depth``
truncation, and deletions enough to compact a side. Skipped when the extension is not
built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp import orderbook
from ttxt_mp.connectors.venue import venues
from ttxt_mp.events import Orderbook
from ttxt_mp.orderbook import OrderBook

pytestmark = pytest.mark.skipif(
    not orderbook.AVAILABLE, reason="ttxt_mp._cbook is not built: only the pure book exists"
)

EX, SYM = "x", "A/B"
RULES = ["none", *sorted(v for v, spec in venues().items() if spec.book_rule)]
STATE = ("_bp", "_bk", "_bs", "_ap", "_ak", "_as")
COUNTERS = ("update_id", "seq", "synced", "crossed", "exch_ts", "local_ts", "stale", "gaps",
            "not_synced", "updates", "snapshots", "last_gap", "fresh")  # fmt: skip


@contextmanager
def impl(name: str) -> Iterator[None]:
    old = orderbook.implementation()
    orderbook.set_implementation(name)
    try:
        yield
    finally:
        orderbook.set_implementation(old)


def outcome(fn: Any, *args: Any) -> Any:
    """("ok", result) or (error type, message): both implementations must agree."""
    try:
        return ("ok", fn(*args))
    except Exception as e:  # the point: both fail the same way
        return (type(e), str(e))


def reads(book: OrderBook) -> tuple:
    return (
        book.bids(), book.asks(), book.bids(1), book.asks(3), book.bids(0), book.top(5),
        book.best_bid, book.best_ask, book.mid, book.spread, book.depth(),
        book.to_event(local_ts=7), [getattr(book, c) for c in COUNTERS],
    )  # fmt: skip


def state(book: OrderBook) -> list:
    return [getattr(book, s) for s in STATE]


def assert_same(pure: OrderBook, comp: OrderBook) -> None:
    assert reads(comp) == reads(pure)
    assert state(comp) == state(pure)  # not only the same reads: the same book


# prices on a tick grid, wide enough for 100+ levels a side (compaction needs > 64 stale)
prices = st.one_of(
    st.integers(min_value=1, max_value=400).map(lambda i: i / 4),
    st.integers(min_value=1, max_value=100),  # ints mixed with floats: Python's rules
)
qtys = st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.25, 0, 3])
levels = st.lists(st.tuples(prices, qtys), max_size=40).map(tuple)
bad_levels = st.sampled_from([((1.0,),), ((1.0, 2.0, 3.0),), ([1.0, 2.0],), (None,),
                              (([], 1.0),), ((1.0, "q"),)])  # fmt: skip


@st.composite
def event_seq(draw: Any) -> list[Orderbook]:
    out, last, seq = [], 0, 0
    for i in range(draw(st.integers(min_value=1, max_value=40))):
        kind = draw(st.sampled_from(["delta"] * 6 + ["snapshot", "jump", "back", "bad", "lock"]))
        n = draw(st.integers(min_value=1, max_value=3))
        if kind == "jump":
            first, last = last + 2 + n, last + 2 + 2 * n
        elif kind == "back":
            first, last = max(0, last - 2 * n), max(0, last - n)
        else:
            first, last = last + 1, last + n
        seq += 1 if kind != "jump" else 3
        snap = kind == "snapshot"
        bids = draw(bad_levels if kind == "bad" else levels)
        asks = draw(levels)
        if kind == "lock":  # one price on both sides: best bid == best ask is crossed
            p = draw(prices)
            bids, asks = bids + ((p, 1.0),), asks + ((p, 1.0),)
        out.append(Orderbook(exchange=EX, symbol=SYM, exch_ts=i, local_ts=i + 1,
                             is_snapshot=snap, bids=bids, asks=asks, first_update_id=first,
                             last_update_id=last, prev_update_id=first - 1,
                             seq=seq if draw(st.booleans()) else -1))  # fmt: skip
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    evs=event_seq(),
    rule=st.sampled_from(RULES),
    max_depth=st.sampled_from([None, None, 1, 3, 25]),
    contiguous=st.booleans(),
)
def test_the_compiled_core_builds_the_same_book(evs: list[Orderbook], rule: str,
                                                 max_depth: int | None,
                                                 contiguous: bool) -> None:  # fmt: skip
    pure = OrderBook(EX, SYM, max_depth, rules=rule, contiguous=contiguous)
    comp = OrderBook(EX, SYM, max_depth, rules=rule, contiguous=contiguous)
    for e in evs:
        with impl("pure"):
            a = outcome(pure.update, e)
        with impl("c"):
            b = outcome(comp.update, e)
        assert b == a
        assert type(b[1]) is type(a[1])  # an UpdateResult, not just an equal int
        assert_same(pure, comp)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**16), deletes=st.integers(70, 200))
def test_mass_deletions_compact_both_sides_alike(seed: int, deletes: int) -> None:
    """Enough lazy deletions to cross the compaction threshold (> 64 and > 1/4 of a side)."""
    import random

    rnd = random.Random(seed)
    bids = tuple((float(p), 1.0) for p in range(1, 301))
    asks = tuple((float(p), 1.0) for p in range(301, 601))
    books = {name: OrderBook(EX, SYM, rules="none") for name in ("pure", "c")}
    snap = Orderbook(exchange=EX, symbol=SYM, is_snapshot=True, bids=bids, asks=asks)
    dels_b = rnd.sample(range(1, 300), deletes)  # never the best bid (300)
    dels_a = rnd.sample(range(302, 601), deletes)  # never the best ask (301)
    for name, book in books.items():
        with impl(name):
            book.update(snap)
            for i in range(0, deletes, 7):
                book.update(Orderbook(exchange=EX, symbol=SYM,
                                      bids=tuple((float(p), 0.0) for p in dels_b[i:i + 7]),
                                      asks=tuple((float(p), 0.0) for p in dels_a[i:i + 7])))
            book.update(Orderbook(exchange=EX, symbol=SYM, bids=((300.0, 0.0),),
                                  asks=((301.0, 0.0), (299.5, 2.0))))  # fmt: skip
    assert_same(books["pure"], books["c"])
    assert not books["c"]._bs or len(books["c"]._bs) <= 64 or \
        len(books["c"]._bs) <= len(books["c"]._bk) >> 2  # fmt: skip


def test_the_pure_core_is_forced_by_the_environment() -> None:
    code = "from ttxt_mp import orderbook as o; print(o.implementation(), o.AVAILABLE)"
    for env, want in (("1", "pure True"), ("0", "c True"), ("", "c True")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, orderbook.PURE_ENV: env}, timeout=60)  # fmt: skip
        assert out.stdout.strip() == want, out.stderr


def test_a_bad_implementation_name_is_refused() -> None:
    with pytest.raises(ValueError, match="must be 'c' or 'pure', got 'rust'"):
        orderbook.set_implementation("rust")
    assert orderbook.implementation() in ("c", "pure")


def test_the_extension_hands_odd_input_to_the_pure_function() -> None:
    """Wrong argument count or container types: the pure function's behaviour."""
    from ttxt_mp import _cbook

    args = ({}, [], set(), ((1.0, 1.0),), {}, [], set(), ())
    assert _cbook.apply_delta(*args) is False and args[1] == [1.0]
    as_list = ({}, [], set(), [(2.0, 1.0)], {}, [], set(), [(1.0, 1.0)])  # levels in lists
    assert _cbook.apply_delta(*as_list) is True and as_list[1] == [2.0]  # crossed: 2 >= 1
    frozen = ({}, [], frozenset(), ((1.0, 0.0),), {}, [], set(), ())
    assert _cbook.apply_delta(*frozen) is False  # a frozenset: the pure path, same answer
    with pytest.raises(TypeError, match="positional argument"):
        _cbook.apply_delta({}, [])
    with pytest.raises(TypeError, match="needs a callable"):
        _cbook.set_fallback(42)
