"""Linear contracts in the matching engine: positions, realized PnL, fees and margin in the
settle asset, reduce-only, leverage and margin mode, funding; hypothesis: the wallet
balance moves by exactly realized PnL - fees + funding, the position is the sum of the
signed fills, and ``locked`` is the order margin plus the position margin."""

from __future__ import annotations

from decimal import Context, localcontext
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.contracts import position_margin
from ttxt_mp.sim.matching import MatchingEngine, Reject, SymbolSpec

SPEC = SymbolSpec(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size=D("0.5"),
                  step_size=D("0.1"), maker_fee=D("0.0002"), taker_fee=D("0.0005"),
                  settle="USDT", max_leverage=D(50))  # fmt: skip
START = D(100000)


def engine() -> MatchingEngine:
    e = MatchingEngine([SPEC], clock=lambda: 1)
    for acct in ("mm", "alice", "bob"):
        e.deposit(acct, "USDT", START)
    return e


def total(e: MatchingEngine, acct: str) -> D:
    free, locked = e.balance(acct, "USDT")
    return free + locked


def test_open_add_close_realizes_pnl_and_charges_fees_in_usdt():
    e = engine()
    e.place("mm", "BTCUSDT", Side.SELL, "2", "100")
    r = e.place("alice", "BTCUSDT", Side.BUY, "1", "100", tif=TimeInForce.IOC)
    (f,) = r.fills
    assert f.taker_fee == D("0.05") and f.taker_fee_asset == "USDT"  # 100 * 0.0005
    assert f.maker_fee == D("0.02") and f.maker_fee_asset == "USDT"
    p = e.contracts.position("alice", "BTCUSDT")
    assert (p.size, p.entry, p.leverage, p.margin) == (D(1), D(100), D(10), D(10))
    assert e.balance("alice", "USDT") == (START - D("0.05") - 10, D(10))
    e.place("mm", "BTCUSDT", Side.SELL, "1", "110")
    e.place("alice", "BTCUSDT", Side.BUY, "2", "110", tif=TimeInForce.IOC)  # adds 1 @100, 1 @110
    p = e.contracts.position("alice", "BTCUSDT")
    assert (p.size, p.entry) == (D(3), D("103.3333333333"))  # kept to 10 decimals
    e.place("bob", "BTCUSDT", Side.BUY, "3", "120")
    r = e.place("alice", "BTCUSDT", Side.SELL, "3", "120", tif=TimeInForce.IOC)
    assert r.events[-1].realized_pnl == D("50.0000000001")  # 3 * (120 - 103.3333333333)
    p = e.contracts.position("alice", "BTCUSDT")
    assert (p.size, p.entry, p.margin, p.realized) == (D(0), D(0), D(0), D("50.0000000001"))
    fees = D("0.05") + D("0.105") + D("0.18")
    assert e.balance("alice", "USDT") == (START + D("50.0000000001") - fees, D(0))
    bob = e.contracts.position("bob", "BTCUSDT")
    assert (bob.size, bob.entry) == (D(3), D(120))


def test_flip_opens_the_rest_at_the_fill_price():
    e = engine()
    e.place("mm", "BTCUSDT", Side.SELL, "1", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "1", "100")
    e.place("mm", "BTCUSDT", Side.BUY, "3", "90")
    r = e.place("alice", "BTCUSDT", Side.SELL, "3", "90")
    assert sum(ev.realized_pnl for ev in r.events if ev.account == "alice") == D(-10)
    p = e.contracts.position("alice", "BTCUSDT")
    assert (p.size, p.entry, p.margin) == (D(-2), D(90), D(18))


def test_order_margin_only_for_the_opening_part_and_released_on_cancel():
    e = engine()
    e.place("mm", "BTCUSDT", Side.SELL, "1", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "1", "100")
    free0, locked0 = e.balance("alice", "USDT")
    r = e.place("alice", "BTCUSDT", Side.SELL, "3", "200")  # closes 1, opens 2
    assert r.accepted
    assert e.balance("alice", "USDT") == (free0 - 40, locked0 + 40)  # 2 * 200 / 10
    e.cancel("alice", order_id=r.order_id)
    assert e.balance("alice", "USDT") == (free0, locked0)


