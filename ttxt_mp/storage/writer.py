"""One recording file opened for appending: crash recovery, whole-chunk writes, fsync.

Opening an existing file finds the end of its last intact chunk and truncates anything
after it (a chunk torn by a crash, or garbage), so appending always continues a valid
file. Each chunk goes out in one ``write``; a short or failed write is rolled back to the
previous end and the chunk is kept by the caller for a retry, never dropped.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import time

import msgspec

from ttxt_mp.storage.format import (
    FILE_HEADER_SIZE,
    FileHeader,
    FormatError,
    Problem,
    StorageError,
    pack_file_header,
    parse_file_header,
)
from ttxt_mp.storage.scan import scan_chunks

log = logging.getLogger(__name__)

_write = os.write  # the one place bytes reach the file (tests substitute a failing one)


class Recovery(msgspec.Struct, frozen=True):
    """What opening a file for append found and did."""

    path: str
    created: bool
    size_before: int
    size_after: int
    chunks: int
    problems: tuple[Problem, ...] = ()

    @property
    def truncated(self) -> int:
        """Bytes cut: a torn tail, or a torn header of a file that was then recreated."""
        return self.size_before if self.created else self.size_before - self.size_after


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _valid_end(path: str, fd: int, size: int) -> tuple[int, int, list[Problem]]:
    """End offset of the last chunk that is complete with a good body CRC."""
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as data:
        index = scan_chunks(data, path, FILE_HEADER_SIZE)
        n = len(index)
        # Only trailing chunks can be torn by a crash: check bodies from the end backwards.
        while n and not index.body_ok(data, n - 1):
            n -= 1
    if n == 0:
        return FILE_HEADER_SIZE, 0, index.problems
    return int(index.end_pos[n - 1]), n, index.problems


class FileLocked(StorageError):
    """Another writer (process or open file) holds the file's exclusive lock."""


class ChunkFile:
    """Append-only writer of one recording file (exclusive: one writer per file)."""

    def __init__(self, path: str, exchange: str, symbol: str, *, day: int = 0) -> None:
        self.path = path
        self.header: FileHeader
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FileLocked(f"{path} is being written by another recorder") from None
            self.recovery = self._recover(fd, exchange, symbol, day)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.size = self.recovery.size_after
        self.dirty = False

    def _recover(self, fd: int, exchange: str, symbol: str, day: int) -> Recovery:
        size = os.fstat(fd).st_size
        if size < FILE_HEADER_SIZE:
            # New, or torn while its header was written: no chunk can exist yet.
            os.ftruncate(fd, 0)
            head = pack_file_header(exchange, symbol, time.time_ns(), day)
            if _write(fd, head) != len(head):
                raise StorageError(f"{self.path}: short write of the file header")
            os.fsync(fd)
            _fsync_dir(self.path)
            self.header = parse_file_header(head, self.path)
            return Recovery(self.path, True, size, FILE_HEADER_SIZE, 0)
        self.header = parse_file_header(os.pread(fd, FILE_HEADER_SIZE, 0), self.path)
        if (self.header.exchange, self.header.symbol) != (exchange, symbol):
            raise FormatError(
                f"{self.path} records {self.header.exchange} {self.header.symbol!r}, "
                f"not {exchange} {symbol!r}"
            )
        end, chunks, problems = _valid_end(self.path, fd, size)
        if end < size:
            os.ftruncate(fd, end)
            os.fsync(fd)
            log.warning("%s: truncated %d bytes after the last intact chunk", self.path,
                        size - end)  # fmt: skip
        return Recovery(self.path, False, size, end, chunks, tuple(problems))

    def append(self, chunk: bytes) -> None:
        """Write one whole chunk, or raise OSError with the file unchanged."""
        try:
            n = _write(self.fd, chunk)
            if n != len(chunk):
                raise OSError(f"short write ({n} of {len(chunk)} bytes)")
        except OSError:
            self._rollback()
            raise
        self.size += len(chunk)
        self.dirty = True

    def _rollback(self) -> None:
        try:
            os.ftruncate(self.fd, self.size)
        except OSError as e:  # the reader will still skip the torn tail by its CRC
            log.error("%s: cannot roll back a failed write: %s", self.path, e)

    def fsync(self) -> None:
        if self.dirty:
            os.fsync(self.fd)
            self.dirty = False

    def close(self) -> None:
        if self.fd >= 0:
            try:
                self.fsync()
            finally:
                os.close(self.fd)
                self.fd = -1
