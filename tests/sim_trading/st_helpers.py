"""Helpers of the trading simulator tests: accounts, signed clients (the project's signers),
book probes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import aiohttp
import yarl

from ttxt_mp.connectors.binance.auth import BinanceSigner, encode_query
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.secrets import Credentials, Secret
from ttxt_mp.sim import Rates, Simulator, VenueTimings

KEY, SECRET = "simKeyAlice0000000000000001", "simSecretAlice0000000000000001"
KEY2, SECRET2 = "simKeyBob00000000000000002", "simSecretBob00000000000000002"
START = {"USDT": "100000", "BTC": "2", "ETH": "10"}
FAST = VenueTimings(binance_ping_interval=5.0, binance_pong_timeout=10.0,
                    binance_max_incoming_per_sec=0, bybit_idle_timeout=30.0)


def make_sim(**kw: Any) -> Simulator:
    return Simulator({"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSDT", "ETHUSDT"]}, seed=11,
                     rates=Rates(levels=200, max_levels=1000), timings=FAST, paused=True,
                     accounts={KEY: (SECRET, START), KEY2: (SECRET2, {"USDT": "50"})}, **kw)


def creds(key: str = KEY, secret: str = SECRET) -> Credentials:
    return Credentials(api_key=Secret(key), api_secret=Secret(secret))


class BinanceClient:
    """Signed requests exactly as sent: the query string is built once, signed and sent."""

    def __init__(self, http: aiohttp.ClientSession, sim: Simulator, key: str = KEY,
                 secret: str = SECRET) -> None:
        assert sim.urls and sim.urls.binance
        self.http, self.base, self.key = http, sim.urls.binance.rest, key
        self.signer = BinanceSigner(creds(key, secret))

    async def send(self, method: str, path: str, query: str, body: bytes | None,
                   headers: dict[str, str]) -> tuple[int, Any]:
        url = yarl.URL(f"{self.base}{path}?{query}" if query else f"{self.base}{path}", encoded=True)
        if body:
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.request(method, url, data=body, headers=headers) as r:
            return r.status, await r.json()

    async def signed(self, method: str, path: str, params: dict[str, Any] | None = None,
                     **kw: Any) -> tuple[int, Any]:
        p, _, headers = self.signer.sign(method, path, params or {}, None, {}, **kw)
        return await self.send(method, path, encode_query(p), None, headers)

    async def key_only(self, method: str, path: str, params: dict[str, Any] | None = None
                       ) -> tuple[int, Any]:
        return await self.send(method, path, encode_query(params or {}), None,
                               self.signer.api_key_headers())


class BybitClient:
    def __init__(self, http: aiohttp.ClientSession, sim: Simulator, key: str = KEY,
                 secret: str = SECRET) -> None:
        assert sim.urls and sim.urls.bybit
        self.http, self.base = http, sim.urls.bybit.rest
        self.signer = BybitSigner(creds(key, secret))

    async def post(self, path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        raw = json.dumps(body)
        headers = {**self.signer.headers(raw, **kw), "Content-Type": "application/json"}
        async with self.http.post(self.base + path, data=raw, headers=headers) as r:
            assert r.status == 200
            return await r.json()

    async def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        q = encode_query(params)
        async with self.http.get(yarl.URL(f"{self.base}{path}?{q}", encoded=True),
                                 headers=self.signer.headers(q)) as r:
            assert r.status == 200
            return await r.json()


def D(x: Any) -> Decimal:  # noqa: N802
    return Decimal(str(x))


def best(sim: Simulator, venue: str, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(best bid, its qty, best ask, its qty) of the synthetic book."""
    t = sim.truth(venue, symbol, 1)
    return D(t.bids[0][0]), D(t.bids[0][1]), D(t.asks[0][0]), D(t.asks[0][1])


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    import asyncio
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
    return json.loads(msg.data)


async def drain(ws: aiohttp.ClientWebSocketResponse, quiet: float = 0.3) -> list[Any]:
    """Every frame until the stream is quiet for `quiet` seconds."""
    import asyncio
    out = []
    while True:
        try:
            msg = await asyncio.wait_for(ws.receive(), quiet)
        except TimeoutError:
            return out
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return out
        assert msg.type == aiohttp.WSMsgType.TEXT, f"unexpected frame {msg.type}"
        out.append(json.loads(msg.data))
