"""Shared-memory ring (ShmQueue) against the usual inter-process transports.

One producer (this process) -> 1 and -> 3 consumer processes (spawned), trade-sized
events (MarketTrades with one Trade, 141 encoded bytes). Every transport is lossless
here (ShmQueue uses its ``block`` policy); broadcast to 3 consumers uses one channel per
consumer where the transport is point-to-point (mp.Queue, Pipe, faster-fifo, PUSH/PULL).

  per event  ShmQueue put(Struct) -> get() Struct (codec both ways); "ShmQueue raw"
             put_raw/get_raw of the encoded bytes; mp.Queue and faster-fifo put/get the
             Struct (pickled); mp.Pipe and zmq send/recv the encoded bytes (no codec)
  batched    ShmQueue put_many(numpy rows) -> get_batch() numpy records; mp.Pipe
             send_bytes of 100 records; faster-fifo put_many/get_many of 100 records
  latency    one-way put -> get at 50k events/s (p50/p99), default (spin then sleep)
             and busy-spin consumers; idle consumer CPU

Rates are events (or records) per second seen by EVERY consumer: N / (time from the
producer's first put to the last consumer's last get); medians of --repeat runs.

Usage: python benchmarks/bench_ring.py [--quick] [--repeat 3] [--only shm]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from ttxt_mp.codec import layout_for  # noqa: E402
from ttxt_mp.events import MarketTrades, Side, Trade  # noqa: E402
from ttxt_mp.queues import QueueEmpty  # noqa: E402

SPAWN = mp.get_context("spawn")
LAY = layout_for(MarketTrades)
POOL = 8192  # distinct events (unique trade ids defeat the codec string caches, as live)


def make(i: int, ts: int = 0) -> MarketTrades:
    return MarketTrades(
        exchange="binance", symbol="BTC/USDT", exch_ts=i, local_ts=ts,
        trades=(Trade(f"{1_000_000_000 + i}", 50_000.5 + i % 100, 0.01, Side.BUY, i),),
    )  # fmt: skip


def events() -> list[MarketTrades]:
    return [make(i) for i in range(POOL)]


def rows(n: int) -> np.ndarray:
    raw = b"".join(LAY.encode(e) for e in events())
    pool = np.frombuffer(raw, np.uint8).reshape(POOL, -1)
    return pool[np.arange(n) % POOL].copy()


def unique(tag: str) -> str:
    return f"bench-{os.getpid()}-{tag}-{time.monotonic_ns() % 10**9}"


# ------------------------------------------------------------------- transports
# Each: setup(ncons, batch) -> (producer_ctx, [consumer_ctx]); produce(ctx, n, batch);
# consume(ctx, n, batch) -> count (runs in the child); teardown(ctx).


class Shm:
    @staticmethod
    def setup(ncons, batch):
        from ttxt_mp.shm import ShmQueue

        name = unique("shm")
        q = ShmQueue.create(name, capacity=1 << 16, slot_size=192, policy="block")
        return q, [name] * ncons

    @staticmethod
    def consume(name, n, batch):
        from ttxt_mp.shm import ShmQueue

        with ShmQueue.attach(name, start="oldest") as c:
            yield
            if batch:
                got = 0
                while got < n:
                    got += len(c.get_batch(4096, timeout=None))
                return got
            get = c.get
            for _ in range(n):
                get()
            return n

    @staticmethod
    def wait_attached(q, ncons):
        while len(q.consumers()) < ncons:
            time.sleep(0.005)

    @staticmethod
    def produce(q, n, batch):
        if batch:
            rs = rows(batch)
            put_many = q.put_many
            for _ in range(n // batch):
                put_many(rs, kind=LAY.kind)
            return
        evs = events()
        put = q.put
        for _ in range(n // POOL):
            for ev in evs:
                put(ev)

    @staticmethod
    def teardown(q):
        q.close()
        q.unlink()


class ShmRaw(Shm):
    """put_raw(kind, bytes) -> get_raw() (kind, bytes): the recorder/replayer path, and
    the like-for-like comparison with the byte transports."""

    @staticmethod
    def consume(name, n, batch):
        from ttxt_mp.shm import ShmQueue

        with ShmQueue.attach(name, start="oldest") as c:
            yield
            get = c.get_raw
            for _ in range(n):
                get()
            return n

    @staticmethod
    def produce(q, n, batch):
        raw = [LAY.encode(e) for e in events()]
        put, kind = q.put_raw, LAY.kind
        for _ in range(n // POOL):
            for b in raw:
                put(kind, b)


class MpQueue:
    @staticmethod
    def setup(ncons, batch):
        qs = [SPAWN.Queue() for _ in range(ncons)]
        return qs, qs

    @staticmethod
    def consume(q, n, batch):
        yield
        get = q.get
        for _ in range(n):
            get()
        return n

    @staticmethod
    def produce(qs, n, batch):
        evs = events()
        puts = [q.put for q in qs]
        for _ in range(n // POOL):
            for ev in evs:
                for put in puts:
                    put(ev)

    teardown = staticmethod(lambda qs: None)


class Pipe:
    @staticmethod
    def setup(ncons, batch):
        pairs = [SPAWN.Pipe(duplex=False) for _ in range(ncons)]
        return [w for _, w in pairs], [r for r, _ in pairs]

    @staticmethod
    def consume(r, n, batch):
        yield
        recv = r.recv_bytes
        if batch:
            got = 0
            while got < n:
                got += len(recv()) // LAY.size(make(0))
            return got
        for _ in range(n):
            recv()
        return n

    @staticmethod
    def produce(ws, n, batch):
        sends = [w.send_bytes for w in ws]
        if batch:
            blob = rows(batch).tobytes()
            for _ in range(n // batch):
                for s in sends:
                    s(blob)
            return
        raw = [LAY.encode(e) for e in events()]
        for _ in range(n // POOL):
            for b in raw:
                for s in sends:
                    s(b)

    teardown = staticmethod(lambda ws: None)


class FasterFifo:
    @staticmethod
    def setup(ncons, batch):
        from faster_fifo import Queue

        qs = [Queue(max_size_bytes=64 << 20) for _ in range(ncons)]
        return qs, qs

    @staticmethod
    def consume(q, n, batch):
        yield
        if batch:
            got = 0
            while got < n:
                got += len(q.get_many(timeout=30, max_messages_to_get=4096))
            return got
        get = q.get
        for _ in range(n):
            get(timeout=30)
        return n

    @staticmethod
    def produce(qs, n, batch):
        if batch:
            recs = [r.tobytes() for r in rows(batch)]
            for _ in range(n // batch):
                for q in qs:
                    q.put_many(recs, timeout=30)
            return
        evs = events()
        for _ in range(n // POOL):
            for ev in evs:
                for q in qs:
                    q.put(ev, timeout=30)

    teardown = staticmethod(lambda qs: None)


class Zmq:
    pattern = "pushpull"

    @classmethod
    def setup(cls, ncons, batch):
        import zmq

        ctx = zmq.Context()
        socks, addrs = [], []
        for i in range(1 if cls.pattern == "pubsub" else ncons):
            s = ctx.socket(zmq.PUB if cls.pattern == "pubsub" else zmq.PUSH)
            s.setsockopt(zmq.SNDHWM, 0)
            addr = f"ipc:///tmp/{unique('zmq')}-{i}"
            s.bind(addr)
            socks.append(s)
            addrs.append(addr)
        if cls.pattern == "pubsub":
            addrs = addrs * ncons
        return (ctx, socks), [(cls.pattern, a) for a in addrs]

    @staticmethod
    def consume(arg, n, batch):
        import zmq

        pattern, addr = arg
        ctx = zmq.Context()
        s = ctx.socket(zmq.SUB if pattern == "pubsub" else zmq.PULL)
        s.setsockopt(zmq.RCVHWM, 0)
        if pattern == "pubsub":
            s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(addr)
        time.sleep(0.3)  # PUB/SUB slow joiner
        yield
        recv = s.recv
        for _ in range(n):
            recv()
        s.close()
        ctx.term()
        return n

    @staticmethod
    def produce(ctxsocks, n, batch):
        sends = [s.send for s in ctxsocks[1]]
        raw = [LAY.encode(e) for e in events()]
        for _ in range(n // POOL):
            for b in raw:
                for send in sends:
                    send(b)

    @staticmethod
    def teardown(ctxsocks):
        for s in ctxsocks[1]:
            path = s.getsockopt_string(zmq_last_endpoint()).removeprefix("ipc://")
            s.close(linger=0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        ctxsocks[0].term()


def zmq_last_endpoint() -> int:
    import zmq

    return zmq.LAST_ENDPOINT


class ZmqPubSub(Zmq):
    pattern = "pubsub"


TRANSPORTS = {
    "ShmQueue": Shm, "ShmQueue raw": ShmRaw, "mp.Queue": MpQueue, "mp.Pipe": Pipe, "faster-fifo": FasterFifo,
    "zmq PUSH/PULL": Zmq, "zmq PUB/SUB": ZmqPubSub,
}  # fmt: skip


def _child(tname, arg, n, batch, ready, results):
    gen = TRANSPORTS[tname].consume(arg, n, batch)
    next(gen)
    ready.put(os.getpid())
    try:
        next(gen)
    except StopIteration as stop:
        results.put((stop.value, time.perf_counter()))


def measure(tname: str, ncons: int, n: int, batch: int) -> float:
    t = TRANSPORTS[tname]
    pctx, cargs = t.setup(ncons, batch)
    ready, results = SPAWN.Queue(), SPAWN.Queue()
    procs = [SPAWN.Process(target=_child, args=(tname, a, n, batch, ready, results))
             for a in cargs]  # fmt: skip
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=60)
        if hasattr(t, "wait_attached"):
            t.wait_attached(pctx, ncons)
        t0 = time.perf_counter()
        t.produce(pctx, n, batch)
        ends = [results.get(timeout=300) for _ in procs]
        assert all(c >= n for c, _ in ends), ends
        return n / (max(e for _, e in ends) - t0)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        t.teardown(pctx)


# ------------------------------------------------------------------- latency / idle


def _lat_child(name, busy, n, results):
    from ttxt_mp.shm import ShmQueue

    lat = []
    with ShmQueue.attach(name, busy=busy) as c:
        results.put("ready")
        now = time.monotonic_ns
        for _ in range(n):
            ev = c.get()
            lat.append(now() - ev.local_ts)
    results.put(lat)


def latency(busy: bool, n: int, rate: int = 50_000) -> tuple[float, float]:
    from ttxt_mp.shm import ShmQueue

    name = unique("lat")
    q = ShmQueue.create(name, capacity=1 << 12, slot_size=256, policy="block")
    results = SPAWN.Queue()
    p = SPAWN.Process(target=_lat_child, args=(name, busy, n, results))
    try:
        p.start()
        results.get(timeout=60)
        Shm.wait_attached(q, 1)
        now = time.monotonic_ns
        step = 1_000_000_000 // rate
        nxt = now() + 10_000_000
        for i in range(n):
            while now() < nxt:
                pass
            q.put(make(i, now()))
            nxt += step
        lat = np.array(results.get(timeout=120)[n // 10 :]) / 1000  # drop warm-up
        return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    finally:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
        q.close()
        q.unlink()


def _idle_child(name, seconds, results):
    from ttxt_mp.shm import ShmQueue

    with ShmQueue.attach(name) as c:
        t0, c0 = time.monotonic(), time.process_time()
        try:
            c.get(timeout=seconds)
        except QueueEmpty:
            pass
        results.put((time.process_time() - c0) / (time.monotonic() - t0))


def idle_cpu(seconds: float) -> float:
    from ttxt_mp.shm import ShmQueue

    name = unique("idle")
    q = ShmQueue.create(name)
    results = SPAWN.Queue()
    p = SPAWN.Process(target=_idle_child, args=(name, seconds, results))
    try:
        p.start()
        return results.get(timeout=60) * 100
    finally:
        p.join(timeout=10)
        q.close()
        q.unlink()


# ------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small N, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--events", type=int, default=400_000, help="per-event N")
    ap.add_argument("--records", type=int, default=20_000_000, help="batched N")
    ap.add_argument("--only", help="substring of the transport names to run")
    a = ap.parse_args()
    if a.quick:
        a.repeat, a.events, a.records = 1, 20_480, 1_024_000
    a.events -= a.events % POOL

    rows_out: list[tuple[str, str, int, float]] = []
    plan = [("per event", t, 0, a.events) for t in TRANSPORTS] + [
        ("batched x1000", "ShmQueue", 1000, a.records),
        ("batched x100", "ShmQueue", 100, a.records // 4),
        ("batched x100", "mp.Pipe", 100, a.records // 4),
        ("batched x100", "faster-fifo", 100, a.records // 10),
    ]
    for kind, tname, batch, n in plan:
        if a.only and a.only not in tname:
            continue
        for ncons in (1, 3):
            rates = [measure(tname, ncons, n, batch) for _ in range(a.repeat)]
            r = statistics.median(rates)
            rows_out.append((kind, tname, ncons, r))
            print(f"  {kind:14} {tname:14} 1:{ncons}  {r / 1e6:8.2f} M/s", file=sys.stderr)

    base = {n: r for k, t, n, r in rows_out if k == "per event" and t == "mp.Queue"}
    print(f"\n{'mode':14} {'transport':14} {'fan':4} {'M/s':>9} {'x mp.Queue':>11}")
    for kind, tname, ncons, r in rows_out:
        ratio = f"{r / base[ncons]:10.1f}x" if ncons in base else ""
        print(f"{kind:14} {tname:14} 1:{ncons:<2} {r / 1e6:9.2f} {ratio:>11}")

    n_lat = 5_000 if a.quick else 25_000
    print(f"\none-way latency at 50k events/s, ShmQueue ({n_lat} events, median of runs):")
    for label, busy in (("default (spin 50us, then sleep)", False), ("busy spin", True)):
        runs = [latency(busy, n_lat) for _ in range(a.repeat)]
        p50 = statistics.median(x[0] for x in runs)
        p99 = statistics.median(x[1] for x in runs)
        print(f"  {label:34} p50 {p50:6.1f} us   p99 {p99:6.1f} us")
    print(f"idle consumer CPU: {idle_cpu(1.0 if a.quick else 3.0):.2f} % of a core")


if __name__ == "__main__":
    main()
