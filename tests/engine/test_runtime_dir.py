"""The runtime directory, the engine lock file and the control socket are trusted only
when they are ours: foreign, loose or symlinked objects are refused, never followed.

A foreign owner is simulated with ``os.chown`` to uid 65534 (needs root; skipped
otherwise). Tests with a real second account live in tests/security.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lines import Lines

from ttxt_mp.engine import control
from ttxt_mp.engine.naming import control_socket, lock_file, read_engine, runtime_dir
from ttxt_mp.engine.supervisor import EngineAlreadyRunning, EngineLock
from ttxt_mp.trust import UntrustedObject

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


@pytest.fixture
def xdg(tmp_path, monkeypatch) -> Path:
    """A private XDG_RUNTIME_DIR for this test; the runtime dir is ``<it>/ttxt-mp``."""
    base = tmp_path / "xdg"
    base.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    return base / "ttxt-mp"


@pytest.fixture
def engine_name(request) -> Iterator[str]:
    name = f"rt{os.getpid()}_{abs(hash(request.node.name)) % 10**6}"
    yield name
    path = lock_file(name)
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or path.stat().st_uid in (os.geteuid(), NOBODY):
            path.unlink()


# ---------------------------------------------------------------------- runtime dir


def test_runtime_dir_is_created_private(xdg):
    assert not xdg.exists()
    assert runtime_dir() == xdg
    st = os.lstat(xdg)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()


@root_only
def test_foreign_runtime_dir_is_refused(xdg):
    xdg.mkdir(mode=0o700)
    os.chown(xdg, NOBODY, NOBODY)
    with pytest.raises(UntrustedObject, match=rf"{xdg}: owned by uid {NOBODY}"):
        runtime_dir()
    with pytest.raises(UntrustedObject):  # so no socket is ever looked up in it
        control.request("x", "status")


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o701, 0o777])
def test_loose_runtime_dir_is_refused(xdg, mode):
    xdg.mkdir()
    xdg.chmod(mode)
    with pytest.raises(UntrustedObject, match=rf"mode {mode:04o}; expected .* mode 0700"):
        runtime_dir()


def test_symlinked_runtime_dir_is_refused(xdg, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    xdg.symlink_to(target)
    with pytest.raises(UntrustedObject, match="symbolic link"):
        runtime_dir()
    msg = ""
    try:
        runtime_dir()
    except UntrustedObject as e:
        msg = str(e)
    assert "\n" not in msg and "XDG_RUNTIME_DIR" in msg  # one line, says how to fix it


# ---------------------------------------------------------------------- lock file


def test_lock_file_is_host_wide_and_holds_the_identity(xdg, engine_name):
    lock = EngineLock(engine_name)
    lock.acquire()
    try:
        assert lock.path == Path(f"/dev/shm/ttxt-{engine_name}.lock")
        st = os.lstat(lock.path)
        assert stat.S_IMODE(st.st_mode) == 0o600
        info = read_engine(engine_name)
        assert info is not None and info.alive
        assert (info.pid, info.uid, info.runtime_dir) == (os.getpid(), os.geteuid(), str(xdg))
        assert info.instance_id == lock.instance_id and info.instance_id & 1
    finally:
        lock.release()
    assert read_engine(engine_name) is None


def test_lock_file_symlink_is_not_followed(xdg, engine_name, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock_file(engine_name).symlink_to(victim)
    with pytest.raises(UntrustedObject, match="symbolic link"):
        EngineLock(engine_name).acquire()
    with pytest.raises(UntrustedObject, match="symbolic link"):
        read_engine(engine_name)
    assert victim.read_text() == "precious"


@root_only
def test_foreign_lock_file_is_refused_untouched(xdg, engine_name):
    path = lock_file(engine_name)
    body = b'{"pid":4242,"uid":65534,"instance_id":7,"runtime_dir":"/run/user/65534/ttxt-mp"}'
    path.write_bytes(body)
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(EngineAlreadyRunning) as exc:
        EngineLock(engine_name).acquire()
    msg = str(exc.value)
    assert f"engine {engine_name!r} is already running by another user (pid 4242, uid 65534" in msg
    assert "/run/user/65534/ttxt-mp" in msg and "\n" not in msg
    assert path.read_bytes() == body and os.lstat(path).st_uid == NOBODY
    with pytest.raises(UntrustedObject, match=f"owned by uid {NOBODY}"):
        read_engine(engine_name)


def test_loose_own_lock_file_is_refused(xdg, engine_name):
    path = lock_file(engine_name)
    path.write_bytes(b"")
    path.chmod(0o666)
    with pytest.raises(UntrustedObject, match="mode 0666"):
        EngineLock(engine_name).acquire()


def test_engine_name_cannot_escape_dev_shm():
    with pytest.raises(ValueError, match="invalid engine name"):
        lock_file("../etc/x")


# ---------------------------------------------------------------------- control socket


class _Server:
    """control.serve() on its own event loop thread; records the requests it handled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handled: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, req: dict) -> dict:
        self.handled.append(req)
        return {"ok": True, "pid": os.getpid()}

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(control.serve(self.path, self._handle))
        self.ready.set()
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def __enter__(self) -> _Server:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_control_request_answered_by_own_server(xdg, engine_name):
    with _Server(control_socket(engine_name)) as srv:
        assert control.request(engine_name, "status")["pid"] == os.getpid()
        assert srv.handled == [{"cmd": "status"}]


