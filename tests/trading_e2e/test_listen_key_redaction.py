"""Issue 9 item 10: the Binance listenKey (it grants read access to the account's private
stream and travels in the WebSocket URL path) appears in no log line at any level.

A real connector process runs at DEBUG against the simulator, opens its user data stream,
then is stopped; its whole output is searched for every listen key the venue issued.
"""

from __future__ import annotations

import time
from pathlib import Path

from ttxt_mp.web.redact import REDACTED, redact_url, scrub

from .helpers import creds_env, write_config

KEY60 = "pqHVb3XoO7rN2h1ZkH9yKfM0xWc4sUeTjLgA5nDiQ8vBmRtCp6EaGzY1oSwJlPu"


def test_listen_key_is_redacted_in_urls() -> None:
    url = f"wss://stream.binance.com:9443/ws/{KEY60}"
    assert KEY60 not in redact_url(url)
    assert redact_url(url).endswith(f"/ws/{REDACTED}")
    assert KEY60 not in scrub(f"Cannot connect to /ws/{KEY60}: refused", url)
    # public streams keep their names (an '@' or a short name is not a key)
    assert redact_url("wss://x/ws/btcusdt@depth@100ms") == "wss://x/ws/btcusdt@depth@100ms"
    assert redact_url("ws://127.0.0.1:1/binance/ws") == "ws://127.0.0.1:1/binance/ws"


def test_listen_key_never_logged_by_the_connector(simt, engine, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", engine.name, "binance", simt.urls("binance"))
    conn = engine.connector("binance", cfg, creds_env()).start()
    bt = simt.sim.binance_trading

    def streaming() -> list[str]:
        return simt.call(lambda: [k for k, cs in bt.user_conns.items() if cs])

    deadline = time.monotonic() + 30
    while not streaming():
        assert conn.proc is not None and conn.proc.poll() is None, conn.output()[-2000:]
        assert time.monotonic() < deadline, "the private stream never connected"
        time.sleep(0.1)
    time.sleep(0.5)  # the "connected to ..." line is written right after the handshake
    keys = simt.call(lambda: list(bt.listen_keys))
    conn.stop()
    out = conn.output()
    # the private stream's URL line is there, with the key masked (it used to be in clear)
    assert f"/ws/{REDACTED}".encode() in out, out[-3000:]
    assert keys
    for k in keys:
        assert k.encode() not in out
