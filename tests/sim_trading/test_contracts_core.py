"""The trading core's contract side without HTTP: funding paid on the clock's funding
times only (aligned to the interval, once per boundary, never while the clock does not
reach one), at the mark and rate sources; use_contracts only on a fresh core; the linear
venues' knobs set the interval."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ttxt_mp.events import OrderType, Side, TimeInForce
from ttxt_mp.sim import Simulator, VenueTimings
from ttxt_mp.sim.trading import AccountSpec, TradingCore

SEC = 10**9


def core_at(clock: list[int]) -> TradingCore:
    sim = Simulator({"bybit_linear": ["BTCUSDT"]}, paused=True)
    core = TradingCore(sim.markets["bybit_linear"], clock_ns=lambda: clock[0])
    core.use_contracts(funding_interval_s=10, funding_rate="0.001")
    core.mark_source = lambda s: Decimal(100)
    core.add_account(AccountSpec("a", "s", {"USDT": "1000"}))
    return core


def test_funding_on_each_boundary_once():
    clock = [1_000 * SEC + 3 * SEC]
    core = core_at(clock)
    heard: list[tuple] = []
    core.contract_listeners.append(lambda *a: heard.append(a))
    r = core.place("a", "BTCUSDT", Side.BUY, Decimal("0.01"), None, OrderType.MARKET,
                   TimeInForce.IOC, "")  # fmt: skip
    assert r.fills and core.position("a", "BTCUSDT").size == Decimal("0.01")
    core.maybe_fund()  # first call: learns the next boundary (1010 s)
    clock[0] = 1_009 * SEC
    core.maybe_fund()
    assert heard == []
    clock[0] = 1_010 * SEC
    core.maybe_fund()
    core.maybe_fund()  # the same boundary: once
    assert [(h[0], h[2], h[3]) for h in heard] == [("a", "FUNDING", Decimal("-0.001"))]  # 0.01*100*0.001
    assert core.position("a", "BTCUSDT").funding == Decimal("-0.001")
    clock[0] = 1_035 * SEC  # two boundaries passed while away: paid once, then on the grid
    core.maybe_fund()
    assert len(heard) == 2 and core.next_funding_ns == 1_040 * SEC


def test_use_contracts_only_on_a_fresh_core():
    clock = [SEC]
    core = core_at(clock)
    with pytest.raises(RuntimeError, match="already has accounts"):
        core.use_contracts()


def test_spot_core_never_funds():
    sim = Simulator({"bybit": ["BTCUSDT"]}, paused=True)
    core = sim.trading["bybit"]
    core.maybe_fund()
    assert core.next_funding_ns == 0 and not core.contracts


def test_venue_knobs_set_the_funding_interval():
    t = VenueTimings(bybit_linear_funding_interval=60.0, binance_linear_funding_interval_h=2.0)
    sim = Simulator({"bybit_linear": ["BTCUSDT"], "binance_linear": ["BTCUSDT"]}, timings=t,
                    paused=True)  # fmt: skip
    assert sim.trading["bybit_linear"].funding_interval_ns == 60 * SEC
    assert sim.trading["binance_linear"].funding_interval_ns == 2 * 3600 * SEC
    assert sim.trading["bybit_linear"].contracts and sim.trading["binance_linear"].contracts
