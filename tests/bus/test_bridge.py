"""The bridge process on real shared-memory rings and a real redis-server: every ring event
in order in the stream, the state hash exact at its ``_after``, the meta hash current."""

from __future__ import annotations

import json
import os
import time

import pytest
import redis
from bridge_helpers import (
    BridgeProcess,
    accounted,
    bridge_config,
    id_key,
    producing,
    read_entries,
    ticker,
)

from ttxt_mp.bus import format as bf
from ttxt_mp.config import ConfigError, parse_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def engine():
    return f"b{os.getpid()}"


def _client(srv) -> redis.Redis:
    return redis.Redis.from_url(srv.url, password=srv.password)


def test_bridge_publishes_every_event_and_an_exact_state(redis_server, tmp_path, engine):
    r = _client(redis_server)
    key = bf.ring_stream_key(engine, "binance-market")
    with producing(engine) as prod:
        prod.put(10)  # before the bridge: not published (it attaches at the latest)
        br = BridgeProcess(engine, bridge_config(tmp_path, engine, redis_server.url,
                                                 "batch_events = 100\nstate_interval = 0.2"))
        try:
            br.wait(lambda x: x.get("detail", {}).get("rings") == ["binance-market"]
                    and x["state"] == "UP", 20, "ring tapped, Redis up")
            prod.start(rate=20_000, limit=30_010)
            br.wait(lambda x: x["events"] >= 30_000, 60, "30,000 events published")
            entries = read_entries(r, key)
            first, end, lost = accounted(entries)
            assert (first, end, lost) == (10, 30_010, 0)
            assert max(len(e.events) for e in entries) <= 100
            # the state hash: exactly the latest ticker per symbol of every event up to
            # and including the entry _after, and none after it
            state = r.hgetall(bf.state_key(engine, "binance-market"))
            assert state[b"_layout"] == bf.layout_tag()
            after = state.pop(b"_after")
            del state[b"_layout"]
            upto = [e for e in entries if id_key(e.eid) <= id_key(after)]
            assert upto, after
            want = {}
            for e in upto:
                for ev in e.ring_events:
                    want[bf.state_field(ev)] = ev
            got = {k.decode(): bf.unpack_events(v)[0] for k, v in state.items()}
            assert got == want
            meta = r.hgetall(bf.meta_key(engine))
            assert meta[b"layout"] == bf.layout_tag()
            assert json.loads(meta[b"rings"]) == ["binance-market"]
            status = json.loads(meta[b"bridge"])
            assert status["state"] == "UP" and status["published"] >= 30_000
            assert status["dropped"] == 0 and status["url"] == redis_server.url
            assert br.stop() == 0
        finally:
            br.stop()
            prod.stop()


def test_state_follows_the_stream(redis_server, tmp_path, engine):
    """A late joiner's recipe (HGETALL state, then XREAD after _after) gives the same
    latest values as reading the whole stream, at any moment."""
    r = _client(redis_server)
    key = bf.ring_stream_key(engine, "binance-market")
    with producing(engine) as prod:
        br = BridgeProcess(engine, bridge_config(tmp_path, engine, redis_server.url,
                                                 "state_interval = 0.1"))
        try:
            br.wait(lambda x: x.get("detail", {}).get("rings") and x["state"] == "UP", 20, "up")
            prod.start(rate=5_000, limit=20_000)
            checked = 0
            while checked < 5 or prod.count < 20_000:  # while events flow, then at the end
                state = r.hgetall(bf.state_key(engine, "binance-market"))
                if not state:
                    continue
                after = state.pop(b"_after")
                del state[b"_layout"]
                late = {k.decode(): bf.unpack_events(v)[0] for k, v in state.items()}
                tail = read_entries(r, key, after)
                for e in tail:
                    for ev in e.ring_events:
                        late[bf.state_field(ev)] = ev
                last = id_key(tail[-1].eid if tail else after)
                full = {}
                for e in read_entries(r, key):
                    if id_key(e.eid) <= last:
                        for ev in e.ring_events:
                            full[bf.state_field(ev)] = ev
                assert late == full
                checked += 1
            br.wait(lambda x: x["events"] >= 20_000, 60, "all published")
            state = r.hgetall(bf.state_key(engine, "binance-market"))
            after = state.pop(b"_after")
            del state[b"_layout"]
            late = {k.decode(): bf.unpack_events(v)[0] for k, v in state.items()}
            for e in read_entries(r, key, after):
                for ev in e.ring_events:
                    late[bf.state_field(ev)] = ev
            assert {ev.update_id for ev in late.values()} == {19_997, 19_998, 19_999}
            assert ticker(19_999) in late.values()
        finally:
            br.stop()
            prod.stop()


@pytest.mark.parametrize("toml, why", [
    ('kind = "kafka"\nurl = "redis://127.0.0.1:6379/0"', "bridges"),
    ('kind = "redis"\nurl = "http://127.0.0.1:6379/0"', "redis:// or rediss://"),
    ('kind = "redis"\nurl = "redis://:pw@127.0.0.1:6379/0"', "password_env instead"),
    ('kind = "redis"\nurl = "redis://127.0.0.1:6379/0"\nrings = ["orders"]', "'market' or 'private'"),
    ('kind = "redis"\nurl = "redis://127.0.0.1:6379/0"\nrings = []', "at least one"),
    ('kind = "redis"\nurl = "redis://127.0.0.1:6379/0"\npassword_env = "hunter 2"', "NAME of an environment"),
    ('kind = "redis"\nurl = "rediss://127.0.0.1:6379/x"', "database number"),
    ('kind = "redis"\nurl = "redis://127.0.0.1:6379/0"\ntls_ca_file = "/etc/hostname"', "only with a rediss://"),
    ('kind = "redis"\nurl = "rediss://127.0.0.1:6379/0"\ntls_ca_file = "/nonexistent/ca.pem"', "cannot read"),
])
def test_bad_bridge_config_one_line(toml, why):
    text = f'[engine]\nname = "e"\n[[connectors]]\nexchange = "binance"\nsymbols = ["BTC/USDT"]\n[[bridges]]\n{toml}\n'
    with pytest.raises(ConfigError, match=why) as ei:
        parse_config(text)
    assert "\n" not in str(ei.value) and "pw@" not in str(ei.value)


