"""Another local user, for the multi-user tests: ``python _attacker.py UID GID ACTION ...``.

Started by root, it imports everything it needs, then drops to ``UID``/``GID`` for good
(real, effective and saved ids; no supplementary groups) before doing anything, so each
action below runs with exactly an unprivileged user's rights. (It cannot simply be
exec'ed as that user: the interpreter may live under a 0700 home.) It prints ``READY``
once its attack is in place and keeps it there until its stdin closes.

Actions:
  trade ENGINE CONNECTOR [--loose]   order through the engine's connector (its own command
                                     ring; ``--loose`` also makes it mode 0666)
  forge ENGINE                       a market ring named like the engine's, publishing a
                                     bogus BTC/USDT book (bid 1 / ask 2, huge update id)
  squat DIR LINKTARGET ENGINE        a world-writable runtime dir with a symlinked lock and
                                     socket name pointing at LINKTARGET
  launch ENGINE CONFIG_TEXT          ``ttxt-mp launch`` of an engine of that name
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time

import ttxt_mp.cli
import ttxt_mp.config
import ttxt_mp.engine.naming
import ttxt_mp.engine.supervisor
import ttxt_mp.trading_client
from ttxt_mp import events as ev
from ttxt_mp.shm import ShmQueue


def preload() -> None:
    """Import every ttxt_mp module (and what they import) while still root: the stdlib
    may sit under a directory the unprivileged user cannot traverse."""
    import importlib
    import pkgutil

    import ttxt_mp

    for m in pkgutil.walk_packages(ttxt_mp.__path__, "ttxt_mp."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    for extra in ("glob", "selectors", "uuid", "secrets", "signal", "socket", "tomllib",
                  "asyncio.subprocess", "asyncio.unix_events", "ctypes", "json", "shlex"):
        importlib.import_module(extra)
    ttxt_mp.cli.build_parser()


def drop(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    assert os.geteuid() == uid and os.getegid() == gid


def ready() -> None:
    print("READY", flush=True)


def hold(step=None) -> None:
    """Until the test closes our stdin (bounded by the test's own timeout)."""
    import select

    while True:
        if step is not None:
            step()
        r, _, _ = select.select([sys.stdin], [], [], 0.05)
        if r and not sys.stdin.readline():
            return


def trade(engine: str, connector: str, loose: bool) -> None:
    from ttxt_mp.engine.naming import command_ring_name

    tc = ttxt_mp.trading_client.TradingClient(engine, "evil")
    try:
        tc.create_order(connector, "BTC/USDT", ev.Side.BUY, 0.01, 60000.0)
        if loose:
            path = f"/dev/shm/ttxt-{command_ring_name(engine, connector, 'evil')}"
            os.chmod(path, 0o666)
        ready()
        hold()
    finally:
        tc.close()


def forge(engine: str) -> None:
    q = ShmQueue.create(ttxt_mp.engine.naming.ring_name(engine, "evil", "market"), 1024, 512)
    book = ev.Orderbook(exchange="binance", symbol="BTC/USDT", is_snapshot=True,
                        bids=((1.0, 1.0),), asks=((2.0, 1.0),), first_update_id=1 << 60,
                        last_update_id=1 << 60, local_ts=time.time_ns())
    try:
        q.put(book)
        ready()
        hold(lambda: q.put(book))
    finally:
        q.close()
        q.unlink()


def squat(d: str, target: str, engine: str) -> None:
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)
    for name in (f"{engine}.lock", f"{engine}.sock"):
        with contextlib.suppress(FileExistsError):
            os.symlink(target, os.path.join(d, name))
    ready()


def launch(engine: str, config_text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "c.toml")
        with open(cfg, "w") as f:
            f.write(config_text)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = ttxt_mp.cli.main(["launch", cfg])
            except SystemExit as e:
                code = e.code
        print(f"EXIT {code}", flush=True)
        print(err.getvalue().strip().replace("\n", " | "), flush=True)


def main() -> None:
    uid, gid, action, *args = sys.argv[1:]
    preload()
    drop(int(uid), int(gid))
    os.environ["HOME"] = tempfile.gettempdir()
    os.environ.pop("XDG_RUNTIME_DIR", None)
    if action == "trade":
        trade(args[0], args[1], "--loose" in args)
    elif action == "forge":
        forge(args[0])
    elif action == "squat":
        squat(*args)
    elif action == "launch":
        launch(args[0], args[1])
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