def test_control_socket_symlink_is_refused(xdg, engine_name, tmp_path):
    with _Server(tmp_path / "real.sock") as srv:
        control_socket(engine_name).symlink_to(tmp_path / "real.sock")
        with pytest.raises(control.ControlError, match="symbolic link"):
            control.request(engine_name, "status")
        assert srv.handled == []


@root_only
def test_foreign_control_socket_file_is_refused(xdg, engine_name):
    with _Server(control_socket(engine_name)) as srv:
        os.chown(control_socket(engine_name), NOBODY, NOBODY)
        with pytest.raises(control.ControlError, match=f"owned by uid {NOBODY}"):
            control.request(engine_name, "status")
        assert srv.handled == []


_IMPOSTOR = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])          # as root: the socket file is owned by the victim's uid
os.setgid(65534); os.setuid(65534)
s.listen(1)                  # SO_PEERCRED records the credentials of listen()
print("ready", flush=True)
s.settimeout(20)
try:
    c, _ = s.accept()
    c.settimeout(5)
    c.recv(100)
    c.sendall(b'{"ok": true, "pid": 1, "engine": "forged"}\n')
    c.close()
except OSError:
    pass
"""


@root_only
def test_client_refuses_a_server_of_another_uid(xdg, engine_name):
    """A socket file of ours whose listener runs as another uid (a planted socket):
    the reply is not trusted."""
    path = control_socket(engine_name)
    proc = subprocess.Popen([sys.executable, "-c", _IMPOSTOR, str(path)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert Lines(proc.stdout).next(20, "the impostor listening").strip() == "ready"
        with pytest.raises(control.ControlError, match=f"served by pid {proc.pid} of uid {NOBODY}"):
            control.request(engine_name, "status", timeout=5)
    finally:
        proc.kill()
        proc.wait(10)


_INTRUDER = r"""
import os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"cmd": "shutdown"}\n')
    print(repr(s.recv(100)), flush=True)
except (BrokenPipeError, ConnectionResetError):  # closed before or after our request: no reply
    print(repr(b""), flush=True)
"""


@root_only
def test_server_refuses_a_client_of_another_uid():
    """Even if the socket were reachable (here: a world-writable one in an open dir),
    a peer of another uid gets no answer and its request never reaches the handler."""
    d = Path(tempfile.mkdtemp(prefix="ttxtsock"))
    try:
        d.chmod(0o755)
        with _Server(d / "c.sock") as srv:
            (d / "c.sock").chmod(0o666)
            out = subprocess.run([sys.executable, "-c", _INTRUDER, str(d / "c.sock")],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == "b''"  # closed, no reply
            assert srv.handled == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_socket_closed_without_reply_is_one_line(xdg, engine_name):
    path = control_socket(engine_name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)

    def close_at_once() -> None:
        c, _ = s.accept()
        c.close()

    t = threading.Thread(target=close_at_once, daemon=True)
    t.start()
    try:
        with pytest.raises(control.ControlError, match="closed the control connection without a reply"):
            control.request(engine_name, "status", timeout=5)
    finally:
        t.join(5)
        s.close()


def test_no_engine_is_engine_not_running(xdg, engine_name):
    t0 = time.monotonic()
    with pytest.raises(control.EngineNotRunning, match=f"no engine named {engine_name!r}"):
        control.request(engine_name, "status")
    assert time.monotonic() - t0 < 2
