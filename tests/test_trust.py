"""ttxt_mp.trust: owner, mode and symlink checks of shared objects and private dirs.

We run as root in CI, so "another user's" objects are files chown'ed to uid 65534; the
checks compare with os.geteuid(), so they hold for any uid.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp import trust
from ttxt_mp.trust import UntrustedObject, check_fd, check_stat, open_checked, secure_dir

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def make(path: Path, mode: int = 0o600, uid: int | None = None, gid: int | None = None) -> Path:
    path.write_bytes(b"x")
    os.chmod(path, mode)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    return path


def test_own_private_file_is_accepted(tmp_path):
    p = make(tmp_path / "f")
    fd = open_checked(p, os.O_RDONLY)
    try:
        assert check_fd(fd, str(p)).st_uid == os.geteuid()
    finally:
        os.close(fd)


def test_symlink_is_refused_and_not_followed(tmp_path):
    target = make(tmp_path / "target")
    link = tmp_path / "link"
    link.symlink_to(target)
    before = open_fds()
    with pytest.raises(UntrustedObject, match=f"refusing lock file {link}: it is a symbolic link"):
        open_checked(link, os.O_RDWR | os.O_CREAT | os.O_TRUNC, what="lock file")
    assert target.read_bytes() == b"x"  # not truncated through the link
    assert open_fds() == before


@pytest.mark.parametrize("mode", [0o644, 0o606, 0o660, 0o602, 0o640])
def test_loose_mode_is_refused(tmp_path, mode):
    p = make(tmp_path / "f", mode)
    before = open_fds()
    with pytest.raises(UntrustedObject) as e:
        open_checked(p, os.O_RDONLY)
    msg = str(e.value)
    assert f"mode {mode:04o}" in msg and f"expected uid {os.geteuid()}" in msg, msg
    assert "\n" not in msg
    assert open_fds() == before  # the fd is closed on refusal


@needs_root
def test_foreign_owner_is_refused(tmp_path):
    p = make(tmp_path / "f", 0o600, uid=NOBODY)
    with pytest.raises(UntrustedObject) as e:
        open_checked(p, os.O_RDONLY, what="ring")
    assert str(e.value) == (
        f"refusing ring {p}: owned by uid {NOBODY}, mode 0600; expected uid {os.geteuid()} "
        "and no access for group or others"
    )


@needs_root
def test_group_opt_in_only_for_the_matching_gid(tmp_path):
    gid = 4242
    own = make(tmp_path / "own", 0o660, gid=gid)
    theirs = make(tmp_path / "theirs", 0o660, uid=NOBODY, gid=gid)
    for p in (own, theirs):
        fd = open_checked(p, os.O_RDONLY, allow_gid=gid)  # opted in: accepted
        os.close(fd)
        with pytest.raises(UntrustedObject, match="mode 0660"):
            open_checked(p, os.O_RDONLY)  # no opt-in: group bits refused
        with pytest.raises(UntrustedObject, match=f"group {gid}, mode 0660; expected uid"):
            open_checked(p, os.O_RDONLY, allow_gid=gid + 1)  # another group
    open_to_all = make(tmp_path / "all", 0o664, gid=gid)
    with pytest.raises(UntrustedObject, match="no access for others"):
        open_checked(open_to_all, os.O_RDONLY, allow_gid=gid)


@settings(max_examples=200, deadline=None)
@given(mode=st.integers(0, 0o777), same_uid=st.booleans(), gid_match=st.booleans(),
       opt_in=st.booleans())  # fmt: skip
def test_check_stat_rule(mode, same_uid, gid_match, opt_in):
    """Accepted iff (our uid, or the opted-in group) and nothing for others, group bits
    only for the opted-in group."""
    uid = os.geteuid() if same_uid else os.geteuid() + 1
    gid = 777 if gid_match else 778
    fake = os.stat_result((stat.S_IFREG | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))
    allow = 777 if opt_in else None
    group_ok = opt_in and gid_match
    expect = (same_uid or group_ok) and not mode & 0o007 and (group_ok or not mode & 0o070)
    try:
        check_stat(fake, "/x", allow_gid=allow)
        ok = True
    except UntrustedObject as e:
        ok = False
        assert f"uid {uid}" in str(e) and f"mode {mode:04o}" in str(e)
    assert ok == expect


@needs_root
def test_existing_foreign_file_with_o_creat_is_refused(tmp_path):
    p = make(tmp_path / "lock", 0o600, uid=NOBODY)
    with pytest.raises(UntrustedObject, match=f"owned by uid {NOBODY}"):
        open_checked(p, os.O_RDWR | os.O_CREAT)
    assert p.read_bytes() == b"x"


def test_secure_dir_creates_a_private_dir(tmp_path):
    d = secure_dir(tmp_path / "a" / "run")
    st_ = os.lstat(d)
    assert stat.S_ISDIR(st_.st_mode) and stat.S_IMODE(st_.st_mode) & 0o077 == 0
    assert secure_dir(d) == d  # existing and fine: accepted again


def test_secure_dir_refuses_a_loose_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    d.chmod(0o755)
    with pytest.raises(UntrustedObject, match=r"mode 0755; expected uid \d+ and mode 0700; "
                       "remove it or set XDG_RUNTIME_DIR"):  # fmt: skip
        secure_dir(d)


@needs_root
def test_secure_dir_refuses_a_foreign_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, -1)
    with pytest.raises(UntrustedObject, match=f"owned by uid {NOBODY}, mode 0700"):
        secure_dir(d)


def test_secure_dir_refuses_a_symlinked_dir(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "run"
    link.symlink_to(real)
    with pytest.raises(UntrustedObject, match="is a symbolic link; remove it"):
        secure_dir(link)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UntrustedObject, match="is a symbolic link"):
        secure_dir(dangling)
    assert not (tmp_path / "nowhere").exists()  # not created through the link


def test_secure_dir_refuses_a_file_and_a_missing_dir_without_create(tmp_path):
    f = make(tmp_path / "f")
    with pytest.raises(UntrustedObject, match="is not a directory"):
        secure_dir(f)
    with pytest.raises(UntrustedObject, match="does not exist"):
        secure_dir(tmp_path / "missing", create=False)


def test_untrusted_object_is_a_permission_error():
    assert issubclass(trust.UntrustedObject, PermissionError)
