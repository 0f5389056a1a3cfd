"""WSConnection / WSAssistant against real aiohttp WebSocket servers on loopback."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from ttxt_mp.web import (
    AppHeartbeat,
    Backoff,
    FrameKind,
    WSAssistant,
    WSBinaryRequest,
    WSClosed,
    WSConnectError,
    WSConnection,
    WSConnectionLost,
    WSJSONRequest,
    WSNotConnectedError,
    WSPlainTextRequest,
    WSProtocolError,
    WSStalledError,
)


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


@pytest.fixture
async def echo_url(start_server):
    app = web.Application()
    app.router.add_get("/echo", echo)
    return ws_url(await start_server(app), "/echo")


async def test_json_text_binary_round_trips_keep_raw_bytes(factory, echo_url):
    conn = WSConnection(factory)
    await conn.connect(echo_url, timeout=2)
    try:
        before = time.time_ns()
        await conn.send(WSJSONRequest({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}))
        r = await conn.receive()
        after = time.time_ns()
        assert r.kind is FrameKind.TEXT
        assert isinstance(r.data, bytes)  # not decoded: the normalizer decodes
        assert json.loads(r.data) == {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}
        assert before <= r.recv_ts_ns <= after

        await conn.send(WSPlainTextRequest("ping"))
        r = await conn.receive()
        assert (r.kind, r.data) == (FrameKind.TEXT, b"ping")

        await conn.send(WSBinaryRequest(b"\x00\x01\xff"))
        r = await conn.receive()
        assert (r.kind, r.data) == (FrameKind.BINARY, b"\x00\x01\xff")

        await conn.send_json([1, 2])
        await conn.send_text("é")
        await conn.send_bytes(b"b")
        got = [(await conn.receive()).data for _ in range(3)]
        assert got == [b"[1,2]", "é".encode(), b"b"]
    finally:
        await conn.disconnect()
    assert not conn.connected


async def test_decode_text_true_gives_str(factory, echo_url):
    conn = WSConnection(factory)
    await conn.connect(echo_url, decode_text=True)
    try:
        await conn.send_text("hello")
        assert (await conn.receive()).data == "hello"
    finally:
        await conn.disconnect()


async def test_bad_request_type_and_send_when_disconnected(factory, echo_url):
    conn = WSConnection(factory)
    with pytest.raises(WSNotConnectedError, match="not connected"):
        await conn.send(WSPlainTextRequest("x"))
    with pytest.raises(WSNotConnectedError):
        await conn.receive()
    await conn.connect(echo_url)
    try:
        with pytest.raises(TypeError, match="got dict"):
            await conn.send({"op": "ping"})  # type: ignore[arg-type]
    finally:
        await conn.disconnect()


async def test_server_ping_is_answered_and_not_surfaced(factory, start_server):
    async def handler(request):
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"hb-1")
        msg = await ws.receive(timeout=2)
        await ws.send_str(f"{msg.type.name}:{msg.data.decode()}")
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ping", handler)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/ping"))
    try:
        r = await conn.receive()
        assert r.data == b"PONG:hb-1"
    finally:
        await conn.disconnect()


async def test_app_level_heartbeat_is_sent_every_interval(factory, start_server):
    seen: list[tuple[float, dict]] = []

    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            seen.append((time.monotonic(), json.loads(msg.data)))
            await ws.send_str('{"op":"pong"}')
        return ws

    app = web.Application()
    app.router.add_get("/app", handler)
    counter = iter(range(1000))
    hb = AppHeartbeat(0.05, lambda: WSJSONRequest({"op": "ping", "req_id": str(next(counter))}))
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/app"), heartbeat=hb)
    try:
        pongs = [await asyncio.wait_for(conn.receive(), 2) for _ in range(4)]
    finally:
        await conn.disconnect()
    assert all(p.data == b'{"op":"pong"}' for p in pongs)
    assert [m["req_id"] for _, m in seen[:4]] == ["0", "1", "2", "3"]  # fresh payload each time
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:], strict=False)]
    assert all(g >= 0.03 for g in gaps), gaps  # paced, not a burst


async def test_idle_timeout_fires_on_silent_open_socket(factory, start_server):
    server_done = asyncio.Event()

    async def silent(request):
        ws = web.WebSocketResponse()  # autoping on: the socket is healthy, just silent
        await ws.prepare(request)
        async for _ in ws:
            pass
        server_done.set()
        return ws

    app = web.Application()
    app.router.add_get("/silent", silent)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/silent"), idle_timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(WSStalledError, match=r"no frame received for 0.2 s") as info:
        await asyncio.wait_for(conn.receive(), 3)
    elapsed = time.monotonic() - t0
    assert 0.2 <= elapsed < 1.5, elapsed
    assert info.value.idle_timeout == 0.2
    assert not conn.connected and conn._tasks == []
    await asyncio.wait_for(server_done.wait(), 3)  # the socket really was closed


async def test_idle_timeout_not_fired_by_steady_stream_or_slow_consumer(factory, start_server):
    async def trickle(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(8):
            await ws.send_str(str(i))
            await asyncio.sleep(0.05)
        for i in range(8, 11):  # a burst, then silence
            await ws.send_str(str(i))
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/t", trickle)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/t"), idle_timeout=0.15)
    got = [int((await conn.receive()).data) for _ in range(8)]
    for _ in range(3):
        await asyncio.sleep(0.3)  # consumer busier than the idle timeout: not a stall
        got.append(int((await conn.receive()).data))
    assert got == list(range(11))
    with pytest.raises(WSStalledError):
        await asyncio.wait_for(conn.receive(), 3)


async def test_server_close_frame_raises_wsclosed_with_code(factory, start_server):
    async def closer(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("last")
        await ws.close(code=4001, message=b"maintenance")
        return ws

    app = web.Application()
    app.router.add_get("/c", closer)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/c"), heartbeat=AppHeartbeat(5, lambda: WSPlainTextRequest("p")))
    assert (await conn.receive()).data == b"last"
    with pytest.raises(WSClosed) as info:
        await conn.receive()
    assert (info.value.code, info.value.reason, info.value.by_peer) == (4001, "maintenance", True)
    assert "code=4001" in str(info.value)
    assert not conn.connected and conn._tasks == []


async def test_abrupt_drop_raises_connection_lost_and_cleans_up(factory, start_server):
    async def dropper(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("one")
        await asyncio.sleep(0.05)
        request.transport.abort()  # no close frame, TCP reset
        return ws

    app = web.Application()
    app.router.add_get("/d", dropper)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/d"), idle_timeout=5)
    assert (await conn.receive()).data == b"one"
    with pytest.raises(WSConnectionLost) as info:
        await asyncio.wait_for(conn.receive(), 3)
    assert info.value.code == 1006
    assert not conn.connected and conn._tasks == []
    with pytest.raises(WSNotConnectedError):
        await conn.send_text("x")


async def test_oversized_frame_is_a_protocol_error(factory, start_server):
    async def big(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"x" * 4096)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/big", big)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/big"), max_msg_size=1024)
    with pytest.raises(WSProtocolError, match="protocol error"):
        await asyncio.wait_for(conn.receive(), 3)
    assert not conn.connected


async def test_connect_errors_name_the_cause(factory, start_server):
    app = web.Application()
    base = await start_server(app)
    conn = WSConnection(factory)
    with pytest.raises(WSConnectError, match="HTTP 404"):
        await conn.connect(ws_url(base, "/nope?signature=abc123"))
    with pytest.raises(WSConnectError, match=r"signature=<redacted>"):
        await conn.connect(ws_url(base, "/nope?signature=abc123"))

    writers: list[asyncio.StreamWriter] = []

    async def never_answer(reader, writer):
        writers.append(writer)
        await reader.read(1 << 16)
        await asyncio.sleep(10)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        t0 = time.monotonic()
        with pytest.raises(WSConnectError, match=r"no handshake within 0.2 s"):
            await conn.connect(f"ws://127.0.0.1:{port}/", timeout=0.2)
        assert time.monotonic() - t0 < 1.5
    finally:
        server.close()
        for w in writers:
            w.close()
    await server.wait_closed()

    # a port with nothing listening
    sock_server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    dead_port = sock_server.sockets[0].getsockname()[1]
    sock_server.close()
    await sock_server.wait_closed()
    with pytest.raises(WSConnectError, match="ClientConnectorError|Connect"):
        await conn.connect(f"ws://127.0.0.1:{dead_port}/", timeout=2)
    assert not conn.connected


async def test_invalid_connect_arguments(factory, echo_url):
    conn = WSConnection(factory)
    with pytest.raises(ValueError, match="idle_timeout"):
        await conn.connect(echo_url, idle_timeout=0)
    with pytest.raises(ValueError, match="interval_s"):
        await conn.connect(echo_url, heartbeat=AppHeartbeat(0, lambda: WSPlainTextRequest("p")))
    await conn.connect(echo_url)
    try:
        with pytest.raises(Exception, match="already connected"):
            await conn.connect(echo_url)
    finally:
        await conn.disconnect()


async def test_iter_messages_ends_quietly_on_local_disconnect(factory, start_server):
    close_codes: list[int | None] = []

    async def stream(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(3):
            await ws.send_str(str(i))
        async for _ in ws:
            pass
        close_codes.append(ws.close_code)
        return ws

    app = web.Application()
    app.router.add_get("/s", stream)
    wsa = WSAssistant(factory)
    await wsa.connect(ws_url(await start_server(app), "/s"))
    got: list[bytes] = []

    async def consume():
        async for r in wsa.iter_messages():
            got.append(r.data)
            if len(got) == 3:
                asyncio.get_running_loop().call_soon(asyncio.ensure_future, wsa.disconnect())

    await asyncio.wait_for(consume(), 3)
    assert got == [b"0", b"1", b"2"]
    for _ in range(50):
        if close_codes:
            break
        await asyncio.sleep(0.02)
    assert close_codes == [1000]


async def test_iter_messages_raises_on_server_close(factory, start_server):
    async def closer(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=1011, message=b"boom")
        return ws

    app = web.Application()
    app.router.add_get("/c", closer)
    wsa = WSAssistant(factory)
    await wsa.connect(ws_url(await start_server(app), "/c"))
    with pytest.raises(WSClosed, match="1011"):
        async for _ in wsa.iter_messages():
            pass


async def test_reconnect_replays_subscriptions_after_drop(factory, start_server):
    received: list[list[str]] = []

    async def venue(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        mine: list[str] = []
        received.append(mine)
        async for msg in ws:
            mine.append(msg.data)
            await ws.send_str("ack")
            if len(received) == 1 and len(mine) == 2:
                request.transport.abort()
        return ws

    app = web.Application()
    app.router.add_get("/v", venue)
    wsa = WSAssistant(factory)
    await wsa.connect(ws_url(await start_server(app), "/v"), idle_timeout=5)
    await wsa.subscribe(WSJSONRequest({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}))
    await wsa.subscribe(WSJSONRequest({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]}))
    await wsa.send(WSJSONRequest({"op": "ping"}))  # one-off: not replayed
    with pytest.raises(WSConnectionLost):
        async for _ in wsa.iter_messages():
            pass
    await wsa.reconnect(Backoff(0.01, 0.05, rng=__import__("random").Random(1)))
    assert [(await wsa.receive()).data for _ in range(2)] == [b"ack", b"ack"]
    await wsa.disconnect()
    assert received[1] == received[0][:2] == [
        '{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}',
        '{"op":"subscribe","args":["publicTrade.BTCUSDT"]}',
    ]


async def test_connect_with_backoff_retries_then_gives_up(factory, start_server):
    attempts = {"n": 0}

    async def flaky(request):
        attempts["n"] += 1
        if attempts["n"] <= 2:
            raise web.HTTPServiceUnavailable()
        return await echo(request)

    app = web.Application()
    app.router.add_get("/f", flaky)
    url = ws_url(await start_server(app), "/f")
    retries: list[tuple[int, float]] = []
    wsa = WSAssistant(factory)
    import random

    await wsa.connect_with_backoff(
        url, Backoff(0.01, 0.02, rng=random.Random(3)), on_retry=lambda a, d, e: retries.append((a, d))
    )
    assert attempts["n"] == 3 and [a for a, _ in retries] == [1, 2]
    assert all(0 <= d <= 0.02 for _, d in retries)
    await wsa.disconnect()

    attempts["n"] = 0
    with pytest.raises(WSConnectError, match="HTTP 503"):
        await wsa.connect_with_backoff(url, Backoff(0.01, 0.02, max_attempts=1))
    assert attempts["n"] == 2  # first try + one retry, then gave up
    with pytest.raises(RuntimeError, match="before connect"):
        await WSAssistant(factory).reconnect(Backoff())


async def test_stalled_then_reconnect_works(factory, start_server):
    """After a stall the same assistant reconnects and the watchdog restarts."""
    calls = {"n": 0}

    async def handler(request):
        calls["n"] += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if calls["n"] == 2:
            await ws.send_str("alive")
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/h", handler)
    wsa = WSAssistant(factory)
    await wsa.connect(ws_url(await start_server(app), "/h"), idle_timeout=0.1)
    with pytest.raises(WSStalledError):
        await asyncio.wait_for(wsa.receive(), 3)
    await wsa.reconnect(Backoff(0.01, 0.01))
    assert (await asyncio.wait_for(wsa.receive(), 3)).data == b"alive"
    with pytest.raises(WSStalledError):
        await asyncio.wait_for(wsa.receive(), 3)
    await wsa.disconnect()


async def test_session_is_shared_between_connections(factory, echo_url):
    a, b = WSConnection(factory), WSConnection(factory)
    await a.connect(echo_url)
    await b.connect(echo_url)
    try:
        assert isinstance(factory.get_session(), aiohttp.ClientSession)
        assert a._ws is not None and b._ws is not None
        assert a._ws._response._session is factory.get_session()
    finally:
        await a.disconnect()
        await b.disconnect()


async def test_protocol_ping_without_pong_is_connection_lost(factory, start_server):
    async def deaf(request):
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await asyncio.sleep(3)  # never reads: our pings stay unanswered
        return ws

    app = web.Application()
    app.router.add_get("/deaf", deaf)
    conn = WSConnection(factory)
    await conn.connect(ws_url(await start_server(app), "/deaf"), protocol_ping_interval=0.1)
    t0 = time.monotonic()
    with pytest.raises(WSConnectionLost, match="No PONG received"):
        await asyncio.wait_for(conn.receive(), 3)
    assert time.monotonic() - t0 < 1.5
    assert not conn.connected