def test_insufficient_margin_is_refused():
    e = engine()
    e.deposit("poor", "USDT", "5")
    r = e.place("poor", "BTCUSDT", Side.BUY, "1", "100")  # needs 10 at 10x
    assert not r.accepted and r.code == Reject.INSUFFICIENT_BALANCE
    assert e.set_leverage("poor", "BTCUSDT", 25).accepted
    assert e.place("poor", "BTCUSDT", Side.BUY, "1", "100").accepted  # 4 at 25x


def test_reduce_only_refused_without_position_and_trimmed_to_it():
    e = engine()
    r = e.place("alice", "BTCUSDT", Side.SELL, "1", "100", reduce_only=True)
    assert not r.accepted and r.code == Reject.REDUCE_ONLY
    e.place("mm", "BTCUSDT", Side.SELL, "1", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "1", "100")
    r = e.place("alice", "BTCUSDT", Side.BUY, "1", "100", reduce_only=True)  # same side
    assert not r.accepted and r.code == Reject.REDUCE_ONLY
    e.place("mm", "BTCUSDT", Side.BUY, "5", "100")
    r = e.place("alice", "BTCUSDT", Side.SELL, "3", "100", reduce_only=True)
    assert r.accepted and sum(f.qty for f in r.fills) == D(1)  # never beyond the position
    assert r.events[-1].status == OrderStatus.EXPIRED  # the rest expires, even GTC
    assert e.contracts.position("alice", "BTCUSDT").size == 0
    assert e.balance("alice", "USDT")[1] == 0  # reduce-only locks no margin


def test_resting_reduce_only_expires_when_the_position_is_gone():
    e = engine()
    e.place("mm", "BTCUSDT", Side.SELL, "1", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "1", "100")
    tp = e.place("alice", "BTCUSDT", Side.SELL, "1", "150", reduce_only=True)
    assert tp.accepted and tp.order_id in e.orders
    e.place("mm", "BTCUSDT", Side.BUY, "1", "99")
    e.place("alice", "BTCUSDT", Side.SELL, "1", "99")  # closes the position elsewhere
    r = e.place("bob", "BTCUSDT", Side.BUY, "1", "150")
    assert not any(f.maker_order_id == tp.order_id for f in r.fills)
    assert any(ev.order_id == tp.order_id and ev.status == OrderStatus.EXPIRED for ev in r.events)
    assert e.contracts.position("alice", "BTCUSDT").size == 0


def test_leverage_bounds_and_margin():
    e = engine()
    for bad in ("0", "51", "-1", "NaN"):
        r = e.set_leverage("alice", "BTCUSDT", bad)
        assert not r.accepted and r.code == Reject.INVALID_LEVERAGE
    e.place("mm", "BTCUSDT", Side.SELL, "10", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "10", "100")
    assert e.balance("alice", "USDT")[1] == D(100)
    assert e.set_leverage("alice", "BTCUSDT", 2).accepted
    assert e.balance("alice", "USDT")[1] == D(500)
    e.deposit("tiny", "USDT", "20")
    e.place("mm", "BTCUSDT", Side.SELL, "1", "100")
    e.place("tiny", "BTCUSDT", Side.BUY, "1", "100")  # margin 10 at 10x, free ~10
    r = e.set_leverage("tiny", "BTCUSDT", 1)
    assert not r.accepted and r.code == Reject.INSUFFICIENT_BALANCE


def test_margin_mode_only_without_position_or_orders():
    e = engine()
    assert e.set_margin_mode("alice", "BTCUSDT", True).accepted
    assert e.contracts.position("alice", "BTCUSDT").margin_mode == "ISOLATED"
    r = e.place("alice", "BTCUSDT", Side.BUY, "1", "50")
    assert e.set_margin_mode("alice", "BTCUSDT", False).code == Reject.MARGIN_MODE
    e.cancel("alice", order_id=r.order_id)
    e.place("mm", "BTCUSDT", Side.SELL, "1", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "1", "100")
    assert e.set_margin_mode("alice", "BTCUSDT", False).code == Reject.MARGIN_MODE


