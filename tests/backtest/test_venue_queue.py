"""Queue position of resting orders: the size ahead consumed by trades and by cancels,
filled when reached, trades through the price; hand-computed cases and properties."""

from __future__ import annotations

import pytest
from backtest.venue_helpers import (
    SYM,
    amend,
    book,
    delta,
    make,
    order,
    queue_ahead,
    trades,
    updates,
)
from hypothesis import given
from hypothesis import strategies as st

from ttxt_mp.backtest.queue_position import QueuePosition
from ttxt_mp.backtest.rules import VenueRules
from ttxt_mp.events import OrderStatus, Side

BUY, SELL = Side.BUY, Side.SELL


def resting(bid_qty: float = 5.0, qty: float = 3.0, **kw):
    """A buy of ``qty`` resting at 100 behind ``bid_qty`` visible."""
    v, rows = make(**kw)
    v.on_market(book(1_000, ((100.0, bid_qty), (99.0, 4.0)), ((101.0, 2.0),)))
    out = v.submit(order("b", BUY, qty, 100.0), 2_000)
    assert updates(out)[-1].status == OrderStatus.NEW
    return v, rows


def test_queue_starts_behind_the_visible_size_and_trades_consume_it_then_fill():
    v, rows = resting()
    assert queue_ahead(v, "b") == 5.0
    assert v.on_market(trades(3_000, (100.0, 3.0, SELL))) == []  # 2 left ahead
    assert queue_ahead(v, "b") == 2.0 and rows.fills == []
    out = v.on_market(trades(4_000, (100.0, 4.0, SELL)))  # 2 reach the queue's end, 2 fill us
    ups = updates(out)
    assert [(u.status, u.last_fill_qty, u.last_fill_price) for u in ups] == [
        (OrderStatus.PARTIALLY_FILLED, 2.0, 100.0)]
    f = rows.fills[-1]
    assert (f.liquidity, f.price, f.qty, f.fee) == ("maker", 100.0, 2.0, pytest.approx(0.2))
    out = v.on_market(trades(5_000, (100.0, 5.0, SELL)))
    assert updates(out)[-1].status == OrderStatus.FILLED and updates(out)[-1].last_fill_qty == 1.0
    assert v.open_orders() == [] and v.balance("USDT")[1] == 0.0
    assert v.balance("BTC") == (13.0, 0.0)
    assert v.balance("USDT")[0] == pytest.approx(10_000 - 300 * 1.001)


def test_arrivals_queue_behind_and_cancels_shorten_the_queue_pro_rata():
    v, rows = resting(bid_qty=10.0)
    v.on_market(delta(3_000, bids=((100.0, 20.0),)))  # 10 more behind us
    assert queue_ahead(v, "b") == 10.0
    v.on_market(delta(4_000, bids=((100.0, 10.0),)))  # 10 cancelled: 10 x 10/20 ahead of us
    assert queue_ahead(v, "b") == 5.0
    v.on_market(trades(5_000, (100.0, 6.0, SELL)))
    assert queue_ahead(v, "b") == 0.0 and rows.fills[-1].qty == 1.0


def test_without_queue_cancels_only_trades_move_the_queue():
    v, rows = resting(bid_qty=10.0, rules=VenueRules(queue_cancels=False))
    v.on_market(delta(3_000, bids=((100.0, 20.0),)))
    v.on_market(delta(4_000, bids=((100.0, 10.0),)))
    assert queue_ahead(v, "b") == 10.0
    v.on_market(delta(5_000, bids=((100.0, 4.0),)))  # never more ahead than the level shows
    assert queue_ahead(v, "b") == 4.0


def test_a_decrease_the_trades_explain_is_not_counted_again_as_cancels():
    v, rows = resting(bid_qty=10.0)
    v.on_market(trades(3_000, (100.0, 4.0, SELL)))
    assert queue_ahead(v, "b") == 6.0
    v.on_market(delta(3_001, bids=((100.0, 6.0),)))  # the book catches up with the trade
    assert queue_ahead(v, "b") == 6.0
    v.on_market(delta(3_002, bids=((100.0, 3.0),)))  # now 3 are cancelled: 3 x 6/6
    assert queue_ahead(v, "b") == 3.0


def test_the_level_vanishing_puts_us_at_the_front():
    v, rows = resting()
    v.on_market(delta(3_000, bids=((100.0, 0.0),)))
    assert queue_ahead(v, "b") == 0.0
    v.on_market(trades(4_000, (100.0, 1.0, SELL)))
    assert rows.fills[-1].qty == 1.0


