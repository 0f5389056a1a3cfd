"""``ttxt-mp inspect FILE_OR_DIR``: what a recording holds, and where it is damaged.

Per file: instrument, events by kind, time range, chunks, bytes per event, recorded gaps
(``GapNotice``: the recorder was lapped), timestamp holes (no record for longer than
``--hole`` seconds) and damaged chunks with their byte offsets. ``--plot out.png`` draws
mid-price and spread of each instrument's order book over time (needs matplotlib, the
``plot`` extra).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from ttxt_mp import codec
from ttxt_mp.events import GapNotice, Orderbook
from ttxt_mp.storage.format import FILE_SUFFIX, FormatError, Problem
from ttxt_mp.storage.reader import RecordingFile
from ttxt_mp.storage.replayer import MarketDataReplayer, recording_paths

GAP_KIND = codec.layout_for(GapNotice).kind
_BLOCK = 1 << 20


class Hole(msgspec.Struct, frozen=True):
    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e9


class FileReport(msgspec.Struct):
    path: str
    exchange: str = ""
    symbol: str = ""
    size: int = 0
    chunks: int = 0
    events: int = 0
    kinds: dict[str, int] = msgspec.field(default_factory=dict)
    first_ts: int = 0
    last_ts: int = 0
    gap_notices: int = 0
    lost: int = 0
    holes: list[Hole] = msgspec.field(default_factory=list)
    problems: list[Problem] = msgspec.field(default_factory=list)

    @property
    def bytes_per_event(self) -> float:
        return self.size / self.events if self.events else 0.0


def _kind_name(kind: int) -> str:
    try:
        return codec.layout_for(kind).name
    except codec.LayoutError:
        return f"kind {kind}"


def inspect_file(path: str, *, hole_seconds: float = 10.0) -> FileReport:
    """Read every chunk of ``path`` (CRC-checked) and summarize it."""
    rep = FileReport(path, size=os.path.getsize(path))
    try:
        f = RecordingFile(path)
    except FormatError as e:
        rep.problems.append(Problem(path, 0, rep.size, str(e)))
        return rep
    rep.exchange, rep.symbol, rep.chunks = f.exchange, f.symbol, len(f.index)
    counts: Counter[int] = Counter()
    hole_ns = int(hole_seconds * 1e9)
    prev_key: int | None = None
    lo, n = 0, len(f.index)
    while lo < n:
        hi = f.block_end(lo, n, _BLOCK)
        b = f.read(lo, hi)
        lo = hi
        if not len(b):
            continue
        kinds, cnt = np.unique(b.kind, return_counts=True)
        counts.update(dict(zip(kinds.tolist(), cnt.tolist(), strict=True)))
        nz = b.ts[b.ts != 0]
        if len(nz):
            lo_ts, hi_ts = int(nz.min()), int(nz.max())
            rep.first_ts = lo_ts if not rep.first_ts else min(rep.first_ts, lo_ts)
            rep.last_ts = max(rep.last_ts, hi_ts)
        keys = b.key if prev_key is None else np.concatenate(([prev_key], b.key))
        for i in np.flatnonzero(np.diff(keys) > hole_ns).tolist():
            rep.holes.append(Hole(int(keys[i]), int(keys[i + 1])))
        prev_key = int(b.key[-1])
        for i in np.flatnonzero(b.kind == GAP_KIND).tolist():
            o = int(b.offset[i])
            rep.gap_notices += 1
            rep.lost += codec.decode(GAP_KIND, f.view[o : o + int(b.length[i])]).lost
    rep.events = sum(counts.values())
    rep.kinds = {_kind_name(k): v for k, v in sorted(counts.items())}
    rep.problems = list(f.problems)
    f.close()
    return rep


def inspect_paths(paths: Iterable[str], *, hole_seconds: float = 10.0) -> list[FileReport]:
    return [inspect_file(p, hole_seconds=hole_seconds) for p in recording_paths(list(paths))]


# ---------------------------------------------------------------------- plot


class _TopOfBook:
    """Just enough book to know best bid/ask: snapshots replace, zero quantity removes."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.synced = False

    def apply(self, ev: Orderbook) -> None:
        if ev.is_snapshot:
            self.bids = {p: q for p, q in ev.bids if q}
            self.asks = {p: q for p, q in ev.asks if q}
            self.synced = True
            return
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for p, q in levels:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)

    def top(self) -> tuple[float, float] | None:
        if not (self.synced and self.bids and self.asks):
            return None
        return max(self.bids), min(self.asks)


