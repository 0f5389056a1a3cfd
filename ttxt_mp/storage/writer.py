"""One recording file opened for appending: crash recovery, whole-chunk writes, fsync.

Opening an existing file finds the end of its last intact chunk and truncates anything
after it (a chunk torn by a crash, or garbage), so appending always continues a valid
file. Each chunk goes out in one ``write``; a short or failed write is rolled back to the
previous end and the chunk is kept by the caller for a retry, never dropped.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import stat
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


DEFAULT_FILE_MODE = 0o600  # recordings hold what the engine saw: private by default


def parse_mode(text: str | int) -> int:
    """An octal file mode like ``"0640"`` for recordings: read/write bits only, owner
    read-write, nothing for others (ValueError naming the value otherwise)."""
    try:
        mode = text if isinstance(text, int) else int(str(text), 8)
    except ValueError:
        raise ValueError(f"expected an octal file mode like \"0600\" or \"0640\", got {text!r}") from None
    if mode & ~0o666 or mode & 0o007 or mode & 0o600 != 0o600:
        raise ValueError(f"expected a file mode with owner read-write and no access for others, "
                         f"like 0600 or 0640, got {mode:04o}")  # fmt: skip
    return mode


def dir_mode(file_mode: int) -> int:
    """The directory mode matching a file mode: search wherever there is read."""
    return file_mode | (file_mode & 0o444) >> 2


def open_private(path: str, flags: int, file_mode: int = DEFAULT_FILE_MODE) -> int:
    """Open (or create with ``file_mode``) a regular file of ours without following a
    symlink: a planted link or someone else's file is refused with a one-line
    PermissionError; a file of ours with looser bits is tightened to ``file_mode``."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, file_mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _untrusted(f"refusing {path}: it is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _untrusted(f"refusing {path}: not a regular file")
        if st.st_uid != os.geteuid():
            raise _untrusted(f"refusing {path}: owned by uid {st.st_uid}, mode "
                             f"{stat.S_IMODE(st.st_mode):04o}; expected uid {os.geteuid()}")  # fmt: skip
        if stat.S_IMODE(st.st_mode) & ~file_mode:
            os.fchmod(fd, file_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _untrusted(msg: str) -> PermissionError:
    try:
        from ttxt_mp.trust import UntrustedObject
    except ImportError:
        return PermissionError(msg)
    return UntrustedObject(msg)


class ChunkFile:
    """Append-only writer of one recording file (exclusive: one writer per file)."""

    def __init__(self, path: str, exchange: str, symbol: str, *, day: int = 0,
                 file_mode: int = DEFAULT_FILE_MODE) -> None:  # fmt: skip
        self.path = path
        self.header: FileHeader
        fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, file_mode)
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
