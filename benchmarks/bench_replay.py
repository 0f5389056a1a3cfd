"""Replay and recording speed of ttxt_mp.storage, against JSON lines (orjson) and Parquet.

    .venv/bin/python benchmarks/bench_replay.py            # 10 M events (final figures)
    .venv/bin/python benchmarks/bench_replay.py --quick    # smoke run, 300 k events

Generates a recorded set (4 instruments on 2 exchanges: book deltas with 1-4 levels per
side, trades, klines, occasional 20-level snapshots) directly in the file format, then
measures:

(a) ``MarketDataReplayer.batches()``: merged numpy batches, with and without CRC checks
    (target >= 20 M events/s);
(b) ``MarketDataReplayer.events()``: Python event Structs (target >= 1 M events/s);
(c) the same events from JSON lines with orjson (dicts, and dicts -> Structs);
(d) the same events from Parquet with pyarrow, if installed (table, and rows as dicts);
(e) file size per event, ours vs JSON lines vs Parquet;
(f) recorder sustained write rate (raw ring bytes in; and Python events in, which adds
    the codec encode an AsyncioQueue needs);
(g) recorder impact: a producer putting events into a shared-memory ring as fast as it
    can, alone and with ``ttxt-mp record RING`` (a separate process) attached; target:
    with >= 90% of without. The ring is ``overwrite``, so a recorder that cannot keep up
    is lapped (its gaps are reported) instead of slowing the producer.

    .venv/bin/python benchmarks/bench_replay.py --impact-only [--quick]

(h) ``--side-by-side``: batches and Python events with the compiled codec and with the
    pure-Python one, and the Parquet table read, interleaved (medians of ``--repeat``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ttxt_mp import AsyncioQueue, codec  # noqa: E402
from ttxt_mp.events import Kline, MarketTrades, Orderbook, Side, Trade  # noqa: E402
from ttxt_mp.queues import QueueClosed, QueueEmpty  # noqa: E402
from ttxt_mp.storage import MarketDataRecorder, MarketDataReplayer  # noqa: E402
from ttxt_mp.storage.format import (  # noqa: E402
    RECORD_HEADER,
    file_name,
    pack_chunk,
    pack_file_header,
)

INSTRUMENTS = [("binance", "BTC/USDT"), ("binance", "ETH/USDT"), ("bybit", "BTC/USDT"),
               ("bybit", "ETH/USDT")]  # fmt: skip
T0 = 1_714_521_600_000_000_000
CHUNK = 150
TEMPLATE_CHUNKS = 64


def sample_event(rng: np.random.Generator, exchange: str, symbol: str) -> Any:
    px = float(np.round(rng.uniform(100, 200), 2))
    base = dict(exchange=exchange, symbol=symbol)
    r = rng.random()
    if r < 0.002:
        lv = tuple((round(px - k * 0.01, 2), 1.0 + k) for k in range(20))
        return Orderbook(**base, is_snapshot=True, bids=lv, asks=lv, last_update_id=1)
    if r < 0.60:
        nb, na = rng.integers(1, 5, 2)
        return Orderbook(
            **base, bids=tuple((round(px - k * 0.01, 2), float(rng.integers(0, 9))) for k in range(nb)),
            asks=tuple((round(px + k * 0.01, 2), float(rng.integers(0, 9))) for k in range(na)),
            first_update_id=int(rng.integers(1, 1 << 40)), last_update_id=int(rng.integers(1, 1 << 40)),
        )  # fmt: skip
    if r < 0.95:
        n = int(rng.integers(1, 4))
        return MarketTrades(**base, trades=tuple(
            Trade(str(rng.integers(1, 1 << 40)), px, 0.5, Side.BUY, T0) for _ in range(n)))  # fmt: skip
    return Kline(**base, open=px, high=px + 1, low=px - 1, close=px, volume=10.0, trades=5)


def _ts_offsets(kind: int) -> tuple[int, int]:
    f = codec.layout_for(kind).header_dtype.fields
    return f["exch_ts"][1], f["local_ts"][1]


def generate(directory: str, total: int, seed: int = 1) -> list[str]:
    """Write ``total`` events over the instruments; chunk bodies are built from a pool of
    template chunks with timestamps patched in (numpy), so generation is fast."""
    rng = np.random.default_rng(seed)
    per_file = total // len(INSTRUMENTS)
    paths = []
    for fi, (exchange, symbol) in enumerate(INSTRUMENTS):
        templates = []
        for _ in range(TEMPLATE_CHUNKS):
            body = bytearray()
            ts_pos = []
            starts = []
            for _ in range(CHUNK):
                kind, payload = codec.encode(sample_event(rng, exchange, symbol))
                ex, lo = _ts_offsets(kind)
                starts.append(len(body))
                start = len(body) + RECORD_HEADER.size
                ts_pos.append((start + ex, start + lo))
                body += RECORD_HEADER.pack(kind, len(payload)) + payload
            templates.append((bytes(body), np.array(ts_pos, dtype=np.int64),
                              np.array(starts, dtype="<u4")))  # fmt: skip
        path = os.path.join(directory, file_name(exchange, symbol))
        paths.append(path)
        ts = T0 + fi * 37 + np.cumsum(rng.integers(50_000, 150_000, per_file)) * 4
        with open(path, "wb") as f:
            f.write(pack_file_header(exchange, symbol, T0))
            ar8 = np.arange(8)
            for c, at in enumerate(range(0, per_file, CHUNK)):
                body_t, pos, starts = templates[c % TEMPLATE_CHUNKS]
                n = min(CHUNK, per_file - at)
                body = np.frombuffer(body_t, dtype=np.uint8).copy()
                t = ts[at : at + n].astype("<i8").view(np.uint8).reshape(n, 8)
                body[pos[:n, 0, None] + ar8] = t
                body[pos[:n, 1, None] + ar8] = t
                if n < CHUNK:  # last partial chunk: keep its first n records
                    body = body[: starts[n]]
                index = starts[:n].tobytes()
                f.write(pack_chunk(body.tobytes(), index, n, int(ts[at]), int(ts[at + n - 1])))
    return paths


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    t = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t


def bench_batches(directory: str, verify: bool) -> tuple[int, float]:
    def run() -> int:
        n = 0
        with MarketDataReplayer(directory, verify=verify) as rp:
            for b in rp.batches():
                n += len(b)
        return n

    return timed(run)


def bench_events(directory: str, limit: int) -> tuple[int, float]:
    def run() -> int:
        n = 0
        with MarketDataReplayer(directory) as rp:
            for _ in rp.events():
                n += 1
                if n >= limit:
                    break
        return n

    return timed(run)


def first_events(directory: str, n: int) -> list[Any]:
    out = []
    with MarketDataReplayer(directory) as rp:
        for ev in rp.events():
            out.append(ev)
            if len(out) >= n:
                break
    return out


def bench_jsonl(events: list[Any], path: str) -> dict[str, float]:
    import orjson

    to_builtins = msgspec.to_builtins
    with open(path, "wb") as f:
        for ev in events:
            d = to_builtins(ev)
            d["type"] = type(ev).__name__
            f.write(orjson.dumps(d) + b"\n")
    kinds = {c.__name__: c for c in (Orderbook, MarketTrades, Kline)}

    def dicts() -> int:
        n = 0
        with open(path, "rb") as f:
            for line in f:
                orjson.loads(line)
                n += 1
        return n

    def structs() -> int:
        n = 0
        with open(path, "rb") as f:
            for line in f:
                d = orjson.loads(line)
                msgspec.convert(d, kinds[d.pop("type")])
                n += 1
        return n

    n, t_d = timed(dicts)
    _, t_s = timed(structs)
    return {"dicts/s": n / t_d, "structs/s": n / t_s, "bytes/event": os.path.getsize(path) / n}


def bench_parquet(events: list[Any], path: str) -> dict[str, float] | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    rows = [_parquet_row(ev) for ev in events]
    pq.write_table(pa.Table.from_pylist(rows), path)
    n, t_tab = timed(lambda: pq.read_table(path).num_rows)
    n2, t_rows = timed(lambda: len(pq.read_table(path).to_pylist()))
    return {"table rows/s": n / t_tab, "dict rows/s": n2 / t_rows,
            "bytes/event": os.path.getsize(path) / n}  # fmt: skip


def _parquet_row(ev: Any) -> dict[str, Any]:
    """One row of a single table for all kinds (Arrow needs one type per column)."""
    d = msgspec.to_builtins(ev)
    d["type"] = type(ev).__name__
    if isinstance(ev, Kline):
        d["n_trades"] = d.pop("trades")
    elif isinstance(ev, MarketTrades):
        d["trades"] = [{"id": t.id, "price": t.price, "qty": t.qty, "side": int(t.side),
                        "ts": t.ts} for t in ev.trades]  # fmt: skip
    return d


class _PrefilledRaw:
    """A consumer offering the ring's raw API over pre-encoded records."""

    def __init__(self, records: list[tuple[int, bytes]]) -> None:
        self._it = iter(records)

    def get_raw(self, timeout: float | None = None) -> tuple[int, bytes]:
        try:
            return next(self._it)
        except StopIteration:
            raise QueueClosed from None

    def get(self, timeout: float | None = None) -> Any:
        raise QueueEmpty


