"""Redis Streams bus: events/s and latency from a producer to a remote consumer process.

A real ``redis-server`` on 127.0.0.1 (started here, no persistence). The same trade-sized
events (``MarketTrades`` with one ``Trade``) go from a producer to a consumer *process*
that decodes every one back into a Struct:

- ``ttxt per event``: one :func:`ttxt_mp.bus.format.encode_entry` entry per event,
  pipelined ``XADD`` (256 per round trip); the consumer is ``ttxt_mp.attach("redis://...")``
  (XREAD + the gap check + decode).
- ``ttxt batched``: entries of 512 events (the bridge's ``batch_events``), same consumer.
- ``plain redis-py``: the same codec bytes as one field per event, pipelined ``XADD``;
  the consumer a bare ``XREAD COUNT 1000`` loop + ``codec.decode``: what our framing,
  layout check and gap check cost.
- ``cryptofeed TradeStream``: cryptofeed 2.4's Redis Streams backend fed cryptofeed
  ``Trade`` objects (its writer task pipelines what its queue holds, fields as strings);
  the consumer XREADs them and builds the same Struct from the fields.
- ``bridge`` (when :mod:`ttxt_mp.bus.bridge` is importable): a shared-memory ring →
  the engine's bridge process → Redis → ``attach("redis://...")``; also its CPU time.

Cells run interleaved, order shuffled each repetition; medians of ``--repeat``. Latency:
``--rate`` events/s paced by the producer (each event sent at once, or flushed every
millisecond for the batched modes), one-way producer → consumer decode, p50/p99.

Run: ``python benchmarks/bench_bus.py --repeat 5 --events 200000`` (smoke:
``--repeat 1 --events 20000 --latency-events 2000``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402

from ttxt_mp import codec  # noqa: E402
from ttxt_mp import events as ev  # noqa: E402
from ttxt_mp.bus import format as fmt  # noqa: E402

RING = "bench-market"
PIPE_N = 256
BATCH = 512


def trade(i: int) -> ev.MarketTrades:
    now = time.time_ns()
    return ev.MarketTrades(exchange="venue1", symbol="BTC/USDT", exch_ts=now, local_ts=now,
                           trades=(ev.Trade(str(i), 30000.0 + i % 100, 0.01, ev.Side.BUY, now),))  # fmt: skip


# ---------------------------------------------------------------------- producers
def _meta(r: redis.Redis, engine: str) -> None:
    r.hset(fmt.meta_key(engine), mapping={"layout": fmt.layout_tag(), "rings": f'["{RING}"]',
                                          "format": str(fmt.FORMAT_VERSION)})  # fmt: skip


def _paced(n: int, rate: float | None):
    """Indexes 0..n-1, at ``rate`` per second when given (busy-waiting the schedule)."""
    t0 = time.perf_counter()
    for i in range(n):
        if rate:
            due = t0 + i / rate
            while time.perf_counter() < due:
                pass
        yield i


def produce_ttxt(url: str, engine: str, n: int, per_entry: int, rate: float | None) -> None:
    """Entries of ``per_entry`` events (paced: also one per elapsed millisecond), pipelined;
    paced runs send each entry at once."""
    r = redis.Redis.from_url(url)
    key = fmt.ring_stream_key(engine, RING)
    pipe = r.pipeline(transaction=False)
    recs: list = []
    last = time.perf_counter()
    for i in _paced(n, rate):
        recs.append(codec.encode(trade(i)))
        if len(recs) >= per_entry or (rate and time.perf_counter() - last >= 0.001):
            pipe.xadd(key, fmt.encode_entry(recs))
            recs, last = [], time.perf_counter()
            if rate or len(pipe) >= PIPE_N:
                pipe.execute()
    if recs:
        pipe.xadd(key, fmt.encode_entry(recs))
    pipe.execute()
    r.close()


def produce_plain(url: str, engine: str, n: int, rate: float | None) -> None:
    r = redis.Redis.from_url(url)
    key = f"plain:{engine}"
    pipe = r.pipeline(transaction=False)
    for i in _paced(n, rate):
        kind, payload = codec.encode(trade(i))
        pipe.xadd(key, {b"k": kind, b"p": payload})
        if rate or len(pipe) >= PIPE_N:
            pipe.execute()
    pipe.execute()
    r.close()


def produce_cryptofeed(url: str, engine: str, n: int, rate: float | None) -> None:
    from cryptofeed.backends.redis import TradeStream
    from cryptofeed.types import Trade

    port = int(url.rsplit(":", 1)[1].split("/")[0])

    async def main() -> None:
        cb = TradeStream(host="127.0.0.1", port=port, key=f"cf:{engine}")
        cb.start(asyncio.get_running_loop())
        for i in _paced(n, rate):
            now = time.time()
            await cb(Trade("VENUE1", "BTC-USDT", "buy", 0.01, 30000.0 + i % 100, now, id=str(i)), now)
            if rate or i % PIPE_N == 0:
                await asyncio.sleep(0)  # let its writer task run, as a feed handler does
        await cb.queue.join()
        await cb.stop()
        await asyncio.wait_for(cb.worker, 10)

    asyncio.run(main())


# ---------------------------------------------------------------------- consumers
def consume(kind: str, url: str, engine: str, n: int, conn: Any) -> None:
    """Child process: read ``n`` trades, decode each to a Struct; send timings back."""
    lat: list[int] = []
    got = 0
    first = 0.0
    if kind in ("ttxt", "bridge"):
        import ttxt_mp

        deadline = time.monotonic() + 30
        while True:  # the bridge publishes its meta once it tapped the ring
            try:
                feed = ttxt_mp.attach(f"{url}/{engine}", start="oldest")
                break
            except ttxt_mp.FeedNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        conn.send("ready")
        with feed:
            while got < n:
                e = feed.get(timeout=30)
                if type(e) is ev.MarketTrades:
                    if not got:
                        first = time.monotonic()
                    got += 1
                    lat.append(time.time_ns() - e.local_ts)
    else:
        r = redis.Redis.from_url(url)
        key = f"plain:{engine}" if kind == "plain" else f"cf:{engine}-VENUE1-BTC-USDT"
        cursor = b"0-0"
        conn.send("ready")
        while got < n:
            reply = r.xread({key: cursor}, count=1000, block=30_000)
            if not reply:
                raise TimeoutError(f"{kind}: no entry for 30 s after {got} events")
            if not got:
                first = time.monotonic()
            for eid, f in reply[0][1]:
                cursor = eid
                if kind == "plain":
                    e = codec.decode(int(f[b"k"]), f[b"p"])
                else:  # cryptofeed's fields, as strings
                    ts = float(f[b"timestamp"])
                    e = ev.MarketTrades(exchange=f[b"exchange"].decode(), symbol=f[b"symbol"].decode(),
                                        exch_ts=int(ts * 1e9), local_ts=int(float(f[b"receipt_timestamp"]) * 1e9),
                                        trades=(ev.Trade(f[b"id"].decode(), float(f[b"price"]), float(f[b"amount"]),
                                                         ev.Side.BUY, int(ts * 1e9)),))  # fmt: skip
                got += 1
                lat.append(time.time_ns() - e.local_ts)
        r.close()
    conn.send((first, time.monotonic(), got, lat))


# ---------------------------------------------------------------------- the bridge
def run_bridge(url: str, engine: str, conn: Any) -> None:
    """Child process: the engine's bridge publishing the ring ``<engine>-bench-market``."""
    import signal

    from ttxt_mp.bus.bridge import Bridge
    from ttxt_mp.config import BridgeConfig

    bridge = Bridge(engine, BridgeConfig(kind="redis", url=url, rings=["market"]), "bench", None)
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop_event.set())
    t0 = os.times()
    conn.send("up")
    asyncio.run(bridge.run())
    t = os.times()
    conn.send(t.user + t.system - t0.user - t0.system)  # after its imports: the run itself