def mid_spread_series(
    paths: Iterable[str], *, max_points: int = 5000
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per instrument: (time ns, mid, spread) sampled at most every ``span/max_points``."""
    rp = MarketDataReplayer(list(paths))
    books: dict[str, _TopOfBook] = {}
    series: dict[str, list[tuple[int, float, float]]] = {}
    files = [f for f in rp.files if f.symbol]
    if not files:
        return {}
    t_lo = min(int(f.index.first_ts.min()) for f in files if len(f.index))
    t_hi = max(int(f.index.last_ts.max()) for f in files if len(f.index))
    step = max(1, (t_hi - t_lo) // max_points)
    next_at: dict[str, int] = {}
    for ev in _orderbooks(rp):
        name = f"{ev.exchange} {ev.symbol}"
        book = books.setdefault(name, _TopOfBook())
        book.apply(ev)
        ts = ev.exch_ts or ev.local_ts  # as the recording's index: never 1970 for a 0
        if ts >= next_at.get(name, 0):
            top = book.top()
            if top is not None:
                bid, ask = top
                series.setdefault(name, []).append((ts, (bid + ask) / 2, ask - bid))
                next_at[name] = ts + step
    rp.close()
    out = {}
    for name, pts in series.items():
        a = np.array(pts, dtype=np.float64)
        out[name] = (a[:, 0].astype(np.int64), a[:, 1], a[:, 2])
    return out


def _orderbooks(rp: MarketDataReplayer) -> Iterator[Orderbook]:
    kind = codec.layout_for(Orderbook).kind
    unpack = codec.layout_for(Orderbook).unpack_from
    for b in rp.batches():
        for i in np.flatnonzero(b.kind == kind).tolist():
            yield unpack(memoryview(b.buffers[int(b.file[i])]), int(b.offset[i]))[0]


def plot(paths: Iterable[str], out: str) -> int:
    """Draw mid-price and spread per instrument into ``out``; returns the number drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: pip install 'ttxt-mp[plot]' (or pip install matplotlib)"
        ) from None
    series = mid_spread_series(paths)
    if not series:
        raise SystemExit("--plot: no order book data (with a snapshot) in these files")
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(11, 6), squeeze=False)
    mid_ax, spread_ax = axes[0][0], axes[1][0]
    for name, (t, mid, spread) in sorted(series.items()):
        when = t.astype("datetime64[ns]")
        mid_ax.plot(when, mid, label=name, linewidth=0.8)
        spread_ax.plot(when, spread, label=name, linewidth=0.8)
    mid_ax.set_ylabel("mid price")
    spread_ax.set_ylabel("spread")
    spread_ax.set_xlabel("exchange time (UTC)")
    mid_ax.legend(loc="best", fontsize="small")
    mid_ax.set_title("Recorded order books")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return len(series)


# ---------------------------------------------------------------------- command line


def _when(ns: int) -> str:
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def render(reports: list[FileReport], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    files = Table(title="Recordings")
    for col in ("file", "exchange", "symbol", "events", "chunks", "B/event", "first (UTC)",
                "last (UTC)", "gaps (lost)", "holes", "damaged"):  # fmt: skip
        files.add_column(col, justify="right" if col in {"events", "chunks", "B/event"} else "left")
    for r in reports:
        files.add_row(
            os.path.basename(r.path), r.exchange, r.symbol or "-", f"{r.events:,}",
            f"{r.chunks:,}", f"{r.bytes_per_event:.1f}", _when(r.first_ts), _when(r.last_ts),
            f"{r.gap_notices} ({r.lost:,})", str(len(r.holes)), str(len(r.problems)),
        )  # fmt: skip
    console.print(files)
    kinds = Table(title="Events by kind")
    names = sorted({k for r in reports for k in r.kinds})
    kinds.add_column("file")
    for n in names:
        kinds.add_column(n, justify="right")
    for r in reports:
        kinds.add_row(os.path.basename(r.path), *(f"{r.kinds.get(n, 0):,}" for n in names))
    console.print(kinds)
    holes = [(r, h) for r in reports for h in r.holes]
    if holes:
        t = Table(title="Timestamp holes")
        for col in ("file", "from (UTC)", "to (UTC)", "seconds"):
            t.add_column(col)
        for r, h in sorted(holes, key=lambda x: -x[1].seconds)[:50]:
            t.add_row(os.path.basename(r.path), _when(h.start), _when(h.end), f"{h.seconds:.1f}")
        console.print(t)
    problems = [p for r in reports for p in r.problems]
    if problems:
        t = Table(title="Damaged data (skipped by the replayer)", style="red")
        for col in ("file", "offset", "bytes", "reason"):
            t.add_column(col)
        for p in problems:
            t.add_row(p.path, str(p.offset), str(p.length), p.reason)
        console.print(t)


def add_inspect_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ttxt_mp.argtypes import positive

    parser.add_argument("paths", nargs="+", help="recording files or directories")
    parser.add_argument("--hole", type=positive(), default=10.0,
                        help="report timestamp holes longer than this many seconds")  # fmt: skip
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="draw mid-price and spread over time (matplotlib)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def inspect_main(args: argparse.Namespace) -> int:
    from ttxt_mp.argtypes import NothingFound

    reports = inspect_paths(args.paths, hole_seconds=args.hole)
    if not reports:
        raise NothingFound(f"no recording files (*{FILE_SUFFIX}) in {', '.join(args.paths)}")
    if args.json:
        print(msgspec.json.encode(reports).decode())
    else:
        render(reports)
    if args.plot:
        n = plot(args.paths, args.plot)
        print(f"plotted {n} instrument(s) into {args.plot}")
    return 1 if any(r.problems for r in reports) else 0
