"""``[[clients]]`` entries run by a real engine against the simulator: the example VWAP
client starts, prints real values into the engine's log, is restarted after a SIGKILL and
prints again; a target that is not a BaseClient subclass fails once, for good, in one line.

(Regression: the supervisor used to run ``python -m ttxt_mp.client``, whose ``__main__``
copy of BaseClient no user client subclasses, so every client was refused.)"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

import ttxt_mp
from ttxt_mp import events as ev
from ttxt_mp.engine.demo import demo_config_text
from ttxt_mp.engine.protocol import CONFIG_FD_ENV, EXIT_PERMANENT
from ttxt_mp.queues import QueueEmpty

pytestmark = pytest.mark.timeout(120)

VWAP = """
[[clients]]
target = "examples.clients.vwap:RollingVWAP"
name = "vwap"
args = { window_s = 30 }
"""
NOT_A_CLIENT = """
[[clients]]
target = "json:JSONDecoder"
name = "bad"
"""
VWAP_LINE = re.compile(r"^(binance|bybit)\s+(\S+)\s+vwap=(\S+) trades=(\d+)$")
ATTACHED = "client vwap (examples.clients.vwap:RollingVWAP) attached"


def _vwaps(text: str) -> list[tuple[str, str, float, int]]:
    """The VWAP lines the client printed (they go to the engine's log, its stderr)."""
    out = []
    for ln in text.splitlines():
        m = VWAP_LINE.match(ln.strip())
        if m:
            out.append((m[1], m[2], float(m[3]), int(m[4])))
    return out


def _wait_output(eng, pred: Callable[[str], bool], timeout: float, what: str) -> str:
    """Poll the engine's log until ``pred(text)``; AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = eng.output()
        if pred(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{text[-3000:]}")
        time.sleep(0.1)


def _held(eng, name: str, pred: Callable[[dict], bool], seconds: float) -> dict:
    """``pred`` holds for the child at every poll during ``seconds``."""
    end = time.monotonic() + seconds
    while True:
        c = eng.child(name)
        assert pred(c), c
        if time.monotonic() > end:
            return c
        time.sleep(0.1)


def _trade_prices(engine: str, keys: set[tuple[str, str]], timeout: float = 20.0) -> dict:
    """A trade price per (exchange, symbol) in ``keys``, read from the engine directly."""
    prices: dict[tuple[str, str], float] = {}
    deadline = time.monotonic() + timeout
    with ttxt_mp.attach(engine, kinds=["MarketTrades"], wait=5) as feed:
        while not keys <= prices.keys() and time.monotonic() < deadline:
            try:
                e = feed.get(timeout=0.2)
            except QueueEmpty:
                continue
            if isinstance(e, ev.MarketTrades) and e.trades:
                prices[(e.exchange, e.symbol)] = float(e.trades[-1].price)
    assert keys <= prices.keys(), (keys, prices)
    return prices


def test_vwap_client_runs_prints_real_values_and_is_restarted_after_sigkill(make_engine):
    eng = make_engine(extra_toml=VWAP).start()
    first = eng.wait_child("client:vwap", lambda c: c["state"] == "UP" and c["pid"]
                           and c["events"] > 0, timeout=30.0)  # fmt: skip
    assert first["restarts"] == 0 and first["role"] == "client", first

    text = _wait_output(eng, lambda t: {"binance", "bybit"} <= {v[0] for v in _vwaps(t)},
                        30.0, "VWAP lines of both venues")  # fmt: skip
    lines = _vwaps(text)
    for _venue, _symbol, vwap, trades in lines:
        assert math.isfinite(vwap) and vwap > 0 and trades >= 1, lines[-5:]
    # Real values: each instrument's VWAP is near the price it trades at right now.
    last = {(x, s): v for x, s, v, _ in lines}
    prices = _trade_prices(eng.name, set(last))
    for key, vwap in last.items():
        assert abs(vwap - prices[key]) / prices[key] < 0.05, (key, vwap, prices[key])
    assert text.count(ATTACHED) == 1, text[-3000:]

    os.kill(first["pid"], signal.SIGKILL)
    again = eng.wait_child("client:vwap", lambda c: c["restarts"] == 1 and c["pid"]
                           and c["pid"] != first["pid"] and c["state"] == "UP",
                           timeout=30.0)  # fmt: skip
    assert again["last_exit"] == -signal.SIGKILL, again
    assert again["last_exit_reason"] == "killed by SIGKILL", again
    # The old process is reaped (the supervisor restarted it): what is printed after this
    # point comes from the new one.
    mark = len(_vwaps(eng.output()))
    text = _wait_output(eng, lambda t: len(_vwaps(t)) >= mark + 5 and t.count(ATTACHED) == 2,
                        30.0, "VWAP lines from the restarted client")  # fmt: skip
    resumed = _vwaps(text)[mark:]
    assert all(math.isfinite(v) and v > 0 for _, _, v, _ in resumed), resumed[-5:]
    eng.wait_child("client:vwap", lambda c: c["events"] > first["events"], timeout=15.0)
    assert "Traceback" not in text and "BaseClient subclass" not in text, text[-3000:]
    assert eng.child("client:vwap")["restarts"] == 1


def test_non_baseclient_target_fails_once_in_one_line_and_is_not_restarted(make_engine):
    eng = make_engine(extra_toml=NOT_A_CLIENT).start()
    c = eng.wait_child("client:bad", lambda c: c["state"] == "FAILED" and not c["pid"],
                       timeout=20.0)  # fmt: skip
    reason = "client 'json:JSONDecoder' is not a BaseClient subclass"
    assert reason in c["message"] and "not restarted" in c["message"], c
    assert c["last_exit"] == EXIT_PERMANENT and c["restarts"] == 0, c
    # No restart loop: the backoff (0.5 s) passes several times and it stays FAILED, 0.
    _held(eng, "client:bad", lambda c: c["state"] == "FAILED" and c["restarts"] == 0, 2.5)
    # The rest of the engine runs.
    eng.wait_child("connector:binance", lambda c: c["state"] == "UP" and c["events"] > 0)

    st = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", eng.name, "--json"],
                        capture_output=True, text=True, timeout=30)  # fmt: skip
    assert st.returncode == 0, st.stderr
    bad = [ch for ch in json.loads(st.stdout)["children"] if ch["name"] == "client:bad"]
    assert len(bad) == 1 and bad[0]["state"] == "FAILED" and bad[0]["restarts"] == 0, bad
    assert reason in bad[0]["message"], bad
    table = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", eng.name],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    row = [ln for ln in table.stdout.splitlines() if "client:bad" in ln]
    assert len(row) == 1 and "FAILED" in row[0], table.stdout

    out = eng.output()
    assert "Traceback" not in out, out[-3000:]
    # One line from the child, one from the supervisor; nothing more (no retries).
    said = [ln for ln in out.splitlines() if reason in ln]
    assert len(said) == 2, said
    assert sum("failed permanently" in ln for ln in said) == 1, said
    assert eng.child("client:bad")["restarts"] == 0


@pytest.mark.parametrize(("target", "needle"), [
    ("json:JSONDecoder", "client 'json:JSONDecoder' is not a BaseClient subclass"),
    ("no_such_module_xyz:Client", "cannot load client 'no_such_module_xyz:Client'"),
    ("broken_client_mod:Client", "cannot load client 'broken_client_mod:Client': "
                                 "RuntimeError: boom at import"),
])  # fmt: skip
def test_client_process_exits_78_with_one_line_for_a_bad_target(tmp_path, target, needle):
    """The child on its own (no engine needed: it fails before attaching)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_config_text("127.0.0.1:1", f"cl{os.getpid()}")
                   + f'\n[[clients]]\ntarget = "{target}"\n')  # fmt: skip
    (tmp_path / "broken_client_mod.py").write_text("raise RuntimeError('boom at import')\n")
    env = {k: v for k, v in os.environ.items() if k != CONFIG_FD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-m", "ttxt_mp.engine.client_main", "--engine",
                          "nobody", "--config", str(cfg), "--client", "0"],
                         capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert out.returncode == EXIT_PERMANENT, (out.returncode, out.stderr)
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0], out.stderr
    report = json.loads(out.stdout)  # exactly one line: the final report
    assert report["state"] == "FAILED" and needle in report["message"], out.stdout
