"""What a backtest returns: every row it produced, as objects, numpy tables and files, and
a summary computed from those rows alone.

:class:`ResultsBuilder` is the sink the simulated venue and the runner append rows to;
``finish`` hands them over as a :class:`Results`, which a notebook uses directly
(``res.fills``, ``res.tables()["fills"]``, ``res.summary("1h")``) and the CLI writes
(``res.write(out_dir)``), prints and plots. Everything in the summary is derived from the
rows, so it reconciles with them by construction (a property test checks it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ttxt_mp.backtest.metrics import SECONDS_PER_YEAR, asof_resample, interval_ns, max_drawdown
from ttxt_mp.backtest.metrics import sharpe as sharpe_ratio
from ttxt_mp.backtest.records import BalanceRow, EquityRow, FillRow, OrderRow, PositionRow
from ttxt_mp.backtest.tables import (
    TABLES,
    ResultsError,
    from_array,
    read_table,
    resolve_format,
    to_array,
    write_bytes,
    write_table,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Results", "ResultsBuilder", "ResultsError", "Summary"]

Row = OrderRow | FillRow | BalanceRow | PositionRow | EquityRow
RUN_FILE = "run.json"
_FIELD = {cls: name for name, cls in TABLES.items()}  # row type -> Results attribute
_WALL_FIELDS = ("wall_s", "events_per_s")  # left out of written files (not reproducible)


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of one backtest. Money is in ``quote`` (the account's valuation asset,
    from the equity rows). NaN means undefined (no equity rows, no orders, too few
    returns for a Sharpe ratio); it prints as ``n/a`` and encodes as JSON ``null``.

    - ``realized_pnl`` / ``unrealized_pnl`` / ``funding``: the last equity row's (the
      venue's mark); without equity rows, the sums over contracts of their last position
      row (unrealized then 0). ``funding`` > 0 = received.
    - ``fees``: the fills' fees in ``quote`` (> 0 = paid); ``fees_by_asset`` has them all.
    - ``total_pnl``: ``end_equity - start_equity``.
    - ``turnover``: sum of ``|price * qty|`` over all fills.
    - ``max_drawdown``: the largest fall of the equity curve from a running peak (>= 0),
      ``max_drawdown_frac`` the largest such fall as a fraction of its peak.
    - ``sharpe``: mean / sample std of the simple returns of the equity curve resampled
      to ``interval`` (per interval); ``sharpe_annualized`` scales it by
      sqrt(intervals per 365-day year).
    - ``fill_ratio``: orders with at least one fill / orders (an order is a distinct
      (exchange, symbol, client order id or else order id) seen in an order or fill row).
    """

    interval: str
    quote: str
    start_equity: float
    end_equity: float
    total_pnl: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    fees_by_asset: dict[str, float]
    funding: float
    turnover: float
    max_drawdown: float
    max_drawdown_frac: float
    sharpe: float
    sharpe_annualized: float
    fill_ratio: float
    orders: int
    filled_orders: int
    rejected_orders: int
    cancelled_orders: int
    fills: int
    maker_fills: int
    taker_fills: int
    events: int
    sim_start_ns: int
    sim_end_ns: int
    sim_span_s: float
    wall_s: float
    events_per_s: float
    gaps: int
    error: str | None = None


