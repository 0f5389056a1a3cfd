"""A key or secret the venue refuses on the private stream (Binance's listen key: -2015;
Bybit's ``auth``: "API key is invalid." / "Signature verification failed.") cannot start
working by retrying: the connector says so once in a ConnectorStatus naming the venue's
reason, does not reconnect, keeps running, and no credential reaches its logs."""

from __future__ import annotations

import time

import pytest

from ttxt_mp.connectors.bybit.trading import credentials_refused
from ttxt_mp.events import ConnectorState
from ttxt_mp.trading_client import TradingClient

from .helpers import KEY, SECRET, creds_env, write_config

WRONG_KEY = "NotARegisteredKey0123456789"
WRONG_SECRET = "NotTheSecret0123456789abcdef"


@pytest.mark.parametrize(
    ("venue", "env", "reason"),
    [
        ("binance", creds_env(key=WRONG_KEY), "-2015"),
        ("bybit", creds_env(key=WRONG_KEY), "API key is invalid"),
        ("bybit", creds_env(secret=WRONG_SECRET), "Signature verification failed"),
    ],
    ids=["binance-key", "bybit-key", "bybit-secret"],
)
def test_refused_credentials_are_reported_once_and_not_retried(
    simt, engine, venue: str, env: dict[str, str], reason: str
) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, venue, simt.urls(venue))
    conn = engine.connector(venue, cfg, env).start()
    tc = TradingClient(engine.name, "rc")
    engine.closers.append(tc.close)
    tc.link(venue)

    def refused() -> list:
        return [s for s in tc.statuses if s.state == ConnectorState.ERROR
                and "refused the credentials" in s.message]  # fmt: skip

    def retried() -> list:
        return [s for s in tc.statuses if "private stream down" in s.message]

    tc.wait_for(lambda: bool(refused()), 15, "the refused-credentials status")
    msg = refused()[0].message
    assert reason in msg and "not retried" in msg and "\n" not in msg, msg
    # the connector's backoff is at most 0.5 s: a retry would have shown by now
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        tc.poll(0.1)
    assert len(refused()) == 1 and not retried(), [s.message for s in tc.statuses]
    assert conn.proc.poll() is None, "the connector keeps running"
    conn.stop()
    logs = conn.output()
    assert reason.encode() in logs
    for needle in (WRONG_KEY, WRONG_SECRET, SECRET, KEY):
        assert needle.encode() not in logs, "a credential reached the connector's logs"


@pytest.mark.parametrize(
    ("ret_msg", "permanent"),
    [
        ("API key is invalid.", True),
        ("Signature verification failed.", True),
        ("error:sign not match", True),
        ("Params Error", False),  # e.g. an expires already past: a retry signs a new one
        ("Repeat auth", False),
        ("", False),
    ],
)
def test_bybit_auth_refusals_that_retrying_cannot_fix(ret_msg: str, permanent: bool) -> None:
    assert credentials_refused(ret_msg) is permanent
