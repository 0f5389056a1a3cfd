"""WebSocket receive throughput: ttxt_mp.web vs a plain aiohttp loop.

A local aiohttp server (its own process, so it does not share our GIL) writes
pre-encoded WebSocket frames (a Binance diff-depth event) straight to the transport in
large batches, so the server is not the bottleneck. The client counts frames/s from the
first to the last frame for each receive style:

  aiohttp-text      `async for msg in ws` with aiohttp defaults (TEXT decoded to str)
  aiohttp-raw       same with decode_text=False (bytes): the fair baseline
  aiohttp-timeout   ws.receive(timeout=...) per frame: what an idle timeout costs if
                    done per call (why WSConnection uses a watchdog instead)
  WSConnection      conn.receive() -> WSResponse(bytes, kind, recv_ts_ns)
  WSConnection+idle same with idle_timeout and an app heartbeat running
  WSAssistant       async for r in assistant.iter_messages()

Usage: python benchmarks/bench_ws.py [--frames 200000] [--repeat 3] [--uvloop]
Run briefly on shared machines: --frames 20000 --repeat 1 is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp import WSMsgType, web  # noqa: E402

from ttxt_mp.web import (  # noqa: E402
    AppHeartbeat,
    ConnectionFactory,
    WSAssistant,
    WSConnection,
    WSJSONRequest,
)

# Binance Spot "Diff. Depth Stream" payload (the example of the WebSocket Streams docs).
PAYLOAD = (
    b'{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,'
    b'"b":[["0.0024","10"]],"a":[["0.0026","100"]]}'
)
BATCH = 512  # frames per transport.write


def encode_server_frame(payload: bytes) -> bytes:
    """An unmasked FIN TEXT frame, as a server sends it (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes([0x81, n])
    elif n < 1 << 16:
        header = bytes([0x81, 126]) + struct.pack("!H", n)
    else:
        header = bytes([0x81, 127]) + struct.pack("!Q", n)
    return header + payload


async def stream_handler(request: web.Request) -> web.WebSocketResponse:
    n = int(request.query["n"])
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    blob = encode_server_frame(PAYLOAD) * BATCH
    sent = 0
    while sent < n:
        k = min(BATCH, n - sent)
        transport.write(blob if k == BATCH else encode_server_frame(PAYLOAD) * k)
        sent += k
        while transport.get_write_buffer_size() > 1 << 20:
            await asyncio.sleep(0.0005)
    async for _ in ws:  # wait for the client to close
        pass
    return ws


def serve(port_queue: mp.Queue) -> None:
    async def main() -> None:
        app = web.Application()
        app.router.add_get("/stream", stream_handler)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


Receiver = Callable[[str, int, ConnectionFactory], Awaitable[float]]


async def aiohttp_loop(url: str, n: int, cf: ConnectionFactory, *, decode_text: bool,
                       timeout: float | None = None) -> float:
    ws = await cf.get_session().ws_connect(url, decode_text=decode_text)
    count = 0
    t0 = 0.0
    try:
        if timeout is None:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    if count == 0:
                        t0 = time.perf_counter()
                    count += 1
                    if count == n:
                        break
        else:
            while count < n:
                msg = await ws.receive(timeout=timeout)
                if msg.type is WSMsgType.TEXT:
                    if count == 0:
                        t0 = time.perf_counter()
                    count += 1
        return (n - 1) / (time.perf_counter() - t0)
    finally:
        await ws.close()


async def connection_loop(url: str, n: int, cf: ConnectionFactory, *, idle: bool) -> float:
    conn = WSConnection(cf)
    kwargs = {}
    if idle:
        kwargs = {"idle_timeout": 5.0,
                  "heartbeat": AppHeartbeat(1.0, lambda: WSJSONRequest({"op": "ping"}))}
    await conn.connect(url, **kwargs)
    receive = conn.receive
    try:
        await receive()
        t0 = time.perf_counter()
        for _ in range(n - 1):
            await receive()
        return (n - 1) / (time.perf_counter() - t0)
    finally:
        await conn.disconnect()


async def assistant_loop(url: str, n: int, cf: ConnectionFactory) -> float:
    wsa = WSAssistant(cf)
    await wsa.connect(url)
    count = 0
    t0 = 0.0
    try:
        async for _ in wsa.iter_messages():
            if count == 0:
                t0 = time.perf_counter()
            count += 1
            if count == n:
                break
        return (n - 1) / (time.perf_counter() - t0)
    finally:
        await wsa.disconnect()


MODES: dict[str, Callable[[str, int, ConnectionFactory], Awaitable[float]]] = {
    "aiohttp-text": lambda u, n, cf: aiohttp_loop(u, n, cf, decode_text=True),
    "aiohttp-raw": lambda u, n, cf: aiohttp_loop(u, n, cf, decode_text=False),
    "aiohttp-timeout": lambda u, n, cf: aiohttp_loop(u, n, cf, decode_text=False, timeout=5.0),
    "WSConnection": lambda u, n, cf: connection_loop(u, n, cf, idle=False),
    "WSConnection+idle": lambda u, n, cf: connection_loop(u, n, cf, idle=True),
    "WSAssistant": assistant_loop,
}


async def run(port: int, frames: int, repeat: int) -> dict[str, float]:
    url = f"ws://127.0.0.1:{port}/stream?n={frames}"
    rates: dict[str, list[float]] = {}
    async with ConnectionFactory() as cf:
        for _ in range(repeat):
            for name, fn in MODES.items():  # interleaved so drift hits every mode alike
                rates.setdefault(name, []).append(await fn(url, frames, cf))
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    port_q: mp.Queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(port_q,), daemon=True)
    server.start()
    try:
        port = port_q.get(timeout=20)
        if args.uvloop:
            import uvloop

            best = uvloop.run(run(port, args.frames, args.repeat))
        else:
            best = asyncio.run(run(port, args.frames, args.repeat))
    finally:
        server.terminate()
        server.join(5)
        if server.is_alive():
            server.kill()
    base = best["aiohttp-raw"]
    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(f"WS receive, {args.frames} frames of {len(PAYLOAD)} B, median of {args.repeat}, "
          f"{loop_name}, aiohttp {aiohttp.__version__}")
    print(f"{'mode':<20}{'frames/s':>12}{'vs aiohttp-raw':>16}")
    for name, rate in best.items():
        print(f"{name:<20}{rate:>12,.0f}{rate / base:>15.2f}x")


if __name__ == "__main__":
    main()