class Results(msgspec.Struct, kw_only=True):
    """Every row a backtest produced, in simulated-time order, and how the run went.
    ``error`` is set when the strategy raised (the rows up to then are kept)."""

    orders: list[OrderRow] = []
    fills: list[FillRow] = []
    balances: list[BalanceRow] = []
    positions: list[PositionRow] = []
    equity: list[EquityRow] = []
    events: int = 0
    sim_start_ns: int = 0
    sim_end_ns: int = 0
    wall_s: float = 0.0
    error: str | None = None
    gaps: list[str] = []
    meta: dict[str, str] = {}

    def tables(self) -> dict[str, np.ndarray]:
        """One numpy structured array per row type (``orders``, ``fills``, ``balances``,
        ``positions``, ``equity``); columns as in :mod:`ttxt_mp.backtest.tables`."""
        return {name: to_array(cls, getattr(self, name)) for name, cls in TABLES.items()}

    def write(self, out_dir: str | Path, *, format: str = "auto",
              interval: str = "1h") -> list[Path]:  # fmt: skip
        """Write the tables (Parquet when pyarrow is installed, else CSV; ``format``
        forces one) and ``run.json`` (events, simulated span, error, gaps, meta and the
        summary on ``interval`` without its wall-clock fields) into ``out_dir``, created
        if needed. The same rows give byte-identical files. Returns the paths written."""
        fmt = resolve_format(format)
        summary = self.summary(interval)
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            paths = [write_table(out, name, arr, fmt) for name, arr in self.tables().items()]
            run = out / RUN_FILE
            write_bytes(run, _run_json(self, fmt, summary))
        except OSError as e:
            raise ResultsError(f"cannot write results to {out}: {e.strerror or e}") from None
        except UnicodeEncodeError as e:  # a lone surrogate in a text: no file format takes it
            raise ResultsError(f"cannot write results to {out}: a text field is not valid "
                               f"Unicode ({e.object[e.start:e.end]!r})") from None  # fmt: skip
        return [*paths, run]

    @classmethod
    def read(cls, out_dir: str | Path) -> Results:
        """Results written by :meth:`write` (either format), ``wall_s`` 0 (not stored)."""
        out = Path(out_dir)
        if not out.is_dir():
            raise ResultsError(f"no results directory at {out}")
        rows = {name: from_array(rc, read_table(out, name)) for name, rc in TABLES.items()}
        run: dict[str, Any] = {}
        if (out / RUN_FILE).exists():
            try:
                run = msgspec.json.decode((out / RUN_FILE).read_bytes())
            except msgspec.DecodeError as e:
                raise ResultsError(f"{out / RUN_FILE}: {e}") from None
        keep = ("events", "sim_start_ns", "sim_end_ns", "error", "gaps", "meta")
        try:
            return msgspec.convert({**rows, **{k: run[k] for k in keep if k in run}}, cls)
        except msgspec.ValidationError as e:
            raise ResultsError(f"{out / RUN_FILE}: {e}") from None

    def summary(self, interval: str = "1h") -> Summary:
        """The run's figures (see :class:`Summary`), Sharpe on ``interval`` (``"1h"``,
        ``"15m"``, ``"1d"``...)."""
        return summarize(self, interval)

    def print_summary(self, console: Console | None = None, interval: str = "1h") -> None:
        """The summary as a rich table (to ``console``, default stdout)."""
        from ttxt_mp.backtest.report import print_summary

        print_summary(self.summary(interval), console)

    def plot(self, path: str | Path) -> Path:
        """Equity, position and mid price over simulated time into a PNG (matplotlib)."""
        from ttxt_mp.backtest.report import plot

        return plot(self, Path(path))


class ResultsBuilder:
    """Collects rows as the backtest runs (the venue's and the runner's sink)."""

    def __init__(self) -> None:
        self._rows: dict[type, list[Any]] = {cls: [] for cls in TABLES.values()}

    def add(self, row: Row) -> None:
        try:
            self._rows[type(row)].append(row)
        except KeyError:
            raise TypeError(
                f"ResultsBuilder.add takes an OrderRow, FillRow, BalanceRow, PositionRow or "
                f"EquityRow, not {type(row).__name__}"
            ) from None

    def __len__(self) -> int:
        return sum(map(len, self._rows.values()))

    def finish(self, *, events: int, sim_start_ns: int, sim_end_ns: int, wall_s: float,
               error: str | None = None, gaps: list[str] | None = None,
               meta: dict[str, str] | None = None) -> Results:  # fmt: skip
        """The rows so far as :class:`Results` (copies: the builder may go on)."""
        return Results(
            **{_FIELD[cls]: list(rows) for cls, rows in self._rows.items()},
            events=events, sim_start_ns=sim_start_ns, sim_end_ns=sim_end_ns, wall_s=wall_s,
            error=error, gaps=list(gaps or ()), meta=dict(sorted((meta or {}).items())),
        )  # fmt: skip


# ---------------------------------------------------------------------- summary


def _order_key(exchange: str, symbol: str, client_order_id: str, order_id: str) -> tuple:
    return (exchange, symbol, client_order_id or "#" + order_id)


