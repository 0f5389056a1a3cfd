"""SIGKILL the recorder process at random moments: files stay readable, at most the
unfinished chunk is lost, and recording resumes by appending after a restart."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

from ttxt_mp.storage import MarketDataReplayer, RecordingFile
from ttxt_mp.storage.writer import ChunkFile

CHILD = os.path.join(os.path.dirname(__file__), "crash_child.py")
KILLS = 15


def _run_and_kill(directory: str, run: int, chunk: int, rng: random.Random) -> dict[str, int]:
    """Start the child, SIGKILL it at a random moment; return events reported flushed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, CHILD, directory, str(run), str(chunk)],
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    flushed: dict[str, int] = defaultdict(int)
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                ready.set()
            elif line.strip():
                path, n = line.rsplit(" ", 1)
                flushed[os.path.basename(path)] += int(n)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(30), "child did not start"
        time.sleep(rng.uniform(0.02, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
    return dict(flushed)


def _per_run_ids(path: str) -> tuple[dict[int, list[int]], list]:
    with MarketDataReplayer(path) as rp:
        ids = defaultdict(list)
        for ev in rp.events():
            ids[ev.first_update_id // 10**9].append(ev.first_update_id % 10**9)
        return ids, rp.problems


def test_sigkill_loses_at_most_the_unfinished_chunk(tmp_path):
    rng = random.Random(os.getpid())
    directory = str(tmp_path)
    reported: list[dict[str, int]] = []
    chunks: list[int] = []
    for run in range(KILLS):
        chunk = rng.choice([5, 20, 150, 400])
        chunks.append(chunk)
        reported.append(_run_and_kill(directory, run, chunk, rng))
        names = sorted(os.listdir(directory))
        assert names, "nothing was recorded"
        for name in names:
            path = os.path.join(directory, name)
            ids, problems = _per_run_ids(path)
            # Anything damaged can only be the tail: the unfinished chunk of a killed run.
            for p in problems:
                assert p.offset + p.length == os.path.getsize(path), p
            sym_index = ["BINANCE_BTC_USDT.bin", "BINANCE_ETH_USDT.bin",
                         "BINANCE_SOL_USDT.bin"].index(name)  # fmt: skip
            for r in range(run + 1):
                got = ids.get(r, [])
                # exactly a prefix of what run r produced for this instrument, in order
                assert got == list(range(sym_index, sym_index + 3 * len(got), 3)), (name, r)
                flushed = reported[r].get(name, 0)
                assert flushed <= len(got) <= flushed + chunks[r], (name, r, flushed, len(got))
    # Recovery on the next open leaves every file clean.
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        f = ChunkFile(path, "binance", f"{name.split('_')[1]}/USDT")
        f.close()
        assert RecordingFile(path).problems == []
        assert os.path.getsize(path) == f.recovery.size_after
