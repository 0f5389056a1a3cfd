"""Fees, contracts (positions, leverage, realized PnL, margin), funding and marking to
market: arithmetic done by hand."""

from __future__ import annotations

import pytest
from backtest.venue_helpers import PERP, SYM, acks, book, make, mark, order, trades, updates

from ttxt_mp.backtest.venue import FeeSchedule
from ttxt_mp.events import OrderStatus, PositionUpdate, SetLeverage, Side, Wallet

BUY, SELL = Side.BUY, Side.SELL
PERP_FEES = FeeSchedule(maker=0.0002, taker=0.0005)


def perp_venue(fees=PERP_FEES, usdt=1_000.0):
    v, rows = make({"USDT": usdt}, fees=fees)
    v.on_market(book(1_000, ((99.0, 5.0),), ((100.0, 5.0), (101.0, 5.0)), symbol=PERP))
    return v, rows


def test_maker_rebate_is_a_negative_fee_credited():
    v, rows = make({"USDT": 1_000.0}, fees=FeeSchedule(maker=-0.0001, taker=0.0004))
    v.on_market(book(1_000, ((100.0, 1.0),), ((101.0, 1.0),)))
    v.submit(order("b", BUY, 2.0, 100.0), 2_000)
    # a rebate never needs locking: 200 locked, not 200 x (1 - 0.0001)
    assert v.balance("USDT") == (800.0, 200.0)
    v.on_market(trades(3_000, (100.0, 3.0, SELL)))
    assert rows.fills[-1].fee == pytest.approx(-0.02)
    assert v.balance("USDT") == (pytest.approx(800.02), 0.0)
    assert v.balance("BTC") == (2.0, 0.0)


def test_contract_round_trip_realizes_pnl_and_pays_fees_in_the_settle_asset():
    v, rows = perp_venue()
    out = v.submit(order("o", BUY, 2.0, symbol=PERP), 2_000)  # takes 2 at 100
    # fee 200 x 0.0005 = 0.1; margin 200 / 10x = 20 locked
    assert v.balance("USDT") == (pytest.approx(1_000 - 0.1 - 20), pytest.approx(20.0))
    pos = [e for e in out if isinstance(e, PositionUpdate)]
    assert len(pos) == 1 and (pos[0].size, pos[0].entry_price, pos[0].leverage) == (2.0, 100.0, 10.0)
    assert isinstance(out[-2], Wallet)  # OrderAck, updates..., Wallet, PositionUpdate
    assert rows.positions[-1].size == 2.0 and rows.fills[-1].fee_asset == "USDT"
    v.on_market(book(3_000, ((110.0, 5.0),), ((111.0, 5.0),), symbol=PERP))
    v.submit(order("c", SELL, 2.0, symbol=PERP), 4_000)  # closes at 110: +20, fee 0.11
    assert v.balance("USDT") == (pytest.approx(1_000 - 0.1 + 20 - 0.11), 0.0)
    assert rows.positions[-1].size == 0.0 and rows.positions[-1].realized_pnl == 20.0
    eq = v.mark_to_market(5_000, PERP, "USDT")
    assert (eq.realized_pnl, eq.fees, eq.position) == (20.0, pytest.approx(0.21), 0.0)
    assert eq.equity == pytest.approx(1_019.79)


def test_short_flip_and_partial_close():
    v, rows = perp_venue(fees=FeeSchedule(0.0, 0.0))
    v.on_market(trades(1_500, (99.0, 1.0, SELL)))
    v.submit(order("s", SELL, 3.0, symbol=PERP), 2_000)  # short 3 at 99 (5 bid)
    assert rows.positions[-1].size == -3.0 and rows.positions[-1].entry_price == 99.0
    v.submit(order("b", BUY, 4.0, symbol=PERP), 3_000)  # 4 at 100: closes 3 (-3), long 1
    p = rows.positions[-1]
    assert (p.size, p.entry_price, p.realized_pnl) == (1.0, 100.0, -3.0)
    assert v.balance("USDT") == (pytest.approx(1_000 - 3 - 10), pytest.approx(10.0))


