"""OKX v5 signed endpoints and private WebSocket of the simulator (``okx`` SPOT and
``okx_linear`` SWAP), over real HTTP/WS on 127.0.0.1, signed with the project's OkxSigner.

Shapes and codes follow www.okx.com/docs-v5/en: "REST Authentication", "Place order",
"Cancel order", "Amend order", "Get order list", "Get order details", "Get balance",
"Get positions", "Set leverage", "Get leverage", WebSocket "Login", "Order channel",
"Account channel", "Positions channel", "WS / Place order", "Error Code".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yarl
from st_helpers import FAST, D, best, drain, recv_json

from ttxt_mp.connectors.binance.auth import encode_query
from ttxt_mp.connectors.okx.auth import OkxSigner, iso_ms
from ttxt_mp.secrets import Credentials, Secret
from ttxt_mp.sim import Rates, Simulator
from ttxt_mp.sim.market import now_ms

KEY, SECRET, PHRASE = "okxSimKeyAlice000000000001", "okxSimSecretAlice00000000001", "Phrase-Alice-1"
KEY2, SECRET2, PHRASE2 = "okxSimKeyBob00000000000002", "okxSimSecretBob000000000002", "Phrase-Bob-2"
START = {"USDT": "100000", "BTC": "2"}
INST, SWAP = "BTC-USDT", "BTC-USDT-SWAP"


def creds(key: str = KEY, secret: str = SECRET, phrase: str = PHRASE) -> Credentials:
    return Credentials(Secret(key), Secret(secret), Secret(phrase))


@pytest.fixture
async def osim() -> AsyncIterator[Simulator]:
    async with Simulator({"okx": ["BTCUSDT"], "okx_linear": ["BTCUSDT"]}, seed=13,
                         rates=Rates(levels=200, max_levels=1000), timings=FAST, paused=True,
                         accounts={KEY: (SECRET, START, PHRASE),
                                   KEY2: (SECRET2, {"USDT": "50"}, PHRASE2)}) as s:  # fmt: skip
        yield s


class OkxClient:
    def __init__(self, http: aiohttp.ClientSession, sim: Simulator, venue: str = "okx",
                 c: Credentials | None = None) -> None:  # fmt: skip
        urls = getattr(sim.urls, venue)
        self.http, self.base, self.ws_base = http, urls.rest, urls.ws
        self.path0 = yarl.URL(self.base).path.rstrip("/")
        self.signer = OkxSigner(c or creds())

    async def post(self, path: str, body: dict[str, Any], status: int = 200,
                   **headers: str) -> dict[str, Any]:  # fmt: skip
        raw = json.dumps(body)
        h = {**self.signer.headers("POST", self.path0 + path, raw), "Content-Type": "application/json",
             **headers}  # fmt: skip
        async with self.http.post(self.base + path, data=raw, headers=h) as r:
            assert r.status == status, await r.text()
            return await r.json()

    async def get(self, path: str, params: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        q = encode_query(params)
        rp = f"{self.path0}{path}?{q}" if q else self.path0 + path
        h = headers if headers is not None else self.signer.headers("GET", rp)
        async with self.http.get(yarl.URL(f"{self.base}{path}?{q}" if q else self.base + path,
                                          encoded=True), headers=h) as r:  # fmt: skip
            assert r.status == status, await r.text()
            return await r.json()

    async def private(self, c: Credentials | None = None, **login: Any) -> tuple[Any, dict]:
        ws = await self.http.ws_connect(f"{self.ws_base}/ws/v5/private")
        frame = OkxSigner(c or creds()).ws_login(**login)
        await ws.send_json(frame)
        return ws, await recv_json(ws)

    async def subscribed(self, *channels: dict[str, str]) -> Any:
        ws, reply = await self.private()
        assert reply["event"] == "login" and reply["code"] == "0" and "connId" in reply, reply
        await ws.send_json({"op": "subscribe", "args": list(channels)})
        return ws


def by_channel(msgs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in msgs:
        if "arg" in m and "data" in m:
            out.setdefault(m["arg"]["channel"], []).extend(m["data"])
    return out


def balances(data: list[dict]) -> dict[str, D]:
    return {d["ccy"]: D(d["cashBal"]) for d in data[0]["details"]}


async def test_limit_create_amend_cancel_over_rest_with_pushes(osim: Simulator,
                                                                http: aiohttp.ClientSession) -> None:
    c = OkxClient(http, osim)
    ws = await c.subscribed({"channel": "orders", "instType": "SPOT"}, {"channel": "account"})
    first = await drain(ws)
    assert [m.get("event") for m in first[:2]] == ["subscribe", "subscribe"]
    assert balances(by_channel(first)["account"]) == {k: D(v) for k, v in START.items()}
    bid, _, _, _ = best(osim, "okx")
    px = bid - D(100)
    r = await c.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cash", "side": "buy",
                                             "ordType": "limit", "px": str(px), "sz": "0.01",
                                             "clOrdId": "a1"})  # fmt: skip
    assert r["code"] == "0" and r["data"][0]["sCode"] == "0" and r["data"][0]["clOrdId"] == "a1"
    oid = r["data"][0]["ordId"]
    msgs = by_channel(await drain(ws))
    o = msgs["orders"][0]
    assert (o["state"], o["ordId"], o["clOrdId"], o["ordType"], o["tdMode"], o["fillSz"]) == \
        ("live", oid, "a1", "limit", "cash", "0")
    usdt = {d["ccy"]: d for d in msgs["account"][0]["details"]}["USDT"]
    assert D(usdt["frozenBal"]) == px * D("0.01") and D(usdt["cashBal"]) == D(START["USDT"])
    pend = await c.get("/api/v5/trade/orders-pending", {"instType": "SPOT"})
    assert [x["ordId"] for x in pend["data"]] == [oid]
    a = await c.post("/api/v5/trade/amend-order", {"instId": INST, "clOrdId": "a1",
                                                   "newPx": str(px - 1), "newSz": "0.02"})  # fmt: skip
    assert a["code"] == "0" and a["data"][0]["sCode"] == "0"
    o = by_channel(await drain(ws))["orders"][0]
    assert (o["state"], D(o["px"]), D(o["sz"])) == ("live", px - 1, D("0.02"))
    x = await c.post("/api/v5/trade/cancel-order", {"instId": INST, "ordId": oid})
    assert x["code"] == "0" and x["data"][0]["ordId"] == oid
    o = by_channel(await drain(ws))["orders"][0]
    assert (o["state"], o["cancelSource"]) == ("canceled", "1")
    again = await c.post("/api/v5/trade/cancel-order", {"instId": INST, "ordId": oid})
    assert (again["code"], again["data"][0]["sCode"]) == ("1", "51400")
    details = await c.get("/api/v5/trade/order", {"instId": INST, "clOrdId": "a1"})
    assert details["data"][0]["state"] == "canceled"  # closed orders stay queryable
    missing = await c.get("/api/v5/trade/order", {"instId": INST, "clOrdId": "nope"})
    assert (missing["code"], missing["msg"]) == ("51603", "Order does not exist")
    bal = await c.get("/api/v5/account/balance", {})
    assert balances(bal["data"]) == {k: D(v) for k, v in START.items()}
    await ws.close()


async def test_market_fill_and_post_only_and_ws_order_op(osim: Simulator,
                                                         http: aiohttp.ClientSession) -> None:
    c = OkxClient(http, osim)
    ws = await c.subscribed({"channel": "orders", "instType": "SPOT"})
    await drain(ws)
    _, _, ask, ask_qty = best(osim, "okx")
    qty = min(ask_qty, D("0.01"))
    r = await c.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cash", "side": "buy",
                                             "ordType": "market", "sz": str(qty),
                                             "tgtCcy": "base_ccy", "clOrdId": "m1"})  # fmt: skip
    assert r["data"][0]["sCode"] == "0"
    fills = [o for o in by_channel(await drain(ws))["orders"] if o["fillSz"] != "0"]
    assert fills and fills[-1]["state"] == "filled"
    assert sum(D(f["fillSz"]) for f in fills) == qty == D(fills[-1]["accFillSz"])
    assert all(D(f["fillFee"]) < 0 and f["fillFeeCcy"] == "BTC" for f in fills)  # fee charged: < 0
    # post_only at the ask would take: accepted, then canceled with cancelSource 31
    r = await c.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cash", "side": "buy",
                                             "ordType": "post_only", "px": str(ask + 100),
                                             "sz": "0.01", "clOrdId": "p1"})  # fmt: skip
    assert r["data"][0]["sCode"] == "0"
    o = by_channel(await drain(ws))["orders"][0]
    assert (o["clOrdId"], o["state"], o["cancelSource"], o["ordType"]) == ("p1", "canceled", "31", "post_only")
    # an IOC that cannot fill: canceled by the system, cancelSource 14
    r = await c.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cash", "side": "buy",
                                             "ordType": "ioc", "px": "1000", "sz": "0.01",
                                             "clOrdId": "i1"})  # fmt: skip
    assert r["data"][0]["sCode"] == "0"
    o = by_channel(await drain(ws))["orders"][-1]
    assert (o["clOrdId"], o["state"], o["cancelSource"], o["accFillSz"]) == ("i1", "canceled", "14", "0")
    # the same operations over the private WebSocket ("WS / Place order")
    bid, _, _, _ = best(osim, "okx")
    await ws.send_json({"id": "42", "op": "order", "args": [{
        "instId": INST, "tdMode": "cash", "side": "buy", "ordType": "limit",
        "px": str(bid - 50), "sz": "0.01", "clOrdId": "w1"}]})  # fmt: skip
    msgs = await drain(ws)
    reply = next(m for m in msgs if m.get("op") == "order")
    assert (reply["id"], reply["code"], reply["data"][0]["sCode"], reply["data"][0]["clOrdId"]) == \
        ("42", "0", "0", "w1")
    await ws.send_json({"id": "43", "op": "cancel-order", "args": [{"instId": INST, "clOrdId": "w1"}]})
    reply = next(m for m in await drain(ws) if m.get("op") == "cancel-order")
    assert (reply["id"], reply["code"]) == ("43", "0")
    # an operation whose expTime has passed is not executed
    await ws.send_json({"id": "44", "op": "order", "expTime": str(now_ms() - 1), "args": [{
        "instId": INST, "tdMode": "cash", "side": "buy", "ordType": "limit",
        "px": str(bid - 50), "sz": "0.01", "clOrdId": "w2"}]})  # fmt: skip
    reply = next(m for m in await drain(ws) if m.get("op") == "order")
    assert (reply["id"], reply["code"], reply["data"]) == ("44", "50102", [])
    assert not osim.trading["okx"].open_orders(KEY)
    await ws.close()


async def test_trade_errors_use_documented_codes(osim: Simulator, http: aiohttp.ClientSession) -> None:
    c = OkxClient(http, osim)
    bid, _, _, _ = best(osim, "okx")
    base = {"instId": INST, "tdMode": "cash", "side": "buy", "ordType": "limit",
            "px": str(bid - 100), "sz": "0.01"}  # fmt: skip

    async def code(**over: Any) -> tuple[str, str]:
        r = await c.post("/api/v5/trade/order", {**base, **over})
        return r["code"], r["data"][0]["sCode"]

    assert await code(instId="NOPE-USDT") == ("1", "51001")
    assert await code(clOrdId="has-dash") == ("1", "51000")
    assert await code(clOrdId="x" * 33) == ("1", "51000")
    assert await code(tdMode="cross") == ("1", "51000")
    assert await code(sz="0.000001") == ("1", "51121")
    assert await code(clOrdId="d1") == ("0", "0")
    assert await code(clOrdId="d1") == ("1", "51016")
    poor = OkxClient(http, osim, c=creds(KEY2, SECRET2, PHRASE2))
    r = await poor.post("/api/v5/trade/order", {**base, "sz": "1"})
    assert (r["code"], r["data"][0]["sCode"]) == ("1", "51008")
    assert "Insufficient USDT balance" in r["data"][0]["sMsg"]
    r = await c.post("/api/v5/trade/amend-order", {"instId": INST, "clOrdId": "zz", "newSz": "1"})
    assert r["data"][0]["sCode"] == "51503"


async def test_rest_authentication_failures(osim: Simulator, http: aiohttp.ClientSession) -> None:
    ok = OkxClient(http, osim)
    assert (await ok.get("/api/v5/account/balance", {}))["code"] == "0"
    for c, want in ((creds(phrase="wrong-phrase"), "50105"), (creds(secret="wrong-secret-000"), "50113"),
                    (creds(key="unknownKey0000000000"), "50111")):  # fmt: skip
        r = await OkxClient(http, osim, c=c).get("/api/v5/account/balance", {}, status=401)
        assert r["code"] == want, r
    old = ok.signer.headers("GET", ok.path0 + "/api/v5/account/balance", timestamp_ms=now_ms() - 60_000)
    r = await ok.get("/api/v5/account/balance", {}, status=401, headers=old)
    assert r["code"] == "50102"
    bad_ts = {**old, "OK-ACCESS-TIMESTAMP": "yesterday"}
    assert (await ok.get("/api/v5/account/balance", {}, status=401, headers=bad_ts))["code"] == "50112"
    # expTime in the past: the order is not executed
    bid, _, _, _ = best(osim, "okx")
    r = await ok.post("/api/v5/trade/order", {"instId": INST, "tdMode": "cash", "side": "buy",
                                              "ordType": "limit", "px": str(bid - 100), "sz": "0.01",
                                              "clOrdId": "late"}, expTime=str(now_ms() - 1))  # fmt: skip
    assert r["code"] == "50102" and not osim.trading["okx"].open_orders(KEY)
    assert iso_ms(1607418537715) == "2020-12-08T09:08:57.715Z"


async def test_private_login_failures_ping_and_unauthorized_ops(osim: Simulator,
                                                                http: aiohttp.ClientSession) -> None:
    c = OkxClient(http, osim)
    for bad, want in ((creds(phrase="wrong-phrase"), ("60024", "Wrong passphrase")),
                      (creds(secret="wrong-secret-000"), ("60007", "Invalid sign")),
                      (creds(key="unknownKey0000000000"), ("60005", "Invalid OK-ACCESS-KEY"))):  # fmt: skip
        ws, reply = await c.private(bad)
        assert (reply["event"], reply["code"], reply["msg"]) == ("error", *want), reply
        await ws.close()
    ws, reply = await c.private(timestamp_s=now_ms() // 1000 - 120)
    assert (reply["event"], reply["code"]) == ("error", "60006")
    await ws.close()
    ws = await http.ws_connect(f"{c.ws_base}/ws/v5/private")
    await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
    assert (await recv_json(ws))["code"] == "60011"
    await ws.send_str("ping")
    msg = await ws.receive(timeout=3)
    assert msg.data == "pong"
    await ws.close()
    ws = await c.subscribed({"channel": "positions", "instType": "SWAP"})  # no positions on spot
    assert (await recv_json(ws))["code"] == "60018"
    await ws.close()


async def test_swap_leverage_positions_and_reduce_only(osim: Simulator,
                                                       http: aiohttp.ClientSession) -> None:
    c = OkxClient(http, osim, "okx_linear")
    ws = await c.subscribed({"channel": "orders", "instType": "SWAP"}, {"channel": "account"},
                            {"channel": "positions", "instType": "SWAP"})  # fmt: skip
    first = by_channel(await drain(ws))
    assert first["positions"] == [] and "account" in first
    r = await c.post("/api/v5/account/set-leverage", {"instId": SWAP, "lever": "5", "mgnMode": "cross"})
    assert r["code"] == "0" and r["data"][0]["lever"] == "5"
    info = await c.get("/api/v5/account/leverage-info", {"instId": SWAP, "mgnMode": "cross"})
    assert info["data"][0]["lever"] == "5"
    bad = await c.post("/api/v5/account/set-leverage", {"instId": SWAP, "lever": "500", "mgnMode": "cross"})
    assert bad["code"] == "51000"
    r = await c.post("/api/v5/trade/order", {"instId": SWAP, "tdMode": "cross", "side": "sell",
                                             "ordType": "market", "sz": "1", "reduceOnly": True,
                                             "posSide": "net", "clOrdId": "ro1"})  # fmt: skip
    assert r["data"][0]["sCode"] == "51169"
    r = await c.post("/api/v5/trade/order", {"instId": SWAP, "tdMode": "cross", "side": "buy",
                                             "ordType": "market", "sz": "1", "posSide": "net",
                                             "clOrdId": "l1"})  # fmt: skip
    assert r["data"][0]["sCode"] == "0"
    msgs = by_channel(await drain(ws))
    pos = msgs["positions"][-1]
    assert (pos["instId"], D(pos["pos"]), pos["lever"], pos["posSide"], pos["mgnMode"]) == \
        (SWAP, D(1), "5", "net", "cross")
    assert msgs["orders"][-1]["state"] == "filled" and msgs["orders"][-1]["fillFeeCcy"] == "USDT"
    rest = await c.get("/api/v5/account/positions", {"instType": "SWAP"})
    assert [D(p["pos"]) for p in rest["data"]] == [D(1)]
    iso = await c.post("/api/v5/account/set-leverage", {"instId": SWAP, "lever": "5", "mgnMode": "isolated"})
    assert iso["code"] == "59000"  # margin mode changes only without a position
    r = await c.post("/api/v5/trade/order", {"instId": SWAP, "tdMode": "cross", "side": "sell",
                                             "ordType": "market", "sz": "1", "reduceOnly": True,
                                             "clOrdId": "c1"})  # fmt: skip
    assert r["data"][0]["sCode"] == "0"
    pos = by_channel(await drain(ws))["positions"][-1]
    assert D(pos["pos"]) == 0
    assert (await c.get("/api/v5/account/positions", {"instType": "SWAP"}))["data"] == []
    await ws.close()


def test_account_cli_form_takes_a_passphrase() -> None:
    from ttxt_mp.sim.trading import parse_account

    spec = parse_account("k1:s1:USDT=1000:my:phrase")  # the passphrase is the rest of the line
    assert (spec.api_key, spec.balances, spec.passphrase) == ("k1", {"USDT": "1000"}, "my:phrase")
    assert parse_account("k1:s1:USDT=1000").passphrase == ""
    assert "my:phrase" not in repr(spec) and "s1" not in repr(spec)
