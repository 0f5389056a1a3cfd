"""Redis failing under load: killed and restarted, or paused with SIGSTOP. The ring's
producer never waits (it keeps its rate), the bridge reconnects by itself, its memory
stays bounded by ``max_buffer_mb``, and every ring event is either in the stream, in
order and once, or counted in the GapNotice of the entry that follows the loss."""

from __future__ import annotations

import os
import time

import pytest
import redis
from bridge_helpers import BridgeProcess, accounted, bridge_config, producing, read_entries
from rss_sampling import rss_kb

from ttxt_mp.bus import format as bf

pytestmark = pytest.mark.timeout(180)
RATE = 20_000
PAUSE_S = 6.0
"""Redis is paused 6 s here, not 30 s: at 20,000 events/s and a 1 MB buffer the bridge
fills its buffer within ~0.2 s and drops for the rest of the pause, so 6 s shows the
bound (RSS flat for 30 x the time it takes to fill) at a fifth of the test time."""


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _steady_producer_rate(prod, seconds: float) -> float:
    c0, t0 = prod.count, time.monotonic()
    time.sleep(seconds)  # measuring a rate over a window, not synchronising
    return (prod.count - c0) / (time.monotonic() - t0)


def _finish(prod, br, r, key, timeout=60.0):
    """Stop producing; wait until the bridge wrote everything; the stream's entries."""
    prod.stop()
    end = prod.count
    _wait(lambda: (e := read_entries(r, key)) and e[-1].s + len(e[-1].ring_events) == end,
          timeout, f"the stream to reach event {end}")
    return read_entries(r, key), end


@pytest.fixture
def engine():
    return f"f{os.getpid()}"


def test_redis_killed_and_restarted_under_load(redis_server, tmp_path, engine):
    key = bf.ring_stream_key(engine, "binance-market")
    with producing(engine) as prod:
        br = BridgeProcess(engine, bridge_config(
            tmp_path, engine, redis_server.url,
            "max_buffer_mb = 0.5\nconnect_timeout = 1.0\nsocket_timeout = 1.0"))
        try:
            br.wait(lambda x: x["state"] == "UP" and x.get("detail", {}).get("rings"), 20, "up")
            prod.start(rate=RATE)
            br.wait(lambda x: x["events"] > RATE, 30, "a second of events published")
            redis_server.kill()
            br.wait(lambda x: x["state"] == "DOWN" and x["lost"] > 0, 30, "DOWN and dropping")
            down = br.last()
            assert "unreachable" in down["message"] and redis_server.url in down["message"]
            # the producer is not slowed by the outage (overwrite ring, bridge drops)
            assert _steady_producer_rate(prod, 1.0) > 0.7 * RATE
            redis_server.start()
            br.wait(lambda x: x["state"] == "UP", 30, "reconnected")
            r = redis.Redis.from_url(redis_server.url)
            entries, end = _finish(prod, br, r, key)
            first, last, lost = accounted(entries)  # contiguous: gaps exactly the holes
            assert last == end and lost > 0
            br.wait(lambda x: x["lost"] == lost, 10, f"the bridge's count {lost} of lost events")
            gap_entry = next(e for e in entries if e.gap)
            state = r.hgetall(bf.state_key(engine, "binance-market"))  # refreshed after it
            assert state and int(state[b"_after"].split(b"-")[0]) >= int(gap_entry.eid.split(b"-")[0])
            r.close()
        finally:
            br.stop()


