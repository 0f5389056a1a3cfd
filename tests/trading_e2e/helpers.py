"""Real processes for the trading end-to-end tests: a simulator on its own thread (so the
test can look at the venue's truth), connector processes started with
``python -m ttxt_mp.connectors.run``, and cleanup of every shared-memory object."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.helpers import SimThread as _SimThreadBase

from ttxt_mp.connectors.okx.denormalizer import to_cl_ord_id
from ttxt_mp.engine.naming import engine_objects
from ttxt_mp.sim import Rates, VenueTimings
from ttxt_mp.trading_client import TradingClient

ROOT = Path(__file__).resolve().parents[2]
KEY = "e2eKeyAlice000000000000001"
SECRET = "Xyzzy-RECOGNISABLE-secret-77Q"  # must never leave the credentials path
PASSPHRASE = "Plugh-RECOGNISABLE-phrase-31"  # OKX keys have one; must never leave either
START = {"USDT": "100000", "BTC": "2"}
TIMINGS = VenueTimings(binance_ping_interval=5.0, binance_pong_timeout=10.0,
                       binance_max_incoming_per_sec=0, bybit_idle_timeout=30.0)
DEPTH = {"binance": 5000, "bybit": 50, "okx": 400}
_engines = itertools.count(1)


def engine_name(tag: str) -> str:
    return f"te{tag}{os.getpid() % 100000}x{next(_engines)}"[:24]


class SimThread(_SimThreadBase):
    """A paused simulator (the book moves only when a test steps it) on its own loop."""

    CALL_TIMEOUT = 10.0

    def __init__(self) -> None:
        super().__init__(symbols={"binance": ["BTCUSDT"], "bybit": ["BTCUSDT"], "okx": ["BTCUSDT"]},
                         seed=21, rates=Rates(levels=50, max_levels=200), timings=TIMINGS,
                         paused=True, accounts={KEY: (SECRET, START, PASSPHRASE)})

    def urls(self, venue: str) -> Any:
        assert self.sim is not None and self.sim.urls is not None
        return getattr(self.sim.urls, venue)

    def best(self, venue: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        t = self.call(lambda: self.sim.truth(venue, "BTCUSDT", 1))
        return (Decimal(t.bids[0][0]), Decimal(t.bids[0][1]), Decimal(t.asks[0][0]),
                Decimal(t.asks[0][1]))

    def orders_with(self, venue: str, cid: str) -> int:
        """How many orders the venue ever accepted under client order id ``cid``
        (including the id an order had before a cancel-replace kept it)."""
        core = self.sim.trading[venue]
        ids = {cid, to_cl_ord_id(cid)} if venue == "okx" else {cid}  # OKX: as written on the wire
        return self.call(lambda: sum(1 for r in core.orders.values()
                                     if r.last.client_order_id in ids))


def write_config(path: Path, engine: str, venue: str, urls: Any, *, creds: bool = True,
                 key_env: str = "TT_KEY", secret_env: str = "TT_SECRET", market: str = "spot",
                 name: str = "", symbol: str = "BTC/USDT", depth: int = 0,
                 passphrase_env: str = "TT_PASSPHRASE") -> Path:
    """One connector's config (``market``/``name``: e.g. a perpetual's own connector); an
    OKX connector also names its key's passphrase."""
    cred = (f'credentials.api_key_env = "{key_env}"\ncredentials.api_secret_env = "{secret_env}"\n'
            if creds else "")
    if creds and venue == "okx" and passphrase_env:
        cred += f'credentials.passphrase_env = "{passphrase_env}"\n'
    named = f'name = "{name}"\nmarket = "{market}"\n' if name else ""
    path.write_text(f"""
[engine]
name = "{engine}"
log_level = "DEBUG"

[[connectors]]
{named}exchange = "{venue}"
symbols = ["{symbol}"]
heartbeat_timeout = 5.0
reconnect_backoff = 0.05
reconnect_backoff_max = 0.5
streams.trades = false
streams.depth.levels = {depth or DEPTH[venue]}
endpoints.ws = "{urls.ws}"
endpoints.rest = "{urls.rest}"
{cred}
[rings.market]
capacity = 4096

[rings.private]
capacity = 4096
policy = "block"
""")
    return path


class ConnectorProc:
    """``python -m ttxt_mp.connectors.run`` at DEBUG, output in files; killed at the end."""

    def __init__(self, tmp: Path, engine: str, venue: str, cfg: Path, env: dict[str, str]) -> None:
        self.tmp, self.engine, self.venue, self.cfg, self.env = tmp, engine, venue, cfg, env
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> ConnectorProc:
        self.runs += 1
        out = open(self.tmp / f"{self.venue}-{self.runs}.out", "wb")  # noqa: SIM115
        err = open(self.tmp / f"{self.venue}-{self.runs}.err", "wb")  # noqa: SIM115
        env = {**os.environ, "XDG_RUNTIME_DIR": str(self.tmp / "run"), **self.env}
        (self.tmp / "run").mkdir(mode=0o700, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.connectors.run", "--engine", self.engine,
             "--config", str(self.cfg), "--connector", self.venue, "--log-level", "DEBUG"],
            stdout=out, stderr=err, cwd=ROOT, env=env,
        )
        out.close()
        err.close()
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def output(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.tmp.glob(f"{self.venue}-*.*"))
                        if p.suffix in (".out", ".err"))


def creds_env(secret: str = SECRET, passphrase: str = PASSPHRASE, key: str = KEY) -> dict[str, str]:
    return {"TT_KEY": key, "TT_SECRET": secret, "TT_PASSPHRASE": passphrase}


def cleanup_engine(engine: str) -> None:
    for p in engine_objects(engine):
        with contextlib.suppress(OSError):
            p.unlink()


def wait_reconciled(tc: TradingClient, venue: str, after: int = 0, timeout: float = 20.0) -> None:
    """Until the connector published a reconciliation (beyond the first ``after``)."""
    tc.link(venue)

    def done() -> bool:
        return sum(1 for s in tc.statuses if s.exchange == venue
                   and s.message.startswith("trading: reconciled")) > after

    tc.wait_for(done, timeout, f"{venue} reconciliation")


def totals(tc: TradingClient, venue: str) -> dict[str, Decimal]:
    return {a: Decimal(repr(b.free)) + Decimal(repr(b.locked))
            for a, b in tc.wallets.get(venue, {}).items()}


def until(pred: Any, timeout: float, what: str, tc: TradingClient | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if tc is not None:
            tc.poll(0.05)
        else:
            time.sleep(0.05)
