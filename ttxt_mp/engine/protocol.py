"""What a child process and its supervisor tell each other.

- child -> supervisor: one :class:`ChildReport` JSON line on stdout per interval, and a
  final one before exiting (a permanent failure says why in it);
- exit codes: :data:`EXIT_PERMANENT` (and :data:`EXIT_USAGE`) mean "restarting would fail
  the same way" (unknown symbols, an unusable directory, a missing client module): the
  supervisor marks the child FAILED and does not restart it;
- supervisor -> child: the configuration parsed at launch, as msgspec JSON in a sealed
  memfd inherited by the child (its fd number in :data:`CONFIG_FD_ENV`), so a restarted
  child never re-reads a config file edited since launch. The config holds no secrets
  (credentials are environment variable names or a file path).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

import msgspec

from ttxt_mp.config import Config, ConfigError, load_config

__all__ = ["CONFIG_FD_ENV", "EXIT_PERMANENT", "EXIT_USAGE", "PERMANENT_EXITS", "ChildReport",
           "Reporter", "config_memfd", "exit_reason", "launch_config", "report_permanent"]  # fmt: skip

EXIT_USAGE = 2
"""A usage or config mistake (argparse's code too)."""
EXIT_PERMANENT = 78
"""EX_CONFIG: the child cannot work with this configuration; do not restart it."""
PERMANENT_EXITS = frozenset({EXIT_USAGE, EXIT_PERMANENT})
CONFIG_FD_ENV = "TTXT_MP_CONFIG_FD"
FAILED = "FAILED"


class ChildReport(msgspec.Struct, kw_only=True):
    state: str = "UP"
    events: int = 0
    reconnects: int = 0
    gaps: int = 0
    lost: int = 0
    message: str = ""
    detail: dict[str, Any] = {}
    """Role-specific figures shown by ``status`` (a bridge's lag, drops, URL redacted)."""


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


def report_permanent(message: str, reporter: Reporter | None = None) -> int:
    """The end of a child that must not be restarted: one log line on stderr (no
    traceback), a final FAILED report for the supervisor; returns :data:`EXIT_PERMANENT`."""
    logging.getLogger("ttxt_mp").error("%s", message)
    (reporter or Reporter()).maybe_report(ChildReport(state=FAILED, message=message[:300]),
                                          force=True)  # fmt: skip
    return EXIT_PERMANENT


def exit_reason(code: int) -> str:
    """A child's exit status in words: ``killed by SIGKILL``, ``exited with code 1``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == EXIT_PERMANENT:
        return f"failed permanently (exit code {code})"
    return f"exited with code {code}"


# ---------------------------------------------------------------------- launch config


def config_memfd(cfg: Config) -> int:
    """A sealed, read-only-by-content memfd holding ``cfg`` as JSON (the supervisor's; it
    is inherited by each child through ``pass_fds``)."""
    data = msgspec.json.encode(cfg)
    fd = os.memfd_create("ttxt-config", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)  # fmt: skip
    except BaseException:
        os.close(fd)
        raise
    return fd


def launch_config(path: str | os.PathLike[str]) -> Config:
    """The configuration a child must use: the one its supervisor parsed at launch when
    started by one (:data:`CONFIG_FD_ENV`), else the file at ``path`` (run on its own)."""
    raw_fd = os.environ.get(CONFIG_FD_ENV)
    if not raw_fd:
        return load_config(path)
    try:
        fd = int(raw_fd)
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0)
        return msgspec.json.decode(data, type=Config)
    except (ValueError, OSError, msgspec.DecodeError) as e:
        raise ConfigError(
            f"{Path(path)}: cannot read the configuration passed by the supervisor "
            f"({CONFIG_FD_ENV}={raw_fd!r}): {e}"
        ) from None
