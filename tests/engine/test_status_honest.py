"""``ttxt-mp status`` tells the truth about the engine's children.

- a SIGKILLed child is DOWN with "killed by SIGKILL" and no pid until it is back; its
  counters (events, recorder losses) are totals over every process it had;
- permanent errors (no symbol exists, the recorder dir is a file, a missing client
  module) end that child once, FAILED with one clear message and no restart, no
  traceback, while the other children keep running;
- a restarted child uses the configuration parsed at launch, not the file edited since.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from lines import Lines

pytestmark = pytest.mark.timeout(120)


def _set_engine(eng, **values) -> None:
    """Add keys to the [engine] section of an engine's config before it starts."""
    text = eng.config.read_text()
    extra = "".join(f"\n{k} = {v}" for k, v in values.items())
    eng.config.write_text(text.replace('log_level = "INFO"', 'log_level = "INFO"' + extra, 1))


def _held(eng, name: str, pred, seconds: float) -> None:
    """``pred(child)`` stays true for ``seconds`` (polled)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = eng.child(name)
        assert pred(c), f"{name}: {c}\n{eng.output()[-3000:]}"
        time.sleep(0.2)


def test_sigkilled_children_are_down_with_the_reason_and_counters_survive(make_engine, tmp_path):
    rec_dir = tmp_path / "rec"
    eng = make_engine(extra_toml=f'\n[recorder]\nenabled = true\ndir = "{rec_dir}"\n')
    _set_engine(eng, restart_backoff=3.0)
    eng.start()
    before = eng.wait_child("connector:binance", lambda c: c["state"] == "UP" and c["events"] > 200)
    rec = eng.wait_child("recorder", lambda c: c["events"] > 100 and c["pid"])
    os.kill(before["pid"], signal.SIGKILL)
    os.kill(rec["pid"], signal.SIGKILL)
    for name in ("connector:binance", "recorder"):
        # DOWN shows as soon as the exit is seen; the restart is counted right after
        down = eng.wait_child(name, lambda c: c["state"] == "DOWN" and c["restarts"], timeout=5.0)
        assert down["pid"] is None, down
        assert "killed by SIGKILL" in down["message"], down
        assert down["restarts"] == 1 and down["last_exit"] == -signal.SIGKILL, down
    # Back up: counters continue from the dead process's totals.
    up = eng.wait_child("connector:binance",
                        lambda c: c["state"] == "UP" and c["pid"] and c["events"] > before["events"])  # fmt: skip
    assert up["events"] >= before["events"] and "SIGKILL" not in up["message"], up
    assert up["last_exit_reason"] == "killed by SIGKILL"
    rec2 = eng.wait_child("recorder", lambda c: c["pid"] and c["lost"] > 0, timeout=15.0)
    assert rec2["events"] >= rec["events"], (rec, rec2)
    lost = rec2["lost"]
    # A second restart of the recorder adds to the losses; it does not start from zero.
    os.kill(rec2["pid"], signal.SIGKILL)
    rec3 = eng.wait_child("recorder", lambda c: c["pid"] and c["restarts"] == 2 and c["lost"] > lost,
                          timeout=15.0)  # fmt: skip
    assert rec3["events"] >= rec2["events"]


def test_permanent_errors_fail_once_and_the_rest_runs(make_engine, sim, tmp_path):
    not_a_dir = tmp_path / "recordings-file"
    not_a_dir.write_text("I am a file")
    extra = f"""
[[connectors]]
exchange = "binance"
name = "nope"
symbols = ["NOPE/USDT"]
endpoints = {{ ws = "ws://{sim.host_port}/binance", rest = "http://{sim.host_port}/binance" }}

[recorder]
enabled = true
dir = "{not_a_dir}"

