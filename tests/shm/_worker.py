"""Child process for the multi-process ring tests (run as a script, prints JSON lines).

    _worker.py consume NAME MODE [--slow]   MODE: get | aget | raw | batch
    _worker.py stall NAME                   attach, then never read
    _worker.py idle NAME MODE               measure CPU while idle for 1 s (get | aget)
    _worker.py produce NAME N               create NAME, publish N events, then sleep
    _worker.py wake NAME MODE               wait (wake_timeout 30 s) for one event

Every mode prints ``{"ready": pid}`` once attached/created, then a JSON result.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import zlib

import msgspec

from ttxt_mp import register_event
from ttxt_mp.codec import Fixed, Text, decode
from ttxt_mp.events import GapNotice
from ttxt_mp.queues import QueueClosed, QueueEmpty


class Stress(msgspec.Struct, frozen=True):
    """A checksummed event: ``crc`` covers ``i`` and ``blob``; every 97th is multi-slot."""

    i: int
    crc: int
    blob: str = ""


STRESS_KIND = 1042
register_event(STRESS_KIND, Stress, (Fixed("i", "i8"), Fixed("crc", "u4"), Text("blob")))


def crc_of(i: int, blob: str) -> int:
    return zlib.crc32(blob.encode(), i & 0xFFFFFFFF)


def make(i: int) -> Stress:
    blob = "y" * (300 + i % 500) if i % 97 == 0 else "x" * (i % 7)
    return Stress(i, crc_of(i, blob), blob)


def ok(ev: Stress) -> bool:
    return ev.crc == crc_of(ev.i, ev.blob)


def say(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


class Tally:
    """Counts delivered/lost/corrupt events and checks order against gap notices."""

    def __init__(self, slow: bool) -> None:
        self.n = self.lost = self.bad = self.order = self.gaps = 0
        self.last = -1
        self.pending = 0
        self.slow = slow

    def event(self, ev) -> None:
        if isinstance(ev, GapNotice):
            self.lost += ev.lost
            self.pending += ev.lost
            self.gaps += 1
            return
        if not ok(ev):
            self.bad += 1
        if ev.i != self.last + 1 + self.pending:
            self.order += 1
        self.last = ev.i
        self.pending = 0
        self.n += 1
        if self.slow and self.n % 2000 == 0:
            time.sleep(0.002)

    def result(self) -> dict:
        return {"n": self.n, "lost": self.lost, "bad": self.bad, "order": self.order,
                "gaps": self.gaps, "last": self.last}  # fmt: skip


def consume(name: str, mode: str, slow: bool) -> None:
    from ttxt_mp.shm import ShmQueue

    t = Tally(slow)
    with ShmQueue.attach(name, start="oldest") as c:
        say({"ready": os.getpid()})
        if mode == "get":
            for ev in c:
                t.event(ev)
        elif mode == "aget":

            async def run():
                async for ev in c:
                    t.event(ev)

            asyncio.run(run())
        elif mode == "raw":
            while True:
                try:
                    kind, payload = c.get_raw()
                except QueueClosed:
                    break
                t.event(decode(kind, payload))
        elif mode == "batch":
            frags: list[bytes] = []
            while True:
                lost0 = c.lost
                try:
                    recs = c.get_batch(777, timeout=None)
                except QueueClosed:
                    break
                if c.lost != lost0:
                    t.event(GapNotice(exchange="", lost=c.lost - lost0))
                for r in recs:
                    frags.append(r["payload"][: r["plen"]].tobytes())
                    if r["fidx"] + 1 == r["fcnt"]:
                        t.event(decode(int(r["kind"]), b"".join(frags)))
                        frags.clear()
    say(t.result())


IDLE_S = 3.0
"""Long enough that start-up (asyncio.run, first spin) is not what the bound measures."""


def idle(name: str, mode: str) -> None:
    from ttxt_mp.shm import ShmQueue

    with ShmQueue.attach(name) as c:
        say({"ready": os.getpid()})
        t0, c0 = time.monotonic(), time.process_time()
        if mode == "get":
            try:
                c.get(timeout=IDLE_S)
            except QueueEmpty:
                pass
        else:

            async def run():
                try:
                    await asyncio.wait_for(c.aget(), IDLE_S)
                except TimeoutError:
                    pass

            asyncio.run(run())
        say({"cpu": (time.process_time() - c0) / (time.monotonic() - t0)})


def wake(name: str, mode: str) -> None:
    from ttxt_mp.shm import ShmQueue

    with ShmQueue.attach(name, wake_timeout=30.0) as c:
        say({"ready": os.getpid()})
        ev = c.get() if mode == "get" else asyncio.run(c.aget())
        say({"got": ev.i, "t": time.monotonic()})


def main(argv: list[str]) -> None:
    cmd, name = argv[0], argv[1]
    if cmd == "consume":
        consume(name, argv[2], "--slow" in argv)
    elif cmd == "idle":
        idle(name, argv[2])
    elif cmd == "wake":
        wake(name, argv[2])
    elif cmd == "stall":
        from ttxt_mp.shm import ShmQueue

        with ShmQueue.attach(name):
            say({"ready": os.getpid()})
            time.sleep(3600)
    elif cmd == "produce":
        from ttxt_mp.shm import ShmQueue

        q = ShmQueue.create(name, capacity=1024, kinds=[STRESS_KIND])
        for i in range(int(argv[2])):
            q.put(make(i))
        say({"ready": os.getpid()})
        time.sleep(3600)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
