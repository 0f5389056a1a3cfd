"""RedisStreamQueue against a real redis-server: events come back identical, in order,
through every API; foreign layouts are refused; bad servers give one clear line."""

from __future__ import annotations

import itertools
import time

import pytest
from codec_strategies import any_event, shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer, free_port

from ttxt_mp.bus import format as bf
from ttxt_mp.bus.redis_queue import BusConnectionError, RedisStreamQueue
from ttxt_mp.events import ConnectorState, ConnectorStatus
from ttxt_mp.queues import QueueEmpty

_keys = itertools.count()


@pytest.fixture(scope="module")
def server():
    with RedisServer() as srv:
        yield srv


def _key() -> str:
    return f"test:q:{next(_keys)}"


def _status(i: int) -> ConnectorStatus:
    return ConnectorStatus(exchange="x", symbol="", exch_ts=i, local_ts=i, state=ConnectorState.UP,
                           message=f"m{i}")


def _drain(q: RedisStreamQueue, n: int) -> list:
    return [q.get(timeout=5) for _ in range(n)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(any_event, max_size=40), batch=st.integers(1, 7),
       pipeline=st.integers(1, 5), many=st.booleans())
def test_any_sequence_comes_back_identical(server, events, batch, pipeline, many):
    key = _key()
    with RedisStreamQueue(server.url, key, batch_events=batch, pipeline=pipeline) as pub, \
         RedisStreamQueue(server.url, key, start="oldest") as sub:  # fmt: skip
        if many:
            pub.put_many(events)
        else:
            for ev in events:
                pub.put(ev)
            pub.flush()
        got = _drain(sub, len(events))
        with pytest.raises(QueueEmpty):
            sub.get(timeout=0.01)
    assert [shape(e) for e in got] == [shape(e) for e in events]


async def test_async_round_trip_and_resume(server):
    key = _key()
    pub = RedisStreamQueue(server.url, key)
    sub = RedisStreamQueue(server.url, key, start="oldest")
    try:
        for i in range(10):
            await pub.aput(_status(i))
        got = [await sub.aget() for _ in range(4)]
        assert [e.exch_ts for e in got] == [0, 1, 2, 3]
        # a restarted reader resumes after the last entry its predecessor read
        again = RedisStreamQueue(server.url, key, start=sub.last_id.decode())
        rest = [again.get(timeout=5) for _ in range(6)]
        assert [e.exch_ts for e in rest] == list(range(4, 10))
        again.close()
    finally:
        await pub.aclose()
        await sub.aclose()


def test_latest_sees_only_new_entries(server):
    key = _key()
    with RedisStreamQueue(server.url, key) as pub:
        pub.put_many(_status(i) for i in range(5))
        with RedisStreamQueue(server.url, key, start="latest") as sub:
            with pytest.raises(QueueEmpty):
                sub.get(timeout=0.05)
            pub.put(_status(99))
            assert sub.get(timeout=5).exch_ts == 99


def test_batched_entries_and_maxlen(server):
    key = _key()
    with RedisStreamQueue(server.url, key, batch_events=10, maxlen=100) as pub:
        pub.put_many(_status(i) for i in range(25))
        assert pub.client.xlen(key) == 3  # 10 + 10 + 5 events
        entries = pub.client.xrange(key)
        assert [int(f[b"n"]) for _, f in entries] == [10, 10, 5]
        for _ in range(30):
            pub.put_many(_status(i) for i in range(50))
        assert pub.client.xlen(key) < 300  # approximately trimmed


def test_foreign_layout_refused_never_decoded(server):
    key = _key()
    with RedisStreamQueue(server.url, key, start="oldest") as sub:
        fields = bf.encode_entry([bf.codec.encode(_status(1))])
        fields[b"v"] = b"1:00000000deadbeef"
        eid = sub.client.xadd(key, fields)
        with pytest.raises(bf.BusLayoutError, match=f"{key} entry {eid.decode()}.*refusing"):
            sub.get(timeout=1)
        with pytest.raises(bf.BusLayoutError):  # still refused, never skipped silently
            sub.get(timeout=1)


def test_unreachable_names_url_without_password():
    url = f"redis://:hunter2pw@127.0.0.1:{free_port()}/0"
    q = RedisStreamQueue(url, _key(), connect_timeout=1)
    with pytest.raises(BusConnectionError) as ei:
        q.put(_status(1))
    msg = str(ei.value)
    assert "unreachable" in msg and "127.0.0.1" in msg and "hunter2pw" not in msg
    assert "\n" not in msg


def test_wrong_password(redis_server_auth):
    url = redis_server_auth.url.replace("s3cret-redis-pw", "not-the-pw")
    q = RedisStreamQueue(url, _key())
    with pytest.raises(BusConnectionError, match="authentication failed") as ei:
        q.put(_status(1))
    assert "not-the-pw" not in str(ei.value)
    ok = RedisStreamQueue(redis_server_auth.url, "k", start="oldest")
    ok.put(_status(2))
    assert ok.get(timeout=5).exch_ts == 2
    ok.close()


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1:1/0", "redis:// or rediss://"),
    ("redis://127.0.0.1:6379/x", "database number"),
    ("redis:///0", "host"),
])
def test_bad_url(url, why):
    with pytest.raises(ValueError, match=why):
        RedisStreamQueue(url, "k")


def test_get_timeout_is_bounded(server):
    with RedisStreamQueue(server.url, _key(), start="oldest") as sub:
        t0 = time.monotonic()
        with pytest.raises(QueueEmpty):
            sub.get(timeout=0.2)
        assert time.monotonic() - t0 < 3
