"""Fixtures for the shared-memory tests: unique ring names, child processes, cleanup.

Every test gets its own name prefix; whatever it created under /dev/shm (rings, FIFOs) is
removed and every child it started is killed at teardown, even when the test fails.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ttxt_mp.shm import clean_objects

WORKER = Path(__file__).with_name("_worker.py")
ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


class Names:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._n = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._n)}"


@pytest.fixture
def names():
    """``names()`` returns a fresh ring name; all of them are unlinked afterwards."""
    n = Names(f"t{os.getpid()}x{next(_counter)}")
    try:
        yield n
    finally:
        clean_objects(n.prefix, stale_only=False)


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def worker(self, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        """Start ``_worker.py ARGS`` (a consumer/producer process), stdout piped; ``env``:
        variables to set in it (e.g. ``TTXT_MP_PURE``)."""
        env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
        p = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,
        )  # fmt: skip
        self.procs.append(p)
        return p

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()


@pytest.fixture
def procs():
    """Child processes of the test; all killed (SIGKILL) and waited for at teardown."""
    ps = Procs()
    try:
        yield ps
    finally:
        ps.kill_all()
