"""Run a step as another local user, in a forked child: for tests that need a second uid."""

from __future__ import annotations

import os
from collections.abc import Callable

NOBODY = 65534


def run_as(step: Callable[[], str], uid: int = NOBODY, gid: int = NOBODY) -> str:
    """Fork, drop to ``uid``/``gid`` for good (no supplementary groups), run ``step`` and
    return what it returned, or ``"<ExceptionName>: <message>"`` if it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                msg = step()
            except BaseException as e:  # noqa: BLE001 - report anything to the parent
                msg = f"{type(e).__name__}: {e}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        os.waitpid(pid, 0)
        return os.read(r, 1 << 16).decode()
    finally:
        os.close(r)
