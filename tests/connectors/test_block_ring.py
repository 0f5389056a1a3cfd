"""``block`` rings: a consumer that stops reading must not freeze the connector.

In-process (a tiny block AsyncioQueue): the connector goes on running, reports ERROR
while the queue is full, and once the consumer reads again it writes everything it held
back in order (the rebuilt books are exact) followed by UP.

Real processes (connector CLI -> shared-memory block ring <- a SIGSTOPped consumer
process): the connector keeps its event loop alive (reports keep coming, the ring
producer's heartbeat stays fresh), its report names the stopped consumer's pid, and
SIGTERM stops it within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgspec
import pytest
from lines import Lines

from ttxt_mp.connectors.base import BLOCKED_REPORT_AFTER_S
from ttxt_mp.connectors.registry import create_connector
from ttxt_mp.engine.naming import ring_name
from ttxt_mp.engine.protocol import ChildReport
from ttxt_mp.events import ConnectorState
from ttxt_mp.queues import AsyncioQueue
from ttxt_mp.sim import Simulator

from .conftest import RATES, TIMINGS
from .helpers import Consumer, SimThread, checkpoint, make_cfg

pytestmark = pytest.mark.timeout(90)

S = ConnectorState
ROOT = Path(__file__).resolve().parents[2]


async def test_full_block_queue_reports_error_then_flushes_in_order_and_goes_up(
    sim: Simulator,
) -> None:
    cfg = make_cfg(sim, "binance", ["BTC/USDT"])
    q = AsyncioQueue(maxsize=64, block=True)
    reports: list[dict] = []
    conn = create_connector(cfg, q, on_report=reports.append, report_interval=0.1)
    task = asyncio.create_task(conn.run())
    con = Consumer(q, "binance")
    try:
        await con.until(lambda: conn.symbol_states.get("BTC/USDT") == S.UP, 10.0, "book synced")
        # The consumer stops reading: the queue fills, the loop keeps running.
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while not conn.blocked:
            assert loop.time() - t0 < 10.0, f"never reported blocked: {conn.stats()}"
            await asyncio.sleep(0.05)
        assert loop.time() - t0 >= BLOCKED_REPORT_AFTER_S * 0.9
        st = conn.stats()
        assert st["state"] == "ERROR" and "is full (block policy)" in st["message"], st
        assert st["backlog"] > 0
        n = len(reports)
        await asyncio.sleep(0.5)  # the report timer still fires: the loop is not frozen
        assert len(reports) >= n + 3, (n, len(reports))
        assert reports[-1]["state"] == "ERROR"
        # Reading again: the backlog goes out in order, then UP.
        mark = len(con.statuses)
        await con.until(
            lambda: con.has_status(S.UP, "", "has room again", after=mark), 10.0, "UP again"
        )
        err = next(i for i, s in enumerate(con.statuses) if i >= mark and s.state == S.ERROR)
        up = next(i for i, s in enumerate(con.statuses)
                  if i >= mark and s.state == S.UP and "has room again" in s.message)  # fmt: skip
        assert err < up and "is full (block policy)" in con.statuses[err].message
        await con.until(lambda: conn.stats()["state"] == "UP", 5.0, "stats UP")
        await checkpoint(sim, con, "binance", ["BTCUSDT"])
        assert con.bad_results() == []
        assert not conn.blocked and conn.blocked_s >= BLOCKED_REPORT_AFTER_S
    finally:
        conn.stop()
        await asyncio.wait_for(task, 5.0)


CONSUMER = textwrap.dedent("""
    import sys, time
    from ttxt_mp.shm import ShmQueue, RingNotFound
    deadline = time.monotonic() + 15
    while True:
        try:
            q = ShmQueue.attach(sys.argv[1], start="oldest")
            break
        except RingNotFound:
            if time.monotonic() > deadline:
                sys.exit(3)
            time.sleep(0.02)
    print("attached", flush=True)
    while True:  # reads until stopped (SIGSTOP) or killed
        try:
            q.get(timeout=0.2)
        except Exception:
            pass
