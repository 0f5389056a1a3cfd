"""Binance USDⓈ-M book sync ("How to manage a local order book correctly", USDⓈ-M): update
ids jump between events and each event names the previous one's ``u`` as ``pu``. What the
sync publishes rebuilds the true book; a lost event breaks the ``pu`` chain, is a gap (never
published past) and a later snapshot restores the book."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.binance.sync import BinanceBookSync
from ttxt_mp.orderbook import OrderBook

from .models import DictBook, levels, ob, snapshot_levels
from .test_sync import consumer_matches


@st.composite
def futures_market(draw, max_diffs: int = 30):
    """A true book and its diff events: ``U`` may skip ids (``U >= previous u + 1``),
    ``pu`` = previous ``u``; the true snapshot (lastUpdateId = that ``u``) after each."""
    truth = DictBook()
    start = 5000
    truth.snapshot(ob(draw(snapshot_levels), draw(snapshot_levels), u=start, snapshot=True))
    snaps = {-1: ob(truth.bid_levels(), truth.ask_levels(), u=start, snapshot=True)}
    diffs, prev = [], start
    for i in range(draw(st.integers(6, max_diffs))):
        first = prev + 1 + draw(st.integers(0, 4))  # futures ids are not contiguous
        last = first + draw(st.integers(0, 3))
        ev = ob(draw(levels), draw(levels), U=first, u=last, pu=prev)
        truth.delta(ev)
        diffs.append(ev)
        prev = last
        snaps[i] = ob(truth.bid_levels(), truth.ask_levels(), u=last, snapshot=True)
    return diffs, snaps


@settings(max_examples=200, deadline=None)
@given(market=futures_market(), data=st.data())
def test_futures_sync_rebuilds_the_true_book(market, data):
    diffs, snaps = market
    n = len(diffs)
    first = data.draw(st.integers(0, n - 2), label="first event received")
    arrive = data.draw(st.integers(first, n - 1), label="events received before the snapshot")
    taken = data.draw(st.integers(first - 2, arrive), label="snapshot taken after event")
    sync = BinanceBookSync("BTC/USDT")
    consumer = OrderBook("binance", "BTC/USDT")

    def publish(events):
        for ev in events:
            consumer.update(ev)

    for ev in diffs[first : arrive + 1]:
        publish(sync.on_diff(ev))
    snap = snaps[max(taken, -1)]
    out = sync.on_snapshot(snap)
    if snap.last_update_id < diffs[first].first_update_id:  # older than the buffer: again
        assert out == [] and sync.needs_snapshot
        snap = snaps[arrive]
        out = sync.on_snapshot(snap)
    publish(out)
    assert out[0] is snap and not sync.needs_snapshot
    for ev in diffs[arrive + 1 :]:
        publish(sync.on_diff(ev))
    consumer_matches(sync.book, snaps[n - 1])
    consumer_matches(consumer, snaps[n - 1])
    assert sync.resyncs == 0 and consumer.gaps == 0


@settings(max_examples=200, deadline=None)
@given(market=futures_market(max_diffs=40), data=st.data())
def test_a_broken_pu_chain_is_a_gap_then_a_snapshot_restores_the_book(market, data):
    diffs, snaps = market
    n = len(diffs)
    assume(n >= 8)
    lost = data.draw(st.integers(2, n - 3), label="lost event")
    resnap = data.draw(st.integers(lost + 1, n - 1), label="new snapshot taken after")
    sync = BinanceBookSync("BTC/USDT")
    consumer = OrderBook("binance", "BTC/USDT")
    sync.on_diff(diffs[0])
    for ev in sync.on_snapshot(snaps[0]):
        consumer.update(ev)
    for i in range(1, n):
        if i == lost:
            continue  # the network loses it: the next pu names an u never seen
        for ev in sync.on_diff(diffs[i]):
            consumer.update(ev)
        if i < lost:
            consumer_matches(consumer, snaps[i])
        elif i == lost + 1:
            assert sync.needs_snapshot and sync.resyncs == 1
            assert f"pu={diffs[i].prev_update_id}" in sync.last_gap
        if i == resnap:
            for ev in sync.on_snapshot(snaps[i]):
                consumer.update(ev)
            assert not sync.needs_snapshot
            consumer_matches(consumer, snaps[i])
    assert sync.resyncs == 1
    consumer_matches(consumer, snaps[n - 1])
    assert consumer.gaps == 0  # nothing past the gap was published


def test_futures_documented_steps():
    """Drop u < lastUpdateId; the first processed event has U <= lastUpdateId <= u; then
    each pu is the previous u."""
    sync = BinanceBookSync("BTC/USDT")
    for U, u, pu in ((150, 155, 140), (157, 160, 155), (170, 175, 160)):
        sync.on_diff(ob(U=U, u=u, pu=pu))
    out = sync.on_snapshot(ob(u=158, snapshot=True))
    assert [e.last_update_id for e in out] == [158, 160, 175]  # 155 dropped (u < 158)
    assert sync.on_diff(ob(U=176, u=180, pu=175)) != []
    assert sync.on_diff(ob(U=185, u=190, pu=181)) == [] and sync.needs_snapshot
    assert "pu=181 != previous u=180" in sync.last_gap


def test_futures_first_event_must_cover_the_snapshot():
    """A snapshot between two events (lastUpdateId < the next U) cannot be continued."""
    sync = BinanceBookSync("BTC/USDT")
    sync.on_diff(ob(U=157, u=160, pu=149))
    sync.on_diff(ob(U=170, u=175, pu=160))
    out = sync.on_snapshot(ob(u=165, snapshot=True))  # 160 dropped, 170 > 165: a gap
    assert [e.last_update_id for e in out] == [165] and sync.needs_snapshot
    assert "U=170 > lastUpdateId" in sync.last_gap


def test_futures_quiet_book_snapshot_continues_at_the_next_id():
    """Nothing buffered (a quiet book): the snapshot is the last event's u; the next event
    starting at lastUpdateId + 1 misses nothing (no id lies between)."""
    sync = BinanceBookSync("BTC/USDT")
    assert sync.on_snapshot(ob([(1.0, 1.0)], u=160, snapshot=True))[0].last_update_id == 160
    assert sync.on_diff(ob([(1.0, 2.0)], U=161, u=163, pu=160)) != []
    assert sync.book.bids() == [(1.0, 2.0)] and sync.resyncs == 0
    sync.reset()
    sync.on_snapshot(ob(u=160, snapshot=True))
    assert sync.on_diff(ob(U=162, u=163, pu=161)) == [] and sync.needs_snapshot
