"""Engine identity and who may feed or command an engine.

- One engine per name on the whole host, whatever the runtime dir: a second one is
  refused in one line and the first one's rings stay intact.
- Leftover cleanup never removes another uid's objects.
- ``attach(engine)`` reads only rings of this uid carrying the engine's instance id.
- A connector accepts a command ring only from the engine's uid (or the configured
  trading group): a ring of another user is ignored with one warning, its orders never
  reach the venue.

Foreign objects are made by a helper process that drops to uid 65534 (root only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lines import Lines

from ttxt_mp.client import attach
from ttxt_mp.config import parse_config
from ttxt_mp.engine.demo import demo_config_text
from ttxt_mp.engine.naming import (
    command_ring_name,
    engine_objects,
    lock_file,
    read_engine,
    ring_name,
)
from ttxt_mp.engine.rings import EngineRings
from ttxt_mp.engine.supervisor import EngineLock, Supervisor, remove_leftovers
from ttxt_mp.events import ConnectorState, ConnectorStatus
from ttxt_mp.shm import RingPermissionError, ShmQueue
from ttxt_mp.shm.errors import RingForeign
from ttxt_mp.trust import UntrustedObject

NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as uid 65534")

# A helper process acting as another local user: imports first, then drops to uid/gid
# 65534 for good, creates ring NAME (mode MODE after creation) and keeps it until its
# stdin closes. With CMD=1 it puts a CreateOrder into it (an order attempt).
_FOREIGN = r"""
import os, sys, time
from ttxt_mp.shm import ShmQueue
from ttxt_mp.events import ConnectorStatus, ConnectorState, CreateOrder, Side
name, mode, cmd = sys.argv[1], int(sys.argv[2], 8), sys.argv[3] == "1"
os.setgroups([]); os.setgid(65534); os.setuid(65534)
group = 65534 if mode & 0o070 else None
meta = {"client": "evil", "ring_id": "evil-ring", "pid": os.getpid(),
        "exchange": "binance", "symbols": ["BTC/USDT"]}
q = ShmQueue.create(name, 64, 256, "block" if cmd else "overwrite", metadata=meta,
                    group=group, instance_id=int(sys.argv[4]) if len(sys.argv) > 4 else 0)
os.chmod(f"/dev/shm/ttxt-{name}", mode)
if cmd:
    q.put(CreateOrder(exchange="binance", symbol="BTC/USDT", client_order_id="evil-1",
                      side=Side.BUY, qty=0.01, price=float(os.environ.get("EVIL_PRICE", "1000")),
                      local_ts=time.time_ns()))
else:
    q.put(ConnectorStatus(exchange="binance", state=ConnectorState.UP, message="forged",
                          local_ts=time.time_ns()))
