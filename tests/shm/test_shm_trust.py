"""Trust boundaries of the rings: owner/mode/symlink checks, header owner and engine
instance, group opt-in, foreign leftovers never removed, engine locks kept.

"Another user" is simulated by chown'ing objects to uid 65534 (we run as root); the
code compares with os.geteuid(), so the same checks hold for any uid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import subprocess
import sys

import pytest
from as_user import run_as

from ttxt_mp.events import Kline
from ttxt_mp.shm import (
    RingExists,
    RingForeign,
    RingPermissionError,
    ShmQueue,
    clean_objects,
    list_objects,
    remove_ring,
    ring_stats,
)
from ttxt_mp.shm.layout import OFF
from ttxt_mp.shm.objects import fifo_path, remove_ring_objects, shm_path
from ttxt_mp.trust import UntrustedObject

NOBODY = 65534
GROUP = 4243
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def ev(i: int = 1) -> Kline:
    return Kline(exchange="x", symbol="A/B", open_ts=i, close=float(i))


@pytest.fixture
def leftovers():
    """Paths a test planted (foreign objects the library must not remove): unlinked at
    teardown by the test itself."""
    paths: list[str] = []
    try:
        yield paths
    finally:
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


def plant(path: str, leftovers: list[str], *, uid: int = NOBODY, mode: int = 0o600,
          data: bytes = b"\0" * 4096, fifo: bool = False) -> os.stat_result:  # fmt: skip
    """Create ``path`` as another user's file (or FIFO) would be."""
    leftovers.append(path)
    if fifo:
        os.mkfifo(path, mode)
    else:
        with open(path, "wb") as f:
            f.write(data)
    os.chmod(path, mode)
    os.chown(path, uid, -1)
    return os.lstat(path)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg, msg
    return msg


# ---------------------------------------------------------------------- opening rings
def test_ring_of_another_uid_is_refused_on_attach_adopt_and_stats(names):
    name = names()
    with ShmQueue.create(name) as p:
        os.chown(shm_path(name), NOBODY, -1)
        for call in (lambda: ShmQueue.attach(name), lambda: ShmQueue.adopt(name),
                     lambda: ring_stats(name)):  # fmt: skip
            with pytest.raises(RingPermissionError) as e:
                call()
            msg = one_line(e)
            assert f"owned by uid {NOBODY}, mode 0600" in msg, msg
            assert f"expected uid {os.geteuid()}" in msg, msg
        assert not [o for o in list_objects(name) if o.kind == "fifo"]  # nothing left
        os.chown(shm_path(name), os.geteuid(), -1)
        p.put(ev())


def test_ring_open_to_others_is_refused(names):
    name = names()
    with ShmQueue.create(name):
        os.chmod(shm_path(name), 0o666)
        with pytest.raises(RingPermissionError, match="mode 0666"):
            ShmQueue.attach(name)
        os.chmod(shm_path(name), 0o600)
        ShmQueue.attach(name).close()


def test_header_producer_uid_must_match_the_owner(names):
    name = names()
    with ShmQueue.create(name) as p:
        o = OFF["producer_uid"]
        assert int.from_bytes(p._mv[o : o + 4], "little") == os.geteuid()
        p._mv[o : o + 4] = (1234).to_bytes(4, "little")
        with pytest.raises(RingPermissionError, match="header names producer uid 1234 but "
                           f"the object is owned by uid {os.geteuid()}"):  # fmt: skip
            ShmQueue.attach(name)
        p.release()
        with pytest.raises(RingPermissionError, match="producer uid 1234"):
            ShmQueue.adopt(name)


def test_symlinked_ring_is_refused_and_left_alone(names, tmp_path, leftovers):
    name = names()
    target = tmp_path / "victim"
    target.write_bytes(b"precious")
    os.symlink(target, shm_path(name))
    leftovers.append(shm_path(name))
    with pytest.raises(RingPermissionError, match="symbolic link"):
        ShmQueue.attach(name)
    with pytest.raises(RingPermissionError) as e:
        ShmQueue.create(name)
    assert "a symbolic link owned by" in one_line(e) and "it is not removed" in str(e.value)
    assert os.path.islink(shm_path(name)) and target.read_bytes() == b"precious"


# ---------------------------------------------------------------------- foreign leftovers
def test_foreign_leftover_ring_is_never_removed(names, leftovers):
    name = names()
    st = plant(shm_path(name), leftovers)
    with pytest.raises(RingPermissionError) as e:
        ShmQueue.create(name)
    assert one_line(e) == (
        f"cannot create ring {name!r}: {shm_path(name)} exists, an object owned by uid "
        f"{NOBODY}, mode 0600; it is not removed (this process is uid {os.geteuid()}): "
        "ask its owner to remove it or choose another name"
    )
    assert list_objects(name) == []  # skipped: not ours
    [o] = list_objects(name, include_foreign=True)
    assert (o.kind, o.uid, o.alive) == ("ring", NOBODY, False)
    assert clean_objects(name, stale_only=False) == []
    assert remove_ring(name) == [] and remove_ring_objects(name) == []
    assert os.lstat(shm_path(name)).st_ino == st.st_ino  # still there, untouched


def test_foreign_fifos_are_skipped_by_clean_and_refused_by_attach(names, leftovers):
    name = names()
    plant(fifo_path(name, 0), leftovers, fifo=True)
    with ShmQueue.create(name) as p:
        with pytest.raises(RingPermissionError) as e:
            ShmQueue.attach(name)
        assert f"wake-up FIFO {fifo_path(name, 0)} exists and belongs to uid {NOBODY}" in (
            one_line(e)
        )
        p.close()
        p.unlink()
    assert clean_objects(name, stale_only=False) == []
    assert stat.S_ISFIFO(os.lstat(fifo_path(name, 0)).st_mode)  # never removed


