"""What a child process tells its supervisor: one JSON line on stdout per interval."""

from __future__ import annotations

import os
import sys
import time
from typing import IO

import msgspec


class ChildReport(msgspec.Struct, kw_only=True):
    state: str = "UP"
    events: int = 0
    reconnects: int = 0
    gaps: int = 0
    message: str = ""


class Reporter:
    """Writes :class:`ChildReport` lines at most every ``interval`` seconds (set by the
    supervisor through ``TTXT_STATS_INTERVAL``); silent when stdout is a terminal."""

    def __init__(self, out: IO[str] | None = None, interval: float | None = None):
        self.out = out or sys.stdout
        self.interval = interval if interval is not None else float(
            os.environ.get("TTXT_STATS_INTERVAL", "1.0")
        )
        self.enabled = not self.out.isatty()
        self._next = 0.0
        self._enc = msgspec.json.Encoder()

    def maybe_report(self, report: ChildReport, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now < self._next):
            return
        self._next = now + self.interval
        try:
            self.out.write(self._enc.encode(report).decode() + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):
            self.enabled = False