def bridge_available() -> bool:
    try:
        import ttxt_mp.bus.bridge  # noqa: F401
    except ImportError:
        return False
    return True


def make_ring(engine: str) -> Any:
    """The ring the bridge taps; big enough that the bridge is never lapped in a cell."""
    from ttxt_mp.engine.naming import ring_name
    from ttxt_mp.shm import ShmQueue

    return ShmQueue.create(ring_name(engine, "bench", "market"), capacity=1 << 18, slot_size=256)


# ---------------------------------------------------------------------- one cell
def cell(srv_url: str, mode: str, n: int, rate: float | None) -> dict[str, float]:
    engine = f"b{random.getrandbits(40):x}"
    ctx = mp.get_context("fork")
    admin = redis.Redis.from_url(srv_url)
    kind = {"ttxt per event": "ttxt", "ttxt batched": "ttxt", "plain redis-py": "plain",
            "cryptofeed TradeStream": "cryptofeed", "bridge": "bridge"}[mode]  # fmt: skip
    ring = bproc = bconn = None
    if kind == "ttxt":
        _meta(admin, engine)
    if kind == "bridge":
        ring = make_ring(engine)
        bconn, child = ctx.Pipe()
        bproc = ctx.Process(target=run_bridge, args=(srv_url, engine, child))
        bproc.start()
        bconn.recv()
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=consume, args=(kind, srv_url, engine, n, child))
    proc.start()
    try:
        if not parent.poll(60):
            raise TimeoutError(f"{mode}: the consumer did not start")
        parent.recv()
        t0 = time.monotonic()
        if mode == "ttxt per event":
            produce_ttxt(srv_url, engine, n, 1, rate)
        elif mode == "ttxt batched":
            produce_ttxt(srv_url, engine, n, BATCH, rate)
        elif kind == "plain":
            produce_plain(srv_url, engine, n, rate)
        elif kind == "cryptofeed":
            produce_cryptofeed(srv_url, engine, n, rate)
        else:
            assert ring is not None
            for i in _paced(n, rate):
                ring.put(trade(i))
        t_sent = time.monotonic()
        if not parent.poll(120):
            raise TimeoutError(f"{mode}: the consumer did not finish")
        first, last, got, lat = parent.recv()
        proc.join(10)
        out = {"events_s": got / (last - t0), "send_s": n / (t_sent - t0)}
        lat.sort()
        out["p50_us"] = lat[len(lat) // 2] / 1e3
        out["p99_us"] = lat[int(len(lat) * 0.99)] / 1e3
        if bproc is not None and bconn is not None:
            bproc.terminate()
            if bconn.poll(20) and rate is None:  # CPU of a full-speed run (incl. its idle end)
                out["bridge_cpu_s_per_100k"] = bconn.recv() / (n / 1e5)
        return out
    finally:
        for p in (proc, bproc):
            if p is not None and p.is_alive():
                p.kill()
                p.join(5)
        if ring is not None:
            from ttxt_mp.shm.objects import remove_ring_objects

            ring.close()
            remove_ring_objects(ring.name)
        for k in admin.scan_iter(match=f"*{engine}*"):
            admin.delete(k)
        admin.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--latency-events", type=int, default=20_000)
    p.add_argument("--rate", type=float, default=10_000.0, help="events/s of the latency runs")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--modes", default="", help="comma-separated subset of the modes")
    args = p.parse_args(argv)
    from redis_server import RedisServer

    modes = ["ttxt per event", "ttxt batched", "plain redis-py", "cryptofeed TradeStream"]
    try:
        import cryptofeed  # noqa: F401
    except ImportError as e:
        print(f"(cryptofeed not installed: {e}; pip install cryptofeed — skipped)")
        modes.remove("cryptofeed TradeStream")
    if bridge_available():
        modes.append("bridge")
    if args.modes:
        modes = [m for m in modes if m in args.modes.split(",")]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with RedisServer() as srv:
        for rep in range(args.repeat):
            cells = [(m, "throughput") for m in modes] + [(m, "latency") for m in modes]
            random.shuffle(cells)
            for mode, what in cells:
                n = args.events if what == "throughput" else args.latency_events
                rate = None if what == "throughput" else args.rate
                res = cell(srv.url, mode, n, rate)
                results.setdefault((mode, what), []).append(res)
                print(f"rep {rep + 1} {what:10} {mode:24} " + " ".join(
                    f"{k}={v:,.1f}" for k, v in res.items()), flush=True)  # fmt: skip
    load = os.getloadavg()
    print(f"\nmedians of {args.repeat}; {args.events:,} events (throughput), "
          f"{args.latency_events:,} at {args.rate:,.0f}/s (latency); load avg {load[0]:.1f}")
    base = statistics.median(r["events_s"] for r in results.get(("cryptofeed TradeStream", "throughput"), [{"events_s": 0.0}]))
    print("| mode | events/s | x cryptofeed | p50 µs @rate | p99 µs @rate | bridge CPU s / 100k ev |")
    print("|---|---|---|---|---|---|")
    for m in modes:
        thr = statistics.median(r["events_s"] for r in results[(m, "throughput")])
        lat = results[(m, "latency")]
        p50 = statistics.median(r["p50_us"] for r in lat)
        p99 = statistics.median(r["p99_us"] for r in lat)
        cpu = [r["bridge_cpu_s_per_100k"] for r in results[(m, "throughput")] if "bridge_cpu_s_per_100k" in r]
        ratio = f"{thr / base:.2f}x" if base else "–"
        print(f"| {m} | {thr:,.0f} | {ratio} | {p50:,.0f} | {p99:,.0f} | "
              f"{statistics.median(cpu):.2f} |" if cpu else
              f"| {m} | {thr:,.0f} | {ratio} | {p50:,.0f} | {p99:,.0f} | – |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