def test_spot_symbols_refuse_contract_settings():
    spot = SymbolSpec(symbol="ETHUSDT", base="ETH", quote="USDT", tick_size=D("0.01"),
                      step_size=D("0.001"))  # fmt: skip
    e = MatchingEngine([SPEC, spot], clock=lambda: 1)
    assert e.set_leverage("a", "ETHUSDT", 5).code == Reject.NOT_CONTRACT
    assert e.set_margin_mode("a", "ETHUSDT", True).code == Reject.NOT_CONTRACT
    assert e.set_leverage("a", "NOPE", 5).code == Reject.UNKNOWN_SYMBOL


def test_funding_longs_pay_shorts():
    e = engine()
    e.place("bob", "BTCUSDT", Side.SELL, "2", "100")
    e.place("alice", "BTCUSDT", Side.BUY, "2", "100")
    before = {a: total(e, a) for a in ("alice", "bob")}
    paid = dict(e.fund("BTCUSDT", D(105), D("0.001")))
    assert paid == {"alice": D("-0.21"), "bob": D("0.21")}  # 2 * 105 * 0.001
    assert total(e, "alice") == before["alice"] - D("0.21")
    assert total(e, "bob") == before["bob"] + D("0.21")
    assert e.contracts.position("alice", "BTCUSDT").funding == D("-0.21")


# ----------------------------------------------------------------------------- property

order = st.tuples(
    st.sampled_from(["alice", "bob", "mm"]),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(1, 30),  # qty in steps
    st.integers(180, 220),  # price in ticks of 0.5
    st.sampled_from([TimeInForce.GTC, TimeInForce.IOC]),
    st.booleans(),  # reduce-only
    st.booleans(),  # market
)
action = st.one_of(
    order.map(lambda o: ("order", o)),
    st.tuples(st.sampled_from(["alice", "bob", "mm"]), st.integers(1, 50)).map(lambda x: ("lev", x)),
    st.tuples(st.integers(180, 220), st.integers(-20, 20)).map(lambda x: ("fund", x)),
    st.sampled_from(["alice", "bob", "mm"]).map(lambda a: ("cancel", a)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, max_size=60))
def test_wallet_moves_by_pnl_fees_and_funding(actions):
    with localcontext(Context(prec=60)):
        check_wallet_moves(actions)


def check_wallet_moves(actions) -> None:
    e = engine()
    accts = ("alice", "bob", "mm")
    realized = dict.fromkeys(accts, D(0))
    fees = dict.fromkeys(accts, D(0))
    funding = dict.fromkeys(accts, D(0))
    signed = dict.fromkeys(accts, D(0))
    for kind, a in actions:
        if kind == "order":
            acct, side, q, t, tif, ro, market = a
            r = e.place(acct, "BTCUSDT", side, D(q) / 10, None if market else D(t) / 2,
                        order_type=OrderType.MARKET if market else OrderType.LIMIT, tif=tif,
                        reduce_only=ro)  # fmt: skip
            for ev in r.events:
                if ev.exec_type == "TRADE":
                    realized[ev.account] += ev.realized_pnl
                    fees[ev.account] += ev.fee
                    signed[ev.account] += ev.last_qty if ev.side == Side.BUY else -ev.last_qty
                    assert ev.fee_asset == "USDT"
        elif kind == "lev":
            e.set_leverage(a[0], "BTCUSDT", a[1])
        elif kind == "fund":
            for acct, amount in e.fund("BTCUSDT", D(a[0]) / 2, D(a[1]) / 10000):
                funding[acct] += amount
        else:
            for o in list(e.orders.values()):
                if o.account == a:
                    e.cancel(a, order_id=o.order_id)
        for acct in accts:
            p = e.contracts.position(acct, "BTCUSDT")
            assert p.size == signed[acct]
            assert total(e, acct) == START + realized[acct] - fees[acct] + funding[acct]
            assert p.realized == realized[acct] and p.funding == funding[acct]
            order_margin = sum((o.lock for o in e.orders.values() if o.account == acct), D(0))
            assert e.balance(acct, "USDT")[1] == order_margin + p.margin
            assert p.margin == position_margin(p.size, p.entry, p.leverage)
            if p.size == 0:
                assert p.entry == 0
    assert sum(signed.values()) == 0  # every fill has two sides
    assert sum(e.balance(a, "USDT")[0] + e.balance(a, "USDT")[1] for a in accts) + \
        e.fees.get("USDT", D(0)) == 3 * START + sum(realized.values()) + sum(funding.values())
