"""Property: for any sequence of book updates, trades and orders, the account reconciles
with the fills: every asset's balance change equals the fills' cash flows minus fees (plus
funding), no free balance goes negative (spot), locked funds equal what the open orders
need, the rows tell the same story as the events, and two runs give identical rows."""

from __future__ import annotations

from collections import defaultdict

import pytest
from backtest.venue_helpers import PERP, SYM, amend, book, cancel, make, mark, order, trades
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp.backtest.venue import FeeSchedule
from ttxt_mp.events import OrderUpdate, Side, TimeInForce, Wallet

PRICES = st.sampled_from([95.0 + 0.5 * i for i in range(21)])
QTYS = st.sampled_from([0.5, 1.0, 1.5, 2.5, 4.0])
LEVEL_QTYS = st.sampled_from([0.0, 0.5, 1.0, 2.5, 7.0])
SIDES = st.sampled_from([Side.BUY, Side.SELL])
TIFS = st.sampled_from(list(TimeInForce))
LEVELS = st.lists(st.tuples(PRICES, LEVEL_QTYS), max_size=5)

TRADES = st.tuples(st.just("trades"), st.lists(st.tuples(PRICES, QTYS, SIDES), min_size=1,
                                               max_size=3))  # fmt: skip
LIMIT = st.tuples(st.just("create"), SIDES, QTYS, PRICES,
                  st.sampled_from([TimeInForce.GTC, TimeInForce.POST_ONLY]), st.booleans())
ACTIONS = st.one_of(  # resting orders and trades weigh more: they make the maker fills
    LIMIT, TRADES, LIMIT, TRADES,
    st.tuples(st.just("book"), LEVELS, LEVELS, st.booleans()),
    st.tuples(st.just("create"), SIDES, QTYS, st.one_of(st.just(0.0), PRICES), TIFS,
              st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("amend"), st.integers(0, 9), st.one_of(st.just(0.0), PRICES),
              st.sampled_from([0.0, 0.5, 1.0, 3.0])),
    st.tuples(st.just("mark"), PRICES, st.sampled_from([-0.001, 0.0, 0.0005]),
              st.integers(1, 3)),
)  # fmt: skip
FEE_CHOICES = st.sampled_from([FeeSchedule(0.001, 0.002), FeeSchedule(-0.0001, 0.0004),
                               FeeSchedule(0.0, 0.0)])  # fmt: skip
VENUES = st.sampled_from(["binance", "bybit", "kraken"])
START = {"USDT": 1_000.0, "BTC": 5.0}


def run(exchange, fees, actions, symbol, check):
    """Replay ``actions`` on a fresh venue; ``check(venue, rows, out)`` after each."""
    v, rows = make(dict(START), fees=fees, exchange=exchange)
    v.on_market(book(1, ((99.0, 2.0),), ((101.0, 2.0),), symbol=symbol, exchange=exchange))
    kw = {"symbol": symbol, "exchange": exchange}
    cids: list[str] = []
    funding_at = 0
    due: tuple[int, float] | None = None  # the announced funding (time, rate)
    last_mark = 0.0
    paid = 0.0  # funding as the spec computes it: -size x mark x rate at the time
    for n, a in enumerate(actions):
        ts = 10 * (n + 1)
        kind = a[0]
        if due is not None and ts >= due[0]:
            size = rows.positions[-1].size if rows.positions else 0.0
            paid += round(-size * last_mark * due[1], 8)
            due = None
        if kind == "book":
            out = v.on_market(book(ts, a[1], a[2], snapshot=a[3], **kw))
        elif kind == "trades":
            out = v.on_market(trades(ts, *a[1], **kw))
            # our maker fills never exceed what the recording traded
            filled = sum(e.last_fill_qty for e in out if isinstance(e, OrderUpdate))
            assert filled <= sum(q for _, q, _ in a[1]) + 1e-9
        elif kind == "create":
            cid = f"c{n}"
            cids.append(cid)
            out = v.submit(order(cid, a[1], a[2], a[3], tif=a[4], reduce_only=a[5], **kw), ts)
        elif kind == "cancel":
            out = v.submit(cancel(cids[a[1] % len(cids)] if cids else "none", **kw), ts)
        elif kind == "amend":
            out = v.submit(amend(cids[a[1] % len(cids)] if cids else "none", a[2], a[3], **kw), ts)
        else:
            funding_at = max(funding_at, ts) + 10 * a[3]
            out = v.on_market(mark(ts, a[1], a[2], funding_at, **kw))
            last_mark = a[1]
            if symbol == PERP:
                due = (funding_at, a[2])
        check(v, rows, out, paid)
    return v, rows


