"""A real ``redis-server`` on a free 127.0.0.1 port, owned by the test that starts it.

Tests that need Redis use the ``redis_server`` fixture (tests/bus/conftest.py). Without a
``redis-server`` binary they skip with that reason, unless ``TTXT_MP_REQUIRE_REDIS=1``
(set by ``.ci/run``), where a missing server fails: CI never skips the bus tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REQUIRE_ENV = "TTXT_MP_REQUIRE_REDIS"
START_TIMEOUT = 20.0


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path:
        return path
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"redis-server not found on PATH and {REQUIRE_ENV}=1: install it "
                    "(apt-get install -y redis-server)")
    pytest.skip("redis-server not installed here (CI installs it and sets "
                f"{REQUIRE_ENV}=1; apt-get install -y redis-server)")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One ``redis-server`` process: no persistence, bound to 127.0.0.1 only."""

    def __init__(self, password: str | None = None, port: int | None = None) -> None:
        self.binary = redis_binary()
        self.password = password
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="ttxt-redis-")
        os.chmod(self.dir, 0o700)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        conf = os.path.join(self.dir, "redis.conf")
        lines = [f"port {self.port}", "bind 127.0.0.1", "save \"\"", "appendonly no",
                 f"dir {self.dir}", "protected-mode yes", "daemonize no", "loglevel warning"]
        if self.password:  # in a 0600 file, never on the command line
            lines.append(f"requirepass {self.password}")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([self.binary, conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} on "
                                   f"port {self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT}s")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        """True once the server answers (``-NOAUTH`` counts: it is up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64)[:1] in (b"+", b"-")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would (the port is reused by :meth:`start`)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
