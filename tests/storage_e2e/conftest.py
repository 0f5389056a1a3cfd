"""Fixtures for recording a real engine: a simulator process, an engine launched with the
recorder enabled, and cleanup of every process and shared-memory object even on failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttxt_mp.engine import control
from ttxt_mp.engine.demo import SimProcess, demo_config_text
from ttxt_mp.engine.naming import discover, engine_objects
from ttxt_mp.engine.supervisor import EngineLock, remove_leftovers

RECORDER_TOML = """
[recorder]
enabled = true
dir = "rec"
chunk_events = {chunk}
fsync_interval = 0.5
"""


@pytest.fixture(scope="module")
def sim():
    s = SimProcess(["BTC/USDT", "ETH/USDT"], seed=5, extra=["--updates-per-sec", "100"])
    try:
        yield s
    finally:
        s.stop()


class RecordingEngine:
    """``ttxt-mp launch`` of the demo config with ``[recorder]`` enabled; the recording
    goes to ``<tmp>/rec`` (a relative ``dir``: resolved against the config's folder)."""

    def __init__(self, tmp: Path, sim: SimProcess, name: str, chunk: int = 50) -> None:
        self.name = name
        self.config = tmp / f"{name}.toml"
        self.config.write_text(demo_config_text(sim.host_port, name) + RECORDER_TOML.format(chunk=chunk))
        self.rec_dir = tmp / "rec"
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RecordingEngine:
        # Launched from another directory, so a cwd-relative ``dir`` would be caught.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.cli", "launch", str(self.config)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
            cwd="/", env=dict(os.environ, PYTHONPATH=os.getcwd()),
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while len(discover(self.name, ("market",))) < 2 or not self._answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"engine did not come up:\n{self.output()}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            return self.status()["pid"] == self.proc.pid
        except (control.EngineNotRunning, OSError):
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def status(self) -> dict:
        return control.request(self.name, "status")

    def child(self, name: str) -> dict:
        return next(c for c in self.status()["children"] if c["name"] == name)

    def wait_child(self, name: str, pred, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            c = self.child(name)
            if pred(c):
                return c
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: condition not met in {timeout}s: {c}\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        lock = EngineLock(self.name)
        try:
            lock.acquire()
            remove_leftovers(self.name)
        except Exception:
            pass
        finally:
            lock.release()


@pytest.fixture
def make_engine(tmp_path, sim):
    engines: list[RecordingEngine] = []

    def make(**kw) -> RecordingEngine:
        e = RecordingEngine(tmp_path, sim, f"se{os.getpid()}_{len(engines)}", **kw)
        engines.append(e)
        return e

    try:
        yield make
    finally:
        for e in engines:
            e.stop()
            assert not engine_objects(e.name), f"leftover objects of {e.name}"