def _order_counts(orders: Iterable[OrderRow], fills: Iterable[FillRow]) -> dict[str, int]:
    last: dict[tuple, str] = {}
    filled: set[tuple] = set()
    for o in orders:
        key = _order_key(o.exchange, o.symbol, o.client_order_id, o.order_id)
        last[key] = o.status
        if o.filled_qty > 0:
            filled.add(key)
    for f in fills:
        key = _order_key(f.exchange, f.symbol, f.client_order_id, f.order_id)
        last.setdefault(key, "")
        filled.add(key)
    statuses = list(last.values())
    return {"orders": len(last), "filled_orders": len(filled),
            "rejected_orders": statuses.count("REJECTED"),
            "cancelled_orders": sum(s in ("CANCELED", "CANCELLED") for s in statuses)}  # fmt: skip


def _account(res: Results) -> tuple[float, float, float]:
    """(realized, unrealized, funding): the last equity row, else the last position row
    of each contract."""
    if res.equity:
        e = res.equity[-1]
        return float(e.realized_pnl), float(e.unrealized_pnl), float(e.funding)
    last = {(p.exchange, p.symbol): p for p in res.positions}
    return (math.fsum(p.realized_pnl for p in last.values()), 0.0,
            math.fsum(p.funding for p in last.values()))  # fmt: skip


def _fees_by_asset(fills: list[FillRow]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for f in fills:
        by.setdefault(f.fee_asset, []).append(f.fee)
    return {asset: math.fsum(by[asset]) for asset in sorted(by)}


def summarize(res: Results, interval: str = "1h") -> Summary:
    """:class:`Summary` of ``res``; a bad ``interval`` is a one-line ResultsError."""
    try:
        step = interval_ns(interval)
    except ValueError as e:
        raise ResultsError(str(e)) from None
    n = len(res.equity)
    ts = np.fromiter((r.ts for r in res.equity), np.int64, n)
    equity = np.fromiter((r.equity for r in res.equity), np.float64, n)
    if n > 1 and np.any(np.diff(ts) < 0):  # rows come in time order; be safe anyway
        order = np.argsort(ts, kind="stable")
        ts, equity = ts[order], equity[order]
    try:
        curve = asof_resample(ts, equity, step)
    except ValueError as e:
        raise ResultsError(str(e)) from None
    sharpe = sharpe_ratio(curve)
    dd, dd_frac = max_drawdown(equity)
    fees = _fees_by_asset(res.fills)
    quote = res.equity[-1].quote if n else (next(iter(fees)) if len(fees) == 1 else "")
    realized, unrealized, funding = _account(res)
    start, end = (float(equity[0]), float(equity[-1])) if n else (math.nan, math.nan)
    maker = sum(f.liquidity == "maker" for f in res.fills)
    span = (res.sim_end_ns - res.sim_start_ns) / 1e9
    counts = _order_counts(res.orders, res.fills)
    return Summary(
        interval=interval, quote=quote, start_equity=start, end_equity=end,
        total_pnl=end - start, realized_pnl=realized, unrealized_pnl=unrealized,
        fees=fees.get(quote, 0.0), fees_by_asset=fees, funding=funding,
        turnover=math.fsum(abs(f.price * f.qty) for f in res.fills),
        max_drawdown=dd, max_drawdown_frac=dd_frac, sharpe=sharpe,
        sharpe_annualized=sharpe * math.sqrt(SECONDS_PER_YEAR * 1e9 / step),
        fill_ratio=counts["filled_orders"] / counts["orders"] if counts["orders"] else math.nan,
        **counts, fills=len(res.fills), maker_fills=maker, taker_fills=len(res.fills) - maker,
        events=res.events, sim_start_ns=res.sim_start_ns, sim_end_ns=res.sim_end_ns,
        sim_span_s=span, wall_s=res.wall_s,
        events_per_s=res.events / res.wall_s if res.wall_s > 0 else math.nan,
        gaps=len(res.gaps), error=res.error,
    )  # fmt: skip


def _run_json(res: Results, fmt: str, summary: Summary) -> bytes:
    s = msgspec.structs.asdict(summary)
    for k in _WALL_FIELDS:
        del s[k]
    doc = {"format": fmt, "events": res.events, "sim_start_ns": res.sim_start_ns,
           "sim_end_ns": res.sim_end_ns, "error": res.error, "gaps": res.gaps,
           "meta": dict(sorted(res.meta.items())),
           "rows": {name: len(getattr(res, name)) for name in TABLES}, "summary": s}  # fmt: skip
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"
