"""A real engine (``ttxt-mp launch``) for tests: started from a config written for the
test, waited for until *its* supervisor answers, and stopped with every process and
shared-memory object removed, even when the test failed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ttxt_mp.engine import control
from ttxt_mp.engine.demo import SimProcess
from ttxt_mp.engine.naming import discover, engine_objects
from ttxt_mp.engine.supervisor import EngineLock, remove_leftovers

START_TIMEOUT = 20.0


CORE = ("binance", "bybit")
"""The venues (spot markets) the engine-level tests run: perpetuals and other venues have
their own end-to-end tests, and every connector costs a process on a 2-core machine."""


@contextlib.contextmanager
def sim_process(seed: int) -> Iterator[SimProcess]:
    s = SimProcess(["BTC/USDT", "ETH/USDT"], venues=CORE, seed=seed, extra=["--updates-per-sec", "100"])
    try:
        yield s
    finally:
        s.stop()


class EngineProcess:
    def __init__(self, tmp: Path, name: str, config_text: str, *, cwd: str | None = None,
                 env: dict[str, str] | None = None, stop_grace: float = 10.0) -> None:  # fmt: skip
        self.name = name
        self.config = tmp / f"{name}.toml"
        self.config.write_text(config_text)
        self.log = tmp / f"{name}.log"
        self.cwd, self.env, self.stop_grace = cwd, env, stop_grace
        self.proc: subprocess.Popen | None = None

    def start(self, wait_rings: int = 2) -> EngineProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.cli", "launch", str(self.config)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
            cwd=self.cwd, env=self.env,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while len(discover(self.name, ("market",))) < wait_rings or not self._answers():
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

    def wait_child(self, name: str, pred: Callable[[dict], bool], timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            c = self.child(name)
            if pred(c):
                return c
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: condition not met in {timeout}s: {c}\n{self.output()}")
            time.sleep(0.1)

    def child_pid(self, name: str, timeout: float = 10.0) -> int:
        return self.wait_child(name, lambda c: bool(c["pid"]), timeout)["pid"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        lock = EngineLock(self.name)  # whatever happened, leave nothing for the next test
        try:
            lock.acquire()
            remove_leftovers(self.name)
        except Exception:
            pass
        finally:
            lock.release()


@contextlib.contextmanager
def engine_factory(make_one: Callable[..., EngineProcess]) -> Iterator[Callable[..., EngineProcess]]:
    """Yield a function making engines; stop them all and check /dev/shm afterwards."""
    engines: list[EngineProcess] = []

    def make(**kw) -> EngineProcess:
        e = make_one(len(engines), **kw)
        engines.append(e)
        return e

    try:
        yield make
    finally:
        for e in engines:
            e.stop()
            assert not engine_objects(e.name), f"leftover objects of {e.name}"
