"""An engine with a ``[[bridges]]`` entry publishes its market rings into a real Redis:
a late joiner's books (state hash + the entries after ``_after``) equal the simulator's
truth; a bridge killed is restarted like a connector; a wrong password fails the bridge
once (FAILED, one line, not restarted) and an unreachable Redis leaves it DOWN and
retrying, while the connectors run on; no password in status, logs or the stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from bridge_helpers import ROOT, read_entries
from redis_server import RedisServer, free_port
from test_late_join import INSTRUMENTS, _http, as_json, truth

from ttxt_mp.bus import format as bf
from ttxt_mp.client import BaseClient

pytestmark = pytest.mark.timeout(240)
DEPTH = 20
PASSWORD = "redis-pw-Zq81xK"


@pytest.fixture
def redis_auth():
    with RedisServer(password=PASSWORD) as srv:
        yield srv


def _with_bridge(eng, url: str, extra: str = "") -> None:
    eng.config.write_text(eng.config.read_text()
                          + f'\n[[bridges]]\nkind = "redis"\nurl = "{url}"\n{extra}\n')


def _remote_books(r: redis.Redis, engine: str) -> dict:
    """What a remote late joiner builds: per ring the state hash, then the stream after it."""
    client = BaseClient()
    for ring in ("binance-market", "bybit-market"):
        state = r.hgetall(bf.state_key(engine, ring))
        assert state, f"no state hash for {ring}"
        bf.check_tag(state.pop(b"_layout"), ring)
        after = state.pop(b"_after")
        for v in state.values():
            for ev in bf.unpack_events(v):
                client.dispatch(ev)
        for e in read_entries(r, bf.ring_stream_key(engine, ring), after):
            for ev in e.events:
                client.dispatch(ev)
    return {f"{x}|{s}": [b.synced, b.update_id, b.bids(DEPTH), b.asks(DEPTH)]
            for (x, s), b in client.books.items()}  # fmt: skip


def _until_books_equal(r, engine, sim, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got, want = as_json(_remote_books(r, engine)), truth(sim)
        if got == want:
            return
        if time.monotonic() > deadline:
            diff = {k: (got.get(k, [None, None])[:2], v[:2]) for k, v in want.items()
                    if got.get(k) != v}  # fmt: skip
            raise AssertionError(f"remote books differ from the truth (synced, id): {diff}")
        time.sleep(0.2)


def test_engine_bridge_books_equal_truth_and_restart(make_engine, sim, redis_auth):
    eng = make_engine()
    _with_bridge(eng, redis_auth.url.replace(f":{PASSWORD}@", "@").replace("redis://@", "redis://"),
                 'password_env = "TTXT_TEST_REDIS_PW"\nstate_interval = 0.5')
    eng.env = dict(os.environ, TTXT_TEST_REDIS_PW=PASSWORD)
    eng.start()
    r = redis.Redis.from_url(redis_auth.url)
    try:
        eng.wait_child("bridge:redis0", lambda c: c["state"] == "UP" and c["events"] > 200, 30)
        _http(sim, "POST", "pause")
        try:
            _until_books_equal(r, eng.name, sim)
        finally:
            _http(sim, "POST", "resume")
        # the bridge dies: restarted like a connector, publishing again
        before = eng.child("bridge:redis0")
        os.kill(before["pid"], signal.SIGKILL)
        eng.wait_child("bridge:redis0", lambda c: c["restarts"] == 1 and c["state"] == "UP"
                       and c["pid"] != before["pid"], 30)  # fmt: skip
        n = r.xlen(bf.ring_stream_key(eng.name, "binance-market"))
        deadline = time.monotonic() + 20
        while r.xlen(bf.ring_stream_key(eng.name, "binance-market")) <= n:
            assert time.monotonic() < deadline, "restarted bridge publishes nothing"
            time.sleep(0.1)
        _http(sim, "POST", "pause")
        try:
            _until_books_equal(r, eng.name, sim)
        finally:
            _http(sim, "POST", "resume")
        deadline = time.monotonic() + 10
        while json.loads(r.hget(bf.meta_key(eng.name), "rings")) != ["binance-market",
                                                                     "bybit-market"]:  # fmt: skip
            assert time.monotonic() < deadline, r.hgetall(bf.meta_key(eng.name))
            time.sleep(0.05)
        while json.loads(r.hget(bf.meta_key(eng.name), "bridge"))["published"] == 0:
            assert time.monotonic() < deadline, r.hgetall(bf.meta_key(eng.name))
            time.sleep(0.05)
        # what went by while no bridge ran is announced, exactly as counted (the meta
        # status is rewritten every second)
        def announced() -> int:
            return sum(e.gap for ring in ("binance-market", "bybit-market")
                       for e in read_entries(r, bf.ring_stream_key(eng.name, ring)))  # fmt: skip

        deadline = time.monotonic() + 10
        while (bridge := json.loads(r.hget(bf.meta_key(eng.name), "bridge")))["dropped"] != announced():
            assert time.monotonic() < deadline, (bridge, announced())
            time.sleep(0.1)
        assert bridge["state"] == "UP" and bridge["dropped"] > 0
        # status shows the bridge, and never the password
        out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", eng.name],
                             capture_output=True, text=True, timeout=30, cwd=ROOT)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "bridges" in out.stdout and "redis0" in out.stdout
        blob = out.stdout + out.stderr + json.dumps(eng.status()) + eng.output()
        for k in r.scan_iter(f"ttxt:{eng.name}:*"):
            blob += repr(r.hgetall(k) if r.type(k) == b"hash" else r.xrange(k, count=200))
        assert PASSWORD not in blob
    finally:
        r.close()


def test_wrong_password_fails_once_connectors_run_on(make_engine, redis_auth):
    eng = make_engine()
    url = f"redis://127.0.0.1:{redis_auth.port}/0"
    _with_bridge(eng, url, 'password_env = "TTXT_TEST_REDIS_PW"')
    eng.env = dict(os.environ, TTXT_TEST_REDIS_PW="wrong-pw-77AbC")
    eng.start()
    c = eng.wait_child("bridge:redis0", lambda c: c["state"] == "FAILED" and not c["pid"], 30)
    assert "authentication failed" in c["message"] and url in c["message"]
    assert "TTXT_TEST_REDIS_PW" in c["message"] and "not restarted" in c["message"]
    assert c["restarts"] == 0
    for x, _ in INSTRUMENTS[::2]:
        eng.wait_child(f"connector:{x}", lambda c: c["state"] == "UP" and c["events"] > 0, 30)
    blob = json.dumps(eng.status()) + eng.output()
    assert "wrong-pw-77AbC" not in blob and "Traceback" not in blob


def test_unreachable_redis_bridge_down_retrying(make_engine):
    eng = make_engine()
    port = free_port()
    _with_bridge(eng, f"redis://127.0.0.1:{port}/0", "connect_timeout = 1.0")
    eng.start()
    c = eng.wait_child("bridge:redis0", lambda c: c["state"] == "DOWN"
                       and "unreachable" in c["message"], 30)  # fmt: skip
    assert f"redis://127.0.0.1:{port}/0" in c["message"] and c["pid"]
    for x, _ in INSTRUMENTS[::2]:
        eng.wait_child(f"connector:{x}", lambda c: c["state"] == "UP" and c["events"] > 0, 30)
    # Redis appears: the same bridge process connects and publishes
    with RedisServer(port=port) as srv:
        up = eng.wait_child("bridge:redis0", lambda c: c["state"] == "UP" and c["events"] > 0, 30)
        assert up["pid"] == c["pid"] and up["restarts"] == 0
        r = redis.Redis.from_url(srv.url)
        assert r.xlen(bf.ring_stream_key(eng.name, "binance-market")) > 0
        # it buffered (64 MB) while Redis was away: every event since it started, in order
        entries = read_entries(r, bf.ring_stream_key(eng.name, "binance-market"))
        first = entries[0]
        assert first.gap == 0 and up["lost"] == 0
        assert all(e.s == a.s + len(a.events) for a, e in zip(entries, entries[1:], strict=False))
        r.close()


def test_redis_killed_under_a_running_engine(make_engine):
    """Redis dies under a running engine: the bridge goes DOWN and buffers, the connectors
    keep publishing, ``status`` answers at once; Redis back on the same port: the bridge
    reconnects by itself and the new stream holds every event it buffered, in order."""
    port = free_port()
    with RedisServer(port=port) as srv:
        eng = make_engine()
        _with_bridge(eng, f"redis://127.0.0.1:{port}/0", "connect_timeout = 1.0\nsocket_timeout = 1.0")
        eng.start()
        eng.wait_child("bridge:redis0", lambda c: c["state"] == "UP" and c["events"] > 100, 30)
        srv.kill()
        down = eng.wait_child("bridge:redis0", lambda c: c["state"] == "DOWN", 30)
        before = {x: eng.child(f"connector:{x}")["events"] for x in ("binance", "bybit")}
        for x in ("binance", "bybit"):  # connectors unaffected while the bridge is down
            eng.wait_child(f"connector:{x}", lambda c, x=x: c["state"] == "UP"
                           and c["events"] > before[x] + 50, 30)  # fmt: skip
        t0 = time.monotonic()
        eng.status()
        assert time.monotonic() - t0 < 2.0  # the engine never blocks on Redis
        srv.start()
        up = eng.wait_child("bridge:redis0", lambda c: c["state"] == "UP", 30)
        assert up["pid"] == down["pid"] and up["restarts"] == 0 and up["lost"] == 0
        r = redis.Redis.from_url(srv.url)
        key = bf.ring_stream_key(eng.name, "binance-market")
        deadline = time.monotonic() + 20
        while r.xlen(key) < 2:
            assert time.monotonic() < deadline, "nothing re-sent after the restart"
            time.sleep(0.1)
        entries = read_entries(r, key)
        assert all(e.s == a.s + len(a.events) for a, e in zip(entries, entries[1:], strict=False))
        r.close()
