"""Engine throughput: one process per connector (ttxt-mp) vs both connectors in one
asyncio process (the ttxt2 model), under the same simulator load, in one run.

    python benchmarks/bench_engine.py [--quick] [--runs 3] [--seconds 8] [--rate R]
                                      [--blast 150000 | --no-blast]

The simulator runs in its own process and pushes Binance and Bybit diff-depth, trades and
klines for two symbols each, its market moving at ``--rate`` book changes per second per
symbol. With ``--blast N`` (default on) the trade streams run in the simulator's blast mode
(``ttxt_mp/sim/blast.py``): N pre-encoded trade frames/s per connection and symbol written in
bulk, so the connectors, not the simulator, are the bottleneck; the market then runs at a
moderate default ``--rate`` (books still sync and depth still flows). Without blast the
simulator's market generator saturates first on a small machine and the ratio measures it.
(a) two connector processes, each publishing into its own shared-memory ring;
(b) one process running both connectors on one event loop, publishing into the same rings.
Throughput is read from the rings' headers (events published), so measuring costs the
connectors nothing. Latency: connector receive (``local_ts``) -> consumer receive, and
simulator event time (``exch_ts``, ms resolution) -> consumer receive, from a consumer
attached to both rings during a separate, rate-limited phase.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ttxt_mp import events as ev
from ttxt_mp.config import load_config
from ttxt_mp.engine.demo import SimProcess, demo_config_text
from ttxt_mp.engine.naming import ring_name
from ttxt_mp.queues import QueueEmpty

CONNECTORS = ("binance", "bybit")
CORE = CONNECTORS  # the simulated venues it runs (spot)


def _one_process(config: str, engine: str) -> None:
    """Child of mode (b): both connectors, one loop, one process."""
    import asyncio

    from ttxt_mp.connectors.registry import create_connector
    from ttxt_mp.connectors.run import open_market_publisher
    from ttxt_mp.engine.loop import run

    cfg = load_config(config)
    opened = [open_market_publisher(engine, c.id, cfg.rings.market) for c in cfg.connectors]
    conns = [create_connector(c, pub) for c, (pub, _) in zip(cfg.connectors, opened, strict=True)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: [c.stop() for c in conns])
        await asyncio.gather(*(c.run() for c in conns))

    try:
        run(main())
    finally:
        for _, cleanup in opened:
            cleanup()


def _spawn(mode: str, config: Path, engine: str) -> list[subprocess.Popen]:
    env = dict(os.environ, TTXT_LOG_LEVEL="ERROR")
    if mode == "a":
        return [
            subprocess.Popen([sys.executable, "-m", "ttxt_mp.connectors.run", "--engine", engine,
                              "--config", str(config), "--connector", c],
                             stdout=subprocess.DEVNULL, env=env)  # fmt: skip
            for c in CONNECTORS
        ]
    return [subprocess.Popen([sys.executable, __file__, "--child-one-process", str(config),
                              engine], env=env)]  # fmt: skip


def _published(engine: str) -> int:
    from ttxt_mp.shm import ring_stats

    total = 0
    for c in CONNECTORS:
        try:
            total += ring_stats(ring_name(engine, c, "market"))["events"]
        except Exception:
            pass
    return total


def _wait_rings(engine: str, timeout: float = 20.0) -> None:
    from ttxt_mp.shm import ring_stats

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(ring_stats(ring_name(engine, c, "market"))["events"] > 10 for c in CONNECTORS):
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("connectors did not start publishing")


def _cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            total += int(parts[11]) + int(parts[12])
        except (FileNotFoundError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def measure(mode: str, config: Path, seconds: float, sim: SimProcess, tag: str) -> dict:
    engine = f"bench{mode}{tag}"
    procs = _spawn(mode, config, engine)
    try:
        _wait_rings(engine)
        time.sleep(1.0)  # books synced, steady state
        pids = [p.pid for p in procs] + [sim.proc.pid]
        n0, c0, t0 = _published(engine), _cpu(pids[:-1]), time.monotonic()
        s0 = _cpu([sim.proc.pid])
        time.sleep(seconds)
        n1, c1, t1 = _published(engine), _cpu(pids[:-1]), time.monotonic()
        s1 = _cpu([sim.proc.pid])
        lat = latency(engine, 2000)
        return {"rate": (n1 - n0) / (t1 - t0), "cpu": (c1 - c0) / (t1 - t0),
                "sim_cpu": (s1 - s0) / (t1 - t0), **lat}  # fmt: skip
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def latency(engine: str, n: int) -> dict:
    from ttxt_mp.client import attach

    local, exch = [], []
    with attach(engine, kinds=["Orderbook", "MarketTrades"]) as feed:
        deadline = time.monotonic() + 10
        while len(local) < n and time.monotonic() < deadline:
            try:
                e = feed.get(timeout=0.5)
            except QueueEmpty:
                continue
            now = time.time_ns()
            if isinstance(e, ev.Orderbook | ev.MarketTrades) and e.local_ts:
                local.append((now - e.local_ts) / 1e3)
                if e.exch_ts:
                    exch.append((now - e.exch_ts) / 1e3)
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1] if len(xs) > 10 else float("nan")  # noqa: E731
    return {"lat_p50": q(local, 50), "lat_p99": q(local, 99), "exch_p50": q(exch, 50),
            "exch_p99": q(exch, 99)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rate", type=float, default=None,
                    help="book changes/s per symbol (default 2000 with --blast, else 40000)")
    ap.add_argument("--blast", type=float, default=150000.0, metavar="N",
                    help="simulator blast mode: N trade frames/s per connection and symbol")
    ap.add_argument("--no-blast", dest="blast", action="store_const", const=0.0)
    ap.add_argument("--child-one-process", nargs=2, metavar=("CONFIG", "ENGINE"))
    args = ap.parse_args()
    if args.child_one_process:
        _one_process(*args.child_one_process)
        return
    if args.quick:
        args.runs, args.seconds = 1, 3.0
    if args.rate is None:
        args.rate = 2000.0 if args.blast else 40000.0
    extra = ["--updates-per-sec", str(args.rate), "--trades-per-sec", "200"]
    if args.blast:
        extra += ["--blast-trades", str(args.blast)]
    sim = SimProcess(["BTC/USDT", "ETH/USDT"], venues=CORE, seed=3, extra=extra)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "bench.toml"
            cfg.write_text(demo_config_text(sim.host_port, "bench", venues=CORE))
            res: dict[str, list[dict]] = {"a": [], "b": []}
            for i in range(args.runs):
                for mode in ("a", "b"):
                    res[mode].append(measure(mode, cfg, args.seconds, sim, f"{os.getpid()}_{i}"))
                    r = res[mode][-1]
                    print(f"run {i} mode {mode}: {r['rate']:,.0f} events/s, connectors CPU "
                          f"{r['cpu']:.2f} cores, sim CPU {r['sim_cpu']:.2f}", flush=True)  # fmt: skip
    finally:
        sim.stop()
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in res.items()}
    blast = f", blast {args.blast:,.0f} trade frames/s/symbol" if args.blast else ", no blast"
    print(f"\nEngine throughput, median of {args.runs} runs x {args.seconds:.0f}s, "
          f"simulator at {args.rate:,.0f} changes/s/symbol{blast}, 2 venues x 2 symbols\n")  # fmt: skip
    print("| mode | events/s | connector CPU (cores) | sim CPU | recv->consumer p50/p99 µs | exch_ts->consumer p50/p99 µs |")
    print("|---|---|---|---|---|---|")
    for m, label in (("a", "(a) one process per connector"), ("b", "(b) both in one asyncio process")):
        r = med[m]
        print(f"| {label} | {r['rate']:,.0f} | {r['cpu']:.2f} | {r['sim_cpu']:.2f} | "
              f"{r['lat_p50']:.0f} / {r['lat_p99']:.0f} | {r['exch_p50']:.0f} / {r['exch_p99']:.0f} |")  # fmt: skip
    print(f"\nratio (a)/(b) = {med['a']['rate'] / med['b']['rate']:.2f} (target >= 1.7)")


if __name__ == "__main__":
    main()
