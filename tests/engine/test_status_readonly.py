"""``ttxt-mp status`` only looks: a dead consumer's entry is reported as dead, and left
in the ring for a consumer that attaches (or the producer) to free; nothing is said on
stderr, nothing in the ring changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import msgspec
import pytest
from lines import Lines

from ttxt_mp.shm import ring_stats

pytestmark = pytest.mark.timeout(120)

CHILD = """
import sys
from ttxt_mp.shm import ShmQueue
q = ShmQueue.attach(sys.argv[1])
print("attached", flush=True)
sys.stdin.read()  # until killed
"""


def _dead_consumer(ring: str) -> int:
    """A process that attaches to ``ring`` and is SIGKILLed: its entry stays."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, ring], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert Lines(child.stdout).next(20.0, "the child's attach").strip() == "attached"
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdin.close()
        child.stdout.close()
    return child.pid


def _entries(ring: str) -> dict[int, bool]:
    return {c["pid"]: c["alive"] for c in ring_stats(ring)["consumers"]}


def test_status_reports_a_dead_consumer_and_leaves_its_entry(make_engine):
    eng = make_engine().start()
    ring = f"{eng.name}-binance-market"
    pid = _dead_consumer(ring)
    assert _entries(ring).get(pid) is False  # dead, entry still taken

    cli = [sys.executable, "-m", "ttxt_mp.cli", "status", eng.name]
    shown = subprocess.run(cli, capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown
    assert shown.stderr == "", shown.stderr
    row = next(line for line in shown.stdout.splitlines() if ring in line)
    assert f"{pid}: dead" in row, row

    js = subprocess.run([*cli, "--json"], capture_output=True, timeout=30)
    assert js.returncode == 0 and js.stderr == b"", js
    st = msgspec.json.decode(js.stdout)
    r = next(r for r in st["rings"] if r["name"] == ring)
    dead = [c for c in r["consumers"] if c["pid"] == pid]
    assert dead and dead[0]["alive"] is False, r

    assert _entries(ring).get(pid) is False, "status freed the dead consumer's entry"
    out = eng.output()
    assert "freed entry" not in out and "reaped consumer" not in out, out[-2000:]