def check_common(v, rows, out, paid=0.0):
    stamps = [r.ts for r in rows]
    assert stamps == sorted(stamps)  # rows come in simulated-time order
    for e in out:
        if isinstance(e, Wallet):  # what the events say is the account
            for b in e.balances:
                assert (b.free, b.locked) == v.balance(b.asset)
    last = {}
    for r in rows.balances:  # ... and the rows say the same
        last[r.asset] = (r.free, r.locked)
    for asset, state in last.items():
        assert state == v.balance(asset)
    filled = defaultdict(float)
    for f in rows.fills:
        filled[f.order_id] += f.qty
    final = {r.order_id: r.filled_qty for r in rows.orders}
    for oid, qty in filled.items():
        assert final[oid] == pytest.approx(qty)


def check_spot(v, rows, out, paid=0.0):
    check_common(v, rows, out)
    flows = {a: 0.0 for a in START}
    for f in rows.fills:
        sign = 1 if f.side == "BUY" else -1
        flows["BTC"] += sign * f.qty
        flows["USDT"] -= sign * f.price * f.qty + f.fee
    for asset, start in START.items():
        free, locked = v.balance(asset)
        assert free >= -1e-9, f"negative free {asset}"
        assert free + locked - start == pytest.approx(flows[asset], abs=1e-7)
    rest_fee = max(v.fees.maker, 0.0)
    need = {"USDT": 0.0, "BTC": 0.0}
    for o in v.open_orders():
        rem = o.qty - o.filled_qty
        if o.side == Side.BUY:
            need["USDT"] += o.price * rem * (1 + rest_fee)
        else:
            need["BTC"] += rem
    for asset, amount in need.items():
        assert v.balance(asset)[1] == pytest.approx(amount, abs=1e-7)


def check_contract(v, rows, out, paid):
    check_common(v, rows, out)
    cash = fees = 0.0
    for f in rows.fills:
        cash -= (1 if f.side == "BUY" else -1) * f.price * f.qty
        fees += f.fee
    pos = rows.positions[-1] if rows.positions else None
    size, entry = (pos.size, pos.entry_price) if pos else (0.0, 0.0)
    funding = pos.funding if pos else 0.0
    assert funding == pytest.approx(paid, abs=1e-9)
    free, locked = v.balance("USDT")
    # realized PnL = trade cash + what the open position cost (size x entry)
    assert free + locked - START["USDT"] == pytest.approx(cash + size * entry - fees + funding,
                                                          abs=1e-6)  # fmt: skip
    assert locked >= -1e-9
    # locked = what the open orders hold + the position margin |size| x entry / leverage
    held = sum(o.lock for o in v._orders.values())
    margin = abs(size) * entry / 10  # the default leverage: these runs never change it
    assert locked == pytest.approx(float(held) + margin, abs=1e-6)
    assert v.balance("BTC") == (START["BTC"], 0.0)  # a contract never touches the base


SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@SETTINGS
@given(exchange=VENUES, fees=FEE_CHOICES, actions=st.lists(ACTIONS, min_size=3, max_size=40))
def test_spot_account_reconciles_with_the_fills(exchange, fees, actions):
    run(exchange, fees, actions, SYM, check_spot)


@SETTINGS
@given(exchange=VENUES, fees=FEE_CHOICES, actions=st.lists(ACTIONS, min_size=3, max_size=40))
def test_contract_account_reconciles_with_fills_fees_and_funding(exchange, fees, actions):
    run(exchange, fees, actions, PERP, check_contract)


@settings(max_examples=30, deadline=None)
@given(exchange=VENUES, fees=FEE_CHOICES, actions=st.lists(ACTIONS, max_size=30),
       symbol=st.sampled_from([SYM, PERP]))  # fmt: skip
def test_same_input_same_rows(exchange, fees, actions, symbol):
    def nothing(*_):
        pass

    a = run(exchange, fees, actions, symbol, nothing)[1]
    b = run(exchange, fees, actions, symbol, nothing)[1]
    assert a == b
