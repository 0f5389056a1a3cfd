"""``ttxt-mp backtest RECORDING --strategy module:Class``: a strategy on recorded data.

    ttxt-mp backtest rec/ --strategy examples.strategies.market_maker:MarketMaker \\
        --balance VENUE:USDT=100000 VENUE:BTC=2 --fees VENUE=0.001,0.001 \\
        --latency-ms 5 --out results/ --plot equity.png

Shows a progress bar (events, simulated time, events/s), then the summary table; writes
every table with ``--out`` and the equity / position / mid chart with ``--plot``. A bad
option is one line and exit code 2; a strategy that raised is reported with the
simulated time and event, the partial results are still shown and written, exit code 1.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import Any

from ttxt_mp import argtypes
from ttxt_mp.storage.replayer import to_ns

__all__ = ["add_backtest_arguments", "backtest_main"]


def _time(text: str) -> int:
    ns = to_ns(text)
    assert ns is not None
    return ns


def _fee(text: str) -> tuple[str, float, float]:
    """``venue=maker,taker`` (fractions of notional; negative = rebate)."""
    venue, sep, rates = text.partition("=")
    parts = rates.split(",")
    if not sep or not venue or len(parts) != 2:
        raise ValueError(f"expected venue=maker,taker (e.g. VENUE=0.0002,0.0005), got {text!r}")
    try:
        maker, taker = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"fees {text!r}: maker and taker must be numbers") from None
    if not all(math.isfinite(x) and -0.1 < x < 0.1 for x in (maker, taker)):
        raise ValueError(f"fees {text!r}: rates are fractions of notional, between -0.1 and 0.1")
    return venue.lower(), maker, taker


def _balance(text: str) -> tuple[str, str, float]:
    """``venue:ASSET=amount``."""
    venue, sep, rest = text.partition(":")
    asset, sep2, amount = rest.partition("=")
    if not (sep and sep2 and venue and asset.isalnum()):
        raise ValueError(f"expected venue:ASSET=amount (e.g. VENUE:USDT=100000), got {text!r}")
    try:
        value = float(amount)
    except ValueError:
        raise ValueError(f"balance {text!r}: amount must be a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"balance {text!r}: amount must be a number >= 0")
    return venue.lower(), asset.upper(), value


def _strategy(text: str) -> str:
    module, sep, cls = text.partition(":")
    if not (sep and module and cls.isidentifier()):
        raise ValueError(f"expected module:Class (e.g. examples.strategies.momentum:Momentum), "
                         f"got {text!r}")  # fmt: skip
    return text


def add_backtest_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    ck = argtypes.checked
    p.add_argument("recording", nargs="+", metavar="RECORDING_DIR",
                   help="recording directories or files (from ttxt-mp record)")  # fmt: skip
    p.add_argument("--strategy", required=True, type=ck(_strategy, "strategy"),
                   help="module:Class of a BaseClient (+ TradingMixin) subclass; the current "
                        "directory is importable")  # fmt: skip
    p.add_argument("--from", dest="start", type=ck(_time, "time"), default=None,
                   help="start (ISO 8601, e.g. 2026-12-06T12:00:00Z, or ns)")  # fmt: skip
    p.add_argument("--to", dest="end", type=ck(_time, "time"), default=None, help="end (exclusive)")
    p.add_argument("--symbols", nargs="+", default=None, help="only these instruments")
    p.add_argument("--latency-ms", type=argtypes.non_negative(), default=0.0,
                   help="order entry, market data and ack latency, each (default 0)")  # fmt: skip
    for which in ("entry", "data", "ack"):
        p.add_argument(f"--{which}-ms", type=argtypes.non_negative(), default=None,
                       help=f"{which} latency alone (overrides --latency-ms)")  # fmt: skip
    p.add_argument("--fees", action="append", type=ck(_fee, "fees"), default=[],
                   metavar="VENUE=MAKER,TAKER", help="fee rates of a venue (repeatable; default 0)")
    p.add_argument("--balance", action="extend", nargs="+", type=ck(_balance, "balance"),
                   default=[], metavar="VENUE:ASSET=AMOUNT", help="starting balances")  # fmt: skip
    p.add_argument("--on-gap", choices=["stop", "continue"], default="stop",
                   help="at a gap in the recording: stop, or continue from the next snapshot")
    p.add_argument("--equity-interval", type=argtypes.positive(), default=60.0,
                   help="seconds of simulated time between equity samples")  # fmt: skip
    p.add_argument("--sharpe-interval", type=ck(_interval, "interval"), default="1h",
                   help="return interval of the Sharpe ratio (30s, 15m, 1h, 1d, 1w)")  # fmt: skip
    p.add_argument("--out", default=None, help="write every table to this directory")
    p.add_argument("--plot", default=None, help="draw equity, position and mid to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load(target: str) -> type:
    from ttxt_mp.client import load_target

    if os.getcwd() not in sys.path:  # `ttxt-mp` is a console script: cwd is not on the path
        sys.path.insert(0, os.getcwd())
    try:
        return load_target(target)
    except (ImportError, TypeError) as e:
        raise ValueError(str(e)) from None


def backtest_main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttxt_mp.backtest.runner import Backtest, Latency
    from ttxt_mp.storage.replayer import recording_paths

    strategy = _load(args.strategy)
    if not recording_paths(args.recording):  # a missing path: FileNotFoundError, one line
        raise FileNotFoundError(f"no recording files (*.bin) in {' '.join(args.recording)}")
    from ttxt_mp.backtest.venue import FeeSchedule

    fees = {v: FeeSchedule(maker=m, taker=t) for v, m, t in args.fees}
    balances: dict[str, dict[str, float]] = {}
    for venue, asset, amount in args.balance:
        balances.setdefault(venue, {})[asset] = amount
    lat = {w: getattr(args, f"{w}_ms") for w in ("entry", "data", "ack")}
    latency = Latency(**{f"{w}_ms": args.latency_ms if v is None else v for w, v in lat.items()})
    if args.plot:
        _check_writable(os.path.dirname(os.path.abspath(args.plot)), "--plot")
    bt = Backtest(args.recording if len(args.recording) > 1 else args.recording[0], strategy,
                  symbols=args.symbols, start=args.start, end=args.end, latency=latency,
                  fees=fees, balances=balances, on_gap=args.on_gap,
                  equity_interval_s=args.equity_interval)  # fmt: skip
    console = Console(stderr=True)
    res = bt.run(progress=not args.no_progress)
    out = Console(width=None if sys.stdout.isatty() else 120)
    _print_summary(res, out, args.sharpe_interval)
    for g in res.gaps[:20]:
        console.print(f"[yellow]gap[/] {g}", highlight=False, soft_wrap=True)
    if len(res.gaps) > 20:
        console.print(f"[yellow]... {len(res.gaps) - 20} more gaps[/]")
    if "stopped" in res.meta:
        console.print(f"[yellow]{res.meta['stopped']}[/]", highlight=False, soft_wrap=True)
    if args.out:
        for path in res.write(args.out):
            console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if args.plot:
        console.print(f"wrote {res.plot(args.plot)}", highlight=False, soft_wrap=True)
    if res.error:
        print(f"ttxt-mp: {res.error}", file=sys.stderr)  # one line, like every CLI error
        return 1
    return 0


def _interval(text: str) -> str:
    """``30s``, ``15m``, ``1h``, ``1d``, ``1w``: checked before the run, not after it."""
    m = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"expected a positive whole number and a unit s, m, h, d or w "
                         f"(e.g. 1h, 15m, 1d), got {text!r}")  # fmt: skip
    return text.strip()


def _print_summary(res: Any, console: Any, interval: str) -> None:
    """The results' summary table (its Sharpe on ``interval``)."""
    if interval == "1h":
        res.print_summary(console)
        return
    try:
        res.print_summary(console, interval=interval)
        return
    except TypeError:  # a print_summary without the interval: the summary's fields
        pass
    import msgspec
    from rich.table import Table

    t = Table(title=f"backtest summary (Sharpe on {interval})", title_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in msgspec.structs.asdict(res.summary(interval)).items():
        t.add_row(k, f"{v:,.6g}" if isinstance(v, float) else str(v))
    console.print(t)


def _check_writable(directory: str, what: str) -> None:
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what}: no directory {directory}")
