"""``ttxt-mp launch``: one process per connector, restarted when it crashes, and nothing
left behind when it stops.

Start-up order: take the host-wide engine lock (a live engine of the same name, of any
runtime dir or uid, is refused; this uid's objects of a SIGKILLed one are removed), pick
a random instance id and create every ring with it, then spawn the children (connectors,
recorder, clients) and serve the control socket. A child that exits is restarted with
exponential backoff; while a connector is down, the supervisor itself publishes its
``ConnectorStatus`` into the connector's ring, so consumers see DOWN/UP and never need to
re-attach. SIGINT/SIGTERM stops the children, then unlinks every object it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ttxt_mp.config import Config
from ttxt_mp.engine import control
from ttxt_mp.engine.naming import (
    LockRecord,
    control_socket,
    decode_lock,
    engine_objects,
    lock_file,
    runtime_dir,
)
from ttxt_mp.engine.protocol import (
    CONFIG_FD_ENV,
    FAILED,
    PERMANENT_EXITS,
    ChildReport,
    config_memfd,
    exit_reason,
)
from ttxt_mp.engine.rings import EngineRings
from ttxt_mp.events import ConnectorState
from ttxt_mp.trust import UntrustedObject, open_checked

log = logging.getLogger("ttxt_mp.supervisor")
STOP_GRACE_S = 3.0
STABLE_AFTER_S = 30.0
CLIENT_MAIN = "ttxt_mp.engine.client_main"
"""The module a ``[[clients]]`` process runs (``python -m``)."""


class EngineAlreadyRunning(RuntimeError):
    pass


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies, even by SIGKILL,
    so no connector outlives its engine. (Children run in their own session so a Ctrl-C
    reaches only the supervisor, which then stops them in order.)"""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


COUNTERS = ("events", "reconnects", "gaps", "lost")
"""ChildReport counters the supervisor adds up over all the processes of one child."""


@dataclass
class Child:
    """One supervised process and what ``ttxt-mp status`` says about it.

    While the process runs, state and message are its own (its latest report); once it
    is gone they are the supervisor's (DOWN with the exit reason, FAILED, STOPPED,
    FINISHED), never a dead process's last words. Counters survive restarts: ``totals``
    holds those of the processes that ended, ``report`` the current one's.
    """

    name: str
    role: str  # connector | recorder | client | bridge
    argv: list[str]
    connector: str = ""
    venue: dict[str, Any] = field(default_factory=dict)
    """A connector's exchange, market and symbols (how a TradingClient routes a symbol)."""
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    state: str = "STARTING"
    message: str = ""
    last_exit: int | None = None
    report: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    rate: float = 0.0
    _last_events: tuple[float, int] = (0.0, 0)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def counter(self, key: str) -> int:
        return self.totals[key] + int(self.report.get(key, 0))

    def ended(self, code: int) -> None:
        """The process exited: keep its counters, forget its state and message."""
        self.last_exit = code
        for k in COUNTERS:
            self.totals[k] += int(self.report.get(k, 0))
        self.report = {}
        self.state, self.message = "DOWN", exit_reason(code)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        if self.alive:
            state = str(self.report.get("state", "STARTING"))
            message = str(self.report.get("message", ""))
        elif self.proc is not None and self.state == "RUNNING":  # exited, not yet handled
            state, message = "DOWN", exit_reason(self.proc.returncode or 0)
        else:
            state, message = self.state, self.message
        return {
            "name": self.name, "role": self.role, "state": state,
            "pid": self.proc.pid if self.alive and self.proc else None,
            "uptime": now - self.started if self.started and self.alive else 0.0,
            "restarts": self.restarts, "last_exit": self.last_exit,
            "last_exit_reason": exit_reason(self.last_exit) if self.last_exit is not None else "",
            "events": self.counter("events"), "events_per_s": self.rate,
            "reconnects": self.counter("reconnects"), "gaps": self.counter("gaps"),
            "lost": self.counter("lost"), "message": message, **self.venue,
            **({"detail": dict(self.report.get("detail") or {})} if self.role == "bridge" else {}),
        }  # fmt: skip


