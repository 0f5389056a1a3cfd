"""Bybit v5 spot signed endpoints, matching against the synthetic book and the private
WebSocket, over real HTTP/WS on 127.0.0.1, signed with the project's BybitSigner."""

from __future__ import annotations

import aiohttp
from st_helpers import KEY, SECRET, START, BybitClient, D, best, creds, drain, recv_json

from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.sim import Simulator
from ttxt_mp.sim.market import now_ms

SYM = "BTCUSDT"


async def private_ws(http: aiohttp.ClientSession, sim: Simulator, key: str = KEY, secret: str = SECRET,
                     **auth: int) -> tuple[aiohttp.ClientWebSocketResponse, dict]:
    assert sim.urls and sim.urls.bybit
    ws = await http.ws_connect(f"{sim.urls.bybit.ws}/v5/private")
    await ws.send_json(BybitSigner(creds(key, secret)).ws_auth(req_id="a1", **auth))
    return ws, await recv_json(ws)


async def subscribed(http: aiohttp.ClientSession, sim: Simulator) -> aiohttp.ClientWebSocketResponse:
    ws, reply = await private_ws(http, sim)
    assert reply["success"] is True and reply["op"] == "auth" and reply["req_id"] == "a1", reply
    await ws.send_json({"op": "subscribe", "args": ["order", "execution", "wallet"]})
    sub = await recv_json(ws)
    assert (sub["success"], sub["op"]) == (True, "subscribe")
    return ws


def coins(result: dict) -> dict[str, D]:
    return {c["coin"]: D(c["walletBalance"]) for c in result["list"][0]["coin"]}


