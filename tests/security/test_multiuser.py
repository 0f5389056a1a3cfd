"""Two local accounts on one host (issue 9): root runs the engine, an unprivileged user
attacks it. Each test fails on code that trusts shared objects by name alone.

The attacker is a real process of another uid (``_attacker.py`` drops to it before acting).
Needs root to create that account; skipped with the reason otherwise (CI runs as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_process import CORE, EngineProcess
from lines import Lines

from ttxt_mp import events as ev
from ttxt_mp.client import BaseClient, attach
from ttxt_mp.engine.demo import SimProcess, demo_config_text
from ttxt_mp.engine.naming import discover, engine_objects, ring_name
from ttxt_mp.shm import ShmQueue
from ttxt_mp.trading_client import TradingClient

pytestmark = pytest.mark.timeout(180)
ATTACKER = "ttxtattacker"
HERE = Path(__file__).parent
KEY, SECRET = "VictimKey0001", "VictimSecret-never-shared-9"


@pytest.fixture(scope="module")
def attacker() -> tuple[int, int]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second, unprivileged account (CI runs as root)")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    try:
        pw = pwd.getpwnam(ATTACKER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", ATTACKER], check=True, timeout=30)
        pw = pwd.getpwnam(ATTACKER)
    assert pw.pw_uid != 0
    return pw.pw_uid, pw.pw_gid


class Attack:
    """One attacker process: started, waited for READY, stopped by closing its stdin."""

    def __init__(self, ids: tuple[int, int], *args: str, cwd: Path | None = None) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(HERE.parents[1])}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_attacker.py"), str(ids[0]), str(ids[1]), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            cwd=cwd or "/", start_new_session=True, text=True,
        )
        self.out = Lines(self.proc.stdout)

    def line(self, timeout: float = 30.0) -> str:
        try:
            return self.out.next(timeout, "the attacker's next line").strip()
        except AssertionError:
            if self.proc.poll() is None:
                raise
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"attacker exited {self.proc.returncode}:\n{err}") from None

    def ready(self) -> Attack:
        assert self.line() == "READY"
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def victim(tmp_path_factory, attacker) -> Iterator[EngineProcess]:
    """A root engine trading with real keys on the simulator (Binance + Bybit)."""
    sim = SimProcess(["BTC/USDT"], venues=CORE, seed=5, extra=[
        "--account", f"{KEY}:{SECRET}:USDT=100000,BTC=10"])
    name = f"vic{os.getpid()}"
    text = demo_config_text(sim.host_port, name, ["BTC/USDT"], venues=CORE).replace(
        "heartbeat_timeout = 10.0\n",
        'heartbeat_timeout = 10.0\n'
        'credentials = { api_key_env = "TT_VICTIM_KEY", api_secret_env = "TT_VICTIM_SECRET" }\n',
    )
    env = {**os.environ, "TT_VICTIM_KEY": KEY, "TT_VICTIM_SECRET": SECRET}
    eng = EngineProcess(tmp_path_factory.mktemp("victim"), name, text, env=env)
    try:
        eng.start()
        yield eng
    finally:
        eng.stop()
        sim.stop()
        for p in engine_objects(name):
            with contextlib.suppress(OSError):
                p.unlink()


def _private_events(engine: str, connector: str, prefix: str, seconds: float) -> list:
    """Acks/updates for client order ids starting with ``prefix`` seen on the private ring."""
    seen = []
    with ShmQueue.attach(ring_name(engine, connector, "private"), start="oldest") as q:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                e = q.get(timeout=0.2)
                cid = getattr(e, "client_order_id", "")
                if isinstance(e, ev.OrderAck | ev.OrderUpdate) and cid.startswith(prefix):
                    seen.append(e)
    return seen


@pytest.mark.parametrize("loose", [False, True], ids=["own-mode", "chmod-0666"])
def test_other_user_cannot_trade_with_the_engines_keys(victim, attacker, loose):
    name = victim.name
    attack = Attack(attacker, "trade", name, "binance", *(["--loose"] if loose else []))
    try:
        attack.ready()
        # Positive control: a command ring of the engine's own user, created after the
        # attacker's, is picked up and answered, so the connector has scanned past it.
        with TradingClient(name, "owner") as tc:
            cid = tc.create_order("binance", "BTC/USDT", ev.Side.BUY, 0.01, 60000.0)
            assert tc.wait_ack(cid, timeout=30).accepted
            tc.cancel_order("binance", "BTC/USDT", cid)
            tc.wait_ack(cid, timeout=30, action=ev.OrderAction.CANCEL)
        assert _private_events(name, "binance", "evil-", seconds=3.0) == []
    finally:
        attack.stop()
    assert "cmd_evil" in victim.output()  # the refusal is logged, naming the ring


def test_forged_ring_never_reaches_the_victims_books(victim, attacker):
    attack = Attack(attacker, "forge", victim.name)
    try:
        attack.ready()
        assert any(r.connector == "evil" for r in discover(victim.name))  # it is there

        class Books(BaseClient):
            bogus = 0

            def on_orderbook(self, e):
                if e.bids and e.bids[0][0] == 1.0 and e.asks and e.asks[0][0] == 2.0:
                    self.bogus += 1

        client = Books()
        with attach(victim.name, start="oldest") as feed:
            assert all(s.name != ring_name(victim.name, "evil", "market") for s in feed.sources)
            client.run(feed, duration=3.0)
        assert client.events > 0  # the genuine rings were read
        assert client.bogus == 0
        for book in client.books.values():
            if book.best_bid:
                assert book.best_bid[0] != 1.0
    finally:
        attack.stop()


def test_squatted_runtime_dir_is_refused_and_nothing_is_overwritten(tmp_path, attacker):
    victim_file = tmp_path / "precious.txt"
    victim_file.write_text("keep me")
    base = Path("/tmp") / f"ttxt-squat-{os.getpid()}"
    attack = Attack(attacker, "squat", str(base / "ttxt-mp"), str(victim_file), "sq1")
    try:
        attack.ready()
        cfg = tmp_path / "sq1.toml"
        cfg.write_text('[engine]\nname = "sq1"\n\n[[connectors]]\nexchange = "binance"\n'
                       'symbols = ["BTC/USDT"]\nendpoints.ws = "ws://127.0.0.1:9/ws"\n'
                       'endpoints.rest = "http://127.0.0.1:9"\n')
        env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
        for argv in (["launch", str(cfg)], ["status", "sq1"]):
            r = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", *argv], env=env,
                               capture_output=True, text=True, timeout=60)
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            assert r.returncode == 2, (argv, r.returncode, r.stderr)
            assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
            assert str(base / "ttxt-mp") in lines[0] and f"uid {attacker[0]}" in lines[0]
        assert victim_file.read_text() == "keep me"
        assert not engine_objects("sq1")
    finally:
        attack.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_other_user_cannot_start_an_engine_of_the_same_name(victim, attacker):
    before = sorted(r.name for r in discover(victim.name))
    attack = Attack(attacker, "launch", victim.name, victim.config.read_text())
    try:
        code = attack.line()
        message = attack.line()
    finally:
        attack.stop()
    assert code == "EXIT 2", message
    # The attacker cannot read the lock (0600): it learns only who holds the name.
    assert victim.name in message and "uid 0" in message, message
    assert sorted(r.name for r in discover(victim.name)) == before
    assert victim.status()["pid"] == victim.proc.pid
