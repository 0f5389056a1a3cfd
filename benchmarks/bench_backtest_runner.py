"""What the backtest runner itself costs per event, next to the replayer alone.

One generated recording (two instruments, book deltas and trades), then, side by side,
interleaved and shuffled each repetition, medians of ``--repeat`` runs:

- ``replayer``: ``MarketDataReplayer.events()`` (decode only);
- ``runner, no books``: ``Backtest`` with a venue that does nothing and a strategy that
  keeps no book: the heap, the clock, delivery and dispatch;
- ``runner + strategy books``: the same with the strategy keeping its books (what a
  ``BaseClient`` does by default).

The venue and the results are replaced by null objects (this measures the runner, not
the simulated venue's matching, which ``bench_backtest.py`` measures with everything).

    .venv/bin/python benchmarks/bench_backtest_runner.py --events 300000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import msgspec

from ttxt_mp import AsyncioQueue
from ttxt_mp import events as ev
from ttxt_mp.backtest.runner import Backtest
from ttxt_mp.client import BaseClient
from ttxt_mp.storage import MarketDataRecorder, MarketDataReplayer

T0 = 1_714_521_600_000_000_000


class _Fee(msgspec.Struct, frozen=True):
    maker: float
    taker: float


class _NullVenue:
    def __init__(self, exchange: str, **kw: Any) -> None:
        pass

    def on_market(self, e: Any) -> list[Any]:
        return []

    def submit(self, cmd: Any, ts: int) -> list[Any]:
        return []

    def mark_to_market(self, ts: int, symbol: str, quote: str) -> Any:
        return None


class _NullResults:
    def add(self, row: Any) -> None:
        pass

    def finish(self, **kw: Any) -> Any:
        return types.SimpleNamespace(**kw)


def install_nulls() -> None:
    venue = types.ModuleType("ttxt_mp.backtest.venue")
    venue.BacktestVenue = _NullVenue  # type: ignore[attr-defined]
    venue.FeeSchedule = _Fee  # type: ignore[attr-defined]
    venue.default_rules = lambda x: None  # type: ignore[attr-defined]
    results = types.ModuleType("ttxt_mp.backtest.results")
    results.ResultsBuilder = _NullResults  # type: ignore[attr-defined]
    sys.modules["ttxt_mp.backtest.venue"] = venue
    sys.modules["ttxt_mp.backtest.results"] = results


def make_recording(directory: Path, n: int) -> None:
    q = AsyncioQueue()
    prev: dict[str, tuple[float, float]] = {}
    for sym in ("BTC/USDT", "ETH/USDT"):
        q.put(ev.Orderbook(exchange="binance", symbol=sym, exch_ts=T0, local_ts=T0,
                           is_snapshot=True, bids=tuple((100.0 - k, 1.0) for k in range(20)),
                           asks=tuple((101.0 + k, 1.0) for k in range(20))))  # fmt: skip
        prev[sym] = (100.0, 101.0)
    rng = random.Random(1)
    for i in range(n):
        sym = "BTC/USDT" if i % 2 else "ETH/USDT"
        ts = T0 + (i + 1) * 1_000_000
        if i % 10 == 9:
            q.put(ev.MarketTrades(exchange="binance", symbol=sym, exch_ts=ts, local_ts=ts,
                                  trades=(ev.Trade(str(i), prev[sym][0], 0.1, ev.Side.SELL, ts),)))
            continue
        bid = round(100.0 + rng.randint(-3, 3) * 0.5, 2)
        q.put(ev.Orderbook(exchange="binance", symbol=sym, exch_ts=ts, local_ts=ts,
                           bids=((prev[sym][0], 0.0), (bid, 2.0)),
                           asks=((prev[sym][1], 0.0), (bid + 1.0, 2.0))))  # fmt: skip
        prev[sym] = (bid, bid + 1.0)
    q.close()
    MarketDataRecorder(q, directory, max_chunk_age=3600.0, fsync_interval=None,
                       snapshot_interval=0).run()  # fmt: skip


class _NoBooks(BaseClient):
    keep_books = False


class _Books(BaseClient):
    def on_orderbook(self, e: ev.Orderbook) -> None:
        self.bb = self.books[(e.exchange, e.symbol)].best_bid


def run_once(which: str, rec: Path) -> tuple[int, float]:
    t = time.perf_counter()
    if which == "replayer":
        with MarketDataReplayer(rec) as rp:
            n = sum(1 for _ in rp.events())
    else:
        res = Backtest(rec, _NoBooks if which == "runner, no books" else _Books).run()
        n = res.events
    return n, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    install_nulls()
    peers = ["replayer", "runner, no books", "runner + strategy books"]
    rates: dict[str, list[float]] = {k: [] for k in peers}
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "rec"
        rec.mkdir()
        make_recording(rec, a.events)
        for _ in range(a.repeat):
            order = peers[:]
            random.shuffle(order)
            for which in order:
                n, s = run_once(which, rec)
                rates[which].append(n / s)
    base = statistics.median(rates["replayer"])
    print(f"{a.events:,} events, median of {a.repeat}, load {os.getloadavg()[0]:.1f}")
    print(f"{'':26} {'events/s':>12} {'x replayer':>11} {'us/event':>9}")
    for k in peers:
        m = statistics.median(rates[k])
        print(f"{k:26} {m:12,.0f} {m / base:11.2f} {1e6 / m:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