def test_funding_at_the_recorded_time_with_the_announced_rate_and_last_mark():
    v, rows = perp_venue(fees=FeeSchedule(0.0, 0.0))
    v.submit(order("o", BUY, 2.0, symbol=PERP), 2_000)  # long 2 at 100
    free = v.balance("USDT")[0]
    v.on_market(mark(3_000, 104.0, 0.0002, next_ts=10_000))
    v.on_market(mark(9_000, 105.0, 0.0001, next_ts=10_000))  # the rate announced last
    assert v.balance("USDT")[0] == free  # not yet
    out = v.on_market(mark(10_500, 106.0, 0.0003, next_ts=20_000))
    paid = -2 * 105.0 * 0.0001  # -size x mark x rate: a long pays a positive rate
    assert v.balance("USDT")[0] == pytest.approx(free + paid)
    row = [r for r in rows.balances if r.reason == "funding"][-1]
    assert row.ts == 10_500 and row.free == pytest.approx(free + paid)  # applied at 10_500
    assert rows.positions[-1].funding == pytest.approx(paid) and rows.positions[-1].ts == 10_500
    assert [r.ts for r in rows] == sorted(r.ts for r in rows)
    assert any(isinstance(e, Wallet) for e in out) and any(isinstance(e, PositionUpdate) for e in out)
    eq = v.mark_to_market(11_000, PERP, "USDT")
    assert eq.funding == pytest.approx(paid)
    # the next funding time passes with a short position: a positive rate is received
    v.submit(order("s", SELL, 3.0, symbol=PERP), 12_000)  # at 99: short 1
    free = v.balance("USDT")[0]
    v.on_market(book(20_000, ((99.0, 5.0),), ((100.0, 5.0),), symbol=PERP))  # any event
    assert v.balance("USDT")[0] == pytest.approx(free + 1 * 106.0 * 0.0003)


def test_funding_without_a_position_pays_nothing_and_spot_has_none():
    v, rows = perp_venue()
    v.on_market(mark(3_000, 104.0, 0.01, next_ts=4_000))
    v.on_market(mark(5_000, 104.0, 0.01, next_ts=8_000))
    assert v.balance("USDT") == (1_000.0, 0.0)
    assert not [r for r in rows.balances if r.reason == "funding"]
    v.on_market(mark(5_000, 104.0, 0.01, next_ts=8_000, symbol=SYM))  # spot: ignored
    assert v._funding.keys() == {PERP}


def test_leverage_changes_the_margin_and_is_checked():
    v, rows = perp_venue(fees=FeeSchedule(0.0, 0.0))
    v.submit(order("o", BUY, 2.0, symbol=PERP), 2_000)  # 20 margin at 10x
    out = v.submit(SetLeverage(exchange="binance", symbol=PERP, client_order_id="l",
                               leverage=4), 3_000)  # fmt: skip
    assert acks(out)[0].accepted and v.balance("USDT") == (950.0, 50.0)
    assert [e for e in out if isinstance(e, PositionUpdate)][0].leverage == 4.0
    bad = v.submit(SetLeverage(exchange="binance", symbol=PERP, client_order_id="l2",
                               leverage=500), 4_000)  # fmt: skip
    assert not bad[0].accepted and bad[0].code == "-4028"
    poor, _ = perp_venue(usdt=30.0, fees=FeeSchedule(0.0, 0.0))
    poor.submit(order("o", BUY, 2.0, symbol=PERP), 2_000)  # 20 margin, 10 free
    bad = poor.submit(SetLeverage(exchange="binance", symbol=PERP, client_order_id="l",
                                  leverage=1), 3_000)  # 200 margin needed  # fmt: skip
    assert not bad[0].accepted and bad[0].code == "-2019"


