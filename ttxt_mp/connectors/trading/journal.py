"""The command journal: exactly-once bookkeeping of one connector's commands across
restarts (the protocol is described in :mod:`ttxt_mp.connectors.trading`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from ttxt_mp.connectors.trading.protocol import COMMANDS
from ttxt_mp.trust import open_checked

__all__ = ["CommandJournal", "PendingCommand"]

log = logging.getLogger("ttxt_mp.trading")


class PendingCommand(msgspec.Struct, frozen=True):
    """A command dispatched but not acked when the journal was last read."""

    key: str
    number: int
    at_ms: int
    command: Any


class _Rec(msgspec.Struct, omit_defaults=True):
    t: str  # P: processed-up-to, D: dispatched, A: acked, O: order opened, X: closed
    r: str
    n: int
    at: int = 0
    k: str = ""
    c: msgspec.Raw = msgspec.Raw()


_KINDS: dict[str, type] = {c.__name__: c for c in COMMANDS}
_REC = msgspec.json.Decoder(_Rec)
_ENC = msgspec.json.Encoder()


class CommandJournal:
    """Exactly-once bookkeeping of one connector's commands (see
    :mod:`ttxt_mp.connectors.trading`).

    One JSON line per record; a torn last line (crash mid-write) is ignored. The file is
    compacted at open and every :attr:`compact_every` records (atomic rename).
    """

    compact_every = 20_000

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.last: dict[str, int] = {}
        self.pending: dict[tuple[str, int], PendingCommand] = {}
        self.open_orders: dict[str, str] = {}
        """Client order id -> symbol of orders placed through this connector and not seen
        closed: after a restart, their final state is queried (reconciliation)."""
        self._records = 0
        self._fd = -1
        self._load()
        self._compact()

    def _load(self) -> None:
        try:
            fd = open_checked(self.path, os.O_RDONLY, what="trading journal")
        except FileNotFoundError:
            return
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
        for line in data.splitlines():
            try:
                rec = _REC.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("journal %s: skipping an unreadable record (torn write?)", self.path)
                continue
            if rec.t in ("P", "D"):
                self.last[rec.r] = max(self.last.get(rec.r, 0), rec.n)
            if rec.t == "D":
                cmd = msgspec.json.decode(rec.c, type=_KINDS[rec.k])
                self.pending[(rec.r, rec.n)] = PendingCommand(rec.r, rec.n, rec.at, cmd)
            elif rec.t == "A":
                self.pending.pop((rec.r, rec.n), None)
            elif rec.t == "O":
                self.open_orders[rec.r] = rec.k
            elif rec.t == "X":
                self.open_orders.pop(rec.r, None)

    def _compact(self) -> None:
        lines = [_ENC.encode(_Rec("P", k, n)) for k, n in self.last.items()]
        lines += [self._dispatch_line(p.key, p.number, p.command, p.at_ms)
                  for p in self.pending.values()]  # fmt: skip
        lines += [_ENC.encode(_Rec("O", cid, 0, k=sym)) for cid, sym in self.open_orders.items()]
        tmp = self.path.with_suffix(".tmp")
        # Never through a symlink, never a file of another uid (open_checked), 0600.
        fd = open_checked(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600,
                          what="trading journal")  # fmt: skip
        try:
            os.write(fd, b"".join(line + b"\n" for line in lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = open_checked(self.path, os.O_WRONLY | os.O_APPEND, 0o600,
                                what="trading journal")  # fmt: skip
        self._records = len(lines)

    @staticmethod
    def _dispatch_line(key: str, n: int, cmd: Any, at_ms: int) -> bytes:
        return _ENC.encode(_Rec("D", key, n, at_ms, type(cmd).__name__, msgspec.Raw(_ENC.encode(cmd))))

    def dispatched(self, key: str, commands: list[Any]) -> None:
        """Record (and fsync) that ``commands`` of ring ``key`` are about to be sent."""
        if not commands:
            return
        at = time.time_ns() // 1_000_000
        lines = [self._dispatch_line(key, c.local_ts, c, at) for c in commands]
        os.write(self._fd, b"\n".join(lines) + b"\n")
        if self.fsync:
            os.fdatasync(self._fd)
        self.last[key] = max(self.last.get(key, 0), commands[-1].local_ts)
        self._records += len(lines)

    def acked(self, key: str, number: int) -> None:
        """The ack of a command is published (no fsync: a lost record means one
        re-resolution after a crash, whose duplicate ack clients drop)."""
        self.pending.pop((key, number), None)
        self._append(_Rec("A", key, number))
        if self._records >= self.compact_every:
            self._compact()

    def _append(self, rec: _Rec) -> None:
        os.write(self._fd, _ENC.encode(rec) + b"\n")
        self._records += 1

    def opened(self, client_order_id: str, symbol: str) -> None:
        if client_order_id not in self.open_orders:
            self.open_orders[client_order_id] = symbol
            self._append(_Rec("O", client_order_id, 0, k=symbol))

    def closed(self, client_order_id: str) -> None:
        if self.open_orders.pop(client_order_id, None) is not None:
            self._append(_Rec("X", client_order_id, 0))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