def test_a_trade_through_our_price_fills_us_at_our_price_up_to_its_size():
    v, rows = resting()
    out = v.on_market(trades(3_000, (99.0, 2.0, SELL)))  # a seller went below our bid
    assert [(u.last_fill_price, u.last_fill_qty) for u in updates(out)] == [(100.0, 2.0)]
    assert rows.fills[-1].liquidity == "maker"
    v.on_market(trades(4_000, (98.0, 10.0, SELL)))
    assert v.open_orders() == [] and sum(f.qty for f in rows.fills) == 3.0


def test_trades_on_the_other_side_or_beyond_do_not_fill():
    v, rows = resting(bid_qty=0.0)
    v.on_market(trades(3_000, (100.0, 5.0, BUY), (101.0, 5.0, BUY), (100.5, 1.0, SELL)))
    assert rows.fills == [] and queue_ahead(v, "b") == 0.0


def test_a_sell_rests_on_the_ask_side():
    v, rows = make()
    v.on_market(book(1_000, ((99.0, 1.0),), ((101.0, 2.0),)))
    v.submit(order("s", SELL, 1.0, 101.0), 2_000)
    assert queue_ahead(v, "s") == 2.0 and v.balance("BTC") == (9.0, 1.0)
    v.on_market(trades(3_000, (101.0, 2.5, BUY)))
    assert rows.fills[-1].qty == 0.5 and rows.fills[-1].side == "SELL"


def test_two_orders_share_one_trade_in_price_then_time_priority():
    v, rows = make()
    v.on_market(book(1_000, ((100.0, 1.0),), ((102.0, 1.0),)))
    v.submit(order("first", BUY, 1.0, 100.0), 2_000)
    v.submit(order("better", BUY, 1.0, 101.0), 2_500)  # improves the best: nothing ahead
    v.submit(order("second", BUY, 1.0, 100.0), 3_000)
    out = v.on_market(trades(4_000, (100.0, 2.5, SELL)))
    # the seller of 2.5 meets our 101 first (1), then the 1 visible ahead at 100, then our
    # older order at 100 (0.5); nothing is left for the younger one
    assert [(u.client_order_id, u.last_fill_qty) for u in updates(out)] == [
        ("better", 1.0), ("first", 0.5)]  # fmt: skip
    assert queue_ahead(v, "second") == 0.0
    out = v.on_market(trades(5_000, (100.0, 1.0, SELL)))
    assert [(u.client_order_id, u.last_fill_qty) for u in updates(out)] == [
        ("first", 0.5), ("second", 0.5)]  # fmt: skip


@given(ahead=st.floats(0, 100), ops=st.lists(st.tuples(
    st.sampled_from(["trade", "level"]), st.floats(0, 100), st.floats(0, 100),
    st.floats(0, 100), st.booleans()), max_size=30))  # fmt: skip
def test_queue_never_negative_and_never_beyond_the_level(ahead, ops):
    q = QueuePosition(ahead)
    for kind, a, b, c, cancels in ops:
        before = q.ahead
        if kind == "trade":
            left = q.on_trade(a)
            assert left == pytest.approx(a - (before - q.ahead)) and 0 <= left <= a
        else:
            q.on_level(a, b, min(c, a), cancels)
            if b < a:
                assert q.ahead <= b
            assert q.ahead <= before
        assert q.ahead >= 0


def test_queue_of_an_order_for_a_symbol_without_a_book_is_empty():
    v, rows = make()
    out = v.submit(order("x", BUY, 1.0, 50.0, symbol="ETH/USDT"), 1_000)
    assert updates(out)[-1].status == OrderStatus.NEW and queue_ahead(v, "x") == 0.0
    assert v.book("ETH/USDT") is None and v.book(SYM) is None


def test_a_price_computed_by_arithmetic_finds_its_level():
    v, rows = make()
    v.on_market(book(1_000, ((0.3, 7.0),), ((0.4, 1.0),)))
    out = v.submit(order("b", BUY, 1.0, 0.1 + 0.2), 2_000)  # 0.30000000000000004
    assert updates(out)[-1].price == 0.3 and queue_ahead(v, "b") == 7.0
    v.submit(amend("b", price=0.25 + 0.05 + 1e-17, qty=0.5), 3_000)  # same level, qty down
    assert queue_ahead(v, "b") == 7.0
