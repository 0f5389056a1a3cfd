"""A ring producer that serves states (like a connector) and a bridge process reading it,
for the bridge and fault tests; plus readers of what the bridge wrote into Redis."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import redis
from lines import Lines

from ttxt_mp.bus import format as bf
from ttxt_mp.events import BookTicker, GapNotice
from ttxt_mp.shm import ShmQueue
from ttxt_mp.shm.board import StateBoard

ROOT = Path(__file__).resolve().parents[1]
CONNECTOR = "binance"


def ticker(i: int) -> BookTicker:
    return BookTicker(exchange="binance", symbol=("BTC/USDT", "ETH/USDT", "SOL/USDT")[i % 3],
                      exch_ts=i, local_ts=i, bid=float(i), bid_qty=1.0, ask=float(i + 1),
                      ask_qty=2.0, update_id=i)  # fmt: skip


class Producer:
    """Ring ``<engine>-binance-market`` and its state board; a thread puts ``ticker(i)``
    events at ``rate`` per second (0: as fast as it can) and serves every state request
    between two puts, as a connector does (the latest ticker per symbol)."""

    def __init__(self, engine: str, capacity: int = 1 << 16) -> None:
        self.ring = f"{engine}-{CONNECTOR}-market"
        self.pub = ShmQueue.create(self.ring, capacity=capacity, slot_size=256,
                                   metadata={"exchange": "binance"})  # fmt: skip
        self.board = StateBoard.create(self.ring)
        self.latest: dict[str, BookTicker] = {}
        self.count = 0
        self.served = 0
        self.rate = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, n: int) -> None:
        for _ in range(n):
            self._serve()
            ev = ticker(self.count)
            self.pub.put(ev)
            self.latest[ev.symbol] = ev
            self.count += 1
        self._serve()

    def _serve(self) -> None:
        if self.board.pending:
            self.board.publish(list(self.latest.values()), self.pub.next_evno)
            self.served += 1

    def start(self, rate: float, limit: int | None = None) -> Producer:
        def run() -> None:
            t0 = time.monotonic()
            while not self._stop.is_set() and (limit is None or self.count < limit):
                room = 256 if limit is None else min(256, limit - self.count)
                if rate:
                    due = int((time.monotonic() - t0) * rate)
                    if self.count >= due:
                        self._serve()
                        self._stop.wait(0.001)
                        continue
                    self.put(min(due - self.count, room))
                else:
                    self.put(room)
            while not self._stop.is_set():  # keep serving states
                self._serve()
                self._stop.wait(0.002)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def close(self) -> None:
        self.stop()
        self.board.close()
        self.board.unlink()
        self.pub.close()
        self.pub.unlink()


def bridge_config(tmp: Path, engine: str, url: str, extra: str = "") -> Path:
    """An engine config whose only use here is its ``[[bridges]]`` entry."""
    p = tmp / f"{engine}.toml"
    p.write_text(f"""
[engine]
name = "{engine}"

[[connectors]]
exchange = "binance"
symbols = ["BTC/USDT"]

[[bridges]]
kind = "redis"
url = "{url}"
{extra}
""")
    return p


class BridgeProcess:
    """``python -m ttxt_mp.bus.bridge`` for one config; its ChildReport lines collected."""

    def __init__(self, engine: str, config: Path, env: dict[str, str] | None = None) -> None:
        full = dict(os.environ, TTXT_STATS_INTERVAL="0.2", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.bus.bridge", "--engine", engine, "--config",
             str(config), "--bridge", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT, env=full)  # fmt: skip
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)

    def reports(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.out.lines):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def last(self) -> dict[str, Any]:
        r = self.reports()
        return r[-1] if r else {}

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            r = self.last()
            if r and pred(r):
                return r
            if self.proc.poll() is not None and not self.out.lines[-1:]:
                raise AssertionError(f"bridge exited {self.proc.returncode}: {self.err.lines[-5:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bridge: {what} not seen in {timeout}s; last report {r}; "
                                     f"stderr {self.err.lines[-5:]}")  # fmt: skip
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.wait(lambda: self.out.closed, 5, "stdout closed")
        self.err.wait(lambda: self.err.closed, 5, "stderr closed")
        return self.proc.returncode


class Entry(msgspec.Struct):
    eid: bytes
    s: int
    events: list[Any]

    @property
    def gap(self) -> int:
        """``lost`` of a leading GapNotice written by the bridge (0 if none)."""
        e = self.events[0] if self.events else None
        return e.lost if isinstance(e, GapNotice) else 0

    @property
    def ring_events(self) -> list[Any]:
        return self.events[1:] if self.gap else self.events


def id_key(eid: bytes) -> tuple[int, int]:
    ms, _, seq = eid.decode().partition("-")
    return int(ms), int(seq or 0)


def read_entries(client: redis.Redis, key: str, after: bytes = b"-") -> list[Entry]:
    out = []
    start = after
    while True:
        got = client.xrange(key, min=start, count=1000)
        if start != b"-" and got and got[0][0] == start:
            got = got[1:]
        if not got:
            return out
        for eid, fields in got:
            items = bf.decode_entry(fields, f"{key} {eid!r}")
            out.append(Entry(eid, int(fields[b"s"]), [bf.codec.decode(k, p) for k, p in items]))
        start = got[-1][0]


def accounted(entries: list[Entry]) -> tuple[int, int, int]:
    """Check every ring event number from the first entry's on is either in an entry, in
    order, or counted in the GapNotice right after it; returns (first, end, lost)."""
    assert entries, "no entries"
    first = entries[0].s - entries[0].gap
    nxt = first
    lost = 0
    for e in entries:
        assert e.s - e.gap == nxt, f"entry {e.eid!r}: starts at {e.s} with a gap of {e.gap}, expected {nxt}"
        lost += e.gap
        for j, ev in enumerate(e.ring_events):
            assert ev.update_id == e.s + j, (e.eid, j, ev.update_id, e.s)
        nxt = e.s + len(e.ring_events)
    return first, nxt, lost


@contextlib.contextmanager
def producing(engine: str, **kw: Any) -> Iterator[Producer]:
    p = Producer(engine, **kw)
    try:
        yield p
    finally:
        p.close()