class EngineLock:
    """An flock on the host-wide file ``/dev/shm/ttxt-<engine>.lock``: held for the
    engine's life, released by the kernel when the process dies however it dies, so a
    stale lock can never block a launch.

    Why in /dev/shm: the rings' names are host-wide, so the lock must be too; an engine
    of the same name under another XDG_RUNTIME_DIR or uid is refused instead of deleting
    the first one's rings as "leftovers". The file is opened without following a symlink
    and must be ours (a planted file of another uid is refused, never written)."""

    def __init__(self, engine: str, instance_id: int | None = None):
        self.engine = engine
        self.path = lock_file(engine)
        self.instance_id = instance_id or new_instance_id()
        self.fd: int | None = None

    def acquire(self) -> None:
        rdir = str(runtime_dir())  # refused (foreign, loose, symlink) before any lock
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                rec = decode_lock(os.pread(fd, 4096, 0))
                os.close(fd)
                raise EngineAlreadyRunning(self._running(rec, os.geteuid())) from None
            # The previous holder unlinks the file when it releases; if we locked that
            # unlinked file, someone else may lock a new one at the path: start over.
            try:
                st = os.lstat(self.path)
                fst = os.fstat(fd)
                same = (st.st_ino, st.st_dev) == (fst.st_ino, fst.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        rec = LockRecord(pid=os.getpid(), uid=os.geteuid(), instance_id=self.instance_id,
                         runtime_dir=rdir)  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, msgspec.json.encode(rec), 0)
        self.fd = fd

    def _open(self) -> int:
        try:
            return open_checked(self.path, os.O_RDWR | os.O_CREAT, 0o600, what="engine lock file")
        except UntrustedObject as e:
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:
                raise e from None
            if stat.S_ISLNK(st.st_mode) or st.st_uid == os.geteuid():
                raise  # a symlink, or our own file with a loose mode: the one-line refusal
            raise EngineAlreadyRunning(self._running(_peek(self.path), st.st_uid)) from None

    def _running(self, rec: LockRecord | None, uid: int) -> str:
        pid = rec.pid if rec else "?"
        where = f", runtime dir {rec.runtime_dir!r}" if rec else ""
        other = "" if uid == os.geteuid() else " by another user"
        hint = (f"stop it first (Ctrl-C in its terminal, or `kill {pid}`), or choose "
                "another engine.name") if not other else "choose another engine.name"
        return (f"engine {self.engine!r} is already running{other} (pid {pid}, uid {uid}"
                f"{where}; lock {self.path}); {hint}")

    def release(self) -> None:
        if self.fd is not None:
            # Unlink while still holding it (see acquire), and only the file we locked.
            with contextlib.suppress(OSError):
                st, fst = os.lstat(self.path), os.fstat(self.fd)
                if (st.st_ino, st.st_dev) == (fst.st_ino, fst.st_dev):
                    self.path.unlink()
            os.close(self.fd)
            self.fd = None


def new_instance_id() -> int:
    """A random nonzero 63-bit id for one engine run: rings carry it, consumers check it."""
    return secrets.randbits(63) | 1


