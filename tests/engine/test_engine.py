"""The engine as a user runs it: launch from TOML, attach from other processes, survive
crashes of any process, leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from lines import Lines

import ttxt_mp
from ttxt_mp import events as ev
from ttxt_mp.engine.naming import engine_objects
from ttxt_mp.queues import QueueEmpty

pytestmark = pytest.mark.timeout(120)

SYMBOLS = {"BTC/USDT", "ETH/USDT"}

CONSUMER = textwrap.dedent("""
    import json, sys, time
    import ttxt_mp
    seen = set()
    deadline = time.monotonic() + float(sys.argv[2])
    with ttxt_mp.attach(sys.argv[1], wait=10) as feed:
        while time.monotonic() < deadline:
            try:
                e = feed.get(timeout=0.5)
            except ttxt_mp.QueueEmpty:
                continue
            seen.add((e.exchange, e.symbol, type(e).__name__))
            want = {(x, s, k) for x in ("binance", "bybit") for s in ("BTC/USDT", "ETH/USDT")
                    for k in ("Orderbook", "MarketTrades", "Kline")}
            if want <= seen:
                break
    print(json.dumps(sorted(seen)))
""")


def _collect(feed, until, timeout: float = 20.0):
    """Events from ``feed`` until ``until(events)`` is true or the timeout passes."""
    got: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        try:
            got.append(feed.get(timeout=0.2))
        except QueueEmpty:
            pass
    return got


def test_launch_and_attach_from_another_process(make_engine):
    eng = make_engine().start()
    out = subprocess.run([sys.executable, "-c", CONSUMER, eng.name, "40"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    seen = {tuple(x) for x in json.loads(out.stdout)}
    for exchange in ("binance", "bybit"):
        for sym in SYMBOLS:
            for kind in ("Orderbook", "MarketTrades", "Kline"):
                assert (exchange, sym, kind) in seen, (exchange, sym, kind, eng.output())


def test_connector_sigkill_is_restarted_and_consumers_resume(make_engine):
    eng = make_engine().start()
    with ttxt_mp.attach(eng.name, exchanges=["binance"], wait=5) as feed:
        assert _collect(feed, lambda g: any(isinstance(e, ev.Orderbook) for e in g))
        pid = eng.child_pid("connector:binance")
        os.kill(pid, signal.SIGKILL)
        got = _collect(feed, _down_up_then_data, timeout=30)
    states = [e.state for e in got if isinstance(e, ev.ConnectorStatus)]
    assert ev.ConnectorState.DOWN in states, states
    assert states.index(ev.ConnectorState.DOWN) < len(states) - 1
    assert ev.ConnectorState.UP in states[states.index(ev.ConnectorState.DOWN):]
    assert isinstance(got[-1], ev.Orderbook)  # data flows again, same attachment
    new_pid = eng.child_pid("connector:binance")
    assert new_pid != pid
    restarted = [c for c in eng.status()["children"] if c["name"] == "connector:binance"][0]
    assert restarted["restarts"] == 1


def test_consumer_sigkill_does_not_disturb_the_engine(make_engine):
    eng = make_engine().start()
    victim = subprocess.Popen([sys.executable, "-c", CONSUMER, eng.name, "60"],
                              stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(2.0)
        victim.kill()
        victim.wait(5)
        with ttxt_mp.attach(eng.name, wait=5) as feed:
            got = _collect(feed, lambda g: len(g) >= 50)
        assert len(got) >= 50
        assert all(c["restarts"] == 0 for c in eng.status()["children"])
    finally:
        if victim.poll() is None:
            victim.kill()


def test_sigint_stops_everything_within_5s_and_unlinks(make_engine):
    eng = make_engine().start()
    eng.child_pid("connector:bybit")
    pids = [c["pid"] for c in eng.status()["children"] if c["pid"]]
    t0 = time.monotonic()
    eng.proc.send_signal(signal.SIGINT)
    assert eng.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5.0
    assert not engine_objects(eng.name)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_supervisor_sigkill_then_relaunch_cleans_leftovers(make_engine):
    eng = make_engine().start()
    children = [eng.child_pid("connector:binance"), eng.child_pid("connector:bybit")]
    os.kill(eng.proc.pid, signal.SIGKILL)
    eng.proc.wait(5)
    assert engine_objects(eng.name), "a SIGKILLed supervisor cannot clean up; the test expects leftovers"
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in children), "connectors must die with their supervisor"
    eng.start()
    assert "removed" in eng.output() and "leftover" in eng.output()
    with ttxt_mp.attach(eng.name, wait=5) as feed:
        assert _collect(feed, lambda g: any(isinstance(e, ev.Orderbook) for e in g))


def test_second_engine_with_the_same_name_is_refused(make_engine):
    eng = make_engine().start()
    out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "launch", str(eng.config)],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 2
    assert f"engine {eng.name!r} is already running (pid {eng.proc.pid}, uid {os.geteuid()}" in out.stderr
    assert eng.proc.poll() is None  # the first one is untouched


def test_status_and_tail_cli(make_engine):
    eng = make_engine().start()
    eng.child_pid("connector:binance")
    st = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", eng.name],
                        capture_output=True, text=True, timeout=30)  # fmt: skip
    assert st.returncode == 0, st.stderr
    assert "connector:binance" in st.stdout and "connector:bybit" in st.stdout
    assert f"{eng.name}-binance-market" in st.stdout
    tail = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "tail", eng.name, "--symbol",
                           "ETH/USDT", "--count", "20", "--timeout", "15"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.strip().splitlines()
    assert len(lines) == 20
    assert all("ETH/USDT" in ln or "ConnectorStatus" in ln for ln in lines)


def test_status_of_unknown_engine_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", "no_such_engine"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 1  # "nothing found" (the CLI's error boundary)
    assert "no engine named 'no_such_engine' is running" in out.stderr


def test_example_clients_run_against_the_engine(make_engine):
    eng = make_engine().start()
    for script, marker in (("top_of_book.py", "|"), ("vwap.py", "vwap=")):
        p = subprocess.Popen([sys.executable, f"examples/clients/{script}", eng.name],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            out = Lines(p.stdout)

            def both_venues(out: Lines = out) -> bool:
                return out.closed or {"binance", "bybit"} <= {
                    ln.split()[0] for ln in out.lines if ln.strip()}

            out.wait(both_venues, 30, f"{script} printing both venues")
            lines = out.lines
        finally:
            p.kill()
            p.wait()
        assert any(marker in ln and ln.startswith("binance") for ln in lines), lines[-5:]
        assert any(marker in ln and ln.startswith("bybit") for ln in lines), lines[-5:]


def test_demo_runs_offline_for_a_duration():
    out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "demo", "--duration", "5",
                          "--engine", f"demo_t{os.getpid()}"],
                         capture_output=True, text=True, timeout=90)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "binance" in out.stdout and "bybit" in out.stdout
    book_lines = [ln for ln in out.stdout.splitlines() if ln.startswith("book ")]
    assert any(" binance " in ln for ln in book_lines) and any(" bybit " in ln for ln in book_lines)


def _states(events) -> list:
    return [e.state for e in events if isinstance(e, ev.ConnectorStatus)]


def _down_up_then_data(events) -> bool:
    """A DOWN, later an UP, and a book event after that."""
    st = _states(events)
    if ev.ConnectorState.DOWN not in st:
        return False
    if ev.ConnectorState.UP not in st[st.index(ev.ConnectorState.DOWN):]:
        return False
    return isinstance(events[-1], ev.Orderbook)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
