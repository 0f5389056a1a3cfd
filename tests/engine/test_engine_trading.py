"""Trading through a launched engine: the supervisor creates the private rings, connector
processes adopt them, and a client in this process places and cancels orders on both
simulated venues; the key and secret never show up in the engine's output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_process import EngineProcess

from ttxt_mp import events as ev
from ttxt_mp.engine.demo import SimProcess, demo_config_text
from ttxt_mp.engine.naming import discover
from ttxt_mp.trading_client import TradingClient

pytestmark = pytest.mark.timeout(120)
KEY, SECRET = "EngineKey0001", "EngineSecret-do-not-leak-42"


@pytest.fixture(scope="module")
def trading_sim():
    s = SimProcess(["BTC/USDT"], seed=9, extra=["--account", f"{KEY}:{SECRET}:USDT=100000,BTC=10"])
    try:
        yield s
    finally:
        s.stop()


def test_orders_through_the_engine(tmp_path: Path, trading_sim, monkeypatch):
    monkeypatch.setenv("TT_ENGINE_KEY", KEY)
    monkeypatch.setenv("TT_ENGINE_SECRET", SECRET)
    name = f"tr{os.getpid()}"
    text = demo_config_text(trading_sim.host_port, name, ["BTC/USDT"]).replace(
        "heartbeat_timeout = 10.0\n",
        'heartbeat_timeout = 10.0\n'
        'credentials = { api_key_env = "TT_ENGINE_KEY", api_secret_env = "TT_ENGINE_SECRET" }\n',
    ).replace('log_level = "WARNING"', 'log_level = "DEBUG"')
    eng = EngineProcess(tmp_path, name, text)
    try:
        eng.start()
        assert {r.stream for r in discover(name)} == {"market", "private"}
        with TradingClient(name, "alice") as tc:
            for exchange in ("binance", "bybit"):
                cid = tc.create_order(exchange, "BTC/USDT", ev.Side.BUY, 0.01, 60000.0)
                ack = tc.wait_ack(cid, timeout=20)
                assert ack.accepted and ack.order_id, ack
                tc.cancel_order(exchange, "BTC/USDT", cid)
                cancel = tc.wait_ack(cid, timeout=20, action=ev.OrderAction.CANCEL)
                assert cancel.accepted, cancel
                bad = tc.create_order(exchange, "BTC/USDT", ev.Side.BUY, 0.01, 60000.00001)
                rejected = tc.wait_ack(bad, timeout=20)
                assert not rejected.accepted and rejected.message, rejected
    finally:
        eng.stop()
    out = eng.output()
    assert "DEBUG" in out  # the run really logged at DEBUG
    assert SECRET not in out and KEY not in out
