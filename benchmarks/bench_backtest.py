"""Backtest speed and memory: events/s through a backtest next to the replayer alone and
NautilusTrader's BacktestEngine, on the same recording.

    .venv/bin/python benchmarks/bench_backtest.py                    # 10 M events (full run)
    .venv/bin/python benchmarks/bench_backtest.py --events 200000    # smoke run

Generates a recording with the storage writer (``ChunkFile`` + ``pack_chunk``): four
instruments on two exchanges, each a 50-level-a-side book that starts with a snapshot and
then gets deltas (1-4 levels: size changes near the top, mid moves of one tick that shift
the ladder) and trades (1-3 at the touch), with valid update ids (every book stays in sync
under the venues' sequence rules) and a resync snapshot every 100 k events per instrument.
Then measures, each run in a fresh process (so one engine's heap does not slow the next
one's garbage collector), interleaved in a shuffled order per repetition, medians:

(a) ``MarketDataReplayer.events()`` alone: events decoded into Python Structs;
(b) ``ttxt_mp.backtest.runner.Backtest`` with a strategy that only reads the top of book
    (``BaseClient`` keeps a book per instrument; the simulated venue keeps its own);
(c) NautilusTrader's ``BacktestEngine`` (L2 book per instrument at the venue, a managed
    book per instrument in the data engine, a strategy reading the top of book on each
    batch of deltas) on the first ``--nautilus-events`` events converted to its
    ``OrderBookDelta`` / ``TradeTick`` objects (conversion timed apart; the engine holds
    all its data in memory, so it is capped);
(d) ``nautilus_bare``: the same engine and data without a strategy (only the venue's
    matching-engine books), the closest to the rate its documentation publishes.

Memory: peak RSS (VmHWM, includes the recording's memory-mapped pages, which are page
cache) and peak anonymous RSS (sampled every 20 ms) of each run, on the full recording and
on a shorter one (``--memory-events``, default half). The replayer reads each file in
blocks of up to 1 Mi records (30 bytes of numpy per record), so anonymous memory grows
with the recording up to 1 Mi events per file and is flat beyond (the full run: 10 M vs
5 M events on 4 files; a shorter check: ``--instruments 1 --events 2400000``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ttxt_mp import codec  # noqa: E402
from ttxt_mp.events import MarketTrades, Orderbook, Side, Trade  # noqa: E402
from ttxt_mp.storage import MarketDataReplayer  # noqa: E402
from ttxt_mp.storage.format import RECORD_HEADER, file_name, pack_chunk  # noqa: E402
from ttxt_mp.storage.writer import ChunkFile  # noqa: E402

# (exchange, symbol, start mid, mean size of a level, mean trade size)
INSTRUMENTS = [("binance", "BTC/USDT", 60_000.0, 0.8, 0.05),
               ("binance", "ETH/USDT", 3_000.0, 12.0, 0.6),
               ("bybit", "BTC/USDT", 60_010.0, 0.6, 0.04),
               ("bybit", "ETH/USDT", 3_000.5, 10.0, 0.5)]  # fmt: skip
T0 = 1_714_521_600_000_000_000  # 2024-05-01T00:00:00Z
TICK = 0.01
DEPTH = 50  # levels a side
SNAPSHOT_EVERY = 100_000  # events per instrument between resync snapshots
MEAN_GAP_NS = 2_000_000  # 2 ms between two events of one instrument (~500 events/s each)
CHUNK = 150  # records per chunk, as the recorder writes them
PRICE_PRECISION, SIZE_PRECISION = 2, 3
LOG_STAY = math.log(1 - 0.35)  # geometric depth of a size change: 35 % at the touch


# ---------------------------------------------------------------------- the recording


class Ladder:
    """One instrument's book as a ladder of ``DEPTH`` ticks a side around a centre tick,
    producing the events that keep a replayed book equal to it."""

    def __init__(self, exchange: str, symbol: str, mid: float, size: float, trade: float,
                 rng: random.Random) -> None:  # fmt: skip
        self.exchange, self.symbol, self.size, self.trade = exchange, symbol, size, trade
        self.rng, self.log_size = rng, math.log(size)
        self.c = round(mid / TICK)
        self.bids = {self.c - 1 - k: self._qty() for k in range(DEPTH)}
        self.asks = {self.c + 1 + k: self._qty() for k in range(DEPTH)}
        self.uid = 1_000_000
        self.trade_id = 0

    def _qty(self) -> float:
        return max(round(self.rng.lognormvariate(self.log_size, 0.8), SIZE_PRECISION), 0.001)

    @staticmethod
    def _px(tick: int) -> float:
        return round(tick * TICK, PRICE_PRECISION)

    def snapshot(self, ts: int) -> Orderbook:
        px = self._px
        return Orderbook(
            exchange=self.exchange, symbol=self.symbol, exch_ts=ts, local_ts=ts + 900_000,
            is_snapshot=True, last_update_id=self.uid, first_update_id=self.uid,
            bids=tuple((px(t), self.bids[t]) for t in sorted(self.bids, reverse=True)),
            asks=tuple((px(t), self.asks[t]) for t in sorted(self.asks)),
        )  # fmt: skip

    def delta(self, ts: int, r: float) -> Orderbook:
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        px = self._px
        if r < 0.05:  # the mid moves one tick: the ladder shifts, four levels change
            up = r < 0.025
            c = self.c
            if up:  # best ask goes, a new best bid at c; deepest bid goes, a new deepest ask
                gone_ask, new_bid, gone_bid, new_ask = c + 1, c, c - DEPTH, c + 1 + DEPTH
            else:  # best bid goes, a new best ask at c; deepest ask goes, a new deepest bid
                gone_bid, new_ask, gone_ask, new_bid = c - 1, c, c + DEPTH, c - 1 - DEPTH
            del self.asks[gone_ask], self.bids[gone_bid]
            self.bids[new_bid] = qb = self._qty()
            self.asks[new_ask] = qa = self._qty()
            bids += [(px(new_bid), qb), (px(gone_bid), 0.0)]
            asks += [(px(gone_ask), 0.0), (px(new_ask), qa)]
            self.c = c + 1 if up else c - 1
        else:  # sizes change at 1-4 levels, mostly near the top
            rnd = self.rng.random
            for _ in range(1 + int(rnd() * 4)):
                k = min(int(math.log(1.0 - rnd()) / LOG_STAY), DEPTH - 1)  # geometric, p 0.35
                q = self._qty()
                if rnd() < 0.5:
                    t = self.c - 1 - k
                    self.bids[t] = q
                    bids.append((px(t), q))
                else:
                    t = self.c + 1 + k
                    self.asks[t] = q
                    asks.append((px(t), q))
        self.uid += 1
        return Orderbook(exchange=self.exchange, symbol=self.symbol, exch_ts=ts,
                         local_ts=ts + 900_000, bids=tuple(bids), asks=tuple(asks),
                         first_update_id=self.uid, last_update_id=self.uid)  # fmt: skip

    def trades(self, ts: int) -> MarketTrades:
        out = []
        rnd = self.rng.random
        for _ in range(1 + int(rnd() * 3)):
            buy = rnd() < 0.5
            self.trade_id += 1
            q = max(round(self.rng.expovariate(1.0 / self.trade), SIZE_PRECISION), 0.001)
            out.append(Trade(str(self.trade_id), self._px(self.c + 1 if buy else self.c - 1), q,
                             Side.BUY if buy else Side.SELL, ts))  # fmt: skip
        return MarketTrades(exchange=self.exchange, symbol=self.symbol, exch_ts=ts,
                            local_ts=ts + 900_000, trades=tuple(out))  # fmt: skip

    def events(self, n: int, t0: int) -> Iterator[Any]:
        rnd, expo = self.rng.random, self.rng.expovariate
        ts = t0
        for i in range(n):
            ts += int(expo(1.0 / MEAN_GAP_NS)) + 1
            r = rnd()
            if i % SNAPSHOT_EVERY == 0:
                yield self.snapshot(ts)
            elif r < 0.65:
                yield self.delta(ts, r / 0.65)
            else:
                yield self.trades(ts)


def write_recording(directory: str, total: int, seed: int = 1,
                    instruments: int = len(INSTRUMENTS)) -> list[str]:  # fmt: skip
    """``total`` events over the first ``instruments`` of :data:`INSTRUMENTS`, one file
    each, written in chunks of :data:`CHUNK` records through the storage writer."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    encode = codec.encode
    for i, (exchange, symbol, mid, size, trade) in enumerate(INSTRUMENTS[:instruments]):
        n = total // instruments + (1 if i < total % instruments else 0)
        ladder = Ladder(exchange, symbol, mid, size, trade, random.Random(seed * 100 + i))
        path = os.path.join(directory, file_name(exchange, symbol))
        out = ChunkFile(path, exchange, symbol)
        body, index, first, last = bytearray(), array("I"), 0, 0
        for ev in ladder.events(n, T0 + i * 7):
            kind, payload = encode(ev)
            if not index:
                first = ev.exch_ts
            last = ev.exch_ts
            index.append(len(body))
            body += RECORD_HEADER.pack(kind, len(payload))
            body += payload
            if len(index) == CHUNK:
                out.append(pack_chunk(body, index.tobytes(), len(index), first, last))
                body, index = bytearray(), array("I")
        if index:
            out.append(pack_chunk(body, index.tobytes(), len(index), first, last))
        out.close()
        paths.append(path)
    return paths