def test_two_bridges_to_one_redis_refused():
    text = ('[engine]\nname = "e"\n[[connectors]]\nexchange = "binance"\nsymbols = ["BTC/USDT"]\n'
            '[[bridges]]\nkind = "redis"\nurl = "redis://h:6379/0"\n'
            '[[bridges]]\nkind = "redis"\nurl = "redis://h:6379"\nrings = ["private"]\nname = "b"\n')
    with pytest.raises(ConfigError, match="bridges\\[0\\] already publishes"):
        parse_config(text)


def test_good_bridge_config():
    text = ('[engine]\nname = "e"\n[[connectors]]\nexchange = "binance"\nsymbols = ["BTC/USDT"]\n'
            '[[bridges]]\nkind = "redis"\nurl = "rediss://redis.example:6380/2"\n'
            'rings = ["market", "private"]\npassword_env = "REDIS_PW"\n')
    cfg = parse_config(text)
    assert cfg.bridges[0].rings == ["market", "private"] and cfg.bridges[0].id(0) == "redis0"


def test_bridge_killed_and_restarted_announces_the_exact_gap(redis_server, tmp_path, engine):
    """The ring outlives the bridge: a new bridge finds where the stream ends (entry field
    ``x``, same ring instance per the meta hash) and announces exactly what went by."""
    r = _client(redis_server)
    key = bf.ring_stream_key(engine, "binance-market")
    cfg = bridge_config(tmp_path, engine, redis_server.url)
    with producing(engine) as prod:
        old = BridgeProcess(engine, cfg)
        new = None
        try:
            old.wait(lambda x: x.get("detail", {}).get("rings") and x["state"] == "UP", 20, "up")
            prod.start(rate=10_000)
            old.wait(lambda x: x["events"] > 20_000, 30, "events published")
            old.proc.kill()
            old.stop()
            mark = prod.count
            deadline = time.monotonic() + 30
            while prod.count < mark + 2_000:  # events nobody publishes
                assert time.monotonic() < deadline
                time.sleep(0.05)
            new = BridgeProcess(engine, cfg)
            new.wait(lambda x: x["events"] > 2_000 and x["lost"] > 0, 30, "publishing again")
            prod.stop()
            end = prod.count
            deadline = time.monotonic() + 30
            while not ((entries := read_entries(r, key)) and entries[-1].s
                       + len(entries[-1].ring_events) == end):  # fmt: skip
                assert time.monotonic() < deadline, "the new bridge did not catch up"
                time.sleep(0.05)
            first, last, lost = accounted(entries)
            assert last == end and lost >= 2_000
            assert sum(1 for e in entries if e.gap) == 1
            assert new.last()["lost"] == lost
        finally:
            old.stop()
            if new is not None:
                new.stop()


@pytest.mark.parametrize("env, why", [
    ({}, "environment variable TTXT_NO_SUCH_PW (password_env) is not set or empty"),
    ({"TTXT_NO_SUCH_PW": "wrong-one-5521"}, "authentication failed"),
])
def test_bridge_password_problems_are_permanent(redis_server_auth, tmp_path, engine, env, why):
    url = f"redis://127.0.0.1:{redis_server_auth.port}/0"
    cfg = bridge_config(tmp_path, engine, url, 'password_env = "TTXT_NO_SUCH_PW"')
    os.environ.pop("TTXT_NO_SUCH_PW", None)
    with producing(engine):
        br = BridgeProcess(engine, cfg, env)
        try:
            assert br.proc.wait(30) == 78  # EXIT_PERMANENT: the supervisor will not restart it
            br.stop()
            final = br.last()
            assert final["state"] == "FAILED" and why in final["message"]
            err = "".join(br.err.lines)
            assert why in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
            assert "wrong-one-5521" not in err + json.dumps(br.reports())
        finally:
            br.stop()


def test_producer_serving_no_state_never_stalls_the_bridge(redis_server, tmp_path, engine):
    """A producer that does not answer state requests (a connector restarting, busy): the
    bridge holds what it reads meanwhile (bounded), gives up after the request's timeout
    and publishes everything; the ring is read all along (a 4,096-slot ring at 10,000
    events/s would be lapped within 0.4 s of a stall: no GapNotice means no stall)."""
    r = _client(redis_server)
    key = bf.ring_stream_key(engine, "binance-market")
    with producing(engine, capacity=4096) as prod:
        prod._serve = lambda: None  # never serves
        br = BridgeProcess(engine, bridge_config(tmp_path, engine, redis_server.url))
        try:
            br.wait(lambda x: x.get("detail", {}).get("rings") and x["state"] == "UP", 20, "up")
            prod.start(rate=10_000, limit=50_000)
            deadline = time.monotonic() + 60
            while not ((entries := read_entries(r, key)) and entries[-1].s
                       + len(entries[-1].ring_events) == 50_000):  # fmt: skip
                assert time.monotonic() < deadline, "not all published"
                time.sleep(0.05)
            first, end, lost = accounted(entries)
            assert end == 50_000 and lost == 0
            assert not r.exists(bf.state_key(engine, "binance-market"))
        finally:
            br.stop()
            prod.stop()
