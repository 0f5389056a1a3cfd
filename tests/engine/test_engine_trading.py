"""Trading through a launched engine: the supervisor creates the private rings, connector
processes adopt them, and a client in this process places and cancels orders on both
simulated venues; the key and secret never show up in the engine's output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_process import CORE, EngineProcess

from ttxt_mp import events as ev
from ttxt_mp.engine.demo import SimProcess, demo_config_text
from ttxt_mp.engine.naming import discover
from ttxt_mp.trading_client import TradingClient

pytestmark = pytest.mark.timeout(120)
KEY, SECRET = "EngineKey0001", "EngineSecret-do-not-leak-42"


@pytest.fixture(scope="module")
def trading_sim():
    s = SimProcess(["BTC/USDT"], venues=CORE, seed=9, extra=["--account", f"{KEY}:{SECRET}:USDT=100000,BTC=10"])
    try:
        yield s
    finally:
        s.stop()


def test_orders_through_the_engine(tmp_path: Path, trading_sim, monkeypatch):
    monkeypatch.setenv("TT_ENGINE_KEY", KEY)
    monkeypatch.setenv("TT_ENGINE_SECRET", SECRET)
    name = f"tr{os.getpid()}"
    text = demo_config_text(trading_sim.host_port, name, ["BTC/USDT"], venues=CORE).replace(
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


def test_a_trading_client_attaching_late_gets_open_orders_and_wallets(tmp_path: Path, trading_sim,
                                                                      monkeypatch):
    """A strategy restarted under the same name, after its private ring wrapped: the
    connector's state gives it its resting orders and every wallet before anything else."""
    monkeypatch.setenv("TT_ENGINE_KEY", KEY)
    monkeypatch.setenv("TT_ENGINE_SECRET", SECRET)
    name = f"trl{os.getpid()}"
    text = demo_config_text(trading_sim.host_port, name, ["BTC/USDT"], venues=CORE).replace(
        "heartbeat_timeout = 10.0\n",
        'heartbeat_timeout = 10.0\n'
        'credentials = { api_key_env = "TT_ENGINE_KEY", api_secret_env = "TT_ENGINE_SECRET" }\n',
    ) + '\n[rings.private]\ncapacity = 64\nslot_size = 256\npolicy = "block"\n'
    eng = EngineProcess(tmp_path, name, text)
    try:
        eng.start()
        resting: dict[str, str] = {}
        with TradingClient(name, "carol") as tc:
            for exchange in ("binance", "bybit"):
                cid = tc.create_order(exchange, "BTC/USDT", ev.Side.BUY, 0.01, 50000.0)
                assert tc.wait_ack(cid, timeout=20).accepted
                resting[exchange] = cid
                for _ in range(20):  # acks and updates: the 64-slot ring wraps
                    c = tc.create_order(exchange, "BTC/USDT", ev.Side.BUY, 0.01, 50001.0)
                    assert tc.wait_ack(c, timeout=20).accepted
                    tc.cancel_order(exchange, "BTC/USDT", c)
                    assert tc.wait_ack(c, timeout=20, action=ev.OrderAction.CANCEL).accepted
            def settled() -> bool:  # only the two resting orders lock funds (0.01 x 50000)
                return set(resting.values()) <= set(tc.open_orders) and all(
                    tc.wallets.get(x, {}).get("USDT") is not None
                    and tc.wallets[x]["USDT"].locked == 500.0 for x in ("binance", "bybit"))

            tc.wait_for(settled, 20, "carol's view after the last cancel")
            wallets = {x: dict(w) for x, w in tc.wallets.items()}
        with TradingClient(name, "carol") as late:  # restarted: nothing in memory
            late.wait_for(lambda: set(resting.values()) <= set(late.open_orders)
                          and {"binance", "bybit"} <= set(late.wallets), 20,
                          "the resting orders and wallets from the state")  # fmt: skip
            assert set(late.open_orders) == set(resting.values()), late.open_orders
            for x in ("binance", "bybit"):
                for asset, bal in wallets[x].items():
                    assert late.wallets[x].get(asset) == bal, (x, asset)
                cid = resting[x]
                late.cancel_order(x, "BTC/USDT", cid)  # and it can manage them
                assert late.wait_ack(cid, timeout=20, action=ev.OrderAction.CANCEL).accepted
    finally:
        eng.stop()


OKX_PHRASE = "EnginePhrase-do-not-leak-7"
OKX = ("okx", "okx_linear")


@pytest.fixture(scope="module")
def okx_sim():
    s = SimProcess(["BTC/USDT"], venues=OKX, seed=9,
                   extra=["--account", f"{KEY}:{SECRET}:USDT=100000,BTC=10:{OKX_PHRASE}"])
    try:
        yield s
    finally:
        s.stop()


def test_okx_spot_and_swap_through_the_engine(tmp_path: Path, okx_sim, monkeypatch):
    """OKX keys have a passphrase: named by its variable like the key and secret, it
    reaches the venue's signer and nothing else."""
    monkeypatch.setenv("TT_ENGINE_KEY", KEY)
    monkeypatch.setenv("TT_ENGINE_SECRET", SECRET)
    monkeypatch.setenv("TT_ENGINE_PHRASE", OKX_PHRASE)
    name = f"to{os.getpid()}"
    text = demo_config_text(okx_sim.host_port, name, ["BTC/USDT"], venues=OKX).replace(
        "heartbeat_timeout = 10.0\n",
        'heartbeat_timeout = 10.0\n'
        'credentials = { api_key_env = "TT_ENGINE_KEY", api_secret_env = "TT_ENGINE_SECRET", '
        'passphrase_env = "TT_ENGINE_PHRASE" }\n',
    ).replace('log_level = "WARNING"', 'log_level = "DEBUG"')
    eng = EngineProcess(tmp_path, name, text)
    try:
        eng.start()
        with TradingClient(name, "spot") as spot, \
                TradingClient(name, "perp", connectors={"okx": "okx_linear"}) as perp:
            cid = spot.create_order("okx", "BTC/USDT", ev.Side.BUY, 0.01, 60000.0)
            ack = spot.wait_ack(cid, timeout=20)
            assert ack.accepted and ack.order_id, ack
            spot.cancel_order("okx", "BTC/USDT", cid)
            assert spot.wait_ack(cid, timeout=20, action=ev.OrderAction.CANCEL).accepted
            bad = spot.create_order("okx", "BTC/USDT", ev.Side.BUY, 100.0, 60000.0)
            rejected = spot.wait_ack(bad, timeout=20)
            assert (rejected.accepted, rejected.code) == (False, "51008"), rejected
            lev = perp.set_leverage("okx", "BTC/USDT:USDT", 7, ev.MarginMode.CROSS)
            assert perp.wait_ack(lev, timeout=20).accepted
            buy = perp.create_order("okx", "BTC/USDT:USDT", ev.Side.BUY, 0.01)
            assert perp.wait_ack(buy, timeout=20).accepted
            perp.wait_for(lambda: (p := perp.position("okx", "BTC/USDT:USDT")) is not None
                          and p.size == 0.01 and p.leverage == 7, 20, "the swap position")
    finally:
        eng.stop()
    out = eng.output()
    assert "DEBUG" in out
    assert SECRET not in out and KEY not in out and OKX_PHRASE not in out