def bench_recorder(events: list[Any], directory: str) -> dict[str, float]:
    raw = [codec.encode(ev) for ev in events]
    nbytes = sum(len(p) for _, p in raw)
    rec = MarketDataRecorder(_PrefilledRaw(raw), os.path.join(directory, "raw"))
    _, t_raw = timed(lambda: rec.run().events)
    q = AsyncioQueue()
    for ev in events:
        q.put(ev)
    q.close()
    rec2 = MarketDataRecorder(q, os.path.join(directory, "obj"))
    _, t_obj = timed(lambda: rec2.run().events)
    n = len(events)
    return {"raw events/s": n / t_raw, "raw MB/s": nbytes / t_raw / 1e6,
            "python events/s (encode + record)": n / t_obj}  # fmt: skip


def _produce(pub: Any, events: list[Any], n: int) -> tuple[float, float]:
    """(wall seconds, producer CPU seconds) to put ``n`` events."""
    put = pub.put
    m = len(events)
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        put(events[i % m])
    return time.perf_counter() - t, time.process_time() - c


def _start_recorder(ring: str, directory: str, pub: Any) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "ttxt_mp.cli", "record", ring, "--dir", directory],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 20
    while not pub.consumers():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the recorder did not attach to {ring} (exit {proc.poll()})")
        time.sleep(0.01)
    return proc


