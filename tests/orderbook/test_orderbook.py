"""OrderBook: book contents against a naive dict model, and each venue's sequence rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.orderbook import BookGap, OrderBook, UpdateResult, rules_for

from .models import DictBook, assert_same, levels, ob, snapshot_levels

R = UpdateResult


# --------------------------------------------------------------------------- contents


def test_snapshot_replaces_the_whole_book():
    """ttxt2 kept stale levels when a snapshot arrived on a non-empty book."""
    book = OrderBook("binance", "BTC/USDT")
    book.update(ob([(10.0, 1.0), (9.0, 2.0)], [(11.0, 1.0), (12.0, 3.0)], u=5, snapshot=True))
    book.update(ob([(8.5, 4.0)], [(13.0, 1.0)], U=6, u=6))
    assert book.update(ob([(7.0, 1.0)], [(14.0, 2.0)], u=20, snapshot=True)) is R.SNAPSHOT
    assert book.bids() == [(7.0, 1.0)] and book.asks() == [(14.0, 2.0)]
    assert book.update_id == 20


def test_no_truncation_unless_asked():
    """ttxt2 silently cut every side to 50 levels."""
    bids = [(10_000.0 - i, 1.0 + i) for i in range(5000)]
    asks = [(10_001.0 + i, 1.0 + i) for i in range(5000)]
    book = OrderBook("binance", "BTC/USDT")
    book.update(ob(bids, asks, u=1, snapshot=True))
    assert book.depth() == (5000, 5000)
    book.update(ob([(1.0, 3.0)], [(99_999.0, 3.0)], U=2, u=2))
    assert book.depth() == (5001, 5001)
    assert book.bids()[-1] == (1.0, 3.0) and book.asks()[-1] == (99_999.0, 3.0)
    assert len(book.top(100)[0]) == 100

    small = OrderBook("binance", "BTC/USDT", max_depth=10)
    small.update(ob(bids, asks, u=1, snapshot=True))
    assert small.depth() == (10, 10)
    assert small.bids() == bids[:10] and small.asks() == asks[:10]
    small.update(ob([(10_000.5, 1.0)], [(10_000.75, 1.0)], U=2, u=2))
    assert small.depth() == (10, 10) and small.best_bid == (10_000.5, 1.0)
    with pytest.raises(ValueError, match="max_depth"):
        OrderBook("binance", "BTC/USDT", max_depth=0)


def test_book_never_aliases_event_data_and_events_are_immutable():
    """ttxt2 stored delta levels by reference: later updates changed delivered events."""
    snap = ob([(10.0, 1.0)], [(11.0, 1.0)], u=1, snapshot=True)
    delta = ob([(10.0, 5.0), (9.0, 1.0)], [(11.0, 0.0)], U=2, u=2)
    kept = (snap.bids, snap.asks, delta.bids, delta.asks)
    book = OrderBook("binance", "BTC/USDT")
    book.update(snap)
    book.update(delta)
    book.update(ob([(10.0, 0.0)], [(12.0, 9.0)], U=3, u=3))
    assert (snap.bids, snap.asks, delta.bids, delta.asks) == kept
    assert kept == (((10.0, 1.0),), ((11.0, 1.0),), ((10.0, 5.0), (9.0, 1.0)), ((11.0, 0.0),))
    with pytest.raises(AttributeError):
        delta.bids = ()
    out = book.bids()
    out.clear()
    assert book.bids() == [(9.0, 1.0)]


def test_crossed_flag():
    book = OrderBook("binance", "BTC/USDT")
    book.update(ob([(10.0, 1.0)], [(11.0, 1.0)], u=1, snapshot=True))
    assert not book.crossed and book.spread == 1.0 and book.mid == 10.5
    book.update(ob([(11.0, 2.0)], [], U=2, u=2))
    assert book.crossed
    book.update(ob([(11.0, 0.0)], [], U=3, u=3))
    assert not book.crossed


def test_to_event_rebuilds_the_same_book():
    book = OrderBook("bybit", "BTC/USDT")
    book.update(ob([(10.0, 1.0), (9.5, 2.0)], [(11.0, 1.0)], u=7, seq=70, snapshot=True,
                   ex="bybit"))  # fmt: skip
    book.update(ob([(9.75, 3.0)], [(11.5, 1.0)], u=8, ex="bybit"))
    copy = OrderBook("bybit", "BTC/USDT")
    assert copy.update(book.to_event()) is R.SNAPSHOT
    assert (copy.bids(), copy.asks(), copy.update_id) == (book.bids(), book.asks(), 8)


def test_event_for_another_instrument_is_refused():
    book = OrderBook("binance", "BTC/USDT")
    with pytest.raises(ValueError, match="binance ETH/USDT given to the book of binance BTC"):
        book.update(ob(u=1, snapshot=True, sym="ETH/USDT"))


def test_rules_follow_the_exchange_name():
    names = [rules_for(ex).name for ex in ("binance", "binance_futures", "bybit", "nosuchvenue")]
    assert names == ["binance", "binance", "bybit", "none"]
    assert OrderBook("binance", "A/B").rules is rules_for("binance")
    with pytest.raises(ValueError, match="rules must be one of"):
        OrderBook("x", "A/B", rules="nosuchvenue")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("snap"), snapshot_levels, snapshot_levels),
        st.tuples(st.just("delta"), levels, levels),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops=ops)
def test_contents_match_a_dict_model_at_every_step(ops):
    book = OrderBook("sim", "BTC/USDT")
    model = DictBook()
    for i, (kind, bids, asks) in enumerate(ops):
        ev = ob(bids, asks, U=i + 1, u=i + 1, snapshot=kind == "snap", ex="sim")
        book.update(ev)
        model.snapshot(ev) if kind == "snap" else model.delta(ev)
        assert_same(book, model)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(levels, levels), min_size=50, max_size=300))
def test_many_deletes_and_reinserts_keep_the_book_exact(ops):
    """Long delta runs exercise the lazy-removal bookkeeping (compaction, revival)."""
    book = OrderBook("sim", "BTC/USDT")
    model = DictBook()
    snap = ob([(i / 4, 1.0) for i in range(1, 61)], [(i / 4, 1.0) for i in range(1, 61)],
              u=1, snapshot=True, ex="sim")  # fmt: skip
    book.update(snap)
    model.snapshot(snap)
    for bids, asks in ops:
        ev = ob(bids, asks, ex="sim")
        book.update(ev)
        model.delta(ev)
    assert_same(book, model)


# --------------------------------------------------------------------------- Binance rules


def binance_expected(state: dict, ev) -> R:
    """The Binance procedure written out literally (spot: U/u; futures: pu)."""
    if ev.is_snapshot:
        state.update(synced=True, id=ev.last_update_id, fresh=True)
        return R.SNAPSHOT
    if not state["synced"]:
        return R.NOT_SYNCED
    bid, U, u, pu = state["id"], ev.first_update_id, ev.last_update_id, ev.prev_update_id
    if pu == -1:
        if u <= bid:
            return R.STALE
        if U > bid + 1:
            state["synced"] = False
            return R.GAP
    elif state["fresh"]:
        if u < bid:
            return R.STALE
        if not U <= bid + 1:  # docs: U <= lastUpdateId; U = lastUpdateId + 1 skips no id
            state["synced"] = False
            return R.GAP
    else:
        if u <= bid:
            return R.STALE
        if pu != bid:
            state["synced"] = False
            return R.GAP
    state.update(id=u, fresh=False)
    return R.APPLIED


binance_ops = st.lists(
    st.tuples(
        st.sampled_from(["snap"] + ["delta"] * 8),
        st.integers(-4, 4),  # U relative to book id + 1 (or snapshot id offset)
        st.integers(0, 3),  # u - U
        st.sampled_from([0, 0, 0, -1, 1]),  # futures: pu offset from book id
        levels,
        levels,
    ),
    min_size=1,
    max_size=60,
)


@pytest.mark.parametrize("futures", [False, True])
@settings(max_examples=150, deadline=None)
@given(ops=binance_ops)
def test_binance_sequence_rules(futures, ops):
    book = OrderBook("binance", "BTC/USDT")
    model = DictBook()
    state = {"synced": False, "id": 0, "fresh": False}
    counts = {r: 0 for r in R}
    for kind, dU, span, dpu, bids, asks in ops:
        base = max(state["id"], 0)
        if kind == "snap":
            ev = ob(bids, asks, U=max(1, base + dU), u=max(1, base + dU), snapshot=True)
        else:
            U = max(1, base + 1 + dU)
            pu = (base + dpu) if futures else -1
            ev = ob(bids, asks, U=U, u=U + span, pu=pu)
        expected = binance_expected(state, ev)
        assert book.update(ev) is expected
        counts[expected] += 1
        if expected is R.SNAPSHOT:
            model.snapshot(ev)
        elif expected is R.APPLIED:
            model.delta(ev)
        elif expected is R.GAP:
            model.clear()
        assert_same(book, model)
        assert book.synced == state["synced"]
    assert (book.stale, book.gaps, book.not_synced) == (
        counts[R.STALE], counts[R.GAP], counts[R.NOT_SYNCED],
    )  # fmt: skip


def test_binance_spot_documented_example_sequence():
    """Snapshot lastUpdateId=160 then U/u windows as in the docs' procedure."""
    book = OrderBook("binance", "BTC/USDT")
    assert book.update(ob(U=157, u=160)) is R.NOT_SYNCED  # before any snapshot
    book.update(ob([(1.0, 1.0)], [(2.0, 1.0)], u=160, snapshot=True))
    assert book.update(ob(U=150, u=160)) is R.STALE  # u <= lastUpdateId
    assert book.update(ob([(1.5, 1.0)], U=158, u=163)) is R.APPLIED  # U <= 161 <= u
    assert book.update(ob(U=161, u=163)) is R.STALE  # duplicate / out of order
    assert book.update(ob(U=164, u=170)) is R.APPLIED
    assert book.update(ob([(1.25, 2.0)], U=172, u=175)) is R.GAP  # 171 missed
    assert "171" in book.last_gap and book.gaps == 1 and not book.synced
    assert book.depth() == (0, 0)  # the book is discarded, as the docs say
    assert book.update(ob(U=176, u=177)) is R.NOT_SYNCED
    assert book.stale == 2 and book.not_synced == 2


