"""Shared-memory ring (ShmQueue) against the usual inter-process transports.

One producer (this process) -> 1 and -> 3 consumer processes (spawned). Events
(``--event``): ``trades`` (MarketTrades with one Trade, 141 encoded bytes), ``book``
(Orderbook, 10 levels per side) or ``kline``. Every transport is lossless here (ShmQueue
uses its ``block`` policy); broadcast to 3 consumers uses one channel per consumer where
the transport is point-to-point (mp.Queue, Pipe, faster-fifo, PUSH/PULL).

  per event  ShmQueue put(Struct) -> get() Struct (codec both ways; the compiled ring
             ends unless TTXT_MP_PURE=1); "ShmQueue raw" put_raw/get_raw of the encoded
             bytes; mp.Queue and faster-fifo put/get the Struct (pickled); mp.Pipe and
             zmq send/recv the encoded bytes (no codec); "zmq PUB/SUB+msgpack" sends
             msgspec msgpack of the Struct and decodes it typed (Structs in and out)
  batched    ShmQueue put_many(numpy rows) -> get_batch() numpy records; mp.Pipe and zmq
             PUB/SUB one message of N records; faster-fifo put_many/get_many; "numpy
             copy": one process copying the same slot bytes (192 per record) in blocks
  latency    one-way put -> get at 50k events/s (p50/p99), default (adaptive spin, then
             sleep) and busy-spin consumers; idle consumer CPU
  feed       (``--feed``) two rings -> one consumer process at 10k events/s in total:
             end-to-end p50/p99 and the consumer's CPU, through the merged ``Feed``
             (rings served from the calling thread) and through the former design (one
             reader thread per ring into a SimpleQueue); idle CPU of a two-ring feed

Cells (transport x fan-out) run interleaved: every repetition runs each once, in a fresh
shuffled order, so drift cannot land on one row; figures are medians of ``--repeat``.
Rates are events (or records) per second seen by EVERY consumer: N / (time from the
producer's first put to the last consumer's last get). Machine load: the load average
and a fixed reference loop's time are printed.

Usage: python benchmarks/bench_ring.py [--quick] [--repeat 5] [--only shm] [--event book]
       python benchmarks/bench_ring.py --feed [--quick] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_codec  # noqa: E402
import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from ttxt_mp.codec import layout_for  # noqa: E402
from ttxt_mp.events import MarketTrades, Side, Trade  # noqa: E402
from ttxt_mp.queues import QueueEmpty  # noqa: E402

SPAWN = mp.get_context("spawn")
POOL = 8192  # distinct events (unique trade ids defeat the codec string caches, as live)
EVENT_ENV = "BENCH_RING_EVENT"
"""The event (trades, book, kline): set by main, inherited by the spawned consumers."""


def make_trades(i: int, ts: int = 0) -> MarketTrades:
    return MarketTrades(
        exchange="binance", symbol="BTC/USDT", exch_ts=i, local_ts=ts,
        trades=(Trade(f"{1_000_000_000 + i}", 50_000.5 + i % 100, 0.01, Side.BUY, i),),
    )  # fmt: skip


MAKERS = {"trades": make_trades, "book": bench_codec.book, "kline": bench_codec.kline}
make = MAKERS[os.environ.get(EVENT_ENV, "trades")]
LAY = layout_for(type(make(0)))
SLOT = (32 + max(LAY.size(make(i)) for i in range(64)) + 63) // 64 * 64
"""One event per slot (a 10+10 book needs 448 bytes, a trade 192)."""


def events() -> list[Any]:
    return [make(i) for i in range(POOL)]


_EVENTS: list[Any] = []


def events_cached() -> list[Any]:
    """``events()`` built once per process (the producers reuse the same Structs)."""
    if not _EVENTS:
        _EVENTS.extend(events())
    return _EVENTS


def raw_cached() -> list[bytes]:
    """The encoded events, built once per process (outside the timed part)."""
    if not _RAW:
        _RAW.extend(LAY.encode(e) for e in events_cached())
    return _RAW


_RAW: list[bytes] = []
_ROWS: dict[int, np.ndarray] = {}


def rows(n: int) -> np.ndarray:
    """``n`` encoded records as uint8 rows (cached per ``n``)."""
    if n not in _ROWS:
        pool = np.frombuffer(b"".join(raw_cached()), np.uint8).reshape(POOL, -1)
        _ROWS[n] = pool[np.arange(n) % POOL].copy()
    return _ROWS[n]


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
        q = ShmQueue.create(name, capacity=1 << 16, slot_size=SLOT, policy="block")
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
        evs = events_cached()
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
        raw = raw_cached()
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
        evs = events_cached()
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
        raw = raw_cached()
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
        evs = events_cached()
        for _ in range(n // POOL):
            for ev in evs:
                for q in qs:
                    q.put(ev, timeout=30)

    teardown = staticmethod(lambda qs: None)


class Zmq:
    pattern = "pushpull"
    msgpack = False  # True: Structs in and out (msgspec msgpack), else encoded bytes

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
        return (ctx, socks, cls.msgpack), [(cls.pattern, a, cls.msgpack) for a in addrs]

    @staticmethod
    def consume(arg, n, batch):
        import zmq

        pattern, addr, structs = arg
        ctx = zmq.Context()
        s = ctx.socket(zmq.SUB if pattern == "pubsub" else zmq.PULL)
        s.setsockopt(zmq.RCVHWM, 0)
        if pattern == "pubsub":
            s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(addr)
        time.sleep(0.3)  # PUB/SUB slow joiner
        yield
        recv = s.recv
        got = 0
        if batch:  # one message of `batch` records (bytes, or a msgpack array of Structs)
            dec = msgspec.msgpack.Decoder(list[type(make(0))]).decode if structs else None
            while got < n:
                m = recv()
                got += len(dec(m)) if dec else len(m) // LAY.size(make(0))
        elif structs:
            dec = msgspec.msgpack.Decoder(type(make(0))).decode
            for _ in range(n):
                dec(recv())
            got = n
        else:
            for _ in range(n):
                recv()
            got = n
        s.close()
        ctx.term()
        return got

    @staticmethod
    def produce(ctxsocks, n, batch):
        _, socks, structs = ctxsocks
        sends = [s.send for s in socks]
        enc = msgspec.msgpack.Encoder().encode
        if batch:
            evs = events_cached()[:batch]
            blob = None if structs else rows(batch).tobytes()
            for _ in range(n // batch):
                m = enc(evs) if structs else blob
                for send in sends:
                    send(m)
            return
        if structs:
            for _ in range(n // POOL):
                for ev in events_cached():
                    b = enc(ev)
                    for send in sends:
                        send(b)
            return
        raw = raw_cached()
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


class ZmqMsgpack(Zmq):
    pattern = "pubsub"
    msgpack = True


TRANSPORTS = {
    "ShmQueue": Shm, "ShmQueue raw": ShmRaw, "mp.Queue": MpQueue, "mp.Pipe": Pipe, "faster-fifo": FasterFifo,
    "zmq PUSH/PULL": Zmq, "zmq PUB/SUB": ZmqPubSub, "zmq PUB/SUB+msgpack": ZmqMsgpack,
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
            q.put(make_trades(i, now()))
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


# ------------------------------------------------------------------- numpy reference


def numpy_copy_rate(n: int, batch: int) -> float:
    """Records/s of copying the same slot bytes (SLOT per record) in blocks of ``batch``
    from a ring-sized array to another, in one process: the memory-bandwidth ceiling."""
    src = np.ones((1 << 16, SLOT), np.uint8)
    dst = np.empty((batch, SLOT), np.uint8)
    t = time.perf_counter()
    i = 0
    for _ in range(n // batch):
        j = i % ((1 << 16) - batch)
        np.copyto(dst, src[j : j + batch])
        i += batch
    return n // batch * batch / (time.perf_counter() - t)


# ------------------------------------------------------------------- merged feed


class _ThreadFeed:
    """The former multi-ring Feed: one reader thread per ring into a SimpleQueue."""

    def __init__(self, sources):
        import queue
        import threading

        self.q = queue.SimpleQueue()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pump, args=(s,), daemon=True)
                        for s in sources]  # fmt: skip
        for t in self.threads:
            t.start()

    def _pump(self, src):
        while not self.stop.is_set():
            try:
                self.q.put(src.get(timeout=0.2))
            except QueueEmpty:
                continue

    def get(self, timeout=None):
        return self.q.get(timeout=timeout)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=1)


def _feed_child(names, mode, n, idle_s, results):
    from ttxt_mp.client import Feed
    from ttxt_mp.shm import ShmQueue

    if mode == "ring":  # one ring, a default consumer (adaptive spin, then sleep)
        cs = [ShmQueue.attach(names[0])]
        feed = cs[0]
    else:  # as attach() opens several rings: their own wait does not spin (the feed does)
        cs = [ShmQueue.attach(nm, spin_us=0.0) for nm in names]
        feed = Feed(cs) if mode == "feed" else _ThreadFeed(cs)
    try:
        if idle_s:
            t0, c0 = time.monotonic(), time.process_time()
            with contextlib.suppress(QueueEmpty, Exception):
                feed.get(timeout=idle_s)
            results.put((time.process_time() - c0) / (time.monotonic() - t0))
            return
        results.put("ready")
        lat = []
        now = time.monotonic_ns
        feed.get(timeout=30)  # the first event starts the clock
        t0, c0 = time.monotonic(), time.process_time()
        for _ in range(n - 1):
            e = feed.get(timeout=30)
            lat.append(now() - e.local_ts)
        results.put((lat, (time.process_time() - c0) / (time.monotonic() - t0)))
    finally:
        feed.close()
        for c in cs:
            c.close()


def feed_run(mode: str, n: int, rate: int = 10_000, idle_s: float = 0.0):
    """(p50 us, p99 us, consumer CPU %) at ``rate`` events/s over two rings (mode
    "ring": one), or the idle CPU % with ``idle_s``."""
    from ttxt_mp.shm import ShmQueue

    qs = [ShmQueue.create(unique(f"feed{i}"), capacity=1 << 12, slot_size=256, policy="block")
          for i in range(2)]  # fmt: skip
    results = SPAWN.Queue()
    p = SPAWN.Process(target=_feed_child, args=([q.name for q in qs], mode, n, idle_s, results))
    try:
        p.start()
        if idle_s:
            return results.get(timeout=60) * 100
        results.get(timeout=60)
        Shm.wait_attached(qs[0], 1)
        Shm.wait_attached(qs[1], 0 if mode == "ring" else 1)
        now = time.monotonic_ns
        step = 1_000_000_000 // rate
        nxt = now() + 10_000_000
        for i in range(n):
            while now() < nxt:
                pass
            qs[0 if mode == "ring" else i & 1].put(make_trades(i, now()))
            nxt += step
        lat, cpu = results.get(timeout=120)
        lat = np.array(lat[n // 10 :]) / 1000  # drop warm-up
        return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), cpu * 100
    finally:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
        for q in qs:
            q.close()
            q.unlink()


def reference() -> float:
    return bench_codec.reference()


def load_note(refs: list[float], loads: tuple[float, float]) -> str:
    return (f"load average {loads[0]:.2f} -> {loads[1]:.2f}; reference loop median "
            f"{statistics.median(refs) * 1e3:.1f} ms")  # fmt: skip


def feed_main(a) -> None:
    n = 5_000 if a.quick else 30_000
    cells = ["feed", "threads", "ring"]
    got: dict[str, list] = {c: [] for c in cells}
    idle: dict[str, list] = {c: [] for c in cells}
    refs, load0 = [], os.getloadavg()[0]
    rng = random.Random(11)
    for _ in range(a.repeat):
        rng.shuffle(cells)
        refs.append(reference())
        for c in cells:
            got[c].append(feed_run(c, n))
            idle[c].append(feed_run(c, 0, idle_s=1.0 if a.quick else 3.0))
    print(f"two rings -> one consumer process, 10k events/s in total ({n} events), "
          f"{a.repeat} interleaved repetitions, medians; "
          f"{load_note(refs, (load0, os.getloadavg()[0]))}")  # fmt: skip
    print("| consumer | p50 us | p99 us | CPU at 10k/s (% of a core) | idle CPU (%) |")
    print("|---|---|---|---|---|")
    for c, label in (("feed", "Feed over 2 rings (calling thread, wait set)"),
                     ("threads", "former Feed over 2 rings (thread per ring)"),
                     ("ring", "one ring, default ShmQueue consumer")):  # fmt: skip
        p50, p99, cpu = (statistics.median(x[k] for x in got[c]) for k in range(3))
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {cpu:.1f} | {statistics.median(idle[c]):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small N, one repeat")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--events", type=int, default=400_000, help="per-event N")
    ap.add_argument("--records", type=int, default=20_000_000, help="batched N")
    ap.add_argument("--only", help="comma-separated substrings of the transport names to run")
    ap.add_argument("--event", choices=sorted(MAKERS), default="trades")
    ap.add_argument("--feed", action="store_true", help="the merged two-ring feed instead")
    ap.add_argument("--no-latency", action="store_true", help="skip latency and idle CPU")
    a = ap.parse_args()
    if a.event != os.environ.get(EVENT_ENV, "trades"):  # the children must build the same
        os.environ[EVENT_ENV] = a.event
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if a.quick:
        a.repeat, a.events, a.records = min(a.repeat, 2), 16_384, 1_024_000
    a.events -= a.events % POOL
    if a.feed:
        return feed_main(a)

    plan = [("per event", t, 0, a.events) for t in TRANSPORTS] + [
        ("batched x1000", "ShmQueue", 1000, a.records),
        ("batched x1000", "mp.Pipe", 1000, a.records // 2),
        ("batched x1000", "zmq PUB/SUB", 1000, a.records // 2),
        ("batched x1000", "zmq PUB/SUB+msgpack", 1000, a.records // 20),
        ("batched x100", "ShmQueue", 100, a.records // 4),
        ("batched x100", "mp.Pipe", 100, a.records // 4),
        ("batched x100", "faster-fifo", 100, a.records // 10),
    ]
    wanted = a.only.split(",") if a.only else None
    cells = [(k, t, b, n, c) for k, t, b, n in plan for c in (1, 3)
             if wanted is None or any(w in t for w in wanted)]  # fmt: skip
    rates: dict[tuple, list[float]] = {c: [] for c in cells}
    npy: list[float] = []
    refs, load0 = [], os.getloadavg()[0]
    rng = random.Random(11)
    for rep in range(a.repeat):
        rng.shuffle(cells)
        refs.append(reference())
        npy.append(numpy_copy_rate(a.records // 4, 1000))
        for cell in cells:
            kind, tname, batch, n, ncons = cell
            rates[cell].append(measure(tname, ncons, n, batch))
            print(f"  rep {rep}: {kind:14} {tname:20} 1:{ncons}  {rates[cell][-1] / 1e6:8.2f} M/s",
                  file=sys.stderr)  # fmt: skip
    med = {(k, t, c): statistics.median(v) for (k, t, _, _, c), v in rates.items()}
    np_rate = statistics.median(npy)
    print(f"event {a.event} ({LAY.size(make(0))} bytes, slot {SLOT}); {a.repeat} interleaved "
          f"repetitions, medians; {load_note(refs, (load0, os.getloadavg()[0]))}; "
          f"numpy copy of the same slots x1000: {np_rate / 1e6:.1f} M records/s")  # fmt: skip
    zmq = {(k, c): r for (k, t, c), r in med.items() if t == "zmq PUB/SUB+msgpack"}
    zraw = {(k, c): r for (k, t, c), r in med.items() if t == "zmq PUB/SUB"}
    print("| mode | transport | fan | M/s | x zmq PUB/SUB+msgpack | x zmq PUB/SUB bytes | "
          "x numpy copy |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for (kind, tname, ncons), r in sorted(med.items(), key=lambda x: (x[0][0], x[0][2], -x[1])):
        zm, zr = zmq.get((kind, ncons)), zraw.get((kind, ncons))
        print(f"| {kind} | {tname} | 1:{ncons} | {r / 1e6:.2f} | "
              f"{f'{r / zm:.2f}x' if zm else ''} | {f'{r / zr:.2f}x' if zr else ''} | "
              f"{r / np_rate * 100:.1f} % |")  # fmt: skip
    if a.no_latency:
        return
    n_lat = 5_000 if a.quick else 25_000
    print(f"\none-way latency at 50k events/s, ShmQueue ({n_lat} events, median of runs):")
    for label, busy in (("default (adaptive spin, then sleep)", False), ("busy spin", True)):
        runs = [latency(busy, n_lat) for _ in range(a.repeat)]
        p50 = statistics.median(x[0] for x in runs)
        p99 = statistics.median(x[1] for x in runs)
        print(f"  {label:36} p50 {p50:6.1f} us   p99 {p99:6.1f} us")
    print(f"idle consumer CPU: {idle_cpu(1.0 if a.quick else 3.0):.2f} % of a core")


if __name__ == "__main__":
    main()