def _stop_recorder(proc: subprocess.Popen) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    lines = out.decode().strip().splitlines()
    return msgspec.json.decode(lines[-1]) if lines else {}


def bench_recorder_impact(events: list[Any], n: int, repeats: int, work: str) -> dict[str, Any]:
    """Producer events/s into a ring alone vs with a recorder process attached (median of
    ``repeats`` alternating runs each, so drift on a shared machine hits both). Wall-clock
    rate needs a free core for the recorder; the rate per producer CPU second isolates
    what the recorder costs the producer's own code path (shared cache lines, wake-ups)."""
    from ttxt_mp.shm import ShmQueue

    alone: list[float] = []
    recorded: list[float] = []
    cpu_alone: list[float] = []
    cpu_recorded: list[float] = []
    rec_stats: dict[str, Any] = {}
    for r in range(repeats):
        for with_recorder in (False, True):
            ring = f"benchrec{os.getpid()}_{r}_{int(with_recorder)}"
            pub = ShmQueue.create(ring, capacity=1 << 16, slot_size=256, policy="overwrite")
            proc = None
            try:
                if with_recorder:
                    proc = _start_recorder(ring, os.path.join(work, f"impact{r}"), pub)
                t, c = _produce(pub, events, n)
                (recorded if with_recorder else alone).append(n / t)
                (cpu_recorded if with_recorder else cpu_alone).append(n / max(c, 1e-9))
                if proc is not None:
                    time.sleep(0.5)  # let it drain what it can before stopping
                    rec_stats = _stop_recorder(proc)
                    proc = None
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
                pub.close()
                pub.unlink()
    best_alone, best_rec = statistics.median(alone), statistics.median(recorded)
    return {"events": n, "alone events/s": best_alone, "with recorder events/s": best_rec,
            "ratio": best_rec / best_alone, "alone events/cpu-s": statistics.median(cpu_alone),
            "with recorder events/cpu-s": statistics.median(cpu_recorded),
            "cpu ratio": statistics.median(cpu_recorded) / statistics.median(cpu_alone),
            "cores": os.cpu_count() or 0, "load average": os.getloadavg()[0],
            "recorder recorded": rec_stats.get("events", 0),
            "recorder gaps": rec_stats.get("gaps", 0), "recorder lost": rec_stats.get("lost", 0)}


