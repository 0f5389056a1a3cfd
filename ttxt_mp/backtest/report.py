"""Showing backtest results to a person: the summary as a rich table, the run as a chart.

The chart is drawn on a ``matplotlib.figure.Figure`` with the Agg canvas directly, not
through pyplot, so plotting from a notebook does not switch its backend.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

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
        ("max drawdown", f"{_num(s.max_drawdown, q)} ({_num(100 * s.max_drawdown_frac)} %)"),
        (f"Sharpe ({s.interval} / annualized)",
         f"{_num(s.sharpe, digits=3)} / {_num(s.sharpe_annualized)}"),
        ("turnover", _num(s.turnover)),
        ("orders (filled / rejected / cancelled)",
         f"{s.orders:,} ({s.filled_orders:,} / {s.rejected_orders:,} / {s.cancelled_orders:,})"),
        ("fill ratio", _num(100 * s.fill_ratio, "%", 1)),
        ("fills (maker / taker)", f"{s.fills:,} ({s.maker_fills:,} / {s.taker_fills:,})"),
        ("simulated", f"{_when(s.sim_start_ns)} -> {_when(s.sim_end_ns)} UTC "
                      f"({_num(s.sim_span_s / 3600)} h)"),
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


def plot(res: Results, path: Path) -> Path:
    """Equity (with drawdown shaded), position and mid price of the main instrument with
    its fills marked, against simulated UTC time; the format follows ``path``'s suffix
    (``.png`` when it has none)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ResultsError(PLOT_HINT) from None
    import numpy as np

    eq = res.tables()["equity"]
    when = eq["ts"].astype("datetime64[ns]")
    fig = Figure(figsize=(11, 8))
    FigureCanvasAgg(fig)
    ax_eq, ax_pos, ax_mid = fig.subplots(3, 1, sharex=True)
    symbol = str(eq["symbol"][-1]) if len(eq) else ""
    quote = str(eq["quote"][-1]) if len(eq) else ""
    ax_eq.plot(when, eq["equity"], linewidth=0.9, color="tab:blue")
    if len(eq):
        peak = np.maximum.accumulate(eq["equity"])
        ax_eq.fill_between(when, eq["equity"], peak, color="tab:red", alpha=0.2,
                           label="drawdown")  # fmt: skip
        ax_eq.legend(loc="best", fontsize="small")
    else:
        ax_eq.text(0.5, 0.5, "no equity rows", transform=ax_eq.transAxes, ha="center")
    ax_eq.set_ylabel(f"equity {quote}".strip())
    ax_pos.step(when, eq["position"], where="post", linewidth=0.9, color="tab:green")
    ax_pos.set_ylabel(f"position {symbol}".strip())
    ax_mid.plot(when, eq["mid"], linewidth=0.8, color="tab:gray")
    fills = [f for f in res.fills if f.symbol == symbol]
    for side, marker, color in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
        pts = [(f.ts, f.price) for f in fills if f.side == side]
        if pts:
            t, p = zip(*pts, strict=True)
            ax_mid.scatter(np.array(t, dtype="datetime64[ns]"), p, marker=marker, s=18,
                           color=color, label=f"{side.lower()} fills", zorder=3)  # fmt: skip
    if fills:
        ax_mid.legend(loc="best", fontsize="small")
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
