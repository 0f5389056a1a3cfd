"""Attach at any time: a client, a ``BaseClient`` with books and ``ttxt-mp record`` that
start after the market rings wrapped several times, and a consumer lapped while
SIGSTOPped, all hold books equal to the simulator's truth at a checkpoint; the late
recording replays into the same books."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lines import Lines

from ttxt_mp.client import BaseClient
from ttxt_mp.storage import MarketDataReplayer

pytestmark = pytest.mark.timeout(240)

DEPTH = 20  # levels compared (Binance's local book may hold more than its 1,000 snapshot)
CAPACITY = 512
INSTRUMENTS = [(x, s) for x in ("binance", "bybit") for s in ("BTC/USDT", "ETH/USDT")]
ROOT = Path(__file__).resolve().parents[2]

BOOK_DUMP = textwrap.dedent("""
    # A BaseClient with books; prints {"synced": true} once all four books are synced,
    # and its books as JSON for every "dump" line on stdin, once its feed is drained.
    import json, queue, sys, threading
    import ttxt_mp
    from ttxt_mp import events as ev
    engine, depth = sys.argv[1], int(sys.argv[2])
    asks = queue.Queue()
    threading.Thread(target=lambda: [asks.put(x.strip()) for x in sys.stdin], daemon=True).start()
    client = ttxt_mp.BaseClient()
    gaps = 0
    announced = False
    with ttxt_mp.attach(engine, streams=("market",), wait=20) as feed:
        while True:
            try:
                e = feed.get(timeout=0.05)
            except ttxt_mp.QueueEmpty:
                e = None
            if e is not None:
                client.dispatch(e)
                gaps += isinstance(e, ev.GapNotice)
                if not announced and len(client.books) == 4 and all(
                        b.synced for b in client.books.values()):
                    print(json.dumps({"synced": True}), flush=True)
                    announced = True
                continue
            try:
                cmd = asks.get_nowait()
            except queue.Empty:
                continue
            if cmd == "quit":
                break
            books = {f"{x}|{s}": [b.synced, b.update_id, b.bids(depth), b.asks(depth)]
                     for (x, s), b in client.books.items()}
            print(json.dumps({"books": books, "gaps": gaps}), flush=True)
""")


def _http(sim: Any, method: str, path: str) -> Any:
    req = urllib.request.Request(f"http://{sim.host_port}/_sim/{path}", method=method,
                                 data=b"{}" if method == "POST" else None)  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def truth(sim: Any) -> dict[str, list]:
    """The simulator's books as ``[synced, update_id, bids, asks]`` (top DEPTH levels)."""
    out = {}
    for x, s in INSTRUMENTS:
        native = s.replace("/", "")
        tb = _http(sim, "GET", f"truth?venue={x}&symbol={native}&depth={DEPTH}")
        uid = tb["update_id"] if x == "binance" else tb["topics"][f"orderbook.50.{native}"]
        levels = [[[float(p), float(q)] for p, q in tb[k]] for k in ("bids", "asks")]
        out[f"{x}|{s}"] = [True, uid, *levels]
    return out


def as_json(books: dict[str, list]) -> dict[str, list]:
    return json.loads(json.dumps(books))