def print_impact(res: dict[str, Any]) -> None:
    print(f"recorder impact on the producer ({res['events']:,} events into a 64 Ki-slot "
          "overwrite ring, median of alternating runs)")  # fmt: skip
    print(f"  {'producer':<30}{'events/s (wall)':>16}{'events/CPU-s':>14}")
    print(f"  {'alone':<30}{res['alone events/s']:>16,.0f}{res['alone events/cpu-s']:>14,.0f}")
    print(f"  {'with ttxt-mp record attached':<30}{res['with recorder events/s']:>16,.0f}"
          f"{res['with recorder events/cpu-s']:>14,.0f}")  # fmt: skip
    verdict = "ok" if res["ratio"] >= 0.9 else "BELOW TARGET"
    print(f"  {'ratio (target >= 0.90)':<30}{res['ratio']:>16.3f}{res['cpu ratio']:>14.3f}  {verdict}")
    print(f"  machine: {res['cores']} cores, load average {res['load average']:.2f} at the end "
          "(the wall ratio needs a core free for the recorder)")  # fmt: skip
    print(f"  recorder (last run): {res['recorder recorded']:,} events recorded, "
          f"{res['recorder gaps']} gaps, {res['recorder lost']:,} events lost to laps")


def _ref_loop_ms() -> float:
    t = time.perf_counter()
    x = 0
    for i in range(1_000_000):
        x += i
    return (time.perf_counter() - t) * 1e3


def side_by_side(directory: str, parquet_path: str, repeat: int) -> dict[str, Any]:
    """Compiled vs pure replay vs the Parquet table read, interleaved: every repetition runs
    each cell once, in a fresh shuffled order; medians of ``repeat`` (events/s)."""
    import random

    import pyarrow.parquet as pq

    from ttxt_mp import codec_c

    impls = ["c", "pure"] if codec_c.AVAILABLE else ["pure"]

    def with_impl(impl: str, fn: Callable[[], tuple[int, float]]) -> Callable[[], float]:
        def run() -> float:
            codec_c.set_implementation(impl)
            n, t = fn()
            return n / t
        return run

    cells: dict[str, Callable[[], float]] = {}
    for impl in impls:
        cells[f"batches, CRC checked ({impl})"] = with_impl(impl, lambda: bench_batches(directory, True))
        cells[f"batches, no CRC ({impl})"] = with_impl(impl, lambda: bench_batches(directory, False))
        cells[f"Python events ({impl})"] = with_impl(impl, lambda: bench_events(directory, 1 << 62))
    cells["Parquet (pyarrow) -> table"] = lambda: (lambda r: r[0] / r[1])(
        timed(lambda: pq.read_table(parquet_path).num_rows))
    rates: dict[str, list[float]] = {k: [] for k in cells}
    load0, ref0 = os.getloadavg()[0], _ref_loop_ms()
    names = list(cells)
    for _ in range(repeat):
        random.shuffle(names)
        for k in names:
            rates[k].append(cells[k]())
    codec_c.set_implementation(codec_c.IMPLEMENTATION)
    return {"rates": {k: statistics.median(v) for k, v in rates.items()},
            "spread": {k: (min(v), max(v)) for k, v in rates.items()},
            "load average": (load0, os.getloadavg()[0]), "ref loop ms": (ref0, _ref_loop_ms())}


