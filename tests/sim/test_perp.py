"""The simulated perpetual's public state (ttxt_mp/sim/perp.py): mark and index stay within
a few ticks of the mid, funding is their capped premium, funding times sit on the interval's
boundaries, liquidations arrive at the asked rate on the right side of the mark, and nothing
moves without market time."""

from __future__ import annotations

from ttxt_mp.sim import Rates
from ttxt_mp.sim.market import Market
from ttxt_mp.sim.perp import LiquidationFeed, PerpState
from ttxt_mp.sim.specs import default_spec


def test_perp_state_and_liquidations() -> None:
    market = Market(default_spec("BTCUSDT"), Rates(levels=50), seed=3)
    perp = PerpState(market, "x")
    feed = LiquidationFeed(perp, "x")
    mid = market.mid
    for i in range(2000):
        perp.step(1_000 * i)
        assert abs(perp.mark_ticks() - mid) <= 4 and abs(perp.index_ticks() - mid) <= 5
        assert abs(perp.funding_rate(0.00375)) <= 0.00375
    assert perp.next_funding_ms(8 * 3600) == 8 * 3600 * 1000  # market time is 0..2000 s
    perp.trade(5)
    assert perp.open_interest >= 1
    assert feed.due(0, 0.0) == []
    prints = feed.due(0, 2.0) + feed.due(100_000, 2.0)  # 100 s at 2/s
    assert 120 < len(prints) < 280
    mark = perp.mark_ticks()
    assert all((p.ticks < mark) == p.long and p.lots >= 1 for p in prints)
    assert feed.due(100_000, 2.0) == []  # no market time passed: nothing more
    a, b = PerpState(market, "y"), PerpState(market, "y")
    for t in range(50):
        a.step(t)
        b.step(t)
    assert (a.mark_ticks(), a.index_ticks()) == (b.mark_ticks(), b.index_ticks())  # seeded
