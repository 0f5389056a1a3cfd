"""Suite-wide fixtures.

Why a private runtime dir: engines started by the tests write their control sockets and
trading journals under :func:`ttxt_mp.engine.naming.runtime_dir`; pointed at the user's
real ``/tmp/ttxt-mp-<uid>`` they would be left there after the run (and could meet a real
engine's files). Every process the suite starts inherits this environment variable.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_runtime_dir() -> Iterator[str]:
    base = tempfile.mkdtemp(prefix="ttxt-mp-tests-")  # created 0700 by mkdtemp
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_RUNTIME_DIR", base)
        try:
            yield base
        finally:
            shutil.rmtree(base, ignore_errors=True)