# ---------------------------------------------------------------------- workers


class MemorySampler:
    """Peak anonymous RSS of this process, sampled from /proc/self/status (the file pages
    of a memory-mapped recording count in VmRSS but are page cache, not the run's heap)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak_anon_kb = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _anon_kb(self) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        return 0

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak_anon_kb = max(self.peak_anon_kb, self._anon_kb())

    def __enter__(self) -> MemorySampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak_anon_kb = max(self.peak_anon_kb, self._anon_kb())


def run_replayer(directory: str, limit: int) -> dict[str, Any]:
    n = 0
    t, cpu = time.perf_counter(), time.process_time()
    with MarketDataReplayer(directory) as rp:
        for _ in rp.events():
            n += 1
    return {"events": n, "seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu}


def top_of_book_strategy() -> type:
    """The ttxt-mp strategy: the live class shape (BaseClient + TradingMixin); its
    ``BaseClient`` keeps a book per instrument; it reads the best bid and ask on every
    book event and never trades."""
    from ttxt_mp import BaseClient, TradingMixin

    class TopOfBook(BaseClient, TradingMixin):
        reads = 0
        spread_sum = 0.0

        def on_orderbook(self, e: Orderbook) -> None:
            book = self.books.get((e.exchange, e.symbol))
            if book is None:
                return
            bid, ask = book.best_bid, book.best_ask
            if bid is not None and ask is not None:
                TopOfBook.reads += 1
                TopOfBook.spread_sum += ask[0] - bid[0]

    return TopOfBook


def run_backtest(directory: str, limit: int) -> dict[str, Any]:
    try:
        from ttxt_mp.backtest.runner import Backtest
    except ImportError as e:
        return {"unavailable": f"ttxt_mp.backtest.runner not importable ({e})"}
    strategy = top_of_book_strategy()
    t, cpu = time.perf_counter(), time.process_time()
    res = Backtest(directory, strategy).run()
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    if res.error:
        return {"unavailable": f"the backtest stopped: {res.error}"}
    return {"events": res.events, "seconds": seconds, "cpu_s": cpu,
            "top_of_book_reads": strategy.reads,
            "mean_spread": strategy.spread_sum / max(strategy.reads, 1),
            "gaps": len(res.gaps)}  # fmt: skip


def _nautilus_instruments() -> dict[tuple[str, str], Any]:
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    template = CurrencyPair.to_dict(TestInstrumentProvider.btcusdt_binance())
    out = {}
    for exchange, symbol, *_ in INSTRUMENTS:
        base, quote = symbol.split("/")
        raw = base + quote
        d = {**template, "id": f"{raw}.{exchange.upper()}", "raw_symbol": raw,
             "base_currency": base, "quote_currency": quote, "size_precision": SIZE_PRECISION,
             "size_increment": "0.001", "min_quantity": "0.001", "max_quantity": "1000000.000"}  # fmt: skip
        out[(exchange, symbol)] = CurrencyPair.from_dict(d)
    return out


def to_nautilus(events: Iterator[Any], instruments: dict[tuple[str, str], Any]) -> list[Any]:
    """Our events -> Nautilus data: a snapshot is CLEAR + ADD per level, a delta UPDATE
    (size > 0) or DELETE (size 0) per level, the last of an event flagged F_LAST; one
    TradeTick per trade."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price, Quantity

    ids = {k: v.id for k, v in instruments.items()}
    last_flag = RecordFlag.F_LAST
    out: list[Any] = []
    seq = 0
    for ev in events:
        iid = ids[(ev.exchange, ev.symbol)]
        ts = ev.exch_ts
        if type(ev) is Orderbook:
            seq += 1
            batch = []
            if ev.is_snapshot:
                batch.append(OrderBookDelta.clear(iid, seq, ts, ts))
            for side, levels in ((OrderSide.BUY, ev.bids), (OrderSide.SELL, ev.asks)):
                for p, q in levels:
                    if ev.is_snapshot:
                        action = BookAction.ADD
                    else:
                        action = BookAction.UPDATE if q > 0 else BookAction.DELETE
                    order = BookOrder(side, Price(p, PRICE_PRECISION), Quantity(q, SIZE_PRECISION), 0)
                    batch.append((action, order))
            first = 1 if ev.is_snapshot else 0
            for j, (action, order) in enumerate(batch[first:]):
                flags = last_flag if first + j == len(batch) - 1 else 0
                batch[first + j] = OrderBookDelta(iid, action, order, flags, seq, ts, ts)
            out.extend(batch)
        elif type(ev) is MarketTrades:
            for tr in ev.trades:
                out.append(TradeTick(iid, Price(tr.price, PRICE_PRECISION),
                                     Quantity(tr.qty, SIZE_PRECISION),
                                     AggressorSide.BUYER if tr.side == Side.BUY else AggressorSide.SELLER,
                                     TradeId(tr.id), ts, ts))  # fmt: skip
    return out


