"""Lines of a child's pipe, collected by a thread, so a test never blocks on a read:
every wait has a deadline, even when the child hangs without writing a newline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Lines:
    def __init__(self, stream: Any) -> None:
        self.lines: list[Any] = []
        self.closed = False
        self._next = 0
        self._t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._t.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)
        self.closed = True

    def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``pred()``; AssertionError naming ``what`` after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, f"timed out waiting for {what}: {self.lines[-5:]}"
            time.sleep(0.05)

    def next(self, timeout: float, what: str) -> Any:
        """The next line not returned yet; AssertionError on timeout or end of stream."""
        self.wait(lambda: len(self.lines) > self._next or self.closed, timeout, what)
        assert len(self.lines) > self._next, f"the stream ended before {what}: {self.lines[-5:]}"
        self._next += 1
        return self.lines[self._next - 1]
