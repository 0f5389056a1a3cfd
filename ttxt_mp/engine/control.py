"""The supervisor's control channel: JSON lines over a per-user Unix socket.

Requests are ``{"cmd": "status" | "rings" | "shutdown"}``; each gets one JSON line back.
Used by ``ttxt-mp status`` and to tell whether an engine of a given name is alive.

Both ends check who is on the other side (``SO_PEERCRED``): the server answers only
processes of its own uid, and the client trusts a reply only from a socket file it owns
(not a symlink) served by a process of its own uid, so another local user can neither
stop the engine nor answer ``ttxt-mp status`` in its place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from ttxt_mp.engine.naming import control_socket

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_enc = msgspec.json.Encoder()
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
MAX_REPLY = 16 << 20
log = logging.getLogger("ttxt_mp.supervisor")


class ControlError(ConnectionError):
    """The control channel failed or cannot be trusted (one line, names the cause). An
    OSError, so every caller that already treats a failed connection as "no engine"
    (and the CLI's error boundary) reports it in one line."""


class EngineNotRunning(ControlError):
    """No supervisor answers on the engine's control socket."""


def peer_uid(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a connected Unix socket."""
    pid, uid, _gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return pid, uid


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    path.unlink(missing_ok=True)  # the runtime dir is ours and private (secure_dir)
    me = os.geteuid()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            pid, uid = peer_uid(sock)
            if uid != me:
                log.warning("control socket %s: refused a connection from pid %d, uid %d "
                            "(only uid %d may control this engine)", path, pid, uid, me)  # fmt: skip
                return
            while line := await reader.readline():
                try:
                    req = msgspec.json.decode(line)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                    resp = await handler(req)
                except (msgspec.DecodeError, ValueError) as e:
                    resp = {"ok": False, "error": f"bad request: {e}"}
                writer.write(_enc.encode(resp) + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(on_client, path=str(path))
    path.chmod(0o600)
    return server


def check_socket_file(path: Path) -> None:
    """Refuse a control socket that is a symlink, not a socket, or not ours."""
    st = os.lstat(path)  # FileNotFoundError: no engine
    me = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        raise ControlError(f"refusing control socket {path}: it is a symbolic link")
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"refusing control socket {path}: it is not a socket")
    if st.st_uid != me:
        raise ControlError(f"refusing control socket {path}: owned by uid {st.st_uid}, "
                           f"expected uid {me}")  # fmt: skip


def request(engine: str, cmd: str, timeout: float = 3.0, **fields: Any) -> dict[str, Any]:
    """Send one request to a running engine (blocking; for CLIs and tests).

    Raises :class:`EngineNotRunning` when nothing listens and :class:`ControlError` when
    the socket or its server is not ours, or the reply is missing or unreadable."""
    path = control_socket(engine)
    try:
        check_socket_file(path)
    except FileNotFoundError:
        raise EngineNotRunning(f"no engine named {engine!r} is running (no control socket "
                               f"{path})") from None  # fmt: skip
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    with s:
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise EngineNotRunning(f"no engine named {engine!r} is running ({path}: "
                                   f"{e.strerror})") from None  # fmt: skip
        except OSError as e:
            raise ControlError(f"cannot connect to engine {engine!r} at {path}: "
                               f"{e.strerror or e}") from None  # fmt: skip
        pid, uid = peer_uid(s)
        if uid != os.geteuid():
            raise ControlError(f"refusing the answer on {path}: served by pid {pid} of uid "
                               f"{uid}, not by this user (uid {os.geteuid()})")  # fmt: skip
        buf = b""
        try:
            s.sendall(_enc.encode({"cmd": cmd, **fields}) + b"\n")
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_REPLY:
                    raise ControlError(f"engine {engine!r} sent a reply larger than "
                                       f"{MAX_REPLY >> 20} MiB on {path}")  # fmt: skip
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed on us: reported below as "closed without a reply"
        except TimeoutError:
            raise ControlError(f"engine {engine!r} did not answer {cmd!r} within "
                               f"{timeout:g}s ({path})") from None  # fmt: skip
        except OSError as e:
            raise ControlError(f"engine {engine!r} connection failed during {cmd!r}: "
                               f"{e.strerror or e} ({path})") from None  # fmt: skip
    if not buf.endswith(b"\n"):
        raise ControlError(f"engine {engine!r} closed the control connection without a "
                           f"reply to {cmd!r} ({path})")  # fmt: skip
    try:
        reply = msgspec.json.decode(buf)
    except msgspec.DecodeError as e:
        raise ControlError(f"engine {engine!r} sent an unreadable reply to {cmd!r}: {e}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"engine {engine!r} sent a reply that is not a JSON object")
    return reply