def run_nautilus(directory: str, limit: int, with_strategy: bool = True) -> dict[str, Any]:
    try:
        from nautilus_trader.backtest.engine import BacktestEngine
        from nautilus_trader.config import BacktestEngineConfig, DataEngineConfig, LoggingConfig
        from nautilus_trader.model.currencies import BTC, ETH, USDT
        from nautilus_trader.model.enums import AccountType, BookType, OmsType
        from nautilus_trader.model.identifiers import Venue
        from nautilus_trader.model.objects import Money
        from nautilus_trader.trading.strategy import Strategy
    except ImportError as e:
        return {"unavailable": f"nautilus_trader not installed ({e}); pip install nautilus_trader"}

    class TopOfBook(Strategy):
        def __init__(self, ids: list[Any]) -> None:
            super().__init__()
            self.ids = ids
            self.reads = 0

        def on_start(self) -> None:
            for iid in self.ids:
                self.subscribe_order_book_deltas(iid, book_type=BookType.L2_MBP)
                self.subscribe_trade_ticks(iid)

        def on_order_book_deltas(self, deltas: Any) -> None:
            book = self.cache.order_book(deltas.instrument_id)
            if book.best_bid_price() is not None and book.best_ask_price() is not None:
                self.reads += 1

    instruments = _nautilus_instruments()
    t = time.perf_counter()
    from ttxt_mp.orderbook import OrderBook

    counted = [0]
    ours: dict[str, OrderBook] = {}  # the same prefix in our books: the conversion check

    def first_events(rp: MarketDataReplayer) -> Iterator[Any]:
        for ev in rp.events():
            if counted[0] >= limit:
                return
            counted[0] += 1
            if type(ev) is Orderbook:
                key = str(instruments[(ev.exchange, ev.symbol)].id)
                book = ours.get(key) or ours.setdefault(key, OrderBook(ev.exchange, ev.symbol))
                book.update(ev)
            yield ev

    with MarketDataReplayer(directory) as rp:
        data = to_nautilus(first_events(rp), instruments)
    convert_s = time.perf_counter() - t
    engine = BacktestEngine(config=BacktestEngineConfig(
        logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
        data_engine=DataEngineConfig(buffer_deltas=True)))  # fmt: skip
    for venue in sorted({ex for ex, *_ in INSTRUMENTS}):
        engine.add_venue(Venue(venue.upper()), oms_type=OmsType.NETTING,
                         account_type=AccountType.CASH, base_currency=None,
                         starting_balances=[Money(1_000_000, USDT), Money(100, BTC),
                                            Money(1_000, ETH)],
                         book_type=BookType.L2_MBP)  # fmt: skip
    for inst in instruments.values():
        engine.add_instrument(inst)
    engine.add_data(data)
    strategy = TopOfBook([i.id for i in instruments.values()]) if with_strategy else None
    if strategy is not None:
        engine.add_strategy(strategy)
    points = len(data)
    del data
    t = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - t
    same = None  # without a strategy no book is kept outside the (private) matching engine
    if strategy is not None:
        books = {str(i.id): engine.cache.order_book(i.id) for i in instruments.values()}
        top = {k: (round(float(b.best_bid_price()), PRICE_PRECISION),
                   round(float(b.best_ask_price()), PRICE_PRECISION)) for k, b in books.items()}  # fmt: skip
        same = all(top[k] == (round(b.best_bid[0], PRICE_PRECISION), round(b.best_ask[0], PRICE_PRECISION))
                   for k, b in ours.items())  # fmt: skip
    engine.dispose()
    return {"events": counted[0], "data_points": points, "seconds": seconds, "convert_s": convert_s,
            "final_top_matches_ours": same,
            **({"top_of_book_reads": strategy.reads} if strategy is not None else {})}  # fmt: skip