def test_binance_futures_pu_rule():
    book = OrderBook("binance", "BTC/USDT")
    book.update(ob(u=160, snapshot=True))
    assert book.update(ob(U=150, u=159, pu=149)) is R.STALE  # u < lastUpdateId
    assert book.update(ob(U=157, u=162, pu=156)) is R.APPLIED  # U <= 160 <= u
    assert book.update(ob(U=163, u=165, pu=162)) is R.APPLIED  # pu == previous u
    assert book.update(ob(U=163, u=165, pu=162)) is R.STALE
    assert book.update(ob(U=168, u=170, pu=167)) is R.GAP  # pu != 165
    assert book.last_gap == "pu=167 != previous u=165"


def test_gap_can_raise():
    book = OrderBook("binance", "BTC/USDT", raise_on_gap=True)
    book.update(ob(u=10, snapshot=True))
    with pytest.raises(BookGap, match=r"binance BTC/USDT: order book gap: first update id 13"):
        book.update(ob(U=13, u=14))
    assert not book.synced and book.gaps == 1


# --------------------------------------------------------------------------- Bybit rules


def bybit_expected(state: dict, ev, contiguous: bool) -> R:
    u = ev.last_update_id
    if ev.is_snapshot or u == 1:
        if state["synced"] and u != 1 and u < state["id"]:
            return R.STALE
        state.update(synced=True, id=u)
        return R.SNAPSHOT
    if not state["synced"]:
        return R.NOT_SYNCED
    if u <= state["id"]:
        return R.STALE
    if contiguous and u != state["id"] + 1:
        state["synced"] = False
        return R.GAP
    state["id"] = u
    return R.APPLIED


