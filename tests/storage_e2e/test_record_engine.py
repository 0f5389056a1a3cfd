"""Record the simulator through a real engine, then replay it: a client cannot tell.

Real processes throughout: the simulator, ``ttxt-mp launch`` (supervisor, one connector
process per exchange, the recorder child), a live client process, ``ttxt-mp replay``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest
from book_client import BookTrace

from ttxt_mp import events as ev
from ttxt_mp.client import attach
from ttxt_mp.queues import QueueClosed, QueueEmpty
from ttxt_mp.shm import remove_ring
from ttxt_mp.storage import MarketDataReplayer
from ttxt_mp.storage.engine_recorder import load_state, state_path
from ttxt_mp.storage.format import file_name
from ttxt_mp.storage.inspect import inspect_paths

HERE = Path(__file__).parent
INSTRUMENTS = [(x, s) for x in ("binance", "bybit") for s in ("BTC/USDT", "ETH/USDT")]


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _replay_into_client(rec_dir: Path, engine: str, checkpoints: dict[str, int]) -> dict[str, Any]:
    """``ttxt-mp replay DIR --name <engine>-replay-market`` and the same client class
    attached to it by engine name, like to a live engine."""
    ring = f"{engine}-replay-market"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttxt_mp.cli", "replay", str(rec_dir), "--name", ring,
         "--wait-consumers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        client = BookTrace(checkpoints)
        with attach(engine, streams=("market",), start="oldest", wait=20.0) as feed:
            client.run(feed, duration=60.0)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        stats = msgspec.json.decode(err.decode().strip().splitlines()[-1])
        assert stats["problems"] == 0 and stats["events"] > 0, stats
        return client.result()
    finally:
        _kill(proc)
        try:
            remove_ring(ring)
        except Exception:
            pass


def test_replayed_recording_rebuilds_the_live_books(make_engine, tmp_path):
    eng = make_engine().start()
    live_out = tmp_path / "live.json"
    client = subprocess.Popen([sys.executable, str(HERE / "book_client.py"), "--engine", eng.name,
                               "--out", str(live_out), "--duration", "4"])  # fmt: skip
    try:
        assert client.wait(30) == 0
        rec = eng.wait_child("recorder", lambda c: c["events"] > 0 and c["pid"])
        assert rec["gaps"] == 0 and rec["restarts"] == 0, rec
        time.sleep(0.5)
    finally:
        _kill(client)
        eng.stop()
    assert eng.proc.returncode == 0, eng.output()
    live = msgspec.json.decode(live_out.read_bytes())
    assert live["gaps"] == 0
    assert set(live["tops"]) == {f"{x}|{s}" for x, s in INSTRUMENTS}, live["tops"].keys()
    assert all(len(t) > 20 for t in live["tops"].values()), {k: len(v) for k, v in live["tops"].items()}

    # The relative dir went next to the config, every file is clean, nothing was lost.
    reports = inspect_paths([str(eng.rec_dir)])
    names = {os.path.basename(r.path) for r in reports}
    assert {file_name(x, s) for x, s in INSTRUMENTS} <= names, names
    for r in reports:
        assert r.problems == [] and r.gap_notices == 0, r

    checkpoints = {k: len(v) for k, v in live["tops"].items()}
    replayed = _replay_into_client(eng.rec_dir, eng.name + "rp", checkpoints)
    assert replayed["gaps"] == 0
    for key, trace in live["tops"].items():
        got = replayed["tops"][key]
        assert len(got) >= len(trace), key  # the recorder ran on after the live client
        assert got[: len(trace)] == trace, f"{key}: top-of-book sequence differs"
        assert replayed["at_checkpoint"][key] == live["final"][key], f"{key}: book differs"


class _Checker:
    """Every market event of the engine, per instrument, read in this process from the
    rings' oldest event: what a recording should contain."""

    def __init__(self, engine: str) -> None:
        self.feed = attach(engine, streams=("market",), start="oldest", wait=10.0)
        self.events: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                e = self.feed.get(timeout=0.1)
            except QueueEmpty:
                continue
            except QueueClosed:
                return
            if e.symbol and not isinstance(e, ev.GapNotice):
                self.events[(e.exchange, e.symbol)].append(e)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.feed.close()