WORKERS: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "replayer": run_replayer, "backtest": run_backtest, "nautilus": run_nautilus,
    "nautilus_bare": lambda d, n: run_nautilus(d, n, with_strategy=False),
    "backtest_pure": run_backtest, "baseline": run_backtest}  # fmt: skip
"""``backtest_pure``: the backtest with ``TTXT_MP_PURE=1`` (pure-Python book core and
codec); ``baseline``: the backtest run by another checkout's copy of this script
(``--baseline DIR``, e.g. a worktree of the previous commit), for before/after figures."""
BASELINE: str | None = None


def profile_backtest(directory: str, top: int = 15) -> None:
    """Where a backtest's time goes: one run under cProfile, the top functions by own time."""
    import cProfile
    import pstats

    from ttxt_mp.backtest.runner import Backtest

    prof = cProfile.Profile()
    prof.runcall(lambda: Backtest(directory, top_of_book_strategy()).run())
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def worker_main(kind: str, directory: str, limit: int) -> int:
    with MemorySampler() as mem:
        res = WORKERS[kind](directory, limit)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["peak_anon_mb"] = mem.peak_anon_kb / 1024
    print(json.dumps(res))
    return 0


# ---------------------------------------------------------------------- driver


def run_worker(kind: str, directory: str, limit: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its last JSON line is the result."""
    script = os.path.abspath(__file__)
    if kind == "baseline":
        if BASELINE is None:
            return {"unavailable": "no --baseline checkout given"}
        script, kind = os.path.join(BASELINE, "benchmarks", "bench_backtest.py"), "backtest"
    env = {**os.environ, "TTXT_MP_PURE": "1"} if kind.endswith("_pure") else None
    cmd = [sys.executable, script, "--worker", kind, "--dir", directory, "--limit", str(limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=4 * 3600, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"unavailable": f"failed: {err}"}
    return json.loads(lines[-1])


def _median(runs: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else float("nan")


def summarize(name: str, runs: list[dict[str, Any]], small: dict[str, Any]) -> dict[str, Any]:
    ok = [r for r in runs if "unavailable" not in r]
    if not ok:
        return {"name": name, "unavailable": runs[0]["unavailable"] if runs else "not run"}
    rates = [r["events"] / r["seconds"] for r in ok]
    row = {"name": name, "events": ok[0]["events"], "runs": len(ok),
           "events_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
           "peak_rss_mb": _median(ok, "peak_rss_mb"), "peak_anon_mb": _median(ok, "peak_anon_mb"),
           "small_events": small.get("events", 0), "small_peak_rss_mb": small.get("peak_rss_mb"),
           "small_peak_anon_mb": small.get("peak_anon_mb")}  # fmt: skip
    for extra in ("data_points", "convert_s", "top_of_book_reads", "gaps", "final_top_matches_ours"):
        if extra in ok[0]:
            row[extra] = ok[0][extra]
    if all("cpu_s" in r for r in ok):  # CPU time: what a busy shared machine inflates least
        row["events_per_cpu_s"] = statistics.median(r["events"] / r["cpu_s"] for r in ok)
    if "data_points" in ok[0]:
        row["data_points_per_s"] = statistics.median(r["data_points"] / r["seconds"] for r in ok)
    return row


def print_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    base = next((r["events_per_s"] for r in rows if r["name"] == "replayer" and "events_per_s" in r),
                float("nan"))  # fmt: skip
    print(f"recording: {meta['events']:,} events ({meta['mb']:.0f} MB, {meta['instruments']} "
          f"instruments, generated in {meta['generate_s']:.0f} s); shorter: {meta['small_events']:,}")
    print(f"{meta['repeats']} interleaved runs each, shuffled; load average "
          f"{meta['load_before']:.2f} before, {meta['load_after']:.2f} after, {meta['cpus']} cores")
    print(f"{'run':<14}{'events':>12}{'events/s median':>17}{'(min-max)':>22}{'x replayer':>11}"
          f"{'peak RSS MB':>13}{'peak anon MB':>14}{'shorter: RSS / anon MB':>26}")
    for r in rows:
        if "unavailable" in r:
            print(f"{r['name']:<14}  {r['unavailable']}")
            continue
        small = (f"{r['small_peak_rss_mb']:.0f} / {r['small_peak_anon_mb']:.0f}"
                 if r.get("small_peak_rss_mb") is not None else "-")  # fmt: skip
        span = f"({r['min']:,.0f}-{r['max']:,.0f})"
        ratio = f"{r['events_per_s'] / base:.3f}" if base == base else "-"  # NaN: no replayer row
        print(f"{r['name']:<14}{r['events']:>12,}{r['events_per_s']:>17,.0f}{span:>22}{ratio:>11}"
              f"{r['peak_rss_mb']:>13.0f}{r['peak_anon_mb']:>14.0f}"
              f"{small:>26}")  # fmt: skip
        if "data_points_per_s" in r:
            print(f"{'':<14}  {r['data_points']:,} Nautilus data points: "
                  f"{r['data_points_per_s']:,.0f} data points/s; conversion {r['convert_s']:.1f} s "
                  "(not counted)" + ("" if r["final_top_matches_ours"] is None else
                                   f"; its final books' top == ours: {r['final_top_matches_ours']}"))  # fmt: skip
        if "events_per_cpu_s" in r:
            print(f"{'':<14}  events per CPU second (median): {r['events_per_cpu_s']:,.0f}")
        if "top_of_book_reads" in r:
            print(f"{'':<14}  top-of-book reads: {r['top_of_book_reads']:,}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000, help="events in the recording")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each engine (median)")
    ap.add_argument("--nautilus-events", type=int, default=1_000_000,
                    help="events given to NautilusTrader (it holds its data in memory)")  # fmt: skip
    ap.add_argument("--memory-events", type=int, default=None,
                    help="events in the second, shorter recording (default: half)")  # fmt: skip
    ap.add_argument("--instruments", type=int, default=len(INSTRUMENTS),
                    choices=range(1, len(INSTRUMENTS) + 1),
                    help="instruments (files) in the recordings (memory: per-file length matters)")  # fmt: skip
    ap.add_argument("--only", nargs="+", choices=sorted(WORKERS),
                    default=sorted(set(WORKERS) - {"baseline"}))
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="another checkout (e.g. of the previous commit) whose backtest runs as "
                         "the 'baseline' peer, interleaved with this one")  # fmt: skip
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir, removed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    ap.add_argument("--profile", action="store_true",
                    help="then profile one backtest run (cProfile, top functions by own time)")  # fmt: skip
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global BASELINE
    if args.baseline:
        BASELINE = os.path.abspath(args.baseline)
        if "baseline" not in args.only:
            args.only.append("baseline")
    if args.worker:
        return worker_main(args.worker, args.dir, args.limit)
    if args.events < 8 or args.repeats < 1:
        ap.error("--events must be >= 8 and --repeats >= 1")
    work = args.dir or tempfile.mkdtemp(prefix="ttxt-bench-backtest-")
    full, small = os.path.join(work, "full"), os.path.join(work, "short")
    n_small = args.memory_events or args.events // 2
    try:
        t = time.perf_counter()
        paths = write_recording(full, args.events, args.seed, args.instruments)
        meta = {"events": args.events, "generate_s": time.perf_counter() - t,
                "mb": sum(map(os.path.getsize, paths)) / 1e6, "instruments": len(paths),
                "small_events": n_small, "repeats": args.repeats,
                "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}  # fmt: skip
        write_recording(small, n_small, args.seed, args.instruments)
        limits = {"replayer": args.events, "backtest": args.events,
                  "backtest_pure": args.events, "baseline": args.events,
                  "nautilus": min(args.nautilus_events, args.events),
                  "nautilus_bare": min(args.nautilus_events, args.events)}  # fmt: skip
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in args.only}
        order = list(args.only)
        rnd = random.Random(args.seed)
        for rep in range(args.repeats):
            rnd.shuffle(order)
            for kind in order:
                res = run_worker(kind, full, limits[kind])
                runs[kind].append(res)
                rate = f"{res['events'] / res['seconds']:,.0f} events/s" if "events" in res else res["unavailable"]
                print(f"  run {rep + 1}/{args.repeats} {kind}: {rate}", file=sys.stderr)
                if "unavailable" in res and rep == 0:
                    order = [k for k in order if k != kind]  # it will not get better
        smalls = {}
        for kind in args.only:  # the same on the shorter recording (memory)
            if runs[kind] and "unavailable" not in runs[kind][0]:
                short = max(limits[kind] * n_small // args.events, 1)
                smalls[kind] = run_worker(kind, small, short)
        meta["load_after"] = os.getloadavg()[0]
        if args.profile:
            profile_backtest(full)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = [summarize(k, runs[k], smalls.get(k, {})) for k in WORKERS
            if k in runs]  # fmt: skip
    print_table(rows, meta)
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
