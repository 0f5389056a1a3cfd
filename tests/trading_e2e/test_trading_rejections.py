"""Every rejection class reaches the client as an OrderAck with the venue's code and
message (or code LOCAL and the reason, before any request), and trading continues."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec
import pytest

from ttxt_mp.events import OrderAction, Side
from ttxt_mp.trading_client import TradingClient

from .helpers import creds_env, wait_reconciled, write_config

SYM = "BTC/USDT"
CODES = {
    "balance": {"binance": "-2010", "bybit": "170131", "okx": "51008"},
    "unknown": {"binance": "-2011", "bybit": "170213", "okx": "51400"},
    "tick": {"binance": "-1013", "bybit": "170134", "okx": "51000"},
    "clock": {"binance": "-1021", "bybit": "10002", "okx": "50102"},
    "signature": {"binance": "-1022", "bybit": "10004", "okx": "50113"},
}
# How far ahead the venue's clock runs in the skew test: beyond its recvWindow (5 s), or
# beyond OKX's fixed 30 s.
SKEW_MS = {"binance": 20_000, "bybit": 20_000, "okx": 40_000}


def rejected(tc: TradingClient, cid: str) -> tuple[str, str]:
    ack = tc.wait_ack(cid, 15)
    assert not ack.accepted, ack
    assert ack.message, "a rejection says why"
    return ack.code, ack.message


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
def test_each_rejection_reaches_the_client_and_trading_continues(venue, simt, engine,
                                                                monkeypatch) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, venue, simt.urls(venue))
    conn = engine.connector(venue, cfg, creds_env()).start()
    tc = TradingClient(engine.name, "rej")
    engine.closers.append(tc.close)
    wait_reconciled(tc, venue)
    bid = simt.best(venue)[0]
    px = float(bid - 100)

    # local validation: nothing is sent
    code, msg = rejected(tc, tc.create_order(venue, SYM, Side.BUY, 0.01, price=px + 0.001))
    assert code == "LOCAL" and "tick size" in msg
    code, msg = rejected(tc, tc.create_order(venue, SYM, Side.BUY, 0.0, price=px))
    assert code == "LOCAL" and "qty" in msg
    code, msg = rejected(tc, tc.create_order(venue, "DOGE/USDT", Side.BUY, 1.0, price=0.1))
    assert code == "LOCAL" and "unknown symbol" in msg
    code, msg = rejected(tc, tc.amend_order(venue, SYM, "rej-x", new_price=None))
    assert code == "LOCAL" and "nothing to amend" in msg
    # the venue's rejections
    code, msg = rejected(tc, tc.create_order(venue, SYM, Side.BUY, 10.0, price=px))
    assert code == CODES["balance"][venue] and "nsufficient" in msg
    code, msg = rejected(tc, tc.cancel_order(venue, SYM, "rej-doesnotexist"))
    assert code == CODES["unknown"][venue]
    assert tc.take_ack("rej-doesnotexist") is None
    # the venue changed its tick size after the connector loaded it: the venue refuses
    core = simt.sim.trading[venue]
    spec = core.specs["BTCUSDT"]
    simt.call(core.specs.__setitem__, "BTCUSDT", msgspec.structs.replace(spec, tick_size=Decimal(1)))
    try:
        code, msg = rejected(tc, tc.create_order(venue, SYM, Side.BUY, 0.01, price=px + 0.5))
        assert code == CODES["tick"][venue], msg
    finally:
        simt.call(core.specs.__setitem__, "BTCUSDT", spec)
    # a skewed clock: the venue's time runs 20 s ahead of the connector's
    module = f"ttxt_mp.connectors.{venue}.sim_trading.now_ms"
    monkeypatch.setattr(module, lambda: time.time_ns() // 1_000_000 + SKEW_MS[venue])
    code, msg = rejected(tc, tc.create_order(venue, SYM, Side.BUY, 0.01, price=px))
    assert code == CODES["clock"][venue] and ("window" in msg.lower() or "expired" in msg), msg
    monkeypatch.undo()

    # trading continues
    ok = tc.create_order(venue, SYM, Side.BUY, 0.01, price=px)
    ack = tc.wait_ack(ok, 10)
    assert ack.accepted and ack.action == OrderAction.CREATE, ack
    tc.cancel_order(venue, SYM, ok)
    assert tc.wait_ack(ok, 10).accepted
    assert tc.outstanding == 0 and tc.duplicate_acks == 0
    assert conn.proc.poll() is None


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
def test_wrong_secret_rejects_with_the_signature_error_and_keeps_running(venue, simt,
                                                                         engine) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, venue, simt.urls(venue))
    conn = engine.connector(venue, cfg, creds_env("not-the-right-secret-123")).start()
    tc = TradingClient(engine.name, "sig")
    engine.closers.append(tc.close)
    tc.link(venue)
    bid = simt.best(venue)[0]
    for _ in range(2):
        code, msg = rejected(tc, tc.create_order(venue, SYM, Side.BUY, 0.01, price=float(bid - 100)))
        assert code == CODES["signature"][venue] and "ign" in msg, msg
    # the private stream cannot authenticate either: said so, never silently (OKX names
    # the refused login and does not retry it: ERROR)
    tc.wait_for(lambda: any(s.state.name in ("DOWN", "ERROR") and "trading:" in s.message
                            for s in tc.statuses), 10, "a DOWN status")
    assert conn.proc.poll() is None
    assert simt.orders_with(venue, "sig") == 0
