"""A launched engine with a spot and a perpetual connector per venue (four connector
processes) against the simulator: a client in this process keeps every book, the
perpetuals' mark prices and its positions. It sets leverage and trades both perpetuals
through one ``TradingClient`` (each command routed to the connector listing the symbol);
at a paused checkpoint every book equals the simulator's truth, each position is the sum
of its signed fills at their average price, and the spot and futures wallets stay apart."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from engine_process import EngineProcess

from ttxt_mp import events as ev
from ttxt_mp.client import BaseClient, attach
from ttxt_mp.engine.demo import SimProcess, demo_config_text
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.trading_client import TradingClient

pytestmark = pytest.mark.timeout(180)
KEY, SECRET = "PerpEngineKey01", "PerpEngineSecret-not-in-logs-7"
VENUES = ("binance", "binance_linear", "bybit", "bybit_linear")
BOOKS = {("binance", "BTC/USDT"): "binance", ("binance", "BTC/USDT:USDT"): "binance_linear",
         ("bybit", "BTC/USDT"): "bybit", ("bybit", "BTC/USDT:USDT"): "bybit_linear"}
PERP = "BTC/USDT:USDT"
DEPTH = 20


@pytest.fixture(scope="module")
def perp_sim():
    s = SimProcess(["BTC/USDT"], seed=21, venues=VENUES,
                   extra=["--account", f"{KEY}:{SECRET}:USDT=100000,BTC=10"])  # fmt: skip
    try:
        yield s
    finally:
        s.stop()


def _sim(sim: Any, method: str, path: str) -> Any:
    req = urllib.request.Request(f"http://{sim.host_port}/_sim/{path}", method=method,
                                 data=b"{}" if method == "POST" else None)  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def truth(sim: Any) -> dict[tuple[str, str], list]:
    out = {}
    for key, sim_id in BOOKS.items():
        tb = _sim(sim, "GET", f"truth?venue={sim_id}&symbol=BTCUSDT&depth={DEPTH}")
        out[key] = [[(float(p), float(q)) for p, q in tb[k]] for k in ("bids", "asks")]
    return out


class Perps(BaseClient):
    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[tuple[str, str], ev.MarkPrice] = {}

    def on_mark_price(self, e: ev.MarkPrice) -> None:
        self.marks[(e.exchange, e.symbol)] = e

    def tops(self) -> dict[tuple[str, str], list]:
        return {k: [b.bids(DEPTH), b.asks(DEPTH)] for k, b in self.books.items() if b.synced}


def pump(feed: Any, client: Perps, tc: TradingClient, pred: Any, timeout: float, what: str) -> None:
    """Feed both clients until ``pred()`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tc.poll(0.0)
        try:
            client.dispatch(feed.get(timeout=0.05))
        except QueueEmpty:
            pass


def test_spot_and_perpetual_connectors_of_both_venues_in_one_engine(tmp_path: Path, perp_sim,
                                                                    monkeypatch):  # fmt: skip
    monkeypatch.setenv("TT_PERP_KEY", KEY)
    monkeypatch.setenv("TT_PERP_SECRET", SECRET)
    name = f"pe{os.getpid()}"
    text = demo_config_text(perp_sim.host_port, name, ["BTC/USDT"], VENUES).replace(
        "heartbeat_timeout = 10.0\n",
        "heartbeat_timeout = 10.0\n"
        'credentials = { api_key_env = "TT_PERP_KEY", api_secret_env = "TT_PERP_SECRET" }\n',
    )
    assert text.count('market = "linear"') == 2
    eng = EngineProcess(tmp_path, name, text)
    try:
        eng.start(wait_rings=4)
        status = {c["name"]: c for c in eng.status()["children"]}
        assert status["connector:bybit_linear"]["market"] == "linear"
        assert status["connector:binance"]["symbols"] == ["BTC/USDT"]
        client = Perps()
        with attach(name, streams=("market",), wait=20) as feed, TradingClient(name, "perp") as tc:
            assert tc.connector_for("binance", PERP) == "binance_linear"
            assert tc.connector_for("binance", "BTC/USDT") == "binance"
            pump(feed, client, tc, lambda: set(client.tops()) == set(BOOKS)
                 and {("binance", PERP), ("bybit", PERP)} <= set(client.marks), 60,
                 "four synced books and both mark prices")  # fmt: skip
            for x in ("binance", "bybit"):
                lev = tc.set_leverage(x, PERP, 5, ev.MarginMode.CROSS)
                pump(feed, client, tc, lambda lev=lev: tc.take_ack(
                    lev, ev.OrderAction.SET_LEVERAGE) is not None, 20, f"{x} leverage ack")
                for side, qty, reduce in ((ev.Side.BUY, 0.01, False), (ev.Side.SELL, 0.004, True)):
                    cid = tc.create_order(x, PERP, side, qty, reduce_only=reduce)
                    ack = tc.wait_ack(cid, timeout=20)
                    assert ack.accepted, ack
            fills = {x: [f for f in tc.fills if f.exchange == x and f.symbol == PERP]
                     for x in ("binance", "bybit")}  # fmt: skip

            def positions_add_up() -> bool:
                for x in ("binance", "bybit"):
                    got = [f for f in tc.fills if f.exchange == x and f.symbol == PERP]
                    fills[x] = got
                    size = sum(f.last_fill_qty * (1 if f.side == ev.Side.BUY else -1) for f in got)
                    pos = tc.position(x, PERP)
                    if pos is None or abs(size - 0.006) > 1e-9 or abs(pos.size - size) > 1e-9:
                        return False
                return True

            pump(feed, client, tc, positions_add_up, 30, "positions of 0.006 on both perpetuals")
            for x in ("binance", "bybit"):
                buys = [f for f in fills[x] if f.side == ev.Side.BUY]
                entry = (sum(f.last_fill_qty * f.last_fill_price for f in buys)
                         / sum(f.last_fill_qty for f in buys))  # fmt: skip
                assert tc.position(x, PERP).entry_price == pytest.approx(entry, rel=1e-9)
                # fees and PnL of the perpetual move its futures wallet, not the spot one
                fut, spot = tc.balance(f"{x}_linear", "USDT"), tc.balance(x, "USDT")
                assert fut is not None and fut.free + fut.locked < 100000.0, fut
                assert spot is not None and (spot.free, spot.locked) == (100000.0, 0.0), spot
            _sim(perp_sim, "POST", "pause")
            try:
                want = truth(perp_sim)
                pump(feed, client, tc, lambda: client.tops() == want, 20,
                     "every book equal to the truth at the pause")  # fmt: skip
            finally:
                _sim(perp_sim, "POST", "resume")
    finally:
        eng.stop()
    out = eng.output()
    assert SECRET not in out and KEY not in out
