"""The engine lock: one live engine per name, nothing stale after release or death."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ttxt_mp.engine.supervisor import EngineAlreadyRunning, EngineLock


def test_second_holder_is_refused_naming_the_pid_and_lock_is_reusable():
    name = f"lock{os.getpid()}"
    first = EngineLock(name)
    first.acquire()
    try:
        with pytest.raises(EngineAlreadyRunning, match=rf"'{name}' is already running \(pid {os.getpid()}, uid {os.geteuid()}, runtime dir"):
            EngineLock(name).acquire()
    finally:
        first.release()
    assert not first.path.exists()
    again = EngineLock(name)
    again.acquire()
    again.release()


def test_lock_of_a_killed_process_is_free():
    name = f"lockdead{os.getpid()}"
    code = (f"from ttxt_mp.engine.supervisor import EngineLock; EngineLock({name!r}).acquire(); "
            "import os; os._exit(0)")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    lock = EngineLock(name)
    lock.acquire()  # the dead holder's file is still there, but its flock died with it
    lock.release()
