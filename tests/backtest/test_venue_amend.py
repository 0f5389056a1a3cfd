"""Amends per venue rules: cancel-replace on a price change where the venue does that, in
place elsewhere; a quantity decrease keeps the queue place; rejections."""

from __future__ import annotations

import math

import pytest
from backtest.venue_helpers import amend, book, make, order, queue_ahead, trades, updates

from ttxt_mp.backtest.rules import VenueRules
from ttxt_mp.events import OrderAction, OrderStatus, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
BIDS = ((100.0, 5.0), (99.0, 4.0))
ASKS = ((101.0, 2.0), (102.0, 3.0))


def resting(exchange="binance", **kw):
    v, rows = make(exchange=exchange, **kw)
    v.on_market(book(1_000, BIDS, ASKS, exchange=exchange))
    v.submit(order("b", BUY, 3.0, 100.0, exchange=exchange), 2_000)
    v.on_market(trades(2_500, (100.0, 6.0, SELL), exchange=exchange))  # 5 ahead, 1 filled
    assert queue_ahead(v, "b") == 0.0 and v.open_orders()[0].filled_qty == 1.0
    return v, rows


def test_quantity_decrease_keeps_the_queue_place_and_the_order_id():
    v, rows = make()
    v.on_market(book(1_000, BIDS, ASKS))
    v.submit(order("b", BUY, 3.0, 100.0), 2_000)
    assert queue_ahead(v, "b") == 5.0
    before = v.open_orders()[0]
    out = v.submit(amend("b", qty=1.0), 3_000)
    ack = out[0]
    assert ack.accepted and ack.action == OrderAction.AMEND and ack.order_id == before.order_id
    u = updates(out)[-1]
    assert (u.order_id, u.qty, u.status) == (before.order_id, 1.0, OrderStatus.NEW)
    assert queue_ahead(v, "b") == 5.0
    assert v.balance("USDT")[1] == pytest.approx(100 * 1.001)
    assert rows.orders[-1].reason == "amended"


def test_price_amend_on_a_cancel_replace_venue_is_a_new_order_at_the_back():
    v, rows = resting("binance")
    old = v.open_orders()[0]
    out = v.submit(amend("b", price=99.0), 3_000)
    ack = out[0]
    assert ack.accepted and ack.order_id != old.order_id
    ups = updates(out)
    assert [(u.order_id, u.status) for u in ups] == [(old.order_id, OrderStatus.CANCELED),
                                                     (ack.order_id, OrderStatus.NEW)]
    new = v.open_orders()[0]
    # the replacement carries the remaining 2 (3 - 1 filled), same client id, nothing filled
    assert (new.client_order_id, new.qty, new.filled_qty, new.price) == ("b", 2.0, 0.0, 99.0)
    assert queue_ahead(v, "b") == 4.0  # behind what is visible at 99
    assert v.balance("USDT")[1] == pytest.approx(99 * 2 * 1.001)


def test_price_amend_in_place_keeps_the_order_and_moves_it_to_the_back():
    v, rows = resting("bybit")
    old = v.open_orders()[0]
    out = v.submit(amend("b", price=99.0, exchange="bybit"), 3_000)
    assert out[0].accepted and out[0].order_id == old.order_id
    u = updates(out)[-1]
    assert (u.order_id, u.price, u.qty, u.filled_qty) == (old.order_id, 99.0, 3.0, 1.0)
    assert queue_ahead(v, "b") == 4.0


def test_quantity_increase_loses_priority():
    v, rows = make(rules=VenueRules(price_amend="in_place"))
    v.on_market(book(1_000, BIDS, ASKS))
    v.submit(order("b", BUY, 3.0, 100.0), 2_000)
    v.on_market(trades(2_500, (100.0, 4.0, SELL)))
    assert queue_ahead(v, "b") == 1.0
    v.on_market(book(2_600, ((100.0, 8.0),), ASKS))  # 7 more arrived behind us
    assert v.submit(amend("b", qty=4.0), 3_000)[0].accepted
    assert queue_ahead(v, "b") == 8.0


def test_amend_that_crosses_takes_liquidity_like_a_new_order():
    v, rows = resting("bybit")
    v.submit(amend("b", price=101.0, exchange="bybit"), 3_000)  # takes the 2 at 101
    assert [(f.price, f.qty, f.liquidity) for f in rows.fills][-1] == (101.0, 2.0, "taker")
    assert v.open_orders() == [] and v.balance("USDT")[1] == 0.0


def test_post_only_amend_that_would_cross_is_rejected_and_the_order_stays():
    v, rows = make()
    v.on_market(book(1_000, BIDS, ASKS))
    v.submit(order("p", BUY, 1.0, 100.0, tif=TimeInForce.POST_ONLY), 2_000)
    out = v.submit(amend("p", price=101.0), 3_000)
    assert not out[0].accepted and out[0].code == "-2010"
    o = v.open_orders()[0]
    assert (o.price, o.status) == (100.0, OrderStatus.NEW) and queue_ahead(v, "p") == 5.0


@pytest.mark.parametrize("exchange, code", [("binance", "-2010"), ("bybit", "170131")])
def test_amend_without_the_funds_is_rejected_and_the_order_stays(exchange, code):
    v, rows = make({"USDT": 120.0}, exchange=exchange)
    v.on_market(book(1_000, BIDS, ASKS, exchange=exchange))
    v.submit(order("b", BUY, 1.0, 100.0, exchange=exchange), 2_000)
    out = v.submit(amend("b", price=99.0, qty=2.0, exchange=exchange), 3_000)
    assert not out[0].accepted and out[0].code == code
    o = v.open_orders()[0]
    assert (o.price, o.qty) == (100.0, 1.0) and queue_ahead(v, "b") == 5.0
    assert v.balance("USDT") == (pytest.approx(120 - 100.1), pytest.approx(100.1))


@pytest.mark.parametrize("cmd, code", [
    (amend("b", qty=1.0), "INVALID_AMEND"),  # not above the filled 1
    (amend("b", qty=0.5), "INVALID_AMEND"),
    (amend("b", price=-1.0), "INVALID_AMEND"),
    (amend("b", qty=math.nan), "INVALID_AMEND"),
    (amend("b", price=math.inf), "INVALID_AMEND"),
    (amend("b"), "INVALID_AMEND"),  # nothing to change
    (amend("zzz", price=99.0), "-2011"),
])  # fmt: skip
def test_bad_amends_are_rejected(cmd, code):
    v, rows = resting("binance")
    out = v.submit(cmd, 3_000)
    assert len(out) == 1 and not out[0].accepted and out[0].code == code
    assert v.open_orders()[0].price == 100.0


def test_bybit_amend_below_filled_uses_its_code():
    v, rows = resting("bybit")
    out = v.submit(amend("b", qty=1.0, exchange="bybit"), 3_000)
    assert not out[0].accepted and out[0].code == "170313"