def _split_at_gap(path: str) -> tuple[list[Any], list[ev.GapNotice], list[Any]]:
    before: list[Any] = []
    gaps: list[ev.GapNotice] = []
    after: list[Any] = []
    with MarketDataReplayer(path) as rp:
        for e in rp.events():
            if isinstance(e, ev.GapNotice):
                gaps.append(e)
            else:
                (after if gaps else before).append(e)
        assert rp.problems == [], rp.problems
    return before, gaps, after


def _without_state(recorded: list[Any], live: list[Any]) -> tuple[list[Any], int]:
    """The recording minus the book snapshots the recorder spliced in from the producer's
    state (they are not ring events), and how many there were."""
    out = [e for e in recorded
           if not (isinstance(e, ev.Orderbook) and e.is_snapshot and e not in live)]  # fmt: skip
    return out, len(recorded) - len(out)


@pytest.mark.timeout(120)
def test_sigkilled_recorder_is_restarted_and_marks_the_gap(make_engine):
    eng = make_engine(chunk=40).start()
    checker = _Checker(eng.name)
    try:
        first = eng.wait_child("recorder", lambda c: c["pid"] and c["events"] > 200)
        time.sleep(0.3)  # let a state save and some chunks happen
        os.kill(first["pid"], signal.SIGKILL)
        second = eng.wait_child("recorder", lambda c: c["pid"] not in (None, first["pid"]))
        assert second["restarts"] == 1, second
        time.sleep(2.5)
        # The new recorder reports (events since its start) and has marked the gap.
        rec = eng.wait_child("recorder", lambda c: c["events"] > 0 and c["gaps"] >= 2)
        assert rec["pid"] == second["pid"], rec
    finally:
        checker.close()
        eng.stop()
    assert eng.proc.returncode == 0, eng.output()

    for exchange in ("binance", "bybit"):
        ring = f"{eng.name}-{exchange}-market"
        state = load_state(state_path(eng.rec_dir, ring))
        assert state is not None and state.written_position > 0
        ex_before, ex_gaps, _ = _split_at_gap(str(eng.rec_dir / file_name(exchange, "")))
        assert len(ex_gaps) == 1 and ex_gaps[0].lost > 0, ex_gaps
        lost = ex_gaps[0].lost
        missing_total = 0
        for symbol in ("BTC/USDT", "ETH/USDT"):
            path = str(eng.rec_dir / file_name(exchange, symbol))
            before, gaps, after = _split_at_gap(path)
            live = checker.events[(exchange, symbol)]
            assert [g.lost for g in gaps] == [lost], (path, gaps)
            assert before and after, f"{path}: recording did not resume ({len(before)}, {len(after)})"
            # The restarted recorder wrote the producer's books (state on join).
            before, _ = _without_state(before, live)
            after, spliced = _without_state(after, live)
            assert spliced >= 1, path
            # Before the kill: exactly what the ring carried, from its first event.
            assert before == live[: len(before)], path
            # After the restart: contiguous again, from some later event on.
            j = live.index(after[0], len(before))
            n = min(len(after), len(live) - j)
            assert n > 0 and after[:n] == live[j : j + n], path
            missing_total += j - len(before)
        print(f"{exchange}: {missing_total} events missing, gap notice says lost={lost}")
        # The gap notice covers everything missing (the unfinished chunks and the
        # downtime), and it is not wildly larger than that.
        assert missing_total <= lost, (missing_total, lost)
        assert lost <= missing_total + 4 * 40 + 400, (missing_total, lost)
    for r in inspect_paths([str(eng.rec_dir)]):
        assert r.problems == [], r
