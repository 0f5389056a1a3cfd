"""Matching engine: unit cases and hypothesis properties (conservation, no crossed book,
price-time priority, FOK all-or-nothing, IOC never rests, locks match open orders)."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.matching import MatchingEngine, Reject, SymbolSpec

SPEC = SymbolSpec(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size=D("0.5"),
                  step_size=D("0.1"), min_qty=D("0.1"), maker_fee=D("0.001"),
                  taker_fee=D("0.002"))  # fmt: skip
START = {"BTC": D(100), "USDT": D(100000)}


def engine() -> MatchingEngine:
    e = MatchingEngine([SPEC], clock=lambda: 1)
    for acct in ("mm", "alice", "bob"):
        for asset, amount in START.items():
            e.deposit(acct, asset, amount)
    return e


def test_limit_rests_then_trades_at_maker_price_with_fees():
    e = engine()
    r = e.place("mm", "BTCUSDT", Side.SELL, "1.0", "100", client_order_id="ask1")
    assert r.accepted and not r.fills and e.best_ask("BTCUSDT") == D(100)
    assert e.balance("mm", "BTC") == (D(99), D(1))
    r = e.place("alice", "BTCUSDT", Side.BUY, "0.4", "101")
    (f,) = r.fills
    assert (f.price, f.qty, f.maker_account, f.taker_account) == (D(100), D("0.4"), "mm", "alice")
    assert f.taker_fee == D("0.0008") and f.taker_fee_asset == "BTC"  # 0.4 * 0.002
    assert f.maker_fee == D("0.04") and f.maker_fee_asset == "USDT"  # 40 * 0.001
    assert e.balance("alice", "BTC") == (D("100.3992"), D(0))
    assert e.balance("alice", "USDT") == (D(99960), D(0))  # surplus lock (101-100)*0.4 released
    assert e.balance("mm", "USDT") == (D("100039.96"), D(0))
    assert e.balance("mm", "BTC") == (D(99), D("0.6"))
    assert [ev.exec_type for ev in r.events] == ["NEW", "TRADE", "TRADE"]
    assert r.events[-1].status == OrderStatus.FILLED and r.events[1].status == OrderStatus.PARTIALLY_FILLED


def test_price_time_priority_and_partial_fills():
    e = engine()
    a = e.place("mm", "BTCUSDT", Side.SELL, "1.0", "100").order_id
    b = e.place("bob", "BTCUSDT", Side.SELL, "1.0", "100").order_id
    c = e.place("mm", "BTCUSDT", Side.SELL, "1.0", "99.5").order_id
    r = e.place("alice", "BTCUSDT", Side.BUY, "2.5", "100")
    assert [(f.maker_order_id, f.qty) for f in r.fills] == [(c, D(1)), (a, D(1)), (b, D("0.5"))]
    assert e.depth("BTCUSDT")[1] == [(D(100), D("0.5"))]


def test_ioc_fok_market_post_only():
    e = engine()
    e.place("mm", "BTCUSDT", Side.SELL, "1.0", "100")
    r = e.place("alice", "BTCUSDT", Side.BUY, "2.0", "100", tif=TimeInForce.FOK)
    assert r.accepted and not r.fills and r.events[-1].status == OrderStatus.EXPIRED
    assert e.balance("alice", "USDT") == (START["USDT"], D(0))
    r = e.place("alice", "BTCUSDT", Side.BUY, "2.0", "100", tif=TimeInForce.IOC)
    assert sum(f.qty for f in r.fills) == 1 and r.events[-1].exec_type == "EXPIRED"
    assert not e.orders and e.best_bid("BTCUSDT") is None
    e.place("mm", "BTCUSDT", Side.BUY, "1.0", "99")
    r = e.place("alice", "BTCUSDT", Side.SELL, "0.5", "99", tif=TimeInForce.POST_ONLY)
    assert not r.accepted and r.code == Reject.WOULD_TAKE
    r = e.place("alice", "BTCUSDT", Side.SELL, "3.0", order_type=OrderType.MARKET)
    assert sum(f.qty for f in r.fills) == 1 and r.events[-1].status == OrderStatus.EXPIRED


def test_rejections():
    e = engine()
    cases = [
        (dict(symbol="ETHUSDT"), Reject.UNKNOWN_SYMBOL),
        (dict(qty="0.05"), Reject.INVALID_QTY),
        (dict(price="100.2"), Reject.INVALID_PRICE),
        (dict(qty="2000", price="100"), Reject.INSUFFICIENT_BALANCE),
        (dict(qty="0.1", price="0"), Reject.INVALID_PRICE),
    ]
    for kw, code in cases:
        args = dict(symbol="BTCUSDT", qty="1.0", price="100")
        args.update(kw)
        r = e.place("alice", args["symbol"], Side.BUY, args["qty"], args["price"])
        assert not r.accepted and r.code == code, (kw, r)
    e.place("alice", "BTCUSDT", Side.BUY, "1.0", "90", client_order_id="dup")
    r = e.place("alice", "BTCUSDT", Side.BUY, "1.0", "90", client_order_id="dup")
    assert r.code == Reject.DUPLICATE_CLIENT_ID
    assert e.cancel("alice", client_order_id="nope").code == Reject.UNKNOWN_ORDER
    assert e.cancel("bob", client_order_id="dup").code == Reject.UNKNOWN_ORDER  # not bob's
    r = e.cancel("alice", client_order_id="dup")
    assert r.accepted and r.events[0].status == OrderStatus.CANCELED
    assert e.balance("alice", "USDT") == (START["USDT"], D(0))


def test_amend_priority_rules():
    e = engine()
    a = e.place("mm", "BTCUSDT", Side.BUY, "1.0", "99").order_id
    b = e.place("bob", "BTCUSDT", Side.BUY, "1.0", "99").order_id
    assert e.amend("mm", order_id=a, new_qty="0.5").accepted  # decrease keeps priority
    assert e.balance("mm", "USDT")[1] == D("49.5")
    r = e.place("alice", "BTCUSDT", Side.SELL, "0.5", "99")
    assert [f.maker_order_id for f in r.fills] == [a]
    e.amend("bob", order_id=b, new_qty="2.0")  # increase loses priority
    c = e.place("mm", "BTCUSDT", Side.BUY, "1.0", "99").order_id
    e.amend("bob", order_id=b, new_price="98.5")
    e.amend("bob", order_id=b, new_price="99")  # price change: back of the queue
    r = e.place("alice", "BTCUSDT", Side.SELL, "1.5", "99")
    assert [f.maker_order_id for f in r.fills] == [c, b]
    r = e.amend("bob", order_id=b, new_price="101")  # crosses nothing: rests
    assert r.accepted and e.best_bid("BTCUSDT") == D(101)
    e.place("mm", "BTCUSDT", Side.SELL, "5.0", "102")
    r = e.amend("bob", order_id=b, new_price="102")  # now crosses: trades as taker
    assert r.fills and r.fills[0].taker_order_id == b
    assert e.amend("bob", order_id=b, new_qty="0.1").code in (Reject.INVALID_AMEND, Reject.UNKNOWN_ORDER)


# ----------------------------------------------------------------------------- properties

ACCOUNTS = ("mm", "alice", "bob")
prices = st.integers(min_value=197, max_value=203).map(lambda t: D(t) * SPEC.tick_size)
qtys = st.integers(min_value=1, max_value=30).map(lambda s: D(s) * SPEC.step_size)
place_op = st.tuples(
    st.just("place"), st.sampled_from(ACCOUNTS), st.sampled_from([Side.BUY, Side.SELL]),
    qtys, prices,
    st.sampled_from([(OrderType.LIMIT, TimeInForce.GTC)] * 4 + [
        (OrderType.LIMIT, TimeInForce.IOC), (OrderType.LIMIT, TimeInForce.FOK),
        (OrderType.LIMIT, TimeInForce.POST_ONLY), (OrderType.MARKET, TimeInForce.IOC)]),
)  # fmt: skip
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 50))
amend_op = st.tuples(st.just("amend"), st.integers(0, 50), st.one_of(st.none(), prices), st.one_of(st.none(), qtys))
ops = st.lists(st.one_of(place_op, place_op, place_op, cancel_op, amend_op), min_size=20, max_size=80)


def _queue(e: MatchingEngine, side: Side, limit):
    """Resting orders an incoming `side` order must consume, in price-time priority."""
    opp = Side.SELL if side == Side.BUY else Side.BUY
    book = e.books["BTCUSDT"]
    rest = [o for q in book.levels[opp].values() for o in q]
    if limit is not None:
        rest = [o for o in rest if (o.price <= limit if side == Side.BUY else o.price >= limit)]
    rest.sort(key=lambda o: ((o.price if side == Side.BUY else -o.price), o.seq))
    return [(o.order_id, o.remaining) for o in rest]


def _check_invariants(e: MatchingEngine) -> None:
    for asset, start in START.items():
        total = sum((e.balance(a, asset)[0] + e.balance(a, asset)[1] for a in ACCOUNTS), D(0))
        assert total + e.fees.get(asset, D(0)) == start * len(ACCOUNTS), asset
    expected_locks = {(a, s): D(0) for a in ACCOUNTS for s in START}
    for o in e.orders.values():
        assert o.tif in (TimeInForce.GTC, TimeInForce.POST_ONLY) and o.order_type == OrderType.LIMIT
        if o.side == Side.BUY:
            expected_locks[(o.account, "USDT")] += o.price * o.remaining
        else:
            expected_locks[(o.account, "BTC")] += o.remaining
        assert 0 < o.remaining <= o.qty
    for (a, s), lock in expected_locks.items():
        free, locked = e.balance(a, s)
        assert locked == lock, (a, s)
        assert free >= 0 and locked >= 0
    bid, ask = e.best_bid("BTCUSDT"), e.best_ask("BTCUSDT")
    assert bid is None or ask is None or bid < ask, "crossed resting book"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_properties_hold_over_random_sequences(seq):
    e = engine()
    for op in seq:
        if op[0] == "place":
            _, acct, side, qty, price, (otype, tif) = op
            limit = None if otype == OrderType.MARKET else price
            queue = _queue(e, side, limit)
            r = e.place(acct, "BTCUSDT", side, qty, limit, order_type=otype, tif=tif)
            if r.accepted:
                filled = sum((f.qty for f in r.fills), D(0))
                # price-time priority: fills consume the queue in order
                for i, f in enumerate(r.fills):
                    oid, rem = queue[i]
                    assert f.maker_order_id == oid
                    assert f.qty == min(rem, qty - sum((x.qty for x in r.fills[:i]), D(0)))
                if tif == TimeInForce.FOK:
                    assert filled in (D(0), qty)
                if tif in (TimeInForce.IOC, TimeInForce.FOK) or otype == OrderType.MARKET:
                    assert r.order_id not in e.orders, "IOC/FOK/market order rested"
                if tif == TimeInForce.POST_ONLY:
                    assert not r.fills
                prices_seen = [f.price for f in r.fills]
                assert prices_seen == sorted(prices_seen, reverse=side == Side.SELL)
        else:
            open_ids = sorted(e.orders)
            if not open_ids:
                continue
            o = e.orders[open_ids[op[1] % len(open_ids)]]
            if op[0] == "cancel":
                assert e.cancel(o.account, order_id=o.order_id).accepted
                assert o.order_id not in e.orders
            else:
                e.amend(o.account, order_id=o.order_id, new_price=op[2], new_qty=op[3])
        _check_invariants(e)