print("READY", flush=True)
sys.stdin.read()
q.close(); q.unlink()
"""


@contextlib.contextmanager
def foreign_ring(name: str, mode: int = 0o600, *, command: bool = False,
                 instance_id: int = 0, price: float = 1000.0) -> Iterator[subprocess.Popen]:  # fmt: skip
    """Ring ``name`` created by uid 65534, alive while the block runs."""
    argv = [sys.executable, "-c", _FOREIGN, name, f"{mode:o}", "1" if command else "0"]
    if instance_id:
        argv.append(str(instance_id))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "EVIL_PRICE": repr(price)})  # fmt: skip
    try:
        assert proc.stdout is not None
        line = Lines(proc.stdout).next(20, "the foreign process ready").strip()
        assert line == "READY", proc.communicate(timeout=10)[1]
        st = os.lstat(f"/dev/shm/ttxt-{name}")
        assert st.st_uid == NOBODY and stat.S_IMODE(st.st_mode) == mode
        yield proc
    finally:
        with contextlib.suppress(Exception):
            proc.communicate(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for p in Path("/dev/shm").glob(f"ttxt-{name}*"):  # the helper died before unlinking
            with contextlib.suppress(OSError):
                p.unlink()


@pytest.fixture
def name(request) -> Iterator[str]:
    n = f"id{os.getpid() % 100000}_{abs(hash(request.node.name)) % 10**5}"
    yield n
    for p in engine_objects(n) + [lock_file(n)]:
        with contextlib.suppress(OSError):
            p.unlink()


def _config(tmp_path: Path, engine: str, extra: str = "") -> Path:
    path = tmp_path / f"{engine}.toml"
    path.write_text(demo_config_text("127.0.0.1:9", engine) + extra)
    return path


# ---------------------------------------------------------------------- one engine per name


def test_second_engine_under_another_runtime_dir_is_refused_and_rings_stay(tmp_path, name):
    cfg_path = _config(tmp_path, name)
    sup = Supervisor(parse_config(cfg_path.read_text(), str(cfg_path)), str(cfg_path))
    sup.prepare()  # the first engine: lock + rings (no children needed)
    try:
        rings = {p: os.lstat(p).st_ino for p in engine_objects(name)}
        assert len(rings) >= 2
        other = tmp_path / "other-xdg"
        other.mkdir(mode=0o700)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(other)}
        out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "launch", str(cfg_path)],
                             capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)  # fmt: skip
        assert out.returncode == 2, out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert (f"engine {name!r} is already running (pid {os.getpid()}, uid {os.geteuid()}, "
                f"runtime dir") in lines[0]  # fmt: skip
        assert {p: os.lstat(p).st_ino for p in engine_objects(name)} == rings
        info = read_engine(name)
        assert info is not None and info.pid == os.getpid() and info.instance_id == sup.instance_id
    finally:
        sup.shutdown()
    assert not engine_objects(name) and not lock_file(name).exists()


def test_rings_carry_the_instance_id_of_the_lock(tmp_path, name):
    cfg_path = _config(tmp_path, name)
    text = cfg_path.read_text()
    cfg_path.write_text(text.replace('policy = "overwrite"', 'policy = "overwrite"\nmax_consumers = 12', 1))
    sup = Supervisor(parse_config(cfg_path.read_text(), str(cfg_path)), str(cfg_path))
    sup.prepare()
    try:
        info = read_engine(name)
        assert info is not None and info.alive
        for r in sup.rings.names():
            c = ShmQueue.attach(r, instance_id=info.instance_id)
            assert c.instance_id == info.instance_id
            c.close()
        from ttxt_mp.shm.layout import OFF

        market = ring_name(name, "binance", "market")
        with open(f"/dev/shm/ttxt-{market}", "rb") as f:
            f.seek(OFF["max_consumers"])
            assert int.from_bytes(f.read(4), "little") == 12  # [rings.market] max_consumers
    finally:
        sup.shutdown()


@root_only
def test_leftover_cleanup_never_removes_another_uids_objects(name):
    victim = ring_name(name, "zz", "market")
    with foreign_ring(victim):
        lock = EngineLock(name)
        lock.acquire()
        try:
            remove_leftovers(name)
        finally:
            lock.release()
        assert os.path.exists(f"/dev/shm/ttxt-{victim}")


@root_only
def test_trading_group_shares_rings_with_that_group(tmp_path, name):
    cfg = parse_config(demo_config_text("127.0.0.1:9", name) + "\n", "<t>")
    cfg.engine.trading_group = NOBODY
    rings = EngineRings(cfg, instance_id=77)
    rings.create()
    try:
        for r in rings.names():
            st = os.lstat(f"/dev/shm/ttxt-{r}")
            assert st.st_gid == NOBODY and stat.S_IMODE(st.st_mode) == 0o660
    finally:
        rings.destroy()


# ---------------------------------------------------------------------- attach


def test_attach_refuses_a_ring_of_another_instance(name):
    lock = EngineLock(name)
    lock.acquire()
    forged = ShmQueue.create(ring_name(name, "binance", "market"), 64, 256,
                             instance_id=lock.instance_id ^ 2)  # fmt: skip
    try:
        with pytest.raises(RingForeign, match="belongs to engine instance"):
            attach(name)
        forged.close()
        forged.unlink()
        genuine = ShmQueue.create(ring_name(name, "binance", "market"), 64, 256,
                                  instance_id=lock.instance_id)  # fmt: skip
        with attach(name, start="oldest") as feed:
            genuine.put(ConnectorStatus(exchange="binance", state=ConnectorState.UP,
                                        message="real", local_ts=time.time_ns()))  # fmt: skip
            assert feed.get(timeout=5).message == "real"
        genuine.close()
        genuine.unlink()
    finally:
        with contextlib.suppress(Exception):
            forged.close()
        lock.release()


@root_only
@pytest.mark.parametrize("mode", [0o600, 0o666])
def test_attach_refuses_a_foreign_ring_without_an_engine(name, mode):
    """No lock file (a replay could publish without an engine): still only our uid."""
    with foreign_ring(ring_name(name, "binance", "market"), mode):
        assert read_engine(name) is None
        with pytest.raises(RingPermissionError, match=f"uid {NOBODY}"):
            attach(name)


@root_only
def test_attach_refuses_an_engine_of_another_uid(name):
    path = lock_file(name)
    path.write_bytes(b'{"pid":1,"uid":65534,"instance_id":9,"runtime_dir":"/x"}')
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(UntrustedObject, match=f"engine lock file {path}: owned by uid {NOBODY}"):
        attach(name)


# ---------------------------------------------------------------------- command rings


class _Session:
    """What CommandRings needs of a TradingSession: records the rings it is given."""

    def __init__(self) -> None:
        self.sources: list[tuple[Any, str]] = []

    def add_source(self, ring: Any, key: str, on_end: Any) -> None:
        self.sources.append((ring, key))


def _rings(name: str, gid: int | None = None) -> Any:
    from ttxt_mp.connectors.trading import CommandRings

    return CommandRings(name, "binance", _Session(), trading_gid=gid)  # type: ignore[arg-type]


def _close(cr: Any) -> None:
    for ring, _ in cr.session.sources:
        ring.close()


@root_only
@pytest.mark.parametrize("mode", [0o600, 0o666])
def test_foreign_command_ring_is_ignored_with_one_warning(name, mode, caplog):
    cmd = command_ring_name(name, "binance", "evil")
    mine = ShmQueue.create(command_ring_name(name, "binance", "me"), 64, 256, "block",
                           metadata={"client": "me", "ring_id": "r-me"})  # fmt: skip
    cr = _rings(name)
    try:
        with foreign_ring(cmd, mode, command=True), caplog.at_level(logging.WARNING):
            assert cr.attach_new() == 1  # only ours
            assert [k for _, k in cr.session.sources] == ["r-me"]
            for _ in range(3):
                assert cr.attach_new() == 0
            warned = [r.getMessage() for r in caplog.records if "ignoring command ring" in r.getMessage()]
            assert len(warned) == 1, warned
            assert cmd in warned[0] and f"uid {NOBODY}" in warned[0]
    finally:
        _close(cr)
        mine.close()
        mine.unlink()


@root_only
def test_group_command_ring_needs_the_configured_group(name, caplog):
    cmd = command_ring_name(name, "binance", "grp")
    with foreign_ring(cmd, 0o660, command=True):
        plain = _rings(name)
        assert plain.attach_new() == 0  # no trading_group: refused
        grouped = _rings(name, gid=NOBODY)
        try:
            assert grouped.attach_new() == 1
            ring = grouped.session.sources[0][0]
            assert type(ring.get(timeout=5)).__name__ == "CreateOrder"
        finally:
            _close(grouped)
        assert _rings(name, gid=NOBODY + 1).attach_new() == 0  # another group: refused


def test_own_loose_command_ring_is_refused(name, caplog):
    cmd = command_ring_name(name, "binance", "loose")
    q = ShmQueue.create(cmd, 64, 256, "block", metadata={"client": "loose", "ring_id": "x"})
    try:
        os.chmod(f"/dev/shm/ttxt-{cmd}", 0o666)
        with caplog.at_level(logging.WARNING):
            assert _rings(name).attach_new() == 0
        assert any("open to other users" in r.getMessage() for r in caplog.records)
    finally:
        q.close()
        q.unlink()


@root_only
def test_trading_client_group_shares_its_command_ring(name):
    from ttxt_mp.trading_client import TradingClient

    tc = TradingClient(name, "grp", group=NOBODY)
    try:
        link = tc.link("binance")
        st = os.lstat(f"/dev/shm/ttxt-{link.commands.name}")
        assert st.st_gid == NOBODY and stat.S_IMODE(st.st_mode) == 0o660
    finally:
        tc.close()
    with pytest.raises(ValueError, match="no group 'no_such_group_x'"):
        TradingClient(name, "bad", group="no_such_group_x")


@root_only
def test_another_users_orders_never_reach_the_venue(tmp_path, name):
    """Issue 9 item 1, end to end: a connector with API keys, a command ring of another
    uid (mode 0666, as the attacker made it) holding a marketable order. The engine's own
    client trades; the attacker's order is never sent; one warning names the ring."""
    from trading_e2e.helpers import (
        ConnectorProc,
        SimThread,
        creds_env,
        wait_reconciled,
        write_config,
    )

    from ttxt_mp.events import Side
    from ttxt_mp.trading_client import TradingClient

    with SimThread() as simt:
        cfg = write_config(tmp_path / "c.toml", name, "binance", simt.urls("binance"))
        conn = ConnectorProc(tmp_path, name, "binance", cfg, creds_env()).start()
        tc = TradingClient(name, "alice")
        try:
            wait_reconciled(tc, "binance")
            bid, _, ask, _ = simt.best("binance")
            evil = command_ring_name(name, "binance", "evil")
            with foreign_ring(evil, 0o666, command=True, price=float(ask)):
                deadline = time.monotonic() + 20
                while b"ignoring command ring" not in conn.output():
                    assert time.monotonic() < deadline, conn.output()[-3000:]
                    tc.poll(0.1)
                cid = tc.create_order("binance", "BTC/USDT", Side.BUY, 0.01, price=float(bid - 100))
                assert tc.wait_ack(cid, 10).accepted
                tc.poll(1.0)  # several discovery scans more
                assert simt.orders_with("binance", "evil-1") == 0
                assert simt.orders_with("binance", cid) == 1
                assert not any(getattr(a, "client_order_id", "") == "evil-1"
                               for acks in tc._acks.values() for a in acks)
            lines = [ln for ln in conn.output().splitlines() if b"ignoring command ring" in ln]
            assert len(lines) == 1 and evil.encode() in lines[0] and b"uid 65534" in lines[0], lines
        finally:
            tc.close()
            conn.stop()