class Dumper:
    """A BOOK_DUMP child."""

    def __init__(self, engine: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", BOOK_DUMP, engine, str(DEPTH)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=ROOT)  # fmt: skip
        self.out = Lines(self.proc.stdout)

    def wait_synced(self, timeout: float = 30.0) -> None:
        self.out.wait(lambda: any('"synced"' in x for x in self.out.lines) or self.out.closed,
                      timeout, "all four books synced")  # fmt: skip
        assert any('"synced"' in x for x in self.out.lines), self.out.lines[-5:]

    def dump(self) -> dict[str, Any]:
        n = len(self.out.lines)
        assert self.proc.stdin is not None
        self.proc.stdin.write("dump\n")
        self.proc.stdin.flush()
        self.out.wait(lambda: any('"books"' in x for x in self.out.lines[n:]) or self.out.closed,
                      10.0, "a dump of the books")  # fmt: skip
        return json.loads(next(x for x in self.out.lines[n:] if '"books"' in x))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


def until_equal(get: Any, sim: Any, what: str, timeout: float = 20.0) -> Any:
    """Poll ``get()`` until its books equal the truth (asked again each time: a paused
    Bybit topic still moves its ``u`` now and then)."""
    deadline = time.monotonic() + timeout
    while True:
        got = get()
        books = as_json(got["books"] if "books" in got else got)
        want = truth(sim)
        if books == want:
            return got
        if time.monotonic() > deadline:
            diff = {k: (books.get(k, [None, None])[:2], v[:2]) for k, v in want.items()
                    if books.get(k) != v}  # fmt: skip
            raise AssertionError(f"{what}: books differ from the truth (synced, id): {diff}")
        time.sleep(0.1)


def replayed_books(directory: Path) -> dict[str, list]:
    client = BaseClient()
    with MarketDataReplayer(directory) as rp:
        for e in rp.events():
            client.dispatch(e)
    return {f"{x}|{s}": [b.synced, b.update_id, b.bids(DEPTH), b.asks(DEPTH)]
            for (x, s), b in client.books.items()}  # fmt: skip


def published(eng: Any) -> int:
    return min(r["published"] for r in eng.status()["rings"] if r["name"].endswith("-market"))


def test_late_and_lapped_consumers_get_books_equal_to_the_truth(make_engine, sim, tmp_path):
    eng = make_engine()
    text = eng.config.read_text().replace("capacity = 65536", f"capacity = {CAPACITY}")
    eng.config.write_text(text)
    eng.start()
    procs: list[Any] = []
    lapped = late = None
    try:
        lapped = Dumper(eng.name)
        lapped.wait_synced()
        lapped.proc.send_signal(signal.SIGSTOP)  # its cursor stays; the rings wrap past it
        mark = published(eng)
        deadline = time.monotonic() + 60
        while published(eng) < mark + 4 * CAPACITY:  # several laps of every market ring
            assert time.monotonic() < deadline, "the rings did not wrap"
            time.sleep(0.1)
        # Late joiners: rings wrapped several times since the books' first snapshots.
        rec_dir = tmp_path / "late_rec"
        record = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.cli", "record", eng.name, "--dir", str(rec_dir),
             "--max-chunk-age", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT)  # fmt: skip
        procs.append(record)
        tob = subprocess.Popen([sys.executable, "examples/clients/top_of_book.py", eng.name],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
        procs.append(tob)
        tob_out = Lines(tob.stdout)
        late = Dumper(eng.name)
        late.wait_synced()
        lapped.proc.send_signal(signal.SIGCONT)
        lapped.wait_synced()  # it had announced before; now it reads on
        want_names = {f"{x:8} {s:10}" for x, s in INSTRUMENTS}
        tob_out.wait(lambda: want_names <= {x[:19] for x in tob_out.lines}, 30,
                     "top_of_book printing every instrument")  # fmt: skip

        _http(sim, "POST", "pause")
        try:
            got_late = until_equal(late.dump, sim, "late BaseClient")
            got_lapped = until_equal(lapped.dump, sim, "lapped (SIGSTOPped) consumer")
            until_equal(lambda: replayed_books(rec_dir), sim, "late recording's replay")
            record.send_signal(signal.SIGINT)
            out, err = record.communicate(timeout=20)
            assert record.returncode == 0, err[-2000:]
            until_equal(lambda: replayed_books(rec_dir), sim, "the finished recording", 5.0)
            want = truth(sim)
            # top_of_book prints on every change of the top: its last line per instrument is
            # the true best bid / ask of the pause once it caught up
            def tops() -> dict[str, tuple[float, float]]:
                last = {x[:19]: x.split() for x in tob_out.lines}
                return {k: (float(v[3]), float(v[5])) for k, v in last.items()}

            best = {f"{x:8} {s:10}": (want[f"{x}|{s}"][2][0][0], want[f"{x}|{s}"][3][0][0])
                    for x, s in INSTRUMENTS}  # fmt: skip
            tob_out.wait(lambda: tops() == best, 20, "top_of_book showing the true best levels")
        finally:
            _http(sim, "POST", "resume")
        assert got_lapped["gaps"] >= 1, "the lapped consumer saw no GapNotice"
        assert got_late["gaps"] == 0
    finally:
        for d in (lapped, late):
            if d is not None:
                d.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