async def test_limit_rest_amend_cancel_with_private_stream(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BybitClient(http, sim)
    ws = await subscribed(http, sim)
    bid, _, _, _ = best(sim, "bybit")
    price = bid - D(100)
    r = await c.post("/v5/order/create", {"category": "spot", "symbol": SYM, "side": "Buy",
                                          "orderType": "Limit", "qty": "0.01", "price": str(price),
                                          "orderLinkId": "by-1"})
    assert r["retCode"] == 0 and r["retMsg"] == "OK" and set(r) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    oid = r["result"]["orderId"]
    assert r["result"] == {"orderId": oid, "orderLinkId": "by-1"}
    msgs = await drain(ws)
    assert [m["topic"] for m in msgs] == ["order", "wallet"]
    o = msgs[0]["data"][0]
    assert (o["orderStatus"], o["orderId"], o["orderLinkId"], o["leavesQty"], o["category"]) == ("New", oid, "by-1", "0.01", "spot")
    assert set(msgs[0]) == {"id", "topic", "creationTime", "data"}
    usdt = {x["coin"]: x for x in msgs[1]["data"][0]["coin"]}["USDT"]
    assert D(usdt["locked"]) == price * D("0.01") and D(usdt["walletBalance"]) == D(START["USDT"])
    rt = await c.get("/v5/order/realtime", {"category": "spot", "symbol": SYM})
    assert [x["orderId"] for x in rt["result"]["list"]] == [oid] and rt["result"]["category"] == "spot"
    a = await c.post("/v5/order/amend", {"category": "spot", "symbol": SYM, "orderLinkId": "by-1",
                                         "price": str(price - 1), "qty": "0.02"})
    assert a["retCode"] == 0 and a["result"] == {"orderId": oid, "orderLinkId": "by-1"}
    o = (await drain(ws))[0]["data"][0]
    assert (o["orderStatus"], D(o["price"]), D(o["qty"])) == ("New", price - 1, D("0.02"))
    x = await c.post("/v5/order/cancel", {"category": "spot", "symbol": SYM, "orderId": oid})
    assert x["retCode"] == 0 and x["result"] == {"orderId": oid, "orderLinkId": "by-1"}
    msgs = await drain(ws)
    assert (msgs[0]["data"][0]["orderStatus"], msgs[0]["data"][0]["cancelType"]) == ("Cancelled", "CancelByUser")
    w = await c.get("/v5/account/wallet-balance", {"accountType": "UNIFIED"})
    assert coins(w["result"]) == {k: D(v) for k, v in START.items()}
    x = await c.post("/v5/order/cancel", {"category": "spot", "symbol": SYM, "orderId": oid})
    assert (x["retCode"], x["retMsg"]) == (170213, "Order does not exist.")
    await ws.close()


async def test_market_and_partial_fills_add_up(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BybitClient(http, sim)
    ws = await subscribed(http, sim)
    before = coins((await c.get("/v5/account/wallet-balance", {"accountType": "UNIFIED"}))["result"])
    _, _, ask, ask_qty = best(sim, "bybit")
    # Limit IOC at the best ask, more than the level: partial fill, rest canceled.
    r = await c.post("/v5/order/create", {"category": "spot", "symbol": SYM, "side": "Buy", "orderType": "Limit",
                                          "timeInForce": "IOC", "qty": str(ask_qty + D("0.3")), "price": str(ask)})
    assert r["retCode"] == 0, r
    msgs = await drain(ws)
    execs = [d for m in msgs if m["topic"] == "execution" for d in m["data"]]
    orders = [d for m in msgs if m["topic"] == "order" for d in m["data"]]
    assert [(D(e["execQty"]), D(e["execPrice"]), e["isMaker"]) for e in execs] == [(ask_qty, ask, False)]
    assert orders[-1]["orderStatus"] == "PartiallyFilledCanceled" and D(orders[-1]["cumExecQty"]) == ask_qty
    # Market buy for 2000 USDT (spot market Buy: qty in quoteCoin by default).
    m = await c.post("/v5/order/create", {"category": "spot", "symbol": SYM, "side": "Buy",
                                          "orderType": "Market", "qty": "2000"})
    assert m["retCode"] == 0, m
    msgs2 = await drain(ws)
    execs2 = [d for x in msgs2 if x["topic"] == "execution" for d in x["data"]]
    last = [d for x in msgs2 if x["topic"] == "order" for d in x["data"]][-1]
    assert last["orderStatus"] == "Filled" and last["marketUnit"] == "quoteCoin"
    spent = sum(D(e["execValue"]) for e in execs + execs2)
    assert D(2000) - D(ask) <= sum(D(e["execValue"]) for e in execs2) <= D(2000)
    got = sum(D(e["execQty"]) - D(e["execFee"]) for e in execs + execs2)
    assert all(e["feeCurrency"] == "BTC" for e in execs + execs2)
    after = coins((await c.get("/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": "BTC,USDT"}))["result"])
    assert after == {"BTC": before["BTC"] + got, "USDT": before["USDT"] - spent}
    await ws.close()


async def test_post_only_that_would_take_is_cancelled(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BybitClient(http, sim)
    ws = await subscribed(http, sim)
    _, _, ask, _ = best(sim, "bybit")
    r = await c.post("/v5/order/create", {"category": "spot", "symbol": SYM, "side": "Buy", "orderType": "Limit",
                                          "timeInForce": "PostOnly", "qty": "0.01", "price": str(ask)})
    assert r["retCode"] == 0
    (msg,) = await drain(ws)
    o = msg["data"][0]
    assert (o["orderStatus"], o["rejectReason"], o["orderId"]) == ("Cancelled", "EC_PostOnlyWillTakeLiquidity", r["result"]["orderId"])
    await ws.close()


async def test_rest_errors_use_documented_codes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BybitClient(http, sim)
    bid, _, _, _ = best(sim, "bybit")
    order = {"category": "spot", "symbol": SYM, "side": "Buy", "orderType": "Limit", "qty": "0.01", "price": str(bid)}

    async def create(**kw: str) -> tuple[int, str]:
        r = await c.post("/v5/order/create", {**order, **kw})
        assert set(r) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
        return r["retCode"], r["retMsg"]

    assert await create(qty="5") == (170131, "Balance insufficient")
    assert await create(price=str(bid) + "5") == (170134, "Order price decimal too long.")
    assert await create(qty="0.0000015") == (170137, "Order volume decimal too long")
    assert await create(qty="0.00001") == (170140, "Order value exceeded lower limit")
    assert await create(symbol="NOPEUSDT") == (170121, "Invalid symbol.")
    assert (await create(category="linear"))[0] == 10001
    assert await create(orderLinkId="dup") == (0, "OK")
    assert await create(orderLinkId="dup") == (170141, "Duplicate clientOrderId")
    stranger = BybitClient(http, sim, "nobody", "nothing")
    r = await stranger.post("/v5/order/create", order)
    assert r["retCode"] == 10003
    wrong = BybitClient(http, sim, KEY, "wrong-secret")
    r = await wrong.post("/v5/order/create", order)
    assert (r["retCode"], r["retMsg"]) == (10004, "Error sign, please check your signature generation algorithm.")
    r = await c.post("/v5/order/create", order, timestamp_ms=now_ms() - 6000)
    assert (r["retCode"], r["retMsg"]) == (10002, "The request time exceeds the time window range.")
    r = await c.post("/v5/order/create", order, timestamp_ms=now_ms() + 1500)
    assert r["retCode"] == 10002
    w = await c.get("/v5/account/wallet-balance", {"accountType": "SPOT"})
    assert w["retCode"] == 10001
    a = await c.post("/v5/order/amend", {"category": "spot", "symbol": SYM, "orderId": "12345", "qty": "0.02"})
    assert a["retCode"] == 170213
    # Still trading after the rejections.
    assert await create(price=str(bid - 1)) == (0, "OK")


async def test_private_ws_auth_failures_ping_and_unauthorized_subscribe(
        sim: Simulator, http: aiohttp.ClientSession) -> None:
    ws, reply = await private_ws(http, sim, KEY, "wrong-secret")
    assert reply["success"] is False and reply["op"] == "auth" and reply["ret_msg"]
    await ws.send_json({"op": "subscribe", "args": ["order"]})
    sub = await recv_json(ws)
    assert (sub["success"], sub["op"]) == (False, "subscribe")
    await ws.send_json({"req_id": "p1", "op": "ping"})
    pong = await recv_json(ws)
    assert pong["op"] == "pong" and pong["req_id"] == "p1" and int(pong["args"][0]) > 0
    await ws.close()
    ws, reply = await private_ws(http, sim, expires_ms=now_ms() - 1000)
    assert reply["success"] is False
    await ws.close()
    ws, reply = await private_ws(http, sim, "nobody", "x")
    assert reply["success"] is False
    await ws.close()
    ws, reply = await private_ws(http, sim)
    assert reply["success"] is True and reply["ret_msg"] == "" and reply["conn_id"]
    await ws.close()
