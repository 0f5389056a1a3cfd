"""run.py: run_connector in-process (uvloop, SIGTERM, stats lines) and the CLI as a real
process writing into a shared-memory ring that this (consumer) process reads."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from ttxt_mp.engine.naming import ring_name
from ttxt_mp.engine.protocol import ChildReport, Reporter
from ttxt_mp.events import ConnectorState, ConnectorStatus, Orderbook
from ttxt_mp.orderbook import OrderBook, UpdateResult
from ttxt_mp.queues import AsyncioQueue, QueueEmpty

from .conftest import RATES, TIMINGS
from .helpers import SimThread, make_cfg

S = ConnectorState
ROOT = Path(__file__).resolve().parents[2]


def toml_config(path: Path, engine: str, ws: str, rest: str, name: str = "bn") -> Path:
    path.write_text(f"""
[engine]
name = "{engine}"

[[connectors]]
exchange = "binance"
name = "{name}"
symbols = ["BTC/USDT"]
heartbeat_timeout = 2.0
reconnect_backoff = 0.05
reconnect_backoff_max = 0.5
streams.depth.levels = 5000
endpoints.ws = "{ws}"
endpoints.rest = "{rest}"

[rings.market]
capacity = 16384
""")
    return path


def cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ttxt_mp.connectors.run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_cli_unknown_connector_id_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    cfg = toml_config(tmp_path / "c.toml", "e1", "ws://127.0.0.1:9", "http://127.0.0.1:9")
    r = cli("--engine", "e1", "--config", str(cfg), "--connector", "nope")
    assert r.returncode == 2
    assert "no connector 'nope'" in r.stderr and "defines 'bn'" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_missing_argument_exits_2(tmp_path: Path) -> None:
    r = cli("--engine", "e1", "--connector", "bn")
    assert r.returncode == 2 and "--config" in r.stderr


def test_cli_bad_config_exits_2_with_key_path(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[engine]\nname = "e1"\n[[connectors]]\nexchange = "binance"\n'
        'symbols = ["BTC/USDT"]\nheartbeat_timeot = 1.0\n'
    )
    r = cli("--engine", "e1", "--config", str(cfg), "--connector", "binance")
    assert r.returncode == 2
    assert "connectors[0]" in r.stderr and "unknown key `heartbeat_timeot`" in r.stderr
    r = cli("--engine", "e1", "--config", str(tmp_path / "missing.toml"), "--connector", "x")
    assert r.returncode == 2 and "cannot read config file" in r.stderr


def test_run_connector_in_process_stops_on_sigterm_and_reports() -> None:
    from ttxt_mp.connectors.run import run_connector

    with SimThread(symbols={"binance": ["BTCUSDT"]}, seed=5, rates=RATES, timings=TIMINGS) as st:
        q = AsyncioQueue()
        out = io.StringIO()
        timer = threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        t0 = time.monotonic()
        try:
            code = run_connector(
                make_cfg(st.sim, "binance", ["BTC/USDT"]),
                q,
                reporter=Reporter(out=out, interval=0.2),
                duration=15.0,
            )
        finally:
            timer.cancel()
    assert code == 0
    assert time.monotonic() - t0 < 6.0, "SIGTERM must stop the connector promptly"
    reports = [msgspec.json.decode(line, type=ChildReport) for line in out.getvalue().splitlines()]
    assert len(reports) >= 5, out.getvalue()
    assert reports[-1].state == "STOPPED" and reports[-1].events > 10
    assert any(r.state == "UP" for r in reports)
    events = []
    while True:
        try:
            events.append(q.get_nowait())
        except QueueEmpty:
            break
    statuses = [e for e in events if isinstance(e, ConnectorStatus)]
    assert statuses[-1].state == S.STOPPED and "stopped on request" in statuses[-1].message
    assert any(isinstance(e, Orderbook) and e.is_snapshot for e in events)


def test_cli_process_publishes_into_a_ring_a_consumer_rebuilds_the_book(tmp_path: Path) -> None:
    """simulator -> connector process -> ShmQueue -> this process: book == truth."""
    from ttxt_mp.shm import RingNotFound, ShmQueue

    engine = f"cx{os.getpid()}"
    name = ring_name(engine, "bn", "market")
    with SimThread(symbols={"binance": ["BTCUSDT"]}, seed=9, rates=RATES, timings=TIMINGS) as st:
        urls = st.sim.urls.binance
        cfg = toml_config(tmp_path / "c.toml", engine, urls.ws, urls.rest)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ttxt_mp.connectors.run",
                "--engine",
                engine,
                "--config",
                str(cfg),
                "--connector",
                "bn",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "TTXT_STATS_INTERVAL": "0.2"},
        )
        consumer = None
        try:
            deadline = time.monotonic() + 10
            while consumer is None:
                try:
                    consumer = ShmQueue.attach(name, start="oldest")
                except RingNotFound:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline, "ring never appeared"
                    time.sleep(0.05)
            book = OrderBook("binance", "BTC/USDT")
            results: list[UpdateResult] = []

            def read_until(pred, timeout: float) -> None:
                end = time.monotonic() + timeout
                while not pred():
                    assert time.monotonic() < end, f"timed out; book {book!r}"
                    try:
                        ev = consumer.get(timeout=0.05)
                    except QueueEmpty:
                        continue
                    if isinstance(ev, Orderbook):
                        results.append(book.update(ev))

            read_until(lambda: book.synced and book.updates > 5, 10.0)
            st.call(st.sim.pause)
            try:
                truth = st.call(st.sim.truth, "binance", "BTCUSDT")
                read_until(lambda: book.update_id == truth.update_id, 5.0)
                bids, asks = truth.as_floats()
                assert book.bids() == bids and book.asks() == asks
            finally:
                st.call(st.sim.resume)
            assert all(r in (UpdateResult.SNAPSHOT, UpdateResult.APPLIED) for r in results)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err[-2000:]
            reports = [msgspec.json.decode(x, type=ChildReport) for x in out.splitlines()]
            assert reports and reports[-1].state == "STOPPED" and reports[-1].events > 5
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if consumer is not None:
                consumer.close()
    assert not Path(f"/dev/shm/ttxt-{name}").exists(), "the ring it created must be unlinked"


@pytest.mark.parametrize("bad", ["no-such-engine!"])
def test_open_market_publisher_rejects_bad_names(bad: str) -> None:
    from ttxt_mp.connectors.run import open_market_publisher

    with pytest.raises(ValueError, match="invalid ring name"):
        open_market_publisher(bad, "bn")