def main_side_by_side(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = args.events or 2_000_000
    work = args.dir or tempfile.mkdtemp(prefix="ttxt-bench-replay-")
    rec_dir = os.path.join(work, "rec")
    os.makedirs(rec_dir, exist_ok=True)
    try:
        generate(rec_dir, total)
        pq_path = os.path.join(work, "events.parquet")
        evs = first_events(rec_dir, args.compare or total)
        pq.write_table(pa.Table.from_pylist([_parquet_row(ev) for ev in evs]), pq_path)
        n_pq = len(evs)
        del evs
        bench_batches(rec_dir, True)  # warm the page cache
        res = side_by_side(rec_dir, pq_path, args.repeat)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{total:,} recorded events (4 instruments, merged); Parquet: the first {n_pq:,} of "
          f"them; medians of {args.repeat}, cells interleaved in a shuffled order")
    pq_rate = res["rates"]["Parquet (pyarrow) -> table"]
    for k, v in res["rates"].items():
        lo, hi = res["spread"][k]
        print(f"  {k:<32}{v:>14,.0f} events/s  (min {lo:,.0f}, max {hi:,.0f})  "
              f"x Parquet {v / pq_rate:.2f}")  # fmt: skip
    la, ref = res["load average"], res["ref loop ms"]
    print(f"  load average {la[0]:.2f} -> {la[1]:.2f}; reference loop (1 M additions) "
          f"{ref[0]:.1f} -> {ref[1]:.1f} ms")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run with 300 k events")
    ap.add_argument("--events", type=int, default=None, help="events in the recorded set")
    ap.add_argument("--compare", type=int, default=None,
                    help="events for the Python/JSON/Parquet/recorder comparisons")  # fmt: skip
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--impact-only", action="store_true",
                    help="only (g): producer throughput with vs without the recorder")  # fmt: skip
    ap.add_argument("--impact-events", type=int, default=None,
                    help="events the producer puts per (g) run (default 2 M, --quick 200 k)")  # fmt: skip
    ap.add_argument("--side-by-side", action="store_true",
                    help="compiled vs pure replay vs the Parquet table read, interleaved "
                         "(default 2 M events)")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of --side-by-side")
    args = ap.parse_args(argv)
    if args.side_by_side:
        return main_side_by_side(args)
    impact_n = args.impact_events or (200_000 if args.quick else 2_000_000)
    impact_repeats = 1 if args.quick else 3
    total = args.events or (300_000 if args.quick else 10_000_000)
    compare = args.compare or (100_000 if args.quick else 1_000_000)
    work = args.dir or tempfile.mkdtemp(prefix="ttxt-bench-replay-")
    rec_dir = os.path.join(work, "rec")
    os.makedirs(rec_dir, exist_ok=True)
    res: dict[str, Any] = {"events": total}
    if args.impact_only:
        try:
            generate(rec_dir, 4 * CHUNK * TEMPLATE_CHUNKS)
            impact = bench_recorder_impact(first_events(rec_dir, 20_000), impact_n,
                                           impact_repeats, work)  # fmt: skip
        finally:
            if args.dir is None:
                shutil.rmtree(work, ignore_errors=True)
        if args.json:
            print(msgspec.json.encode(impact).decode())
        else:
            print_impact(impact)
        return 0
    try:
        t = time.perf_counter()
        paths = generate(rec_dir, total)
        res["generate s"] = time.perf_counter() - t
        ours = sum(os.path.getsize(p) for p in paths)
        res["ours bytes/event"] = ours / total
        bench_batches(rec_dir, True)  # warm the page cache
        n, t = bench_batches(rec_dir, True)
        res["(a) batches events/s (CRC checked)"] = n / t
        n, t = bench_batches(rec_dir, False)
        res["(a) batches events/s (no CRC)"] = n / t
        n, t = bench_events(rec_dir, compare * 2)
        res["(b) python events/s"] = n / t
        evs = first_events(rec_dir, compare)
        for k, v in bench_jsonl(evs, os.path.join(work, "events.jsonl")).items():
            res[f"(c) jsonl {k}"] = v
        pq_res = bench_parquet(evs, os.path.join(work, "events.parquet"))
        for k, v in (pq_res or {"unavailable": float("nan")}).items():
            res[f"(d) parquet {k}"] = v
        for k, v in bench_recorder(evs, os.path.join(work, "recorder")).items():
            res[f"(f) recorder {k}"] = v
        impact = bench_recorder_impact(evs, impact_n, impact_repeats, work)
        res["(g) producer events/s alone"] = impact["alone events/s"]
        res["(g) producer events/s with recorder"] = impact["with recorder events/s"]
        res["(g) producer ratio with/without recorder"] = impact["ratio"]
        res["(g) producer ratio per CPU second"] = impact["cpu ratio"]
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(msgspec.json.encode(res).decode())
    else:
        width = max(map(len, res))
        for k, v in res.items():
            print(f"{k:<{width}}  {v:>16,.1f}" if isinstance(v, float) else f"{k:<{width}}  {v:>16,}")
        print()
        print_impact(impact)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
