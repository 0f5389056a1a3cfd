"""Every fault knob, through the Python API and the control HTTP endpoint; pause/resume/truth."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from sim_helpers import recv_json, recv_until

from ttxt_mp.sim import FaultSpec, Simulator


async def binance_diff(http: aiohttp.ClientSession, sim: Simulator) -> aiohttp.ClientWebSocketResponse:
    assert sim.urls and sim.urls.binance
    w = await http.ws_connect(sim.urls.binance.ws + "/ws/btcusdt@depth@100ms")
    await recv_json(w)
    return w


async def test_drop_is_abrupt(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await binance_diff(http, sim)
    res = sim.fault(venue="binance", kind="drop")
    assert res["applied_to"]
    while True:
        msg = await asyncio.wait_for(w.receive(), 2)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
    assert msg.type != aiohttp.WSMsgType.CLOSE, "a drop must not send a close frame"
    assert w.closed


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
async def test_malformed_frame(sim: Simulator, http: aiohttp.ClientSession, mode: str) -> None:
    w = await binance_diff(http, sim)
    sim.fault(venue="binance", kind="malformed", mode=mode)
    for _ in range(50):
        msg = await asyncio.wait_for(w.receive(), 2)
        try:
            data = json.loads(msg.data)
        except json.JSONDecodeError:
            assert mode == "invalid_json"
            break
        if "e" not in data:
            assert mode == "wrong_shape"
            break
    else:
        pytest.fail("no malformed frame seen")
    assert (await recv_json(w))["e"] == "depthUpdate"  # the stream goes on
    await w.close()


async def test_skip_update_binance_and_bybit(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await binance_diff(http, sim)
    prev = (await recv_json(w))["u"]
    sim.fault(venue="binance", kind="skip_update", symbol="BTCUSDT")
    nxt = await recv_json(w)
    assert nxt["U"] > prev + 1, "U must jump after a skipped diff"
    after = await recv_json(w)
    assert after["U"] == nxt["u"] + 1
    await w.close()
    assert sim.urls and sim.urls.bybit
    b = await http.ws_connect(sim.urls.bybit.ws + "/v5/public/spot")
    await b.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}))
    await recv_json(b)
    u = (await recv_json(b))["data"]["u"]
    sim.fault(FaultSpec(venue="bybit", kind="skip_update", symbol="BTCUSDT", count=2))
    m = await recv_json(b)
    assert m["data"]["u"] == u + 3
    await b.close()


async def test_stall_sends_nothing_and_answers_nothing(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.urls and sim.urls.bybit
    b = await http.ws_connect(sim.urls.bybit.ws + "/v5/public/spot")
    await b.send_str(json.dumps({"op": "subscribe", "args": ["publicTrade.BTCUSDT", "orderbook.1.BTCUSDT"]}))
    await recv_json(b)
    sim.fault(venue="bybit", kind="stall", duration=0.6)
    await _drain(b)  # frames already on the wire before the stall
    await b.send_str('{"op":"ping"}')
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(b.receive(), 0.35)
    assert not b.closed
    m = await recv_json(b, 1.0)  # resumes after the stall
    assert "topic" in m
    await b.close()
    w = await binance_diff(http, sim)
    sim.fault(venue="binance", kind="stall")
    await _drain(w)
    w2 = await http.ws_connect(sim.urls.binance.ws + "/ws", autoping=False)  # not stalled
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(w.receive(), 0.5)  # no frames, no pings
    assert (await asyncio.wait_for(w2.receive(), 1)).type == aiohttp.WSMsgType.PING
    await w.close()
    await w2.close()


async def _drain(w: aiohttp.ClientWebSocketResponse) -> None:
    try:
        while True:
            await asyncio.wait_for(w.receive(), 0.05)
    except TimeoutError:
        return


async def test_delay_frames(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await binance_diff(http, sim)
    sim.fault(venue="binance", kind="delay", delay_ms=300, duration=2)
    lags = []
    for _ in range(6):
        m = await recv_json(w)
        lags.append(time.time() * 1000 - m["E"])
    assert max(lags) >= 250, lags
    await w.close()


async def test_control_endpoint_schedule_pause_truth(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.urls
    ctl = sim.urls.control
    w = await binance_diff(http, sim)
    async with http.post(ctl + "/fault", json={"venue": "binance", "kind": "drop", "after": 0.3}) as r:
        assert r.status == 200 and "scheduled" in await r.json()
    t0 = time.monotonic()
    while True:
        msg = await asyncio.wait_for(w.receive(), 2)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
    assert time.monotonic() - t0 >= 0.2
    async with http.post(ctl + "/fault", json={"venue": "binance", "kind": "explode"}) as r:
        assert r.status == 400 and "kind" in (await r.json())["error"]
    async with http.post(ctl + "/fault", json={"venue": "binance", "kind": "drop", "conn_id": 99999}) as r:
        assert r.status == 404 and "99999" in (await r.json())["error"]
    async with http.post(ctl + "/pause") as r:
        ids = (await r.json())["update_ids"]
    await asyncio.sleep(0.1)
    async with http.get(ctl + "/truth", params={"venue": "binance", "symbol": "BTCUSDT"}) as r:
        t = await r.json()
    assert t["update_id"] == ids["binance"]["BTCUSDT"] and len(t["bids"]) >= 100
    async with http.get(ctl + "/truth", params={"venue": "bybit", "symbol": "BTCUSDT", "depth": "5"}) as r:
        t = await r.json()
    assert len(t["asks"]) == 5 and "orderbook.50.BTCUSDT" in t["topics"]
    async with http.get(ctl + "/truth", params={"venue": "bybit", "symbol": "NOPE"}) as r:
        assert r.status == 404
    async with http.post(ctl + "/resume") as r:
        assert (await r.json())["paused"] is False
    async with http.get(ctl + "/connections") as r:
        assert isinstance(await r.json(), list)


async def test_fault_requests_are_validated(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="delay_ms"):
        FaultSpec(venue="binance", kind="delay")
    with pytest.raises(KeyError, match="no symbol"):
        sim.fault(venue="bybit", kind="skip_update", symbol="DOGEUSDT")
    with pytest.raises(KeyError, match="not simulated"):
        Simulator({"binance": ["BTCUSDT"]}).venue("bybit")


async def test_scheduled_repeating_malformed(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await binance_diff(http, sim)
    sim.fault(venue="binance", kind="malformed", after=0.05, every=0.1, times=3)
    bad = 0
    end = time.monotonic() + 0.8
    while time.monotonic() < end:
        msg = await asyncio.wait_for(w.receive(), 1)
        try:
            json.loads(msg.data)
        except json.JSONDecodeError:
            bad += 1
    assert bad == 3
    await w.close()
    _ = recv_until
