"""State on join: time from ``JoinedRing`` attach to every book synced, and what serving
late joiners costs the producer.

A producer process holds N books of 1,000 levels per side and publishes contiguous
Binance-style deltas (1-3 levels each) into a ring as fast as it can, polling its state
board every 5 ms as a connector does. The consumer (this process) attaches through
``JoinedRing`` and applies what it gets to its own books until all N are synced.

Two producer modes run interleaved (order shuffled each repetition): ``quiet`` (nobody
joins) and ``joining`` (a new consumer attaches every 200 ms for the whole run). Reported:
median attach-to-synced time, median producer events/s in both modes and their ratio.

Run: ``python benchmarks/bench_join.py`` (``--repeat 5 --seconds 3``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttxt_mp import events as ev  # noqa: E402
from ttxt_mp.connectors.state import POLL_S  # noqa: E402
from ttxt_mp.join import JoinedRing  # noqa: E402
from ttxt_mp.orderbook import OrderBook  # noqa: E402
from ttxt_mp.queues import QueueEmpty  # noqa: E402
from ttxt_mp.shm import ShmQueue  # noqa: E402
from ttxt_mp.shm.board import StateBoard  # noqa: E402

LEVELS = 1000


def _snapshot(sym: str, uid: int) -> ev.Orderbook:
    return ev.Orderbook(exchange="binance", symbol=sym, is_snapshot=True,
                        bids=tuple((30000.0 - i * 0.1, 1.0) for i in range(LEVELS)),
                        asks=tuple((30000.1 + i * 0.1, 1.0) for i in range(LEVELS)),
                        first_update_id=uid, last_update_id=uid)  # fmt: skip


class _Producer:
    """What StateServer needs: books, ``state_events``, the publisher."""

    def __init__(self, name: str, n: int) -> None:
        self.publisher = ShmQueue.create(name, capacity=1 << 16, slot_size=256)
        self.board = StateBoard.create(name)
        self.books: dict[str, OrderBook] = {}
        self.stopping = False
        for i in range(n):
            sym = f"S{i}/USDT"
            snap = _snapshot(sym, 1)
            self.books[sym] = OrderBook("binance", sym)
            self.books[sym].update(snap)
            self.publisher.put(snap)

    def state_events(self) -> list:
        return [b.to_event() for b in self.books.values()]

    def state_consistent(self) -> bool:
        return True


def produce(name: str, n: int, seconds: float, ready, out) -> None:
    from ttxt_mp.connectors.state import StateServer

    p = _Producer(name, n)
    server = StateServer(p, p.board)
    syms = list(p.books)
    rnd = random.Random(1)
    ready.set()
    t0 = time.perf_counter()
    end = t0 + seconds
    next_poll = t0
    sent = 0
    while True:
        for _ in range(256):
            sym = syms[sent % len(syms)]
            book = p.books[sym]
            u = book.update_id + 1
            k = rnd.randrange(LEVELS)
            d = ev.Orderbook(exchange="binance", symbol=sym, first_update_id=u,
                             last_update_id=u, bids=((30000.0 - k * 0.1, rnd.random()),),
                             asks=((30000.1 + k * 0.1, rnd.random()),))  # fmt: skip
            book.update(d)
            p.publisher.put(d)
            sent += 1
        now = time.perf_counter()
        if now >= next_poll:
            server.serve_if_asked()
            next_poll = now + POLL_S
        if now >= end:
            break
    out.put((sent / (time.perf_counter() - t0), server.served, server.seconds))
    p.publisher.close()
    p.board.close()
    time.sleep(0.5)  # let the last joiners detach before the objects go
    p.board.unlink()
    p.publisher.unlink()


def join_once(name: str, n: int, timeout: float = 30.0) -> float:
    """Seconds from attach to all ``n`` books synced."""
    t0 = time.perf_counter()
    q = JoinedRing(ShmQueue.attach(name), timeout=timeout)
    books: dict[str, OrderBook] = {}
    synced = 0
    try:
        while synced < n:
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"only {synced}/{n} books synced after {timeout}s")
            try:
                e = q.get(timeout=0.5)
            except QueueEmpty:
                continue
            if type(e) is ev.Orderbook:
                b = books.setdefault(e.symbol, OrderBook("binance", e.symbol))
                was = b.synced
                b.update(e)
                synced += b.synced and not was
        return time.perf_counter() - t0
    finally:
        q.close()


def run(n: int, seconds: float, joining: bool) -> tuple[float, list[float], int]:
    name = f"bj{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("fork")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=produce, args=(name, n, seconds, ready, out))
    proc.start()
    ready.wait(60)
    joins: list[float] = []
    t_end = time.monotonic() + seconds - 0.3
    if joining:
        time.sleep(0.2)
        while time.monotonic() < t_end:
            joins.append(join_once(name, n))
            time.sleep(0.2)
    rate, served, _ = out.get(timeout=seconds + 60)
    proc.join(30)
    return rate, joins, served


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--books", type=int, nargs="+", default=[1, 10, 100])
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {LEVELS} levels per side")
    print("| books | attach -> all synced (median, p90) | producer ev/s quiet | "
          "producer ev/s with joiners | ratio | joins |")
    print("|---|---|---|---|---|---|")
    for n in args.books:
        quiet, busy, joins = [], [], []
        for _ in range(args.repeat):
            modes = [False, True]
            random.shuffle(modes)
            for joining in modes:
                rate, js, _ = run(n, args.seconds, joining)
                (busy if joining else quiet).append(rate)
                joins += js
        joins.sort()
        p90 = joins[int(0.9 * (len(joins) - 1))] if joins else float("nan")
        q, b = statistics.median(quiet), statistics.median(busy)
        print(f"| {n} | {statistics.median(joins) * 1e3:.1f} ms, {p90 * 1e3:.1f} ms | "
              f"{q:,.0f} | {b:,.0f} | {b / q:.2f} | {len(joins)} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
