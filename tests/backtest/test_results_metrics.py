"""Hand-computed summary figures: drawdown, Sharpe, fill ratio, turnover, fees, funding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest.results_helpers import EX, T0, H, build, equity, fill, order

from ttxt_mp.backtest.metrics import asof_resample, interval_ns, max_drawdown, sharpe
from ttxt_mp.backtest.records import PositionRow
from ttxt_mp.backtest.results import ResultsError


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1), ("30s", 30), ("15m", 900),
                                               ("1h", 3600), ("4h", 14_400), ("1d", 86_400),
                                               ("1w", 604_800)])  # fmt: skip
def test_intervals(text, seconds):
    assert interval_ns(text) == seconds * 10**9


def test_drawdown_by_hand():
    # peaks 100 120 120 130 130, falls 0 0 30 0 13 -> 30, and 30/120 = 0.25 > 13/130
    assert max_drawdown(np.array([100.0, 120, 90, 130, 117])) == (30.0, 0.25)


def test_drawdown_absolute_and_fraction_are_maximised_separately():
    # fall 50 from 100 (50 %), later fall 100 from 1000 (10 %)
    assert max_drawdown(np.array([100.0, 50, 1000, 900])) == (100.0, 0.5)


def test_drawdown_of_a_rising_or_empty_curve_is_zero():
    assert max_drawdown(np.array([1.0, 2, 3])) == (0.0, 0.0)
    assert max_drawdown(np.array([])) == (0.0, 0.0)


def test_asof_resample_takes_the_last_mark_at_or_before_each_step():
    ts = np.array([0, 1800, 3600, 5400, 9000], dtype=np.int64) * 10**9 + T0  # T0 is on the hour
    v = np.array([1.0, 2, 3, 4, 5])
    # points: first row (0 h), 1 h -> row at 1 h, 2 h -> row at 1.5 h, last row (2.5 h)
    assert asof_resample(ts, v, H).tolist() == [1.0, 3.0, 4.0, 5.0]
    # 30 min: 0, 0.5, 1, 1.5, 2 (-> row at 1.5 h), 2.5
    assert asof_resample(ts, v, H // 2).tolist() == [1.0, 2.0, 3.0, 4.0, 4.0, 5.0]
    assert asof_resample(ts[:1], v[:1], H).tolist() == [1.0]
    assert asof_resample(ts[:0], v[:0], H).tolist() == []


def test_sharpe_by_hand():
    # returns +10 %, -10 %, +10 %: mean 1/30, sample std 2/15 * sqrt(3)/... = 0.11547 ->
    # Sharpe = (1/30) / sqrt(((2/30)^2 * 2 + (4/30)^2) / 2) = 1 / sqrt(12)
    assert sharpe(np.array([100.0, 110.0, 99.0, 108.9])) == pytest.approx(1 / math.sqrt(12))


def test_sharpe_is_undefined_without_enough_or_varying_returns():
    assert math.isnan(sharpe(np.array([100.0, 110.0])))  # one return
    assert math.isnan(sharpe(np.array([100.0, 100.0, 100.0])))  # zero variance
    assert math.isnan(sharpe(np.array([100.0, 0.0, 5.0, 6.0])))  # a return from 0


def test_summary_sharpe_on_the_chosen_interval():
    # hourly marks 100, 110, 99, 108.9; the half-hour marks in between must not count on 1h
    rows = [equity(T0, 100.0), equity(T0 + H // 2, 50.0), equity(T0 + H, 110.0),
            equity(T0 + 3 * H // 2, 500.0), equity(T0 + 2 * H, 99.0),
            equity(T0 + 3 * H, 108.9)]  # fmt: skip
    s = build(rows).summary("1h")
    assert s.sharpe == pytest.approx(1 / math.sqrt(12))
    assert s.sharpe_annualized == pytest.approx(math.sqrt(365 * 24) / math.sqrt(12))
    on_30m = build(rows).summary("30m")
    r = np.diff([100.0, 50, 110, 500, 99, 99, 108.9]) / np.array([100.0, 50, 110, 500, 99, 99])
    assert on_30m.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    assert on_30m.sharpe_annualized == pytest.approx(on_30m.sharpe * math.sqrt(365 * 48))
    # drawdown on the raw marks: peak 110 -> 99 is 11; peak 500 -> 99 is 401 (80.2 %)
    assert (s.max_drawdown, s.max_drawdown_frac) == (401.0, pytest.approx(401 / 500))
    assert (s.start_equity, s.end_equity, s.total_pnl) == (100.0, 108.9, pytest.approx(8.9))


def test_fill_ratio_turnover_and_fees_by_hand():
    rows = [
        order("c1", "NEW"), order("c1", "PARTIALLY_FILLED", filled=0.5),
        order("c1", "CANCELED", filled=0.5),  # filled partly: counts as filled
        order("c2", "REJECTED"),
        order("c3", "NEW"),  # still resting, never filled
        fill("c1", 101.0, 0.5, 0.0101, liquidity="maker"),
        fill("c4", 99.0, 2.0, 0.0792, side="SELL", liquidity="taker"),  # no order row: counted
        fill("c4", 98.0, 1.0, 0.01, side="SELL", liquidity="taker", fee_asset="BNB"),
        equity(T0, 1000.0),
    ]
    s = build(rows).summary()
    assert (s.orders, s.filled_orders, s.rejected_orders, s.cancelled_orders) == (4, 2, 1, 1)
    assert s.fill_ratio == 0.5
    assert s.turnover == pytest.approx(101 * 0.5 + 99 * 2 + 98 * 1)  # 346.5
    assert (s.fills, s.maker_fills, s.taker_fills) == (3, 1, 2)
    assert s.quote == "USDT"
    assert s.fees == pytest.approx(0.0893)
    assert s.fees_by_asset == {"BNB": 0.01, "USDT": pytest.approx(0.0893)}


def test_an_order_is_identified_by_its_order_id_when_it_has_no_client_id():
    rows = [order("", "NEW", order_id="1"), order("", "NEW", order_id="2"),
            fill("", 100.0, 1.0, 0.0, order_id="2")]  # fmt: skip
    s = build(rows).summary()
    assert (s.orders, s.filled_orders, s.fill_ratio) == (2, 1, 0.5)


def test_account_figures_come_from_the_last_equity_row():
    rows = [equity(T0, 1000.0, realized_pnl=1.0),
            equity(T0 + H, 1003.0, realized_pnl=2.5, unrealized_pnl=0.75, funding=-0.25)]  # fmt: skip
    s = build(rows, events=7_200, wall_s=2.0).summary()
    assert (s.realized_pnl, s.unrealized_pnl, s.funding) == (2.5, 0.75, -0.25)
    assert (s.events, s.events_per_s, s.sim_span_s) == (7_200, 3_600.0, 3600.0)


def test_without_equity_rows_positions_give_realized_and_funding():
    pos = dict(exchange=EX, entry_price=100.0)
    rows = [PositionRow(ts=T0, symbol="BTC/USDT:USDT", size=1.0, realized_pnl=0.0, funding=0.0, **pos),
            PositionRow(ts=T0 + 1, symbol="BTC/USDT:USDT", size=0.0, realized_pnl=5.0, funding=-1.0, **pos),
            PositionRow(ts=T0 + 2, symbol="ETH/USDT:USDT", size=2.0, realized_pnl=-2.0, funding=0.5, **pos)]  # fmt: skip
    s = build(rows).summary()
    assert (s.realized_pnl, s.unrealized_pnl, s.funding) == (3.0, 0.0, -0.5)
    assert math.isnan(s.start_equity) and math.isnan(s.total_pnl) and math.isnan(s.sharpe)
    assert math.isnan(s.fill_ratio) and s.orders == 0


def test_an_empty_run_summarizes_without_error():
    s = build([], wall_s=0.0).summary("1d")
    assert (s.orders, s.fills, s.turnover, s.max_drawdown, s.events) == (0, 0, 0.0, 0.0, 0)
    assert math.isnan(s.events_per_s) and s.quote == ""


@pytest.mark.parametrize("bad", ["", "1", "h", "1x", "0h", "-1h", "1.5h", "1 hour", "1H"])
def test_unknown_interval_is_a_one_line_error(bad):
    with pytest.raises(ResultsError) as e:
        build([equity(T0, 1.0)]).summary(bad)
    msg = str(e.value)
    assert "\n" not in msg and repr(bad) in msg and "e.g. 1h" in msg


def test_an_interval_far_too_short_for_the_run_is_refused():
    rows = [equity(T0, 1.0), equity(T0 + 400 * 86_400 * 10**9, 2.0)]  # 400 days on 1s
    with pytest.raises(ResultsError, match=r"interval of 1 s is too short for a run of 400.0 days \(more than 10,000,000 points\); choose a longer one"):
        build(rows).summary("1s")


def test_plot_envelope_by_hand():
    from ttxt_mp.backtest.report import envelope

    y = np.array([5.0, 1, 9, 3, 4, 7, 2, 8, 0, 6, 5])  # 11 points, 2 buckets of 5 (+ tail)
    # bucket 0..4: min at 1, max at 2; bucket 5..9: min at 8, max at 7; the last (10)
    assert envelope(y, 2).tolist() == [1, 2, 7, 8, 10]
    assert envelope(y, 6).tolist() == list(range(11))  # few points: all