def test_redis_paused_memory_bounded_drops_exact(redis_server, tmp_path, engine):
    key = bf.ring_stream_key(engine, "binance-market")
    with producing(engine) as prod:
        br = BridgeProcess(engine, bridge_config(
            tmp_path, engine, redis_server.url,
            "max_buffer_mb = 1.0\nconnect_timeout = 1.0\nsocket_timeout = 1.0"))
        try:
            br.wait(lambda x: x["state"] == "UP" and x.get("detail", {}).get("rings"), 20, "up")
            prod.start(rate=RATE)
            br.wait(lambda x: x["events"] > 2 * RATE, 30, "two seconds of events published")
            base = rss_kb(br.proc.pid)
            served, served_t0 = prod.served, time.monotonic()
            redis_server.pause()
            peak = base
            t0 = time.monotonic()
            while time.monotonic() - t0 < PAUSE_S:  # sampling memory through the pause
                peak = max(peak, rss_kb(br.proc.pid) or 0)
                time.sleep(0.1)
            paused = br.last()
            served, served_s = prod.served - served, time.monotonic() - served_t0
            rate = _steady_producer_rate(prod, 0.5)
            redis_server.resume()
            assert paused["lost"] > 0, paused  # it dropped, counted
            assert paused["detail"]["lag_ms"] > 500, paused  # status shows the lag
            assert peak - base < 30_000, (base, peak)  # kB: 1 MB buffer + Python noise
            assert rate > 0.7 * RATE
            # states asked about once per state_interval (1 s), not in a loop while the
            # buffer is full (a loop serves hundreds; a loaded CI machine measured 9 in the
            # ~7 s window: the interval's timer plus asks after reconnect attempts)
            assert served <= 2 * served_s + 2, (served, served_s)
            br.wait(lambda x: x["state"] == "UP", 30, "UP after the pause")
            r = redis.Redis.from_url(redis_server.url)
            entries, end = _finish(prod, br, r, key)
            first, last, lost = accounted(entries)  # every event once, or in a gap
            assert last == end and lost > 0
            br.wait(lambda x: x["lost"] == lost, 10, f"the bridge's count {lost} of lost events")
            r.close()
        finally:
            br.stop()


def test_bridge_stops_promptly_while_redis_is_paused(redis_server, tmp_path, engine):
    """SIGTERM with writes stuck on a paused server: out within the supervisor's 3 s grace."""
    with producing(engine) as prod:
        br = BridgeProcess(engine, bridge_config(tmp_path, engine, redis_server.url))
        try:
            br.wait(lambda x: x["state"] == "UP" and x.get("detail", {}).get("rings"), 20, "up")
            prod.start(rate=5_000)
            br.wait(lambda x: x["events"] > 1_000, 30, "publishing")
            redis_server.pause()
            br.wait(lambda x: x["detail"]["lag_ms"] > 300, 30, "writes stuck")
            t0 = time.monotonic()
            br.proc.terminate()
            br.proc.wait(10)
            assert time.monotonic() - t0 < 3.0
            assert br.proc.returncode == 0, br.err.lines[-5:]
        finally:
            redis_server.resume()
            br.stop()


def test_redis_out_of_memory_is_down_not_a_crash(redis_server, tmp_path, engine):
    """Redis refusing writes (maxmemory reached, noeviction): the bridge reports DOWN with
    Redis's reason, keeps its process, drops what its buffer cannot hold, and once Redis
    takes writes again every event is in the stream or in an exact GapNotice."""
    key = bf.ring_stream_key(engine, "binance-market")
    r = redis.Redis.from_url(redis_server.url)
    with producing(engine) as prod:
        br = BridgeProcess(engine, bridge_config(tmp_path, engine, redis_server.url,
                                                 "max_buffer_mb = 0.5"))
        try:
            br.wait(lambda x: x["state"] == "UP" and x.get("detail", {}).get("rings"), 20, "up")
            pid = br.proc.pid
            prod.start(rate=10_000)
            br.wait(lambda x: x["events"] > 5_000, 30, "publishing")
            r.config_set("maxmemory-policy", "noeviction")
            r.config_set("maxmemory", "1")  # anything: already above it
            down = br.wait(lambda x: x["state"] == "DOWN" and x["lost"] > 0, 30, "DOWN, dropping")
            assert "maxmemory" in down["message"], down
            r.config_set("maxmemory", "0")
            br.wait(lambda x: x["state"] == "UP", 30, "UP again")
            entries, end = _finish(prod, br, r, key)
            first, last, lost = accounted(entries)
            assert last == end and lost > 0 and br.proc.pid == pid and br.proc.poll() is None
            br.wait(lambda x: x["lost"] == lost, 10, f"the bridge's count {lost} of lost events")
        finally:
            br.stop()
            r.close()