bybit_ops = st.lists(
    st.tuples(
        st.sampled_from(["snap"] + ["delta"] * 8),
        st.sampled_from([1, 1, 1, 1, 0, -1, 2, 3, "restart"]),  # u offset from book id
        levels,
        levels,
    ),
    min_size=1,
    max_size=60,
)


@pytest.mark.parametrize("contiguous", [True, False])
@settings(max_examples=150, deadline=None)
@given(ops=bybit_ops)
def test_bybit_sequence_rules(contiguous, ops):
    book = OrderBook("bybit", "BTC/USDT", contiguous=contiguous)
    model = DictBook()
    state = {"synced": False, "id": 0}
    for kind, du, bids, asks in ops:
        u = 1 if du == "restart" else max(2, state["id"] + du)
        ev = ob(bids, asks, U=u, u=u, snapshot=kind == "snap", ex="bybit")
        expected = bybit_expected(state, ev, contiguous)
        assert book.update(ev) is expected
        if expected is R.SNAPSHOT:
            model.snapshot(ev)
        elif expected is R.APPLIED:
            model.delta(ev)
        elif expected is R.GAP:
            model.clear()
        assert_same(book, model)


def test_bybit_documented_cases():
    book = OrderBook("bybit", "BTC/USDT")
    assert book.update(ob([(1.0, 1.0)], u=101, ex="bybit")) is R.NOT_SYNCED
    assert book.update(ob([(1.0, 1.0)], [(2.0, 1.0)], u=100, snapshot=True, ex="bybit")) is (
        R.SNAPSHOT
    )
    assert book.update(ob([(1.5, 1.0)], u=101, ex="bybit")) is R.APPLIED
    # level 1: the snapshot is pushed again after 3 s without change, with the same u
    assert book.update(ob([(1.5, 1.0)], [(2.0, 1.0)], u=101, snapshot=True, ex="bybit")) is (
        R.SNAPSHOT
    )
    assert book.bids() == [(1.5, 1.0)]
    assert book.update(ob(u=101, ex="bybit")) is R.STALE  # u must not go backwards
    assert book.update(ob(u=99, snapshot=True, ex="bybit")) is R.STALE
    assert book.update(ob(u=104, ex="bybit")) is R.GAP
    assert book.last_gap == "u=104 after u=101 (missed 102...103)"
    # "u"=1: a snapshot after a service restart, even if typed delta: overwrite the book
    assert book.update(ob([(3.0, 1.0)], [(4.0, 1.0)], u=1, ex="bybit")) is R.SNAPSHOT
    assert book.bids() == [(3.0, 1.0)] and book.asks() == [(4.0, 1.0)] and book.synced
    assert book.update(ob(u=2, ex="bybit")) is R.APPLIED