def test_contract_margin_insufficient_and_reduce_only():
    v, rows = perp_venue(usdt=10.0)
    out = v.submit(order("o", BUY, 2.0, 99.0, symbol=PERP), 2_000)  # 19.8 margin > 10
    assert not out[0].accepted and (out[0].code, out[0].message) == ("-2019",
                                                                     "Margin is insufficient.")
    out = v.submit(order("r", SELL, 1.0, symbol=PERP, reduce_only=True), 2_000)
    assert not out[0].accepted and out[0].code == "-2022"
    v2, rows2 = perp_venue(fees=FeeSchedule(0.0, 0.0))
    v2.submit(order("o", BUY, 1.0, symbol=PERP), 2_000)
    out = v2.submit(order("r", SELL, 3.0, symbol=PERP, reduce_only=True), 3_000)
    assert updates(out)[-1].status == OrderStatus.EXPIRED and updates(out)[-1].filled_qty == 1.0
    assert rows2.positions[-1].size == 0.0 and v2.balance("USDT") == (pytest.approx(999.0), 0.0)


def test_resting_contract_order_locks_margin_and_fills_as_maker():
    v, rows = perp_venue()
    v.submit(order("b", BUY, 1.0, 98.0, symbol=PERP), 2_000)
    assert v.balance("USDT") == (pytest.approx(990.2), pytest.approx(9.8))
    v.on_market(trades(3_000, (97.0, 1.0, SELL), symbol=PERP))
    # maker fee 98 x 0.0002; the order margin 9.8 becomes the position margin 9.8
    assert v.balance("USDT") == (pytest.approx(990.2 - 0.0196), pytest.approx(9.8))
    assert rows.fills[-1].liquidity == "maker" and rows.positions[-1].entry_price == 98.0


def test_mark_to_market_values_spot_balances_at_the_mid():
    v, rows = make({"USDT": 1_000.0, "BTC": 1.0, "DOGE": 5.0}, fees=FeeSchedule(0.0, 0.001))
    v.on_market(book(1_000, ((99.0, 5.0),), ((101.0, 5.0),)))
    v.submit(order("b", BUY, 1.0), 2_000)  # 101 + 0.101 fee
    eq = v.mark_to_market(3_000, SYM, "USDT")
    # 1000 - 101.101 + 2 BTC x 100 (DOGE has no book: 0); bought 1 at 101, mid 100: -1
    assert eq.equity == pytest.approx(1_098.899)
    assert (eq.unrealized_pnl, eq.position, eq.mid, eq.fees) == (-1.0, 1.0, 100.0,
                                                                 pytest.approx(0.101))  # fmt: skip
    assert eq.realized_pnl == 0.0 and (eq.symbol, eq.quote, eq.ts) == (SYM, "USDT", 3_000)


def test_wallet_and_positions_queries():
    v, rows = perp_venue(fees=FeeSchedule(0.0, 0.0))
    assert v.positions() == []
    v.submit(order("o", BUY, 2.0, symbol=PERP), 2_000)
    w = v.wallet()
    assert [(b.asset, b.free, b.locked) for b in w.balances] == [("USDT", 980.0, 20.0)]
    (p,) = v.positions()
    assert (p.symbol, p.size, p.entry_price, p.exch_ts) == (PERP, 2.0, 100.0, 2_000)
    assert p.unrealized_pnl == pytest.approx(2 * (99.5 - 100))  # at the mid: no mark yet
    v.on_market(mark(3_000, 103.0))
    assert v.positions()[0].unrealized_pnl == pytest.approx(6.0)


def test_a_resting_reduce_only_order_never_flips_the_position():
    v, rows = perp_venue(fees=FeeSchedule(0.0, 0.0))
    v.submit(order("o", BUY, 1.0, symbol=PERP), 2_000)  # long 1 at 100
    v.submit(order("r", SELL, 3.0, 105.0, symbol=PERP, reduce_only=True), 3_000)
    assert v.balance("USDT") == (990.0, 10.0)  # a reduce-only order locks no margin
    v.on_market(trades(4_000, (106.0, 5.0, BUY), symbol=PERP))
    assert rows.positions[-1].size == 0.0 and rows.fills[-1].qty == 1.0
    out = v.on_market(trades(5_000, (106.0, 5.0, BUY), symbol=PERP))
    assert updates(out)[-1].status == OrderStatus.EXPIRED and v.open_orders() == []
    assert rows.positions[-1].size == 0.0 and v.balance("USDT") == (1_005.0, 0.0)
