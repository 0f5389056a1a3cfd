"""Showing backtest results to a person: the summary as a rich table, the run as a chart.

The chart is drawn on a ``matplotlib.figure.Figure`` with the Agg canvas directly, not
through pyplot, so plotting from a notebook does not switch its backend.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ttxt_mp.backtest.tables import ResultsError

if TYPE_CHECKING:
    from rich.console import Console

    from ttxt_mp.backtest.results import Results, Summary

__all__ = ["plot", "print_summary"]

PLOT_HINT = "plotting needs matplotlib: pip install 'ttxt-mp[plot]' (or pip install matplotlib)"


def _num(x: float, unit: str = "", digits: int = 2) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{x:,.{digits}f}{' ' + unit if unit else ''}"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S") if ns else "-"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.2f} h" if seconds < 172_800 else f"{seconds / 86_400:,.1f} days"


def summary_rows(s: Summary) -> list[tuple[str, str]]:
    """(label, value) pairs, in the order printed."""
    q = s.quote
    other_fees = ", ".join(f"{v:,.4f} {a}" for a, v in s.fees_by_asset.items() if a != q)
    return [
        ("total PnL", _num(s.total_pnl, q)),
        ("  realized / unrealized", f"{_num(s.realized_pnl, q)} / {_num(s.unrealized_pnl, q)}"),
        ("  fees paid", _num(s.fees, q, 4) + (f" (+ {other_fees})" if other_fees else "")),
        ("  funding received", _num(s.funding, q, 4)),
        ("equity start -> end", f"{_num(s.start_equity, q)} -> {_num(s.end_equity, q)}"),
        ("max drawdown", f"{_num(s.max_drawdown, q)} ({100 * s.max_drawdown_frac:.3g} %)"),
        (f"Sharpe ({s.interval} / annualized)",
         f"{_num(s.sharpe, digits=3)} / {_num(s.sharpe_annualized)}"),
        ("turnover", _num(s.turnover)),
        ("orders (filled / rejected / cancelled)",
         f"{s.orders:,} ({s.filled_orders:,} / {s.rejected_orders:,} / {s.cancelled_orders:,})"),
        ("fill ratio", _num(100 * s.fill_ratio, "%", 1)),
        ("fills (maker / taker)", f"{s.fills:,} ({s.maker_fills:,} / {s.taker_fills:,})"),
        ("simulated", f"{_when(s.sim_start_ns)} -> {_when(s.sim_end_ns)} UTC "
                      f"({_span(s.sim_span_s)})"),
        ("events", f"{s.events:,} in {s.wall_s:,.2f} s ({_num(s.events_per_s, 'events/s', 0)})"),
        ("gaps in the recording", f"{s.gaps:,}"),
    ]  # fmt: skip


def print_summary(s: Summary, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Backtest summary", show_header=False)
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("value", justify="right")
    for label, value in summary_rows(s):
        table.add_row(label, value)
    if s.error:
        table.add_row("[red]stopped by an error[/red]", f"[red]{s.error}[/red]")
    (console or Console()).print(table)


MAX_POINTS = 4000  # per drawn series: a million-row run draws in seconds and looks the same
MAX_MARKERS = 5000  # fill markers per side


def envelope(y: np.ndarray, n: int = MAX_POINTS // 2) -> np.ndarray:
    """Indices of the points to draw: all of them when few, else each of ``n`` buckets'
    (and the leftover tail's) lowest and highest point and the last, so peaks and troughs
    survive."""
    if len(y) <= 2 * n:
        return np.arange(len(y))
    k = len(y) // n
    b = y[: n * k].reshape(n, k)
    base = np.arange(n) * k
    tail = y[n * k :]  # fewer than k points left over: their extremes, and the last
    extra = [n * k + int(tail.argmin()), n * k + int(tail.argmax())] if len(tail) else []
    idx = np.concatenate((base + b.argmin(axis=1), base + b.argmax(axis=1), extra, [len(y) - 1]))
    return np.unique(idx.astype(np.int64))


def plot(res: Results, path: Path) -> Path:
    """Equity (with drawdown shaded), position and mid price of the main instrument with
    its fills marked, against simulated UTC time; long series are drawn through their
    min/max envelope (:func:`envelope`), at most :data:`MAX_MARKERS` fill markers a side.
    The format follows ``path``'s suffix (``.png`` when it has none)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ResultsError(PLOT_HINT) from None
    eq = res.tables()["equity"]
    when = eq["ts"].astype("datetime64[ns]")
    fig = Figure(figsize=(11, 8))
    FigureCanvasAgg(fig)
    ax_eq, ax_pos, ax_mid = fig.subplots(3, 1, sharex=True)
    symbol = str(eq["symbol"][-1]) if len(eq) else ""
    quote = str(eq["quote"][-1]) if len(eq) else ""
    e = envelope(eq["equity"])
    ax_eq.plot(when[e], eq["equity"][e], linewidth=0.9, color="tab:blue")
    if len(eq):
        peak = np.maximum.accumulate(eq["equity"])
        ax_eq.fill_between(when[e], eq["equity"][e], peak[e], color="tab:red", alpha=0.2,
                           label="drawdown")  # fmt: skip
        ax_eq.legend(loc="best", fontsize="small")
    else:
        ax_eq.text(0.5, 0.5, "no equity rows", transform=ax_eq.transAxes, ha="center")
    ax_eq.set_ylabel(f"equity {quote}".strip())
    p = envelope(eq["position"])
    ax_pos.step(when[p], eq["position"][p], where="post", linewidth=0.9, color="tab:green")
    ax_pos.set_ylabel(f"position {symbol}".strip())
    m = envelope(eq["mid"])
    ax_mid.plot(when[m], eq["mid"][m], linewidth=0.8, color="tab:gray")
    fills = [f for f in res.fills if f.symbol == symbol]
    for side, marker, color in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
        pts = [(f.ts, f.price) for f in fills if f.side == side]
        pts = pts[:: max(1, math.ceil(len(pts) / MAX_MARKERS))]  # evenly thinned beyond the cap
        if pts:
            t, p = zip(*pts, strict=True)
            ax_mid.scatter(np.array(t, dtype="datetime64[ns]"), p, marker=marker, s=18,
                           color=color, label=f"{side.lower()} fills", zorder=3)  # fmt: skip
    if fills:
        ax_mid.legend(loc="best", fontsize="small")
    for ax in (ax_eq, ax_mid):  # whole prices, not "+6e4" offsets
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax_mid.set_ylabel("mid price")
    ax_mid.set_xlabel("simulated exchange time (UTC)")
    title = f"Backtest: {symbol}" if symbol else "Backtest"
    fig.suptitle(title + (f" (stopped: {res.error})" if res.error else ""), fontsize="medium")
    fig.tight_layout()
    fmt = path.suffix[1:].lower() or "png"
    try:
        fig.savefig(path, format=fmt, dpi=110)
    except OSError as e:
        raise ResultsError(f"cannot write the plot to {path}: {e.strerror or e}") from None
    except ValueError as e:  # an unknown suffix
        raise ResultsError(f"cannot write the plot to {path}: {e}") from None
    return path