def _peek(path: Path) -> LockRecord | None:
    """Best-effort read of a foreign lock file, for the error message only (as root it is
    readable; otherwise we say what we can)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return decode_lock(os.pread(fd, 4096, 0))
    except OSError:
        return None
    finally:
        os.close(fd)


def remove_leftovers(engine: str) -> list[Path]:
    """Unlink this uid's shared-memory objects of ``engine`` (call only while holding its
    lock, which guarantees no live engine of that name owns them). Objects of another uid
    are never touched (logged once each); the engine lock itself is never removed here."""
    removed = []
    me = os.geteuid()
    for p in engine_objects(engine):
        try:
            st = os.lstat(p)
            if st.st_uid != me:
                log.warning("not removing %s: it belongs to uid %d, not to this engine (uid %d)",
                            p, st.st_uid, me)  # fmt: skip
                continue
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    sock = control_socket(engine)
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(sock).st_uid == me:
            sock.unlink()
    return removed


class Supervisor:
    def __init__(self, cfg: Config, config_path: str, *, stats_interval: float = 1.0):
        self.cfg = cfg
        self.config_path = str(Path(config_path).resolve())
        self.engine = cfg.engine.name
        self.instance_id = new_instance_id()
        self.lock = EngineLock(self.engine, self.instance_id)
        self.rings = EngineRings(cfg, self.instance_id)
        self.children: list[Child] = []
        self.started = time.monotonic()
        self.stats_interval = stats_interval
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ life-cycle
    def prepare(self) -> None:
        """Lock, clean leftovers, create rings. Synchronous so errors surface before any
        child exists."""
        self.lock.acquire()
        try:
            removed = remove_leftovers(self.engine)
            if removed:
                log.warning(
                    "removed %d leftover shared-memory objects of engine %r from a run that "
                    "did not exit cleanly", len(removed), self.engine,
                )
            self.rings.create()
        except BaseException:
            self.rings.destroy()
            self.lock.release()
            raise
        self.children = self._child_specs()

    def _child_specs(self) -> list[Child]:
        py = [sys.executable, "-m"]
        common = ["--engine", self.engine, "--config", self.config_path]
        kids = [
            Child(f"connector:{c.id}", "connector",
                  py + ["ttxt_mp.connectors.run", *common, "--connector", c.id], connector=c.id,
                  venue={"exchange": c.exchange, "market": c.market, "symbols": list(c.symbols)})
            for c in self.cfg.connectors
        ]  # fmt: skip
        if self.cfg.recorder.enabled:
            kids.append(Child("recorder", "recorder", py + ["ttxt_mp.storage.recorder", *common]))
        for i, b in enumerate(self.cfg.bridges):
            kids.append(Child(f"bridge:{b.id(i)}", "bridge",
                              py + ["ttxt_mp.bus.bridge", *common, "--bridge", str(i)]))  # fmt: skip
        for i, cl in enumerate(self.cfg.clients):
            name = cl.name or f"client{i}"
            # Its own module, not ``-m ttxt_mp.client`` (whose __main__ copy of BaseClient
            # no user client subclasses).
            kids.append(Child(f"client:{name}", "client",
                              py + [CLIENT_MAIN, *common, "--client", str(i)]))  # fmt: skip
        return kids

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM or a ``shutdown`` request, then stop every child;
        returns the exit code. The caller then calls :meth:`shutdown` (see launch)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        server = await control.serve(control_socket(self.engine), self._handle)
        try:
            # The config parsed at launch, for every child and every restart of one.
            self._config_fd = config_memfd(self.cfg)
            self._tasks = [asyncio.create_task(self._keep_alive(c)) for c in self.children]
            self._tasks.append(asyncio.create_task(self._rates()))
            log.info("engine %r up: %d children, control socket %s", self.engine,
                     len(self.children), control_socket(self.engine))  # fmt: skip
            await self._stopping.wait()
            log.info("engine %r stopping", self.engine)
        finally:
            server.close()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.gather(*(self._stop_child(c) for c in self.children))
            if self._config_fd is not None:
                os.close(self._config_fd)
                self._config_fd = None
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    def shutdown(self) -> None:
        """Unlink everything the engine created, then release its lock (in that order:
        objects are only removed by the lock's holder)."""
        self.rings.destroy()
        remove_leftovers(self.engine)
        self.lock.release()

    def stop(self) -> None:
        self._stopping.set()

    # ------------------------------------------------------------------ children
    _config_fd: int | None = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [os.getcwd(), str(Path(self.config_path).parent)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["TTXT_STATS_INTERVAL"] = str(self.stats_interval)
        if self._config_fd is not None:
            env[CONFIG_FD_ENV] = str(self._config_fd)
        else:
            env.pop(CONFIG_FD_ENV, None)
        return env

    async def _keep_alive(self, child: Child) -> None:
        """Run ``child``, restarting it with backoff when it dies, except after a clean
        end (client), a stop, or a permanent failure (``PERMANENT_EXITS``)."""
        delay = self.cfg.engine.restart_backoff
        while not self._stopping.is_set():
            fds = (self._config_fd,) if self._config_fd is not None else ()
            child.proc = await asyncio.create_subprocess_exec(
                *child.argv, stdout=asyncio.subprocess.PIPE, env=self._env(),
                start_new_session=True, preexec_fn=die_with_parent, pass_fds=fds,
            )  # fmt: skip
            child.started = time.monotonic()
            child.state, child.message = "RUNNING", ""
            reader = asyncio.create_task(self._read_reports(child))
            code = await child.proc.wait()
            await asyncio.gather(reader, return_exceptions=True)
            final = child.report
            child.ended(code)
            if self._stopping.is_set():
                child.state = "STOPPED"
                return
            if code == 0 and child.role == "client":
                child.state, child.message = "FINISHED", "finished"
                return
            if code in PERMANENT_EXITS:
                why = str(final.get("message", "")) if final.get("state") == FAILED else ""
                child.state = FAILED
                child.message = f"{why or exit_reason(code)}; not restarted (fix the config)"
                log.error("%s failed permanently: %s", child.name, child.message)
                if child.connector:
                    self.rings.publish_status(child.connector, ConnectorState.DOWN,
                                              child.message, child.restarts)  # fmt: skip
                return
            lived = time.monotonic() - child.started
            if lived > STABLE_AFTER_S:
                delay = self.cfg.engine.restart_backoff
            child.restarts += 1
            msg = f"{exit_reason(code)}; restart {child.restarts} in {delay:.1f}s"
            child.message = msg
            log.warning("%s %s", child.name, msg)
            if child.connector:
                self.rings.publish_status(child.connector, ConnectorState.DOWN,
                                          f"{child.name} {msg}", child.restarts)  # fmt: skip
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            delay = min(delay * 2, self.cfg.engine.restart_backoff_max)

    async def _read_reports(self, child: Child) -> None:
        assert child.proc and child.proc.stdout
        dec = msgspec.json.Decoder(ChildReport)
        while line := await child.proc.stdout.readline():
            try:
                rep = dec.decode(line)
            except msgspec.DecodeError:
                log.debug("%s: unparsable report line %r", child.name, line[:200])
                continue
            child.report = msgspec.structs.asdict(rep)

    async def _stop_child(self, child: Child) -> None:
        p = child.proc
        if p is None or p.returncode is not None:
            return
        try:
            p.send_signal(signal.SIGTERM)
            await asyncio.wait_for(p.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning("%s did not stop in %.0fs; killing it", child.name, STOP_GRACE_S)
            p.kill()
            await p.wait()
        except ProcessLookupError:
            pass

    async def _rates(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for c in self.children:
                ev = c.counter("events")
                t0, e0 = c._last_events
                if t0:
                    c.rate = max(0.0, (ev - e0) / (now - t0))
                c._last_events = (now, ev)

    # ------------------------------------------------------------------ control
    async def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, **self.status()}
        if cmd == "rings":
            return {"ok": True, "rings": self.rings.names()}
        if cmd == "shutdown":
            self._stopping.set()
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}; expected status, rings or shutdown"}

    def status(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "pid": os.getpid(),
            "uptime": time.monotonic() - self.started,
            "children": [c.snapshot() for c in self.children],
            "rings": self.rings.stats(),
        }


def launch(cfg: Config, config_path: str) -> int:
    """Blocking entry point of ``ttxt-mp launch``."""
    sup = Supervisor(cfg, config_path)
    sup.prepare()
    try:
        from ttxt_mp.engine.loop import run

        return run(sup.run())
    finally:
        sup.shutdown()


__all__ = ["EngineAlreadyRunning", "Supervisor", "launch", "remove_leftovers"]
