"""The bridge's own capacity: events/s from a shared-memory ring into Redis, and its CPU.

Why this shape: a Python producer puts ~130k events/s, less than the bridge moves, so a
live run would measure the producer. Here the bridge process attaches to the ring, is
SIGSTOPped, the ring is filled with N events (capacity > N: no lap), and the clock runs
from SIGCONT until the stream's last entry ends at event N (polled in Redis every 2 ms).
Peer, same ring and events, same Redis: a plain redis-py loop reading the ring with
``get_batch`` and writing one ``XADD`` per event, pipelined 512 at a time (what a bridge
without batching into entries would do). Rounds interleaved in a shuffled order, medians.

    python benchmarks/bench_bridge.py                 # full: 5 rounds of 500k events
    python benchmarks/bench_bridge.py --n 100000 --rounds 2   # smoke
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the redis-server runner and ring producer of the tests

import redis  # noqa: E402
from bridge_helpers import BridgeProcess, bridge_config, producing  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from rss_sampling import cpu_seconds  # noqa: E402

from ttxt_mp import codec  # noqa: E402
from ttxt_mp.bus import format as bf  # noqa: E402
from ttxt_mp.shm import ShmQueue  # noqa: E402


def _last_end(r: redis.Redis, key: str) -> int:
    got = r.xrevrange(key, count=1)
    return int(got[0][1][b"x"]) if got else -1


def run_bridge(srv: RedisServer, n: int, tmp: Path, i: int) -> tuple[float, float]:
    engine = f"bb{os.getpid()}_{i}"
    key = bf.ring_stream_key(engine, "binance-market")
    r = redis.Redis.from_url(srv.url)
    with producing(engine, capacity=1 << 21) as prod:
        br = BridgeProcess(engine, bridge_config(tmp, engine, srv.url,
                                                 "max_buffer_mb = 1024\nmaxlen = 10000000"))
        try:
            br.wait(lambda x: x["state"] == "UP" and x.get("detail", {}).get("rings"), 30, "up")
            os.kill(br.proc.pid, signal.SIGSTOP)
            prod.put(n)
            prod.start(rate=0, limit=prod.count)  # serves state requests, as a connector does
            c0 = cpu_seconds(br.proc.pid)
            t0 = time.perf_counter()
            os.kill(br.proc.pid, signal.SIGCONT)
            while _last_end(r, key) < n:
                time.sleep(0.002)  # polling the result of a timed run, not synchronising
            dt = time.perf_counter() - t0
            cpu = cpu_seconds(br.proc.pid) - c0
        finally:
            os.kill(br.proc.pid, signal.SIGCONT)
            br.stop()
            r.delete(key, bf.state_key(engine, "binance-market"), bf.meta_key(engine))
            r.close()
    return n / dt, cpu / n * 1e5


def run_plain(srv: RedisServer, n: int, i: int) -> tuple[float, float]:
    engine = f"bp{os.getpid()}_{i}"
    key = f"plain:{engine}"
    r = redis.Redis.from_url(srv.url)
    with producing(engine, capacity=1 << 21) as prod:
        cons = ShmQueue.attach(prod.ring, start="latest")
        prod.put(n)
        tag = bf.layout_tag()
        t0, c0 = time.perf_counter(), time.process_time()
        done = 0
        pipe = r.pipeline(transaction=False)
        while done < n:
            recs = cons.get_batch(4096, timeout=0)
            kinds, plens = recs["kind"].tolist(), recs["plen"].tolist()
            for j in range(len(recs)):
                payload = recs["payload"][j].tobytes()[: plens[j]]
                pipe.xadd(key, {b"v": tag, b"n": b"1", b"e": bf.pack_raw([(kinds[j], payload)])})
                done += 1
                if len(pipe) >= 512:
                    pipe.execute()
        pipe.execute()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        cons.close()
        r.delete(key)
        r.close()
    return n / dt, cpu / n * 1e5


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=500_000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    codec.registry_hash()
    res: dict[str, list[tuple[float, float]]] = {"bridge (entries of <=512)": [],
                                                  "plain redis-py XADD per event": []}
    with RedisServer() as srv, tempfile.TemporaryDirectory() as tmp:
        for rnd in range(a.rounds):
            order = list(res)
            random.shuffle(order)
            for name in order:
                if name.startswith("bridge"):
                    res[name].append(run_bridge(srv, a.n, Path(tmp), rnd))
                else:
                    res[name].append(run_plain(srv, a.n, rnd))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {a.n:,} BookTicker "
          f"events per round, {a.rounds} rounds, medians")
    print("| path | events/s | CPU s per 100k events |\n|---|---|---|")
    base = statistics.median(x[0] for x in res["plain redis-py XADD per event"])
    for name, xs in res.items():
        rate = statistics.median(x[0] for x in xs)
        cpu = statistics.median(x[1] for x in xs)
        print(f"| {name} | {rate:,.0f} ({rate / base:.1f}x) | {cpu:.2f} |")


if __name__ == "__main__":
    main()
