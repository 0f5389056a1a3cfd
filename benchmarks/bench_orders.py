"""Order round trip and sustained order rate through a connector process.

Processes: the simulator (``python -m ttxt_mp.sim``), one Binance connector process
(``python -m ttxt_mp.connectors.run`` with trading on), and this client process.

  via-connector  TradingClient.create_order -> command ring -> connector (journal, sign,
                 POST /api/v3/order) -> simulator -> OrderAck in the private ring -> here
  direct         the same signed POST /api/v3/order sent with aiohttp from this process
  overhead       via-connector minus direct (p50): what the engine adds
  sustained      orders sent back to back (at most capacity/2 without an ack), acks/s

Orders are IOC limit buys far below the market: accepted, then expired, nothing rests.
The connector's exactly-once journal fsyncs each batch; ``--tmpfs-journal`` puts it on
/dev/shm (as XDG_RUNTIME_DIR=/run/user/<uid> does on most systems) to show that cost.

Usage: python benchmarks/bench_orders.py [--orders 2000] [--burst 3000] [--tmpfs-journal]
       python benchmarks/bench_orders.py --quick     (a smoke run: a few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import yarl  # noqa: E402

from ttxt_mp.connectors.binance.auth import BinanceSigner, encode_query  # noqa: E402
from ttxt_mp.engine.naming import engine_objects  # noqa: E402
from ttxt_mp.events import Side, TimeInForce  # noqa: E402
from ttxt_mp.secrets import Credentials, Secret  # noqa: E402
from ttxt_mp.trading_client import TradingClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "benchKey0000000000000001", "benchSecret000000000000001"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def start_sim() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttxt_mp.sim", "--paused", "--binance", "BTCUSDT", "--bybit", "",
         "--account", f"{KEY}:{SECRET}:USDT=1000000000,BTC=100000"],
        stdout=subprocess.PIPE, cwd=ROOT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def start_connector(tmp: Path, engine: str, urls: dict, runtime: Path) -> subprocess.Popen:
    cfg = tmp / "bench.toml"
    cfg.write_text(f"""
[engine]
name = "{engine}"
log_level = "WARNING"
[[connectors]]
exchange = "binance"
symbols = ["BTC/USDT"]
streams.trades = false
streams.depth.levels = 5
endpoints.ws = "{urls['binance']['ws']}"
endpoints.rest = "{urls['binance']['rest']}"
credentials.api_key_env = "BENCH_KEY"
credentials.api_secret_env = "BENCH_SECRET"
""")
    env = {**os.environ, "BENCH_KEY": KEY, "BENCH_SECRET": SECRET, "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.Popen(
        [sys.executable, "-m", "ttxt_mp.connectors.run", "--engine", engine, "--config",
         str(cfg), "--connector", "binance", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=open(tmp / "connector.err", "wb"), cwd=ROOT, env=env,
    )  # fmt: skip


def via_connector(tc: TradingClient, n: int, price: float) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        cid = tc.create_order("binance", "BTC/USDT", Side.BUY, 0.001, price=price,
                              tif=TimeInForce.IOC)  # fmt: skip
        ack = tc.wait_ack(cid, 10)
        out.append(time.perf_counter() - t0)
        assert ack.accepted, ack
    return out


async def direct(rest: str, n: int, price: float) -> list[float]:
    signer = BinanceSigner(Credentials(Secret(KEY), Secret(SECRET)))
    out = []
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            t0 = time.perf_counter()
            params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
                      "quantity": "0.001", "price": f"{price:.2f}",
                      "newClientOrderId": f"direct-{os.getpid()}-{i}", "newOrderRespType": "ACK"}
            p, _, headers = signer.sign("POST", "/api/v3/order", params, None, {})
            url = yarl.URL(f"{rest}/api/v3/order?{encode_query(p)}", encoded=True)
            async with http.post(url, headers=headers) as r:
                body = await r.read()
            out.append(time.perf_counter() - t0)
            assert r.status == 200, body
    return out


def sustained(tc: TradingClient, n: int, price: float) -> float:
    sent = acked = 0
    cids: list[str] = []
    t0 = time.perf_counter()
    while acked < n:
        while sent < n and tc.outstanding < tc.capacity // 2 - 1:
            cids.append(tc.create_order("binance", "BTC/USDT", Side.BUY, 0.001, price=price,
                                        tif=TimeInForce.IOC))  # fmt: skip
            sent += 1
        tc.poll(0.01)
        while cids and tc.take_ack(cids[0]) is not None:
            cids.pop(0)
            acked += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--burst", type=int, default=3000,
                    help="orders of the sustained-rate run (Binance's 6000 weight/min applies)")
    ap.add_argument("--tmpfs-journal", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 orders each")
    a = ap.parse_args()
    if a.quick:
        a.orders, a.burst = 100, 200
    tmp = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    runtime = Path(tempfile.mkdtemp(prefix="bench-rt-", dir="/dev/shm" if a.tmpfs_journal else None))
    engine = f"bo{os.getpid() % 100000}"
    sim, urls = start_sim()
    conn = start_connector(tmp, engine, urls, runtime)
    tc = TradingClient(engine, "bench", capacity=1024)
    try:
        tc.link("binance")
        tc.wait_for(lambda: any(s.message.startswith("trading: reconciled") for s in tc.statuses),
                    30, "the connector")  # fmt: skip
        price = 10000.0  # far below the market: IOC expires unfilled
        via_connector(tc, 20, price)  # warm-up
        asyncio.run(direct(urls["binance"]["rest"], 20, price))
        rt = via_connector(tc, a.orders, price)
        d = asyncio.run(direct(urls["binance"]["rest"], a.orders, price))
        rate = sustained(tc, a.burst, price)
        us = 1e6
        print(f"orders per run: {a.orders}; journal on {'tmpfs' if a.tmpfs_journal else 'disk'}")
        print(f"via connector  p50 {pct(rt, 50) * us:8.0f} us  p99 {pct(rt, 99) * us:8.0f} us")
        print(f"direct aiohttp p50 {pct(d, 50) * us:8.0f} us  p99 {pct(d, 99) * us:8.0f} us")
        print(f"engine overhead p50 {(pct(rt, 50) - pct(d, 50)) * us:7.0f} us")
        print(f"sustained: {rate:,.0f} orders/s through one connector ({a.burst} orders)")
    finally:
        tc.close()
        for p in (conn, sim):
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
            if p.poll() is None:
                p.kill()
        for o in engine_objects(engine):
            with contextlib.suppress(OSError):
                o.unlink()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
