"""OKX order entry: the private WebSocket (``op: order`` on the logged-in socket) against
REST (``POST /api/v5/trade/order``), the two paths ``OkxTrading`` can use, side by side.

Processes: the simulator (``python -m ttxt_mp.sim`` serving ``okx`` only) and this
client. Each order is signed and sent exactly as ``OkxTrading`` does (``OkxSigner``: REST
headers with ``expTime``; WebSocket op with ``id`` and ``expTime``) and timed from send to
its answer. Orders are IOC limit buys far below the market: accepted, then canceled,
nothing rests. Each repetition runs both paths in a shuffled order (``--orders`` each);
the figures are the medians over repetitions of each path's p50 and p99, and their ratio.

Usage: python benchmarks/bench_okx_orders.py [--orders 300] [--reps 7]
       python benchmarks/bench_okx_orders.py --quick     (a smoke run: a few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import yarl  # noqa: E402

from ttxt_mp.connectors.okx.auth import OkxSigner  # noqa: E402
from ttxt_mp.engine.demo import demo_venues  # noqa: E402
from ttxt_mp.secrets import Credentials, Secret  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET, PHRASE = "benchOkxKey000000000001", "benchOkxSecret0000000001", "benchPhrase1"


def start_sim() -> tuple[subprocess.Popen, dict]:
    argv = [sys.executable, "-m", "ttxt_mp.sim", "--paused", "--port", "0"]
    for spec, _ in demo_venues():
        argv += [f"--{spec.sim_id}", "BTCUSDT" if spec.sim_id == "okx" else ""]
    argv += ["--account", f"{KEY}:{SECRET}:USDT=1000000000,BTC=100000:{PHRASE}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


class Paths:
    def __init__(self, http: aiohttp.ClientSession, rest: str, ws_url: str) -> None:
        self.http, self.rest, self.ws_url = http, rest.rstrip("/"), ws_url.rstrip("/")
        self.path0 = yarl.URL(self.rest).path.rstrip("/")
        self.signer = OkxSigner(Credentials(Secret(KEY), Secret(SECRET), Secret(PHRASE)))
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.n = 0

    async def open(self) -> None:
        self.ws = await self.http.ws_connect(f"{self.ws_url}/ws/v5/private")
        await self.ws.send_json(self.signer.ws_login())
        reply = json.loads((await self.ws.receive(timeout=5)).data)
        assert reply.get("event") == "login", reply

    def body(self) -> dict:
        self.n += 1
        return {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": f"b{self.n}", "side": "buy",
                "ordType": "ioc", "px": "1000.0", "sz": "0.01000000"}  # fmt: skip

    async def rest_order(self) -> float:
        raw = json.dumps(self.body(), separators=(",", ":"))
        t0 = time.perf_counter_ns()
        h = {**self.signer.headers("POST", self.path0 + "/api/v5/trade/order", raw),
             "Content-Type": "application/json"}  # fmt: skip
        async with self.http.post(self.rest + "/api/v5/trade/order", data=raw, headers=h) as r:
            out = await r.json()
        assert out["data"][0]["sCode"] == "0", out
        return (time.perf_counter_ns() - t0) / 1000

    async def ws_order(self) -> float:
        assert self.ws is not None
        rid = f"w{self.n + 1}"
        t0 = time.perf_counter_ns()
        await self.ws.send_json({"id": rid, "op": "order", "args": [self.body()],
                                 "expTime": str(self.signer.clock.now_ms() + 5000)})  # fmt: skip
        while True:
            msg = json.loads((await self.ws.receive(timeout=5)).data)
            if msg.get("id") == rid:
                break
        assert msg["data"][0]["sCode"] == "0", msg
        return (time.perf_counter_ns() - t0) / 1000


async def run(orders: int, reps: int) -> dict[str, list[tuple[float, float]]]:
    proc, info = start_sim()
    urls = info["okx"]
    out: dict[str, list[tuple[float, float]]] = {"websocket": [], "rest": []}
    try:
        async with aiohttp.ClientSession() as http:
            p = Paths(http, urls["rest"], urls["ws"])
            await p.open()
            for _ in range(20):  # warm-up: connection pool, code paths
                await p.rest_order()
                await p.ws_order()
            for _ in range(reps):
                order = ["websocket", "rest"]
                random.shuffle(order)
                for path in order:
                    fn = p.ws_order if path == "websocket" else p.rest_order
                    lat = [await fn() for _ in range(orders)]
                    out[path].append((pct(lat, 50), pct(lat, 99)))
            assert p.ws is not None
            await p.ws.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ns = ap.parse_args()
    orders, reps = (30, 5) if ns.quick else (ns.orders, ns.reps)
    res = asyncio.run(run(orders, reps))
    load = os.getloadavg()[0]
    print(f"OKX order entry, {orders} orders x {reps} repetitions per path, load {load:.2f}")
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in res.items()}  # fmt: skip
    print("| path | p50 | p99 |\n|---|---|---|")
    for k, (p50, p99) in med.items():
        print(f"| {k} | {p50:.0f} µs | {p99:.0f} µs |")
    print(f"REST / WebSocket at p50: {med['rest'][0] / med['websocket'][0]:.2f}x")


if __name__ == "__main__":
    main()