def test_producer_refuses_a_wake_fifo_replaced_by_another_user(names, leftovers, caplog, tmp_path):
    name = names()
    with ShmQueue.create(name) as p, ShmQueue.attach(name) as c:
        os.unlink(fifo_path(name, c._index))
        plant(fifo_path(name, c._index), leftovers, fifo=True)
        reader = os.open(fifo_path(name, c._index), os.O_RDONLY | os.O_NONBLOCK)
        try:
            with caplog.at_level(logging.WARNING, "ttxt_mp.shm"):
                p._poke(c._index)
                p._poke(c._index)  # refused once per consumer generation, not per wakeup
            assert os.read(reader, 1) == b""  # nothing was written to the other user's FIFO
        finally:
            os.close(reader)
        assert caplog.text.count(f"not waking consumer {c._index}") == 1, caplog.text
        assert f"owned by uid {NOBODY}" in caplog.text
        os.unlink(fifo_path(name, c._index))
        target = tmp_path / "target"
        target.write_bytes(b"")
        os.symlink(target, fifo_path(name, c._index))
        p._refused.clear()
        p._poke(c._index)
        assert target.read_bytes() == b""  # never written through the link


def test_engine_lock_files_are_listed_and_never_removed(names):
    name = names()
    lock = f"/dev/shm/ttxt-{name}.lock"
    with open(lock, "w") as f:
        f.write("{}")
    os.chmod(lock, 0o600)
    try:
        with ShmQueue.create(name) as p:
            p.close()
            kinds = {o.path: o.kind for o in list_objects(name)}
            assert kinds[lock] == "lock"
            assert lock not in clean_objects(name, stale_only=False)
            p.unlink()
            assert lock not in remove_ring_objects(name)
        assert os.path.exists(lock)
    finally:
        os.unlink(lock)


def test_stale_ring_with_a_live_keeper_is_not_removed(names):
    name = names()
    keeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        p = ShmQueue.create(name, keeper_pid=keeper.pid)
        p.release()  # the supervisor's hand-over state: producer pid 0, keeper alive
        assert [o.alive for o in list_objects(name) if o.kind == "ring"] == [True]
        assert clean_objects(name) == []
        with pytest.raises(RingExists, match=f"kept by pid {keeper.pid}"):
            ShmQueue.create(name)
    finally:
        keeper.kill()
        keeper.wait(timeout=10)
    ShmQueue.create(name).close()  # keeper dead: stale, replaced


# ---------------------------------------------------------------------- engine instance
def test_instance_id_is_checked_on_attach_and_adopt(names):
    name = names()
    iid = (1 << 62) + 12345
    with ShmQueue.create(name, instance_id=iid) as p:
        assert p.instance_id == iid
        with ShmQueue.attach(name, instance_id=iid) as c:
            assert c.instance_id == iid
        with ShmQueue.attach(name) as c:  # not asked: not checked
            assert c.instance_id == iid
        with pytest.raises(RingForeign) as e:
            ShmQueue.attach(name, instance_id=7)
        assert f"belongs to engine instance {iid:x}, not 7" in one_line(e)
        assert isinstance(e.value, RingPermissionError) and isinstance(e.value, UntrustedObject)
        assert ring_stats(name)["instance_id"] == iid
        p.release()
        with pytest.raises(RingForeign):
            ShmQueue.adopt(name, instance_id=7)
        q = ShmQueue.adopt(name, instance_id=iid)
        assert q.instance_id == iid
        q.close()


def test_default_instance_id_is_zero(names):
    with ShmQueue.create(names()) as p, ShmQueue.attach(p.name) as c:
        assert p.instance_id == c.instance_id == 0


@pytest.mark.parametrize("bad", [-1, 1 << 64, 1.5, "1"])
def test_bad_instance_id_is_refused(names, bad):
    with pytest.raises(ValueError, match="instance_id must be"):
        ShmQueue.create(names(), instance_id=bad)


# ---------------------------------------------------------------------- group opt-in
def test_group_shared_ring(names):
    name = names()
    with ShmQueue.create(name, group=GROUP) as p:
        st = os.stat(shm_path(name))
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, GROUP)
        with pytest.raises(RingPermissionError, match="mode 0660"):
            ShmQueue.attach(name)  # no opt-in: group bits are refused
        with pytest.raises(RingPermissionError, match=f"group {GROUP}, mode 0660"):
            ShmQueue.attach(name, allow_gid=GROUP + 1)
        with ShmQueue.attach(name, allow_gid=GROUP, wake_timeout=30.0) as c:
            fst = os.stat(fifo_path(name, c._index))
            assert (stat.S_IMODE(fst.st_mode), fst.st_gid) == (0o660, GROUP)
            p.put(ev(5))
            assert c.get(timeout=5).open_ts == 5
        p.release()
        q = ShmQueue.adopt(name)  # our own group-shared ring
        q.close()


def test_private_ring_and_fifo_modes(names):
    with ShmQueue.create(names()) as p, ShmQueue.attach(p.name) as c:
        assert stat.S_IMODE(os.stat(shm_path(p.name)).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(fifo_path(p.name, c._index)).st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_group_we_are_not_in_is_a_one_line_error(names):
    """An unprivileged process cannot give its ring to a group it is not in."""
    name = names()

    def create() -> str:
        ShmQueue.create(name, group=GROUP)
        return "created"

    msg = run_as(create)
    assert msg == (f"RingPermissionError: ring {name!r}: cannot share it with group {GROUP}: "
                   f"this process (uid {NOBODY}) is not a member of that group"), msg  # fmt: skip
    assert not os.path.exists(shm_path(name))  # nothing left behind
