"""Taker orders against the replayed book, post-only / IOC / FOK, balances, bad input:
hand-computed cases."""

from __future__ import annotations

import math

import pytest
from backtest.venue_helpers import EX, SYM, acks, book, cancel, delta, make, order, updates

from ttxt_mp.backtest.venue import BacktestVenue, FeeSchedule, VenueRules, default_rules
from ttxt_mp.connectors.venue import UnknownVenue
from ttxt_mp.events import OrderAction, OrderStatus, SetLeverage, Side, TimeInForce, Wallet

ASKS = ((101.0, 1.0), (102.0, 1.0), (103.0, 2.0))
BIDS = ((99.0, 1.0), (98.0, 2.0))


def ready(**kw):
    v, rows = make(**kw)
    assert v.on_market(book(1_000, BIDS, ASKS)) == []
    return v, rows


def test_market_buy_walks_the_book_at_the_vwap():
    v, rows = ready()
    out = v.submit(order("a", Side.BUY, 2.5), 2_000)
    ack, *rest = out
    assert ack.accepted and ack.action == OrderAction.CREATE and ack.order_id
    ups = updates(out)
    assert [u.status for u in ups] == [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED,
                                       OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert [(u.last_fill_price, u.last_fill_qty) for u in ups[1:]] == [
        (101.0, 1.0), (102.0, 1.0), (103.0, 0.5)]
    cost = 101 + 102 + 0.5 * 103  # 254.5
    assert ups[-1].avg_price == pytest.approx(cost / 2.5) == 101.8
    assert [f.fee for f in rows.fills] == pytest.approx([0.202, 0.204, 0.103])
    assert all(f.liquidity == "taker" and f.fee_asset == "USDT" for f in rows.fills)
    wallet = out[-1]
    assert isinstance(wallet, Wallet)
    assert v.balance("USDT") == (pytest.approx(10_000 - cost * 1.002), 0.0)
    assert v.balance("BTC") == (12.5, 0.0)
    assert {b.asset: (b.free, b.locked) for b in wallet.balances} == {
        "USDT": v.balance("USDT"), "BTC": v.balance("BTC")}


def test_market_sell_walks_the_bids_and_pays_the_fee_in_quote():
    v, rows = ready()
    v.submit(order("s", Side.SELL, 2.0), 2_000)
    assert [(f.price, f.qty) for f in rows.fills] == [(99.0, 1.0), (98.0, 1.0)]
    assert v.balance("BTC") == (8.0, 0.0)
    assert v.balance("USDT")[0] == pytest.approx(10_000 + 197 - 197 * 0.002)


def test_limit_buy_takes_within_its_limit_then_rests_with_the_lock_of_the_rest():
    v, rows = ready()
    out = v.submit(order("l", Side.BUY, 3.0, 102.0), 2_000)
    ups = updates(out)
    assert [(u.last_fill_price, u.last_fill_qty) for u in ups[1:]] == [(101.0, 1.0), (102.0, 1.0)]
    assert ups[-1].status == OrderStatus.PARTIALLY_FILLED and ups[-1].avg_price == 101.5
    # the remaining 1 rests at 102: locks 102 x 1 x (1 + maker fee 0.001)
    free, locked = v.balance("USDT")
    assert locked == pytest.approx(102 * 1.001)
    assert free == pytest.approx(10_000 - 203 * 1.002 - 102 * 1.001)
    assert [o.client_order_id for o in v.open_orders()] == ["l"]
    assert v.open_orders()[0].filled_qty == 2.0


def test_no_fill_across_a_missing_side_and_never_better_than_the_book():
    v, rows = make()
    v.on_market(book(1_000, BIDS, ()))  # no asks at all
    out = v.submit(order("m", Side.BUY, 1.0), 2_000)
    assert [u.status for u in updates(out)] == [OrderStatus.NEW, OrderStatus.EXPIRED]
    assert rows.fills == [] and v.balance("USDT") == (10_000.0, 0.0)
    # a limit buy below the asks does not trade; one above trades at the ask, not its limit
    v.on_market(delta(3_000, asks=ASKS))
    v.submit(order("below", Side.BUY, 1.0, 100.0), 4_000)
    assert rows.fills == []
    v.submit(order("above", Side.BUY, 1.0, 150.0), 5_000)
    assert [(f.price, f.qty) for f in rows.fills] == [(101.0, 1.0)]


def test_liquidity_taken_stays_taken_until_the_recording_updates_the_level():
    v, rows = ready()
    v.submit(order("a", Side.BUY, 1.0), 2_000)
    v.submit(order("b", Side.BUY, 1.0), 2_000)
    assert [f.price for f in rows.fills] == [101.0, 102.0]
    v.on_market(delta(3_000, asks=((101.0, 1.0),)))  # the level is restated: fresh liquidity
    v.submit(order("c", Side.BUY, 1.0), 4_000)
    assert rows.fills[-1].price == 101.0


def test_ioc_fills_what_it_can_and_expires_the_rest():
    v, rows = ready()
    out = v.submit(order("i", Side.BUY, 5.0, 102.0, tif=TimeInForce.IOC), 2_000)
    last = updates(out)[-1]
    assert last.status == OrderStatus.EXPIRED and last.filled_qty == 2.0
    assert v.open_orders() == [] and v.balance("USDT")[1] == 0.0


def test_fok_fills_completely_or_expires_untouched():
    v, rows = ready()
    out = v.submit(order("f", Side.BUY, 3.0, 102.0, tif=TimeInForce.FOK), 2_000)
    assert acks(out)[0].accepted
    assert [u.status for u in updates(out)] == [OrderStatus.NEW, OrderStatus.EXPIRED]
    assert rows.fills == [] and v.balance("USDT") == (10_000.0, 0.0)
    out = v.submit(order("g", Side.BUY, 3.0, 103.0, tif=TimeInForce.FOK), 3_000)
    assert updates(out)[-1].status == OrderStatus.FILLED
    assert sum(f.qty for f in rows.fills) == 3.0


@pytest.mark.parametrize("exchange, market, code, message", [
    ("binance", "spot", "-2010", "Order would immediately match and take."),
    ("binance", "linear", "-5022", "Due to the order could not be executed as maker"),
    ("coinbase", "spot", "WOULD_TAKE", "post-only order would immediately match and take"),
])  # fmt: skip
def test_post_only_that_would_trade_is_rejected_with_the_venues_code(exchange, market, code,
                                                                    message):  # fmt: skip
    symbol = "BTC/USDT:USDT" if market == "linear" else SYM
    v, rows = make({"USDT": 10_000.0}, exchange=exchange)
    v.on_market(book(1_000, BIDS, ASKS, symbol=symbol, exchange=exchange))
    out = v.submit(order("p", Side.BUY, 1.0, 101.0, tif=TimeInForce.POST_ONLY, symbol=symbol,
                         exchange=exchange), 2_000)  # fmt: skip
    assert len(out) == 1
    ack = out[0]
    assert not ack.accepted and ack.code == code and ack.message.startswith(message)
    assert rows.orders[-1].status == "REJECTED" and rows.fills == []
    assert v.balance("USDT") == (10_000.0, 0.0)
    # below the ask it rests
    out = v.submit(order("q", Side.BUY, 1.0, 100.0, tif=TimeInForce.POST_ONLY, symbol=symbol,
                         exchange=exchange), 3_000)  # fmt: skip
    assert acks(out)[0].accepted and updates(out)[-1].status == OrderStatus.NEW


def test_post_only_on_a_venue_that_cancels_it_is_accepted_then_canceled():
    v, rows = make({"USDT": 10_000.0}, exchange="bybit")
    v.on_market(book(1_000, BIDS, ASKS, exchange="bybit"))
    out = v.submit(order("p", Side.BUY, 1.0, 101.0, tif=TimeInForce.POST_ONLY,
                         exchange="bybit"), 2_000)  # fmt: skip
    assert acks(out)[0].accepted
    assert [u.status for u in updates(out)] == [OrderStatus.CANCELED]
    assert rows.fills == [] and v.balance("USDT") == (10_000.0, 0.0)


def test_insufficient_balance_is_a_rejected_ack_like_live():
    v, rows = ready(balances={"USDT": 100.0})
    out = v.submit(order("b", Side.BUY, 1.0, 100.0), 2_000)  # needs 100 x 1.002
    assert len(out) == 1 and not out[0].accepted
    assert (out[0].code, out[0].message) == ("-2010", "Account has insufficient balance for "
                                                      "requested action.")  # fmt: skip
    out = v.submit(order("s", Side.SELL, 0.5, 120.0), 2_000)  # no BTC at all
    assert not out[0].accepted and out[0].code == "-2010"
    assert [r.status for r in rows.orders] == ["REJECTED", "REJECTED"]
    assert "insufficient" in rows.orders[0].reason
    assert v.balance("USDT") == (100.0, 0.0) and v.open_orders() == []
    out = v.submit(order("m", Side.BUY, 1.0), 2_000)  # market: 101 x 1.002 > 100
    assert not out[0].accepted


@pytest.mark.parametrize("cmd, code", [
    (order("z", Side.BUY, 0.0, 100.0), "-1013"),
    (order("z", Side.BUY, -1.0, 100.0), "-1013"),
    (order("z", Side.BUY, math.nan, 100.0), "-1013"),
    (order("z", Side.BUY, 1.0, -5.0), "-1013"),
    (order("z", Side.BUY, 1.0, math.inf), "-1013"),
    (order("z", Side.BUY, 1.0, 100.0, symbol="BTCUSDT"), "UNKNOWN_SYMBOL"),
    (order("z", Side.BUY, 1.0, 0.0, tif=TimeInForce.POST_ONLY), "-1013"),
    (cancel("nope"), "-2011"),
    (SetLeverage(exchange=EX, symbol=SYM, client_order_id="lev", leverage=5), "NOT_CONTRACT"),
])  # fmt: skip
def test_bad_commands_get_a_rejected_ack_with_a_one_line_reason(cmd, code):
    v, rows = ready()
    out = v.submit(cmd, 2_000)
    assert len(out) == 1 and not out[0].accepted and out[0].code == code
    assert out[0].message and "\n" not in out[0].message
    assert v.balance("USDT") == (10_000.0, 0.0)


def test_a_duplicate_client_order_id_is_rejected():
    v, rows = ready()
    assert v.submit(order("d", Side.BUY, 1.0, 90.0), 2_000)[0].accepted
    out = v.submit(order("d", Side.BUY, 1.0, 91.0), 3_000)
    assert not out[0].accepted and out[0].message == "Duplicate order sent."


def test_bad_construction_is_a_clear_error():
    with pytest.raises(ValueError, match="taker fee must be a fraction"):
        make(fees=FeeSchedule(maker=0.0, taker=1.5))
    with pytest.raises(ValueError, match="balance of 'USDT' must be a finite number >= 0"):
        make({"USDT": -1.0})
    with pytest.raises(ValueError, match="price_amend must be one of"):
        VenueRules(price_amend="sometimes")
    with pytest.raises(UnknownVenue, match="unknown exchange 'nowhere'"):
        default_rules("nowhere")
    with pytest.raises(LookupError, match="not 'inverse'"):
        default_rules("binance", "inverse")
    with pytest.raises(TypeError, match="not a command"):
        make()[0].submit(book(1, BIDS, ASKS), 1)


def test_rules_come_from_the_venue_package():
    assert default_rules("binance").price_amend == "cancel_replace"
    assert default_rules("binance", "linear").price_amend == "in_place"
    assert default_rules("bybit").post_only_cancel
    assert default_rules("kraken") == VenueRules()  # declares none: the generic rules
    v = BacktestVenue("bybit", fees=FeeSchedule(0, 0), rules=default_rules("bybit"),
                      balances={}, sink=[])  # fmt: skip
    assert v.contract_rules == default_rules("bybit", "linear")


def test_events_are_real_private_events_stamped_with_the_venue_time():
    v, rows = ready()
    out = v.submit(order("a", Side.BUY, 1.5, 102.0), 2_000)
    assert all(e.exch_ts == 2_000 and e.exchange == EX for e in out)
    assert all(r.ts in (1_000, 2_000) for r in rows)
    u = updates(out)[-1]
    assert (u.filled_qty, u.avg_price, u.fee_asset, u.trade_id) == (1.5, (101 + 51) / 1.5,
                                                                    "USDT", "2")  # fmt: skip


def test_rejected_orders_take_no_order_id():
    v, rows = ready(balances={"USDT": 150.0})
    v.submit(order("x", Side.BUY, 1.0, 101.0, tif=TimeInForce.POST_ONLY), 2_000)
    v.submit(order("y", Side.BUY, 5.0, 100.0), 2_000)
    assert [(r.status, r.order_id) for r in rows.orders] == [("REJECTED", ""), ("REJECTED", "")]
    assert v.submit(order("z", Side.BUY, 1.0, 100.0), 3_000)[0].order_id == "1"


def test_other_market_events_are_ignored():
    from ttxt_mp.events import BookTicker, Kline, OpenInterest

    v, rows = ready()
    v.submit(order("b", Side.BUY, 1.0, 99.0), 2_000)
    def state():
        return list(rows), v.balance("USDT"), [(o.order_id, o.qty) for o in v.open_orders()]

    before = state()
    for ev in (Kline(exchange=EX, symbol=SYM, exch_ts=3_000, close=50.0),
               BookTicker(exchange=EX, symbol=SYM, exch_ts=3_000, bid=200.0, ask=201.0),
               OpenInterest(exchange=EX, symbol=SYM, exch_ts=3_000)):  # fmt: skip
        assert v.on_market(ev) == []
    assert state() == before
    assert v.book(SYM).best_bid == (99.0, 1.0)


def test_local_time_stands_in_when_the_venue_sent_none():
    v, rows = make()
    v.on_market(book(0, BIDS, ASKS).__class__(exchange=EX, symbol=SYM, exch_ts=0,
                                              local_ts=777, is_snapshot=True, bids=BIDS,
                                              asks=ASKS))  # fmt: skip
    assert rows.balances[0].ts == 777


def test_every_installed_venue_and_market_has_rules():
    from ttxt_mp.connectors.venue import venues

    for vid, spec in venues().items():
        for market in spec.markets:
            assert isinstance(default_rules(vid, market), VenueRules)


def test_a_backtest_target_that_is_no_venue_rules_is_refused(monkeypatch):
    import msgspec

    from ttxt_mp.connectors import venue as registry

    found = dict(registry.venues())
    found["binance"] = msgspec.structs.replace(found["binance"],
                                               backtest="ttxt_mp.backtest.rules:FeeSchedule")
    monkeypatch.setattr(registry, "venues", lambda: found)
    with pytest.raises(TypeError, match="backtest names a StructMeta, not a VenueRules"):
        default_rules("binance")
