"""The arithmetic of a backtest summary, on numpy arrays: no rows, no I/O.

Kept apart from :mod:`ttxt_mp.backtest.results` so each formula is small enough to check
by hand (``tests/backtest/test_results_metrics.py`` does).
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = [
    "SECONDS_PER_YEAR",
    "asof_resample",
    "interval_ns",
    "max_drawdown",
    "sharpe",
]

SECONDS_PER_YEAR = 365 * 86_400  # crypto trades every day: annualise over 365 days
MAX_POINTS = 10_000_000  # a resampled curve larger than this is a typo ("1s" over years)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_INTERVAL = re.compile(r"(\d+)([smhdw])")


def interval_ns(text: str) -> int:
    """``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"1w"`` -> nanoseconds; anything else is a
    one-line ValueError naming what is accepted."""
    m = _INTERVAL.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or int(m.group(1)) == 0:
        raise ValueError(
            f"unknown interval {text!r}: expected a positive whole number and a unit "
            "s, m, h, d or w (e.g. 1h, 15m, 1d)"
        )
    return int(m.group(1)) * _UNITS[m.group(2)] * 1_000_000_000


def asof_resample(ts: np.ndarray, values: np.ndarray, step_ns: int) -> np.ndarray:
    """The curve at the first row, at every multiple of ``step_ns`` (epoch-aligned)
    after it, and at the last row; each value is the last row at or before that time
    (an equity mark holds until the next one). ``ts`` must be sorted."""
    if len(ts) == 0:
        return np.empty(0, dtype=np.float64)
    first, last = int(ts[0]), int(ts[-1])
    if (last - first) // step_ns > MAX_POINTS:
        raise ValueError(
            f"interval of {step_ns / 1e9:g} s is too short for a run of "
            f"{(last - first) / 86_400e9:.1f} days (more than {MAX_POINTS:,} points); choose a longer one"
        )
    grid = np.arange((first // step_ns + 1) * step_ns, last + 1, step_ns, dtype=np.int64)
    if len(grid) == 0 or grid[-1] != last:
        grid = np.append(grid, np.int64(last))
    grid = np.concatenate(([np.int64(first)], grid)) if last != first else grid[:1]
    idx = np.searchsorted(ts, grid, side="right") - 1
    return np.asarray(values, dtype=np.float64)[idx]


def sharpe(curve: np.ndarray) -> float:
    """Mean / sample standard deviation of the simple returns between consecutive points
    of an equity curve (per step, not annualised). NaN when undefined: fewer than two
    returns, a zero standard deviation, or a non-positive equity to divide by."""
    curve = np.asarray(curve, dtype=np.float64)
    if len(curve) < 3 or not np.all(curve[:-1] > 0):
        return math.nan
    r = np.diff(curve) / curve[:-1]
    sd = float(np.std(r, ddof=1))
    if not sd > 0:
        return math.nan
    return float(np.mean(r)) / sd


def max_drawdown(equity: np.ndarray) -> tuple[float, float]:
    """(largest fall from a running peak in the curve's unit, largest fall as a fraction of
    its peak), each maximised on its own; the fraction counts only positive peaks. (0, 0)
    for an empty or never-falling curve."""
    equity = np.asarray(equity, dtype=np.float64)
    if len(equity) == 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(equity)
    fall = peak - equity
    pos = peak > 0
    frac = float(np.max(fall[pos] / peak[pos])) if pos.any() else 0.0
    return float(np.max(fall)), frac
