"""Secrets never leave the credentials path: a whole trading flow at DEBUG level with a
recognisable key and secret, then every log, shared-memory object, recording and CLI
output is searched for them. Without credentials, trading is DISABLED with a status
naming what is missing, and market data keeps flowing."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttxt_mp.engine.naming import engine_objects, ring_name
from ttxt_mp.events import ConnectorState, ConnectorStatus, Orderbook, Side
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.shm import ShmQueue
from ttxt_mp.storage.recorder import MarketDataRecorder
from ttxt_mp.trading_client import TradingClient

from .helpers import KEY, PASSPHRASE, ROOT, SECRET, creds_env, until, wait_reconciled, write_config

SYM = "BTC/USDT"
NEEDLES = (SECRET.encode(), KEY.encode(), PASSPHRASE.encode())


def leaks(data: bytes) -> list[bytes]:
    return [n for n in NEEDLES if n in data]


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
def test_secret_appears_nowhere(venue, simt, engine, tmp_path: Path) -> None:
    log_file = tmp_path / "client.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    recorders: list[MarketDataRecorder] = []
    try:
        cfg = write_config(tmp_path / "c.toml", engine.name, venue, simt.urls(venue))
        conn = engine.connector(venue, cfg, creds_env()).start()
        tc = TradingClient(engine.name, "sec")
        engine.closers.append(tc.close)
        wait_reconciled(tc, venue)
        for stream in ("market", "private"):
            rec = MarketDataRecorder(ShmQueue.attach(ring_name(engine.name, venue, stream),
                                                     start="oldest"), tmp_path / "rec" / stream)
            rec.start()
            recorders.append(rec)
        # CLI output: tail the engine's rings while trading
        tail = subprocess.Popen(
            [sys.executable, "-m", "ttxt_mp.cli", "tail", engine.name, "--count", "25",
             "--timeout", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        time.sleep(1.5)  # its interpreter starts and attaches
        bid, _, ask, _ = simt.best(venue)
        cid = tc.create_order(venue, SYM, Side.BUY, 0.01, price=float(bid - 100))
        assert tc.wait_ack(cid, 10).accepted
        tc.amend_order(venue, SYM, cid, new_price=float(bid - 99))
        assert tc.wait_ack(cid, 10).accepted
        tc.cancel_order(venue, SYM, cid)
        assert tc.wait_ack(cid, 10).accepted
        fill = tc.create_order(venue, SYM, Side.BUY, 0.001, price=float(ask))
        assert tc.wait_ack(fill, 10).accepted
        bad = tc.create_order(venue, SYM, Side.BUY, 10.0, price=float(bid - 100))
        assert not tc.wait_ack(bad, 10).accepted
        until(lambda: bool(tc.fills), 5, "a fill", tc)
        try:
            tail_out, tail_err = tail.communicate(timeout=30)
        finally:
            tail.kill()
        assert tail.returncode == 0, tail_err
        assert b"OrderAck" in tail_out, tail_out
        shm = b"".join(p.read_bytes() for p in engine_objects(engine.name) if p.is_file())
        for rec in recorders:
            rec.stop()
        recorded = b"".join(p.read_bytes() for p in (tmp_path / "rec").rglob("*") if p.is_file())
        conn.stop()
    finally:
        for rec in recorders:
            rec.stop()
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    logs = conn.output()
    sent = b"over the private websocket" if venue == "okx" else b"POST"  # how orders go
    assert b"DEBUG" in logs and sent in logs, "the connector logged at DEBUG"
    assert recorded and shm
    for where, data in (("connector logs", logs), ("client log", log_file.read_bytes()),
                        ("/dev/shm", shm), ("recordings", recorded),
                        ("tail output", tail_out + tail_err)):
        assert not leaks(data), f"credential found in {where}"


def market_ring_events(engine: str, venue: str, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        try:
            ring = ShmQueue.attach(ring_name(engine, venue, "market"), start="oldest")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    out = []
    try:
        while time.monotonic() < deadline:
            try:
                out.append(ring.get(0.2))
            except QueueEmpty:
                continue
            if any(isinstance(e, Orderbook) for e in out) and any(
                isinstance(e, ConnectorStatus) and e.state == ConnectorState.DISABLED for e in out
            ):
                break
    finally:
        ring.close()
    return out


@pytest.mark.parametrize(("configured", "expect"), [
    (False, "no credentials configured"),
    (True, "TT_MISSING_SECRET"),
])
def test_no_credentials_disables_trading_and_market_data_flows(configured, expect, simt,
                                                               engine, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", engine.name, "binance", simt.urls("binance"),
                       creds=configured, secret_env="TT_MISSING_SECRET")
    conn = engine.connector("binance", cfg, {"TT_KEY": KEY}).start()
    events = market_ring_events(engine.name, "binance")
    disabled = [e for e in events if isinstance(e, ConnectorStatus)
                and e.state == ConnectorState.DISABLED]
    assert disabled, [e for e in events if isinstance(e, ConnectorStatus)]
    assert expect in disabled[0].message and "trading off" in disabled[0].message
    assert KEY not in disabled[0].message
    assert any(isinstance(e, Orderbook) for e in events), "market data keeps running"
    assert conn.proc.poll() is None
    assert conn.stop() == 0
