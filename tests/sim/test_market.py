"""Synthetic market: determinism, book sanity, trades consuming liquidity, formatting."""

from __future__ import annotations

import pytest

from ttxt_mp.sim import Rates, Simulator
from ttxt_mp.sim.fmt import Scale, fmt_product
from ttxt_mp.sim.market import BookEvent, Market, Trade
from ttxt_mp.sim.specs import default_spec

R = Rates(updates_per_sec=2000.0, trades_per_sec=50.0, levels=500, max_levels=3000)


def run(seed: int, steps: int = 200) -> Market:
    m = Market(default_spec("BTCUSDT"), R, seed)
    for _ in range(steps):
        m.step(0.01, 0)
    return m


def test_same_seed_same_market_other_seed_differs() -> None:
    a, b, c = run(3), run(3), run(4)
    assert a.snapshot() == b.snapshot()
    assert [t.trade_id for t in a.trades] == [t.trade_id for t in b.trades]
    assert a.snapshot()[1:] != c.snapshot()[1:]


async def test_simulators_with_one_seed_are_identical() -> None:
    books = []
    for _ in range(2):
        sim = Simulator({"binance": ["BTCUSDT"], "bybit": ["BTCUSDT"]}, seed=5, rates=R, paused=True)
        sim.advance(50)
        books.append((sim.truth("binance", "BTCUSDT"), sim.truth("bybit", "BTCUSDT")))
    assert books[0] == books[1]
    assert books[0][0].bids != books[0][1].bids  # venues get independent markets


def test_book_is_uncrossed_deep_and_trades_consume_liquidity() -> None:
    m = Market(default_spec("BTCUSDT"), R, 1)
    events: list[BookEvent] = []
    trades: list[Trade] = []
    m.book_listeners.append(events.append)
    m.trade_listeners.append(trades.extend)
    for _ in range(300):
        m.step(0.01, 0)
        bb, ba = m.book.bids.best(), m.book.asks.best()
        assert bb is not None and ba is not None and bb < ba, "crossed book"
    assert len(m.book.bids) >= 100 and len(m.book.asks) >= 100
    assert trades, "no trades generated"
    ids = [e.update_id for e in events]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "update ids must be contiguous"
    by_id = {e.update_id: e for e in events}
    for t in trades:
        ev = by_id[t.seq]
        # the maker side level at the trade price changed in the same event
        assert any(is_bid == (not t.taker_buy) and tick == t.tick for is_bid, tick, _ in ev.changes)


def test_true_book_matches_replayed_events() -> None:
    m = Market(default_spec("SOLUSDT"), R, 2)
    _, bids, asks = m.snapshot()
    book = {(True, t): q for t, q in bids} | {(False, t): q for t, q in asks}
    m.book_listeners.append(lambda ev: [book.__setitem__((b, t), q) for b, t, q in ev.changes])
    for _ in range(200):
        m.step(0.01, 0)
    book = {k: v for k, v in book.items() if v}
    _, bids, asks = m.snapshot()
    assert book == {(True, t): q for t, q in bids} | {(False, t): q for t, q in asks}


def test_scale_formats_exactly() -> None:
    assert Scale("0.01").fmt(6500001) == "65000.01"
    assert Scale("0.01", 8).fmt(1) == "0.01000000"
    assert Scale("0.00001").fmt(7) == "0.00007"
    assert Scale("1").fmt(42) == "42"
    assert Scale("0.5").fmt(3) == "1.5"
    assert Scale("0.01").from_str("123.45") == 12345
    with pytest.raises(ValueError, match="not a multiple"):
        Scale("0.01").from_str("1.001")
    with pytest.raises(ValueError, match="increment must be > 0"):
        Scale("0")
    assert fmt_product(12345, Scale("0.01"), 3, Scale("0.1"), 3) == "37.035"


def test_bad_symbol_and_venue_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot split"):
        default_spec("FOOBAR")
    with pytest.raises(ValueError, match="unknown venue"):
        Simulator({"nosuchvenue": ["BTCUSD"]})