""")


def _config(path: Path, engine: str, ws: str, rest: str) -> Path:
    path.write_text(f"""
[engine]
name = "{engine}"

[[connectors]]
exchange = "binance"
name = "bn"
symbols = ["BTC/USDT"]
heartbeat_timeout = 2.0
reconnect_backoff = 0.05
streams.depth.levels = 5000
endpoints.ws = "{ws}"
endpoints.rest = "{rest}"

[rings.market]
capacity = 256
policy = "block"
""")
    return path


def _reports(lines: Lines) -> list[ChildReport]:
    out = []
    for ln in list(lines.lines):
        with contextlib.suppress(msgspec.DecodeError):
            out.append(msgspec.json.decode(ln, type=ChildReport))
    return out


def test_stopped_consumer_on_a_block_ring_is_named_and_sigterm_still_works(tmp_path: Path) -> None:
    from ttxt_mp.shm import ShmQueue
    from ttxt_mp.shm.objects import remove_ring_objects

    engine = f"bk{os.getpid()}"
    name = ring_name(engine, "bn", "market")
    procs: list[subprocess.Popen] = []
    watcher = None
    finished = False
    with SimThread(symbols={"binance": ["BTCUSDT"]}, seed=5, rates=RATES, timings=TIMINGS) as st:
        urls = st.sim.urls.binance
        cfg = _config(tmp_path / "c.toml", engine, urls.ws, urls.rest)
        try:
            conn = subprocess.Popen(
                [sys.executable, "-m", "ttxt_mp.connectors.run", "--engine", engine,
                 "--config", str(cfg), "--connector", "bn"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                env={**os.environ, "TTXT_STATS_INTERVAL": "0.2"},
            )  # fmt: skip
            procs.append(conn)
            cons = subprocess.Popen([sys.executable, "-c", CONSUMER, name],
                                    stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
            procs.append(cons)
            out, cons_out = Lines(conn.stdout), Lines(cons.stdout)
            err = Lines(conn.stderr)
            cons_out.wait(lambda: cons_out.lines, 15.0, "consumer attached")
            out.wait(lambda: any(r.events > 50 for r in _reports(out)), 15.0, "events flowing")
            os.kill(cons.pid, signal.SIGSTOP)

            def blocked() -> bool:
                return any(r.state == "ERROR" and f"pid {cons.pid}" in r.message
                           for r in _reports(out))  # fmt: skip

            out.wait(blocked, 15.0, f"a report naming the stopped consumer pid {cons.pid}")
            rep = next(r for r in _reports(out) if r.state == "ERROR")
            assert "is full (block policy)" in rep.message and name in rep.message, rep
            # Still alive while blocked: reports keep coming, the producer heartbeat is fresh.
            n = len(_reports(out))
            watcher = ShmQueue.attach(name, start="latest")
            out.wait(lambda: len(_reports(out)) >= n + 5, 5.0, "reports while blocked")
            assert _reports(out)[-1].state == "ERROR"
            assert watcher.heartbeat_age < 1.0, watcher.heartbeat_age
            # SIGTERM works without SIGKILL, promptly.
            t0 = time.monotonic()
            conn.send_signal(signal.SIGTERM)
            code = conn.wait(5.0)
            assert time.monotonic() - t0 < 4.0
            assert code == 0, "".join(err.lines[-20:])
            out.wait(lambda: _reports(out)[-1].state == "STOPPED", 5.0, "the STOPPED report")
            assert not any("Traceback" in ln for ln in err.lines), "".join(err.lines)
            finished = True
        finally:
            if watcher is not None:
                watcher.close()
            for p in procs:
                if p.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGCONT)
                        p.kill()
                    p.wait(5)
            if not finished:  # a killed connector cannot unlink what it created
                remove_ring_objects(name)
    assert not Path(f"/dev/shm/ttxt-{name}").exists(), "the ring it created must be unlinked"
