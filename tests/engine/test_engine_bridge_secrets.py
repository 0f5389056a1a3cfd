"""A trading engine bridging its market AND private rings (``rings = ["market",
"private"]``) into a password-protected Redis: the order events reach the private stream
and its state hash (wallets), and the exchange key, secret and Redis password appear in
no stream entry, no hash, no status output and no log line (the engine logs at DEBUG)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from bridge_helpers import ROOT, read_entries
from engine_process import CORE, EngineProcess
from redis_server import RedisServer
from test_engine_trading import KEY, SECRET, trading_sim  # noqa: F401  (fixture)

from ttxt_mp import events as ev
from ttxt_mp.bus import format as bf
from ttxt_mp.engine.demo import demo_config_text
from ttxt_mp.trading_client import TradingClient

pytestmark = pytest.mark.timeout(180)
PASSWORD = "redis-pw-Secrets-9x"


def test_private_ring_bridged_without_any_secret(tmp_path: Path, trading_sim, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TT_ENGINE_KEY", KEY)
    monkeypatch.setenv("TT_ENGINE_SECRET", SECRET)
    monkeypatch.setenv("TT_REDIS_PW", PASSWORD)
    name = f"trb{os.getpid()}"
    with RedisServer(password=PASSWORD) as srv:
        url = f"redis://127.0.0.1:{srv.port}/0"
        text = demo_config_text(trading_sim.host_port, name, ["BTC/USDT"], venues=CORE).replace(
            "heartbeat_timeout = 10.0\n",
            'heartbeat_timeout = 10.0\n'
            'credentials = { api_key_env = "TT_ENGINE_KEY", api_secret_env = "TT_ENGINE_SECRET" }\n',
        ).replace('log_level = "WARNING"', 'log_level = "DEBUG"') + (
            f'\n[[bridges]]\nkind = "redis"\nurl = "{url}"\nrings = ["market", "private"]\n'
            'password_env = "TT_REDIS_PW"\nstate_interval = 0.2\n')  # fmt: skip
        eng = EngineProcess(tmp_path, name, text)
        r = redis.Redis.from_url(srv.url)
        try:
            eng.start()
            eng.wait_child("bridge:redis0", lambda c: c["state"] == "UP"
                           and len(c["detail"].get("rings", [])) == 4, 30)  # fmt: skip
            with TradingClient(name, "alice") as tc:
                cid = tc.create_order("binance", "BTC/USDT", ev.Side.BUY, 0.01, 60000.0)
                assert tc.wait_ack(cid, timeout=20).accepted
            key = bf.ring_stream_key(name, "binance-private")
            deadline = time.monotonic() + 20
            while not any(getattr(x, "client_order_id", "") == cid
                          for e in read_entries(r, key) for x in e.events):  # fmt: skip
                assert time.monotonic() < deadline, "the order never reached the private stream"
                time.sleep(0.1)
            deadline = time.monotonic() + 20
            while not any(k.startswith(b"Wallet") for k in
                          r.hkeys(bf.state_key(name, "binance-private"))):  # fmt: skip
                assert time.monotonic() < deadline, r.hkeys(bf.state_key(name, "binance-private"))
                time.sleep(0.1)
            status = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", name],
                                    capture_output=True, text=True, timeout=30, cwd=ROOT)  # fmt: skip
            assert status.returncode == 0, status.stderr
            blob = (status.stdout + status.stderr + json.dumps(eng.status())).encode()
            for k in r.scan_iter(f"ttxt:{name}:*"):
                if r.type(k) == b"hash":
                    blob += repr(r.hgetall(k)).encode()
                else:
                    for _eid, fields in r.xrange(k):
                        blob += b"".join(fields.values())
        finally:
            eng.stop()
            r.close()
    blob += eng.output().encode()
    assert b"DEBUG" in blob
    for secret in (KEY, SECRET, PASSWORD):
        assert secret.encode() not in blob, secret
