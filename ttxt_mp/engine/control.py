"""The supervisor's control channel: JSON lines over a per-user Unix socket.

Requests are ``{"cmd": "status" | "rings" | "shutdown"}``; each gets one JSON line back.
Used by ``ttxt-mp status`` and to tell whether an engine of a given name is alive.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from ttxt_mp.engine.naming import control_socket

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_enc = msgspec.json.Encoder()


class EngineNotRunning(RuntimeError):
    """No supervisor answers on the engine's control socket."""


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    path.unlink(missing_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
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
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(on_client, path=str(path))
    path.chmod(0o600)
    return server


def request(engine: str, cmd: str, timeout: float = 3.0, **fields: Any) -> dict[str, Any]:
    """Send one request to a running engine (blocking; for CLIs and tests)."""
    path = control_socket(engine)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as e:
        s.close()
        raise EngineNotRunning(f"no engine named {engine!r} is running ({path}: {e.strerror})") from None
    with s:
        s.sendall(_enc.encode({"cmd": cmd, **fields}) + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return msgspec.json.decode(buf)
