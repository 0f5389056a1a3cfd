"""Trust checks for every object another local user could have planted.

Rings, FIFOs, lock files, sockets and the runtime directory live in places other local
users can write to (``/dev/shm``, ``/tmp``). Before a process uses one it checks, on the
open file descriptor (never on the path, which can change under it), that the object is
owned by this process's effective uid (or, only when the caller opted in, by the one
group it shares with) and that it gives nothing to "other". Symbolic links are refused
with ``O_NOFOLLOW``. Everything here raises :class:`UntrustedObject`, whose one-line
message names the path, its owner and mode, and what was expected.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["UntrustedObject", "check_fd", "check_stat", "open_checked", "secure_dir"]


class UntrustedObject(PermissionError):
    """A shared object is owned by someone else, readable/writable by others, or a
    symbolic link: it is refused, never used or removed."""


def _expected(allow_gid: int | None) -> str:
    euid = os.geteuid()
    if allow_gid is None:
        return f"expected uid {euid} and no access for group or others"
    return f"expected uid {euid} or group {allow_gid}, and no access for others"


def check_stat(
    st: os.stat_result, path: str, *, allow_gid: int | None = None, what: str = "file"
) -> None:
    """Refuse ``st`` unless it is owned by ``os.geteuid()`` (or has group ``allow_gid``
    when that is given) and its mode gives nothing to others (nor to the group unless
    the group is ``allow_gid``)."""
    mode = stat.S_IMODE(st.st_mode)
    group_ok = allow_gid is not None and st.st_gid == allow_gid
    owner_ok = st.st_uid == os.geteuid() or group_ok
    mode_ok = not mode & 0o007 and (group_ok or not mode & 0o070)
    if not (owner_ok and mode_ok):
        group = f" group {st.st_gid}," if allow_gid is not None else ""
        raise UntrustedObject(
            f"refusing {what} {path}: owned by uid {st.st_uid},{group} mode {mode:04o}; "
            f"{_expected(allow_gid)}"
        )


def check_fd(
    fd: int, path: str, *, allow_gid: int | None = None, what: str = "file"
) -> os.stat_result:
    """``fstat`` the open ``fd`` and :func:`check_stat` it; returns the stat result."""
    st = os.fstat(fd)
    check_stat(st, path, allow_gid=allow_gid, what=what)
    return st


def _refuse_link_or_foreign(path: str, what: str, allow_gid: int | None) -> None:
    """After an open failed: raise UntrustedObject if ``path`` is a symlink or foreign."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UntrustedObject(f"refusing {what} {path}: it is a symbolic link") from None
    check_stat(st, path, allow_gid=allow_gid, what=what)


def open_checked(
    path: str | os.PathLike[str],
    flags: int,
    mode: int = 0o600,
    *,
    allow_gid: int | None = None,
    what: str = "file",
) -> int:
    """``os.open`` without following a symlink, then :func:`check_fd`; the fd is closed
    if the check fails. A symlink (or, e.g. under ``protected_regular``, an existing
    file of another user) raises :class:`UntrustedObject` instead of ``OSError``."""
    p = os.fspath(path)
    try:
        fd = os.open(p, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
            _refuse_link_or_foreign(p, what, allow_gid)
        raise
    try:
        check_fd(fd, p, allow_gid=allow_gid, what=what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def secure_dir(path: Path | str, *, create: bool = True) -> Path:
    """A private directory: created 0700 (with parents) if missing, then refused unless
    it is a real directory (no symlink) owned by this uid with no group/other access."""
    p = Path(path)
    if create:
        try:
            p.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        raise UntrustedObject(f"directory {p} does not exist") from None
    hint = "remove it or set XDG_RUNTIME_DIR to a private directory"
    if stat.S_ISLNK(st.st_mode):
        raise UntrustedObject(f"refusing directory {p}: it is a symbolic link; {hint}")
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedObject(f"refusing directory {p}: it is not a directory; {hint}")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid() or mode & 0o077:
        raise UntrustedObject(
            f"refusing directory {p}: owned by uid {st.st_uid}, mode {mode:04o}; expected "
            f"uid {os.geteuid()} and mode 0700; {hint}"
        )
    return p
