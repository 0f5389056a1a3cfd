"""Fixtures for whole-engine tests: a simulator process, an engine launched from a config,
and cleanup of every process and shared-memory object even when a test fails."""

from __future__ import annotations

import itertools
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

_counter = itertools.count()


def unique_engine() -> str:
    return f"t{os.getpid()}_{next(_counter)}"


@pytest.fixture(scope="module")
def sim():
    s = SimProcess(["BTC/USDT", "ETH/USDT"], seed=11, extra=["--updates-per-sec", "100"])
    try:
        yield s
    finally:
        s.stop()


class Engine:
    """A supervisor process launched from a config written for the test."""

    def __init__(self, tmp: Path, sim: SimProcess, extra_toml: str = "", heartbeat: float = 10.0):
        self.name = unique_engine()
        text = demo_config_text(sim.host_port, self.name) + extra_toml
        text = text.replace("heartbeat_timeout = 10.0", f"heartbeat_timeout = {heartbeat}")
        text = text.replace('log_level = "WARNING"', 'log_level = "INFO"')
        self.config = tmp / f"{self.name}.toml"
        self.config.write_text(text)
        self.log = tmp / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait_rings: int = 2) -> Engine:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.cli", "launch", str(self.config)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while len(discover(self.name)) < wait_rings or not self._answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"engine rings did not appear:\n{self.output()}")
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

    def child_pid(self, name: str, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.status()["children"]:
                if c["name"] == name and c["pid"]:
                    return c["pid"]
            time.sleep(0.1)
        raise AssertionError(f"no live child {name}: {self.status()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Whatever happened, leave nothing behind for the next test.
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
    engines: list[Engine] = []

    def make(**kw) -> Engine:
        e = Engine(tmp_path, sim, **kw)
        engines.append(e)
        return e

    try:
        yield make
    finally:
        for e in engines:
            e.stop()
            assert not engine_objects(e.name), f"leftover objects of {e.name}"