[[clients]]
target = "no_such_module_xyz:Client"
name = "missing"
"""
    eng = make_engine(extra_toml=extra).start(wait_rings=3)
    expect = {
        "connector:nope": "NOPE/USDT",
        "recorder": "is not a directory",
        "client:missing": "no_such_module_xyz",
    }
    for name, needle in expect.items():
        c = eng.wait_child(name, lambda c: c["state"] == "FAILED" and not c["pid"], timeout=20.0)
        assert needle in c["message"] and "not restarted" in c["message"], c
        assert c["pid"] is None and c["last_exit"] == 78, c
    for name in expect:  # no restart loop
        _held(eng, name, lambda c: c["state"] == "FAILED" and c["restarts"] == 0, 3.0)
    for name in ("connector:binance", "connector:bybit"):
        eng.wait_child(name, lambda c: c["state"] == "UP" and c["events"] > 0)
    out = eng.output()
    assert "Traceback" not in out, out[-3000:]
    # the child's last status and error line, the supervisor's line: not more per retry
    assert out.count("none of the symbols") <= 3, out


def test_a_restarted_child_uses_the_config_parsed_at_launch(make_engine):
    eng = make_engine().start()
    first = eng.wait_child("connector:binance", lambda c: c["state"] == "UP" and c["pid"])
    # Edited after launch so that re-reading it would make the connector fail for good.
    eng.config.write_text(eng.config.read_text().replace('"BTC/USDT", "ETH/USDT"',
                                                         '"NOPE/USDT"'))  # fmt: skip
    os.kill(first["pid"], signal.SIGKILL)
    again = eng.wait_child("connector:binance",
                           lambda c: c["restarts"] == 1 and c["state"] == "UP" and c["pid"],
                           timeout=20.0)  # fmt: skip
    assert again["pid"] != first["pid"]
    _held(eng, "connector:binance", lambda c: c["state"] != "FAILED", 1.0)


STOPPABLE_CONSUMER = """
import sys, time
import ttxt_mp
with ttxt_mp.attach(sys.argv[1], exchanges=["binance"], wait=10) as feed:
    print("attached", flush=True)
    while True:  # reads until SIGSTOPped or killed
        try:
            feed.get(timeout=0.2)
        except ttxt_mp.QueueEmpty:
            pass
"""


def test_stopped_consumer_of_a_block_ring_is_named_in_status_and_the_engine_stops(make_engine):
    import subprocess
    import sys

    eng = make_engine()
    text = eng.config.read_text()
    eng.config.write_text(text.replace('policy = "overwrite"', 'policy = "block"')
                          .replace("capacity = 65536", "capacity = 512"))  # fmt: skip
    eng.start()
    cons = subprocess.Popen([sys.executable, "-c", STOPPABLE_CONSUMER, eng.name],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert Lines(cons.stdout).next(30, "the consumer attached").strip() == "attached"
        eng.wait_child("connector:binance", lambda c: c["state"] == "UP" and c["events"] > 0)
        os.kill(cons.pid, signal.SIGSTOP)
        blocked = eng.wait_child(
            "connector:binance",
            lambda c: c["state"] == "ERROR" and f"pid {cons.pid}" in c["message"], timeout=20.0)
        assert "is full (block policy)" in blocked["message"] and blocked["pid"], blocked
        eng.wait_child("connector:bybit", lambda c: c["state"] == "UP")  # not its consumer
        # The consumer reads again: the connector catches up and is UP again.
        os.kill(cons.pid, signal.SIGCONT)
        eng.wait_child("connector:binance", lambda c: c["state"] == "UP", timeout=20.0)
        assert eng.child("connector:binance")["restarts"] == 0
        # Blocked again, the engine still stops promptly, without killing anyone.
        os.kill(cons.pid, signal.SIGSTOP)
        eng.wait_child("connector:binance", lambda c: c["state"] == "ERROR", timeout=20.0)
        t0 = time.monotonic()
        eng.proc.send_signal(signal.SIGINT)
        assert eng.proc.wait(10) == 0
        assert time.monotonic() - t0 < 6.0
        assert "did not stop" not in eng.output(), eng.output()[-3000:]
    finally:
        if cons.poll() is None:
            os.kill(cons.pid, signal.SIGCONT)
            cons.kill()
        cons.wait(5)
