"""OKX keys come with a passphrase. A wrong one: the private WebSocket login is refused
(60024 "Wrong passphrase"), the connector says so in a ConnectorStatus naming the cause and
does not try again (retrying cannot help), orders are refused by the venue with its code
(50105), market data keeps flowing and the passphrase appears in no log. Without a
passphrase configured, trading is off with a status naming the setting to add."""

from __future__ import annotations

import time

from ttxt_mp.events import ConnectorState, Orderbook, Side
from ttxt_mp.trading_client import TradingClient

from .helpers import KEY, PASSPHRASE, SECRET, creds_env, write_config
from .test_trading_secrets import market_ring_events

SYM = "BTC/USDT"


def test_wrong_passphrase_is_reported_and_not_retried(simt, engine) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, "okx", simt.urls("okx"))
    wrong = "Not-The-Phrase-4242"
    conn = engine.connector("okx", cfg, creds_env(passphrase=wrong)).start()
    tc = TradingClient(engine.name, "pp")
    engine.closers.append(tc.close)
    tc.link("okx")
    api = simt.sim.trading_apis["okx"]

    def refused() -> list:
        return [s for s in tc.statuses if s.state == ConnectorState.ERROR
                and "refused the credentials" in s.message]

    tc.wait_for(lambda: bool(refused()), 15, "the refused-login status")
    msg = refused()[0].message
    assert "60024" in msg and "wrong passphrase" in msg and "not retried" in msg, msg
    bid = simt.best("okx")[0]
    cid = tc.create_order("okx", SYM, Side.BUY, 0.01, price=float(bid - 100))
    ack = tc.wait_ack(cid, 10)
    assert (ack.accepted, ack.code) == (False, "50105") and "PASSPHRASE" in ack.message, ack
    # the connector's backoff is at most 0.5 s: a retry would have come by now
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert simt.call(lambda: api.logins["failed"]) == 1, "a refused login is not retried"
        tc.poll(0.1)
    assert simt.call(lambda: api.logins["ok"]) == 0
    assert conn.proc.poll() is None
    conn.stop()
    logs = conn.output()
    assert b"60024" in logs
    for needle in (wrong, PASSPHRASE, SECRET, KEY):
        assert needle.encode() not in logs, "a credential reached the connector's logs"


def test_okx_without_passphrase_disables_trading_and_market_data_flows(simt, engine) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, "okx", simt.urls("okx"),
                       passphrase_env="")
    conn = engine.connector("okx", cfg, creds_env()).start()
    events = market_ring_events(engine.name, "okx")
    disabled = [e for e in events if getattr(e, "state", None) == ConnectorState.DISABLED]
    assert disabled and "passphrase_env" in disabled[0].message, disabled
    assert any(isinstance(e, Orderbook) for e in events), "market data keeps running"
    assert conn.proc.poll() is None
    assert conn.stop() == 0
