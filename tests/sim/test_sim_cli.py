"""`python -m ttxt_mp.sim` as its own process: JSON line on stdout, clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import aiohttp
from lines import Lines

from ttxt_mp.sim.venue import sim_venues

ALL_OFF = [a for vid in sim_venues() for a in (f"--{vid}", "")]  # every simulated venue off


async def test_cli_prints_urls_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttxt_mp.sim", "--port", "0", "--seed", "3", "--binance",
         "BTCUSDT", "--bybit", "ETHUSDT", "--updates-per-sec", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = Lines(proc.stdout).next(20, "the simulator's first line")
        info = json.loads(line)
        assert info["pid"] == proc.pid and info["port"] > 0
        assert info["binance"]["ws"].startswith("ws://127.0.0.1:")
        async with aiohttp.ClientSession() as s:
            async with s.get(info["binance"]["rest"] + "/api/v3/ping") as r:
                assert r.status == 200
            async with s.get(info["bybit"]["rest"] + "/v5/market/time") as r:
                assert (await r.json())["retCode"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_refuses_no_symbols() -> None:
    r = subprocess.run([sys.executable, "-m", "ttxt_mp.sim", *ALL_OFF],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "no symbols" in r.stderr
