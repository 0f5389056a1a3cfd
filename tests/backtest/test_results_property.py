"""Property tests: whatever the rows, the summary reconciles with them, the resampling is
the naive as-of join, and the tables survive a trip through the files."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
from backtest.results_helpers import T0, H, build, equity_curves, fill_rows, finite, ids, order_rows
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttxt_mp.backtest.metrics import asof_resample
from ttxt_mp.backtest.records import OrderRow
from ttxt_mp.backtest.results import Results


@settings(max_examples=200, deadline=None)
@given(fills=st.lists(fill_rows(), max_size=30), orders=st.lists(order_rows(), max_size=30),
       curve=equity_curves())  # fmt: skip
def test_summary_reconciles_with_the_rows(fills, orders, curve):
    res = build([*orders, *fills, *curve])
    s = res.summary("1h")
    for asset in {f.fee_asset for f in fills}:
        assert s.fees_by_asset[asset] == math.fsum(f.fee for f in fills if f.fee_asset == asset)
    assert set(s.fees_by_asset) == {f.fee_asset for f in fills}
    assert s.fees == s.fees_by_asset.get(s.quote, 0.0)
    assert math.isclose(s.turnover, sum(abs(f.price * f.qty) for f in fills), rel_tol=1e-9)
    assert s.fills == len(fills) == s.maker_fills + s.taker_fills
    assert s.maker_fills == sum(f.liquidity == "maker" for f in fills)
    assert s.filled_orders <= s.orders <= len(orders) + len(fills)
    assert s.rejected_orders + s.cancelled_orders <= s.orders
    if s.orders:
        assert 0.0 <= s.fill_ratio <= 1.0
    values = [r.equity for r in curve]
    if values:
        peak = max(values)
        brute = max(values[i] - values[j] for i in range(len(values)) for j in range(i, len(values)))
        assert 0.0 <= s.max_drawdown <= peak
        assert s.max_drawdown == brute
        assert 0.0 <= s.max_drawdown_frac < 1.0  # equity stays positive here
        assert s.total_pnl == values[-1] - values[0]
        assert s.quote == "USDT"
    else:
        assert s.max_drawdown == 0.0 and math.isnan(s.total_pnl)
    if not math.isnan(s.sharpe):
        assert math.isclose(s.sharpe_annualized, s.sharpe * math.sqrt(365 * 24), rel_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(curve=equity_curves(min_size=1), step=st.sampled_from([1, 7, 60, 900, 3600, 86_400]))
def test_resampling_is_the_naive_asof_join(curve, step):
    step_ns = step * 10**9
    ts = np.array([r.ts for r in curve], dtype=np.int64)
    v = np.array([r.equity for r in curve])
    first, last = int(ts[0]), int(ts[-1])
    times = sorted({first, last, *range((first // step_ns + 1) * step_ns, last + 1, step_ns)})
    naive = [v[max(i for i in range(len(ts)) if ts[i] <= t)] for t in times]
    assert asof_resample(ts, v, step_ns).tolist() == naive


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills=st.lists(fill_rows(), max_size=8), orders=st.lists(order_rows(), max_size=8),
       curve=equity_curves(), reason=ids, price=finite)  # fmt: skip
def test_any_rows_survive_the_files(fills, orders, curve, reason, price):
    odd = OrderRow(ts=T0 + H, exchange="ex,\"q\"", symbol="A/B", client_order_id=reason,
                   order_id="", side="SELL", order_type="MARKET", tif="IOC", status="EXPIRED",
                   price=price, qty=1.0, filled_qty=0.0, avg_price=0.0, reason=reason)  # fmt: skip
    res = build([*orders, odd, *fills, *curve])
    for fmt in ("parquet", "csv"):
        with tempfile.TemporaryDirectory() as d:
            res.write(d, format=fmt)
            back = Results.read(Path(d))
            assert back.orders == res.orders and back.fills == res.fills
            assert back.equity == res.equity and back.fills == fills


@settings(max_examples=200, deadline=None)
@given(y=st.lists(finite, min_size=1, max_size=300), n=st.integers(1, 40))
@example(y=[1.0] * 12 + [0.0, 1.0], n=3)  # the minimum in the leftover tail
def test_the_plot_envelope_keeps_extremes_and_the_last_point(y, n):
    from ttxt_mp.backtest.report import envelope

    arr = np.array(y)
    idx = envelope(arr, n)
    assert idx.tolist() == sorted(set(idx.tolist()))  # increasing, no duplicates
    assert idx[-1] == len(y) - 1 and len(idx) <= max(len(y), 2 * n + 3)
    assert arr[idx].min() == arr.min() and arr[idx].max() == arr.max()
    if len(y) <= 2 * n:
        assert idx.tolist() == list(range(len(y)))
