"""Binance and Bybit book sync state machines: what they publish rebuilds the true book."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.binance.sync import BinanceBookSync
from ttxt_mp.connectors.bybit.sync import BybitBookSync
from ttxt_mp.orderbook import OrderBook

from .models import DictBook, levels, ob, snapshot_levels


@st.composite
def true_market(draw, max_diffs: int = 30):
    """An exchange's true book: a start state and contiguous diffs (U = previous u + 1),
    with the true snapshot after every diff (index -1 = before the first diff)."""
    truth = DictBook()
    truth.snapshot(ob(draw(snapshot_levels), draw(snapshot_levels), u=1000, snapshot=True))
    snaps = {-1: ob(truth.bid_levels(), truth.ask_levels(), u=1000, snapshot=True)}
    diffs, uid = [], 1000
    for i in range(draw(st.integers(5, max_diffs))):
        span = draw(st.integers(0, 3))
        ev = ob(draw(levels), draw(levels), U=uid + 1, u=uid + 1 + span)
        uid += 1 + span
        truth.delta(ev)
        diffs.append(ev)
        snaps[i] = ob(truth.bid_levels(), truth.ask_levels(), u=uid, snapshot=True)
    return diffs, snaps


def consumer_matches(book: OrderBook, snap) -> None:
    assert book.bids() == list(snap.bids) and book.asks() == list(snap.asks)


@settings(max_examples=200, deadline=None)
@given(market=true_market(), data=st.data())
def test_binance_sync_publishes_a_stream_that_rebuilds_the_true_book(market, data):
    diffs, snaps = market
    n = len(diffs)
    first = data.draw(st.integers(0, n - 2), label="first diff received")
    arrive = data.draw(st.integers(first, n - 1), label="diffs received before the snapshot")
    taken = data.draw(st.integers(first - 2, n - 1), label="snapshot taken after diff")
    sync = BinanceBookSync("BTC/USDT")
    consumer = OrderBook("binance", "BTC/USDT")
    published = []

    def publish(events):
        for ev in events:
            consumer.update(ev)
        published.extend(events)

    for ev in diffs[first : arrive + 1]:
        publish(sync.on_diff(ev))
    assert sync.needs_snapshot and published == []
    snap = snaps[max(taken, -1)]
    out = sync.on_snapshot(snap)
    if snap.last_update_id < diffs[first].first_update_id:  # docs: too old, fetch again
        assert out == [] and sync.needs_snapshot and sync.snapshot_retries == 1
        snap = snaps[arrive]
        out = sync.on_snapshot(snap)
    publish(out)
    assert not sync.needs_snapshot and published[0] is snap
    for ev in diffs[arrive + 1 :]:
        publish(sync.on_diff(ev))
    consumer_matches(sync.book, snaps[n - 1])
    consumer_matches(consumer, snaps[n - 1])
    assert sync.resyncs == 0 and consumer.gaps == 0 and consumer.stale == 0


@settings(max_examples=200, deadline=None)
@given(market=true_market(max_diffs=40), data=st.data())
def test_binance_sync_detects_an_injected_gap_and_recovers(market, data):
    diffs, snaps = market
    n = len(diffs)
    assume(n >= 8)
    lost = data.draw(st.integers(2, n - 3), label="lost diff")
    resnap_after = data.draw(st.integers(lost + 1, n - 1), label="new snapshot taken after")
    sync = BinanceBookSync("BTC/USDT")
    consumer = OrderBook("binance", "BTC/USDT")
    sync.on_diff(diffs[0])
    for ev in sync.on_snapshot(snaps[0]):
        consumer.update(ev)
    for i in range(1, n):
        if i == lost:
            continue  # the network loses it
        for ev in sync.on_diff(diffs[i]):
            consumer.update(ev)
        if i < lost:
            consumer_matches(consumer, snaps[i])
        elif i == lost + 1:
            assert sync.needs_snapshot and sync.resyncs == 1
            assert "missed" in sync.last_gap
        if i == resnap_after:
            assert sync.needs_snapshot
            for ev in sync.on_snapshot(snaps[i]):
                consumer.update(ev)
            assert not sync.needs_snapshot
            consumer_matches(consumer, snaps[i])
    assert not sync.needs_snapshot and sync.resyncs == 1
    consumer_matches(consumer, snaps[n - 1])
    assert consumer.gaps == 0  # nothing inconsistent was ever published


def test_binance_sync_documented_steps():
    sync = BinanceBookSync("BTC/USDT")
    assert sync.first_buffered_id is None
    assert sync.on_diff(ob([(1.0, 1.0)], U=157, u=160)) == []
    assert sync.on_diff(ob([(1.0, 2.0)], U=161, u=165)) == []
    assert sync.first_buffered_id == 157 and sync.buffered == 2
    assert sync.on_snapshot(ob(u=150, snapshot=True)) == []  # 150 < 157: get another
    assert sync.needs_snapshot and sync.snapshot_retries == 1
    snap = ob([(0.5, 1.0)], u=162, snapshot=True)
    out = sync.on_snapshot(snap)
    assert out[0] is snap and [e.last_update_id for e in out[1:]] == [165]  # 160 dropped
    assert sync.book.bids() == [(1.0, 2.0), (0.5, 1.0)]
    assert sync.on_diff(ob(U=166, u=166)) != []
    with pytest.raises(ValueError, match="snapshot"):
        sync.on_snapshot(ob(U=1, u=1))


def test_binance_sync_buffer_is_bounded():
    sync = BinanceBookSync("BTC/USDT", max_buffer=3)
    for i in range(5):
        sync.on_diff(ob(U=10 + i, u=10 + i))
    assert sync.buffered == 3 and sync.dropped == 2 and sync.first_buffered_id == 12
    assert [e.last_update_id for e in sync.on_snapshot(ob(u=12, snapshot=True))] == [12, 13, 14]


def test_binance_sync_gap_inside_the_buffer_restarts():
    sync = BinanceBookSync("BTC/USDT")
    for U, u in ((10, 11), (12, 12), (14, 15), (16, 16)):  # 13 never arrived
        sync.on_diff(ob(U=U, u=u))
    out = sync.on_snapshot(ob(u=11, snapshot=True))
    assert [e.last_update_id for e in out] == [11, 12]
    assert sync.needs_snapshot and sync.resyncs == 1 and sync.first_buffered_id == 14
    assert sync.buffered == 2


def test_bybit_sync():
    sync = BybitBookSync("BTC/USDT")
    assert sync.needs_resync
    assert sync.on_event(ob([(1.0, 1.0)], u=5, ex="bybit")) == []
    snap = ob([(1.0, 1.0)], [(2.0, 1.0)], u=5, snapshot=True, ex="bybit")
    assert sync.on_event(snap) == [snap] and not sync.needs_resync
    d = ob([(1.5, 1.0)], u=6, ex="bybit")
    assert sync.on_event(d) == [d]
    assert sync.on_event(d) == []  # duplicate
    assert sync.on_event(ob(u=9, ex="bybit")) == []
    assert sync.needs_resync and sync.resyncs == 1 and "missed 7...8" in sync.last_gap
    restart = ob([(3.0, 1.0)], [(4.0, 1.0)], u=1, ex="bybit")
    assert sync.on_event(restart) == [restart] and not sync.needs_resync
    assert sync.book.bids() == [(3.0, 1.0)]
