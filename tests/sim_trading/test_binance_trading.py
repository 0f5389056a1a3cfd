"""Binance Spot signed endpoints, matching against the synthetic book and the user data
stream, over real HTTP/WS on 127.0.0.1, signed with the project's BinanceSigner."""

from __future__ import annotations

import asyncio

import aiohttp
from st_helpers import KEY, KEY2, SECRET2, START, BinanceClient, D, best, drain, make_sim

from ttxt_mp.sim import Simulator

SYM = "BTCUSDT"


async def user_ws(http: aiohttp.ClientSession, sim: Simulator, c: BinanceClient
                  ) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    st, body = await c.key_only("POST", "/api/v3/userDataStream")
    assert st == 200 and len(body["listenKey"]) == 64
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(f"{sim.urls.binance.ws}/ws/{body['listenKey']}")
    return body["listenKey"], ws


async def balances(c: BinanceClient) -> dict[str, tuple]:
    st, acct = await c.signed("GET", "/api/v3/account")
    assert st == 200, acct
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in acct["balances"]}


async def test_limit_rest_amend_cancel_with_user_stream(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    _, ws = await user_ws(http, sim, c)
    bid, _, _, _ = best(sim, "binance")
    price = bid - D("100")
    st, r = await c.signed("POST", "/api/v3/order", {
        "symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
        "price": str(price), "newClientOrderId": "rest-1", "newOrderRespType": "RESULT"})
    assert st == 200, r
    assert set(r) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price",
                      "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status",
                      "timeInForce", "type", "side", "workingTime", "selfTradePreventionMode"}
    assert (r["status"], r["clientOrderId"], r["origQty"]) == ("NEW", "rest-1", "0.01000000")
    oid = r["orderId"]
    msgs = await drain(ws)
    er, pos = msgs
    assert (er["e"], er["x"], er["X"], er["i"], er["c"], er["w"]) == ("executionReport", "NEW", "NEW", oid, "rest-1", True)
    assert er["N"] is None and er["t"] == -1 and "W" in er
    assert pos["e"] == "outboundAccountPosition"
    usdt = {b["a"]: b for b in pos["B"]}["USDT"]
    locked = price * D("0.01")
    assert D(usdt["l"]) == locked and D(usdt["f"]) == D(START["USDT"]) - locked
    st, q = await c.signed("GET", "/api/v3/order", {"symbol": SYM, "origClientOrderId": "rest-1"})
    assert st == 200 and q["orderId"] == oid and q["status"] == "NEW" and q["isWorking"] is True
    st, oo = await c.signed("GET", "/api/v3/openOrders", {"symbol": SYM})
    assert [o["orderId"] for o in oo] == [oid]
    # Amend keep priority: reduce quantity; the stream reports REPLACED.
    st, a = await c.signed("PUT", "/api/v3/order/amend/keepPriority",
                           {"symbol": SYM, "orderId": oid, "newQty": "0.004", "newClientOrderId": "rest-1b"})
    assert st == 200, a
    assert a["amendedOrder"]["qty"] == "0.00400000" and a["amendedOrder"]["origClientOrderId"] == "rest-1"
    assert a["amendedOrder"]["clientOrderId"] == "rest-1b"
    er, pos = await drain(ws)
    assert (er["x"], er["X"], er["q"], er["c"]) == ("REPLACED", "NEW", "0.00400000", "rest-1b")
    assert D({b["a"]: b for b in pos["B"]}["USDT"]["l"]) == price * D("0.004")
    st, a = await c.signed("PUT", "/api/v3/order/amend/keepPriority", {"symbol": SYM, "orderId": oid, "newQty": "0.02"})
    assert (st, a) == (400, {"code": -2038, "msg": "Order amend (quantity increase) is not supported."})
    st, cx = await c.signed("DELETE", "/api/v3/order", {"symbol": SYM, "orderId": oid})
    assert st == 200 and cx["status"] == "CANCELED" and cx["origClientOrderId"] == "rest-1b"
    er, pos = await drain(ws)
    assert (er["x"], er["X"], er["C"], er["c"]) == ("CANCELED", "CANCELED", "rest-1b", cx["clientOrderId"])
    assert await balances(c) == {"USDT": (D(START["USDT"]), D(0)), "BTC": (D(START["BTC"]), D(0)),
                                 "ETH": (D(START["ETH"]), D(0))}
    st, q = await c.signed("GET", "/api/v3/order", {"symbol": SYM, "orderId": oid})
    assert q["status"] == "CANCELED" and q["isWorking"] is False
    st, e = await c.signed("DELETE", "/api/v3/order", {"symbol": SYM, "orderId": oid})
    assert (st, e) == (400, {"code": -2011, "msg": "Unknown order sent."})
    await ws.close()


async def test_market_and_partial_fills_take_synthetic_liquidity_and_add_up(
        sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    _, ws = await user_ws(http, sim, c)
    before = await balances(c)
    _, _, ask, ask_qty = best(sim, "binance")
    trades_before = len(sim.market("binance", SYM).trades)
    # IOC at the best ask for more than it holds: partial fill, the rest expires.
    qty = ask_qty + D("0.5")
    st, r = await c.signed("POST", "/api/v3/order", {
        "symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "quantity": str(qty),
        "price": str(ask)})
    assert st == 200, r
    assert r["status"] == "EXPIRED" and D(r["executedQty"]) == ask_qty
    assert [(D(f["price"]), D(f["qty"]), f["commissionAsset"]) for f in r["fills"]] == [(ask, ask_qty, "BTC")]
    assert best(sim, "binance")[2] > ask  # the level was taken out of the synthetic book
    new_trades = list(sim.market("binance", SYM).trades)[trades_before:]
    assert [(t.lots, t.taker_buy) for t in new_trades] == [(int(ask_qty / D("0.00001")), True)]
    # Market sell: several levels, FULL response.
    st, m = await c.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "SELL", "type": "MARKET",
                                                     "quantity": "1.5"})
    assert st == 200 and m["status"] == "FILLED" and m["type"] == "MARKET", m
    assert sum(D(f["qty"]) for f in m["fills"]) == D("1.5") and len(m["fills"]) >= 1
    assert all(f["commissionAsset"] == "USDT" for f in m["fills"])
    after = await balances(c)
    fills = [(D(f["price"]), D(f["qty"]), D(f["commission"])) for f in r["fills"]]
    sells = [(D(f["price"]), D(f["qty"]), D(f["commission"])) for f in m["fills"]]
    btc = before["BTC"][0] + sum(q - fee for _, q, fee in fills) - sum(q for _, q, _ in sells)
    usdt = before["USDT"][0] - sum(p * q for p, q, _ in fills) + sum(p * q - fee for p, q, fee in sells)
    assert after["BTC"] == (btc, D(0)) and after["USDT"] == (usdt, D(0))
    assert D(m["cummulativeQuoteQty"]) == sum(p * q for p, q, _ in sells)
    msgs = await drain(ws)
    kinds = [(x["e"], x.get("x"), x.get("X")) for x in msgs]
    assert kinds[:4] == [("executionReport", "NEW", "NEW"), ("executionReport", "TRADE", "PARTIALLY_FILLED"),
                         ("executionReport", "EXPIRED", "EXPIRED"), ("outboundAccountPosition", None, None)]
    trade = msgs[1]
    assert D(trade["l"]) == ask_qty and D(trade["L"]) == ask and trade["N"] == "BTC" and trade["m"] is False
    assert D(trade["Y"]) == ask * ask_qty and trade["t"] > 0
    assert kinds[-2] == ("executionReport", "TRADE", "FILLED") and kinds[-1][0] == "outboundAccountPosition"
    await ws.close()


async def test_resting_order_filled_when_the_market_moves_through_it(
        sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    _, ws = await user_ws(http, sim, c)
    bid, _, ask, _ = best(sim, "binance")
    price = bid  # rests at the best bid (user orders are not in the public book)
    st, r = await c.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "BUY", "type": "LIMIT",
                                                     "timeInForce": "GTC", "quantity": "0.2", "price": str(price)})
    assert st == 200 and r["status"] == "NEW"
    await drain(ws)
    # A synthetic ask arrives at the user's price: the market moved through the order.
    m = sim.market("binance", SYM)
    tick = int(price / D("0.01"))
    m.book.asks.set(tick, 8000)  # 0.08 BTC
    sim.trading["binance"].settle(SYM)
    msgs = await drain(ws)
    er = msgs[0]
    assert (er["x"], er["X"], D(er["l"]), D(er["L"]), er["m"]) == ("TRADE", "PARTIALLY_FILLED", D("0.08"), price, True)
    assert tick not in m.book.asks.levels  # consumed
    m.book.asks.set(tick - 1, 100000)  # 1 BTC one tick lower: fills the rest at the user's price
    sim.trading["binance"].settle(SYM)
    er = (await drain(ws))[0]
    assert (er["X"], D(er["z"]), D(er["L"])) == ("FILLED", D("0.2"), price)
    assert m.book.asks.levels[tick - 1] == 100000 - 12000
    st, q = await c.signed("GET", "/api/v3/order", {"symbol": SYM, "orderId": r["orderId"]})
    assert q["status"] == "FILLED"
    await ws.close()


async def test_signature_key_and_timing_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    order = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "1000"}
    p, _, h = c.signer.sign("POST", "/api/v3/order", order, None, {})
    p["price"] = "1001"  # tampered after signing
    from ttxt_mp.connectors.binance.auth import encode_query
    assert await c.send("POST", "/api/v3/order", encode_query(p), None, h) == (
        400, {"code": -1022, "msg": "Signature for this request is not valid."})
    assert await c.send("POST", "/api/v3/order", encode_query(p), None, {}) == (
        401, {"code": -2014, "msg": "API-key format invalid."})
    stranger = BinanceClient(http, sim, "nobody-key", "nobody-secret")
    assert await stranger.signed("GET", "/api/v3/account") == (
        401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    wrong_secret = BinanceClient(http, sim, KEY, "not-the-secret")
    assert (await wrong_secret.signed("GET", "/api/v3/account"))[1]["code"] == -1022
    from ttxt_mp.sim.market import now_ms
    old = await c.signed("GET", "/api/v3/account", timestamp_ms=now_ms() - 6000)
    assert old == (400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})
    future = await c.signed("GET", "/api/v3/account", timestamp_ms=now_ms() + 5000)
    assert future == (400, {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."})
    c.signer.recv_window_ms = 10000  # a wider window accepts the same age
    assert (await c.signed("GET", "/api/v3/account", timestamp_ms=now_ms() - 6000))[0] == 200
    st, e = await c.signed("GET", "/api/v3/account", {"recvWindow": "60001"})
    assert (st, e["code"]) == (400, -1131)
    st, e = await c.send("GET", "/api/v3/account", f"timestamp={now_ms()}", None, c.signer.api_key_headers())
    assert (st, e["code"], e["msg"]) == (400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")


async def test_mixed_query_and_body_signing(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """rest-api.md Example 3: totalParams = query string + body, no '&' between them."""
    c = BinanceClient(http, sim)
    query, body = c.signer.sign_parts("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC",
                                      b"quantity=0.01&price=1000&newOrderRespType=ACK")
    st, r = await c.send("POST", "/api/v3/order", query, body, c.signer.api_key_headers())
    assert st == 200 and set(r) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert len(r["clientOrderId"]) == 22
    # Percent-encoded characters are verified over the query exactly as sent.
    st, r = await c.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "BUY", "type": "LIMIT",
                                                     "timeInForce": "GTC", "quantity": "0.01", "price": "1000",
                                                     "newClientOrderId": "a:b/c.d"})
    assert st == 200 and r["clientOrderId"] == "a:b/c.d", r


async def test_order_rejections_use_documented_codes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    bid, _, ask, _ = best(sim, "binance")
    base = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}

    async def post(**kw: str) -> tuple[int, dict]:
        return await c.signed("POST", "/api/v3/order", {**base, **kw})

    assert await post(quantity="0.01") == (400, {"code": -1102, "msg": "Mandatory parameter 'price' was not sent, was empty/null, or malformed."})
    assert (await post(quantity="0.01", price="1e3"))[1]["code"] == -1100
    assert await post(quantity="0.01", price=str(bid) + "5") == (400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"})
    assert await post(quantity="0.000015", price=str(bid)) == (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})
    assert await post(quantity="0.00001", price=str(bid)) == (400, {"code": -1013, "msg": "Filter failure: MIN_NOTIONAL"})
    assert await post(quantity="5", price=str(bid)) == (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."})
    assert (await post(quantity="0.01", price=str(bid), side="HOLD"))[1] == {"code": -1117, "msg": "Invalid side."}
    assert (await post(quantity="0.01", price=str(bid), symbol="NOPEUSDT"))[1] == {"code": -1121, "msg": "Invalid symbol."}
    maker = {"symbol": SYM, "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.01", "price": str(ask)}
    assert await c.signed("POST", "/api/v3/order", maker) == (400, {"code": -2010, "msg": "Order would immediately match and take."})
    st, ok = await c.signed("POST", "/api/v3/order", {**maker, "price": str(bid), "newClientOrderId": "mk"})
    assert st == 200 and set(ok) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}  # ACK default
    st, q = await c.signed("GET", "/api/v3/order", {"symbol": SYM, "orderId": ok["orderId"]})
    assert (q["type"], q["timeInForce"], q["status"]) == ("LIMIT_MAKER", "GTC", "NEW")
    assert await post(quantity="0.01", price=str(bid), newClientOrderId="mk") == (400, {"code": -2010, "msg": "Duplicate order sent."})
    assert await c.signed("GET", "/api/v3/order", {"symbol": SYM, "orderId": 999999}) == (400, {"code": -2013, "msg": "Order does not exist."})
    assert await c.signed("DELETE", "/api/v3/order", {"symbol": SYM, "origClientOrderId": "nope"}) == (400, {"code": -2011, "msg": "Unknown order sent."})
    st, e = await c.signed("DELETE", "/api/v3/order", {"symbol": SYM})
    assert (st, e["code"]) == (400, -1102)
    # The account keeps trading after every rejection.
    st, r = await post(quantity="0.01", price=str(bid - 1))
    assert st == 200 and r["status"] == "NEW"


async def test_cancel_replace_success_and_failures(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    bid, _, _, _ = best(sim, "binance")
    st, r = await c.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "BUY", "type": "LIMIT",
                                                     "timeInForce": "GTC", "quantity": "0.01", "price": str(bid - 50)})
    assert st == 200
    new = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.02",
           "price": str(bid - 60), "cancelReplaceMode": "STOP_ON_FAILURE"}
    st, cr = await c.signed("POST", "/api/v3/order/cancelReplace", {**new, "cancelOrderId": r["orderId"]})
    assert st == 200 and (cr["cancelResult"], cr["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert cr["cancelResponse"]["status"] == "CANCELED" and cr["newOrderResponse"]["status"] == "NEW"
    st, fail = await c.signed("POST", "/api/v3/order/cancelReplace", {**new, "cancelOrderId": r["orderId"]})
    assert st == 400 and fail == {"code": -2022, "msg": "Order cancel-replace failed.", "data": {
        "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."}, "newOrderResponse": None}}
    live = cr["newOrderResponse"]["orderId"]
    st, part = await c.signed("POST", "/api/v3/order/cancelReplace", {**new, "quantity": "9", "cancelOrderId": live})
    assert st == 409 and part["code"] == -2021 and part["msg"] == "Order cancel-replace partially failed."
    assert part["data"]["cancelResult"] == "SUCCESS" and part["data"]["newOrderResult"] == "FAILURE"
    assert part["data"]["newOrderResponse"] == {"code": -2010, "msg": "Account has insufficient balance for requested action."}
    st, oo = await c.signed("GET", "/api/v3/openOrders", {"symbol": SYM})
    assert oo == []


async def test_listen_key_lifecycle_and_balance_update(sim: Simulator, http: aiohttp.ClientSession) -> None:
    c = BinanceClient(http, sim)
    lk, ws = await user_ws(http, sim, c)
    st, again = await c.key_only("POST", "/api/v3/userDataStream")
    assert again == {"listenKey": lk}  # the active key is returned
    assert await c.key_only("PUT", "/api/v3/userDataStream", {"listenKey": lk}) == (200, {})
    assert await c.key_only("PUT", "/api/v3/userDataStream", {"listenKey": "x" * 64}) == (
        400, {"code": -1125, "msg": "This listenKey does not exist."})
    assert (await BinanceClient(http, sim, "nobody", "x").key_only("POST", "/api/v3/userDataStream"))[1]["code"] == -2015
    sim.deposit("binance", KEY, "USDT", "25")
    bu, pos = await drain(ws)
    assert (bu["e"], bu["a"], bu["d"]) == ("balanceUpdate", "USDT", "25.00000000")
    assert pos["e"] == "outboundAccountPosition" and pos["B"][0]["f"] == "100025.00000000"
    assert await c.key_only("DELETE", "/api/v3/userDataStream", {"listenKey": lk}) == (200, {})
    msg = await ws.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert (await c.key_only("PUT", "/api/v3/userDataStream", {"listenKey": lk}))[1]["code"] == -1125


async def test_listen_key_expires_without_keepalive(http: aiohttp.ClientSession) -> None:
    async with make_sim(listen_key_ttl=0.5) as sim:
        c = BinanceClient(http, sim)
        lk, ws = await user_ws(http, sim, c)
        await asyncio.sleep(0.2)
        assert await c.key_only("PUT", "/api/v3/userDataStream", {"listenKey": lk}) == (200, {})
        msgs = await drain(ws, quiet=1.5)
        assert msgs == [{"e": "listenKeyExpired", "E": msgs[0]["E"], "listenKey": lk}]
        assert ws.closed  # the stream ends with its key
        assert (await c.key_only("PUT", "/api/v3/userDataStream", {"listenKey": lk}))[1]["code"] == -1125


async def test_two_accounts_trade_with_each_other(sim: Simulator, http: aiohttp.ClientSession) -> None:
    alice, bob = BinanceClient(http, sim), BinanceClient(http, sim, KEY2, SECRET2)
    bid, _, ask, _ = best(sim, "binance")
    inside = (bid + ask) / 2
    inside -= inside % D("0.01")
    st, r = await alice.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "SELL", "type": "LIMIT",
                                                         "timeInForce": "GTC", "quantity": "0.0005", "price": str(inside)})
    assert st == 200 and r["status"] == "NEW", r
    st, b = await bob.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "BUY", "type": "LIMIT",
                                                       "timeInForce": "FOK", "quantity": "0.0005", "price": str(inside)})
    assert st == 200 and b["status"] == "FILLED" and D(b["fills"][0]["price"]) == inside
    bb = await balances(bob)
    assert bb["BTC"] == (D("0.0005") - D(b["fills"][0]["commission"]), D(0))
    assert bb["USDT"] == (D(50) - inside * D("0.0005"), D(0))


async def test_synthetic_flow_fills_a_resting_order_after_the_size_ahead(
        sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A synthetic market sell reaches the user's bid after the size that was visible at
    its price when it was placed: two public trades at that price (the book's, then the
    user's), and the user's fill on the user data stream at its price with the maker fee."""
    c = BinanceClient(http, sim)
    _, ws = await user_ws(http, sim, c)
    assert sim.urls and sim.urls.binance
    trades = await http.ws_connect(sim.urls.binance.ws + "/ws/btcusdt@trade")
    bid, bid_qty, _, _ = best(sim, "binance")
    st, r = await c.signed("POST", "/api/v3/order", {"symbol": SYM, "side": "BUY", "type": "LIMIT",
                                                     "timeInForce": "GTC", "quantity": "0.01", "price": str(bid)})
    assert st == 200 and r["status"] == "NEW"
    await drain(ws)
    await drain(trades)
    ahead = int(bid_qty / D("0.00001"))
    sim.market("binance", SYM).market_order(False, ahead + 500, 1_700_000_000_000)
    er = (await drain(ws))[0]
    assert (er["e"], er["x"], er["X"], er["i"]) == ("executionReport", "TRADE", "PARTIALLY_FILLED", r["orderId"])
    assert (D(er["l"]), D(er["L"]), er["m"], D(er["n"]), er["N"]) == (D("0.005"), bid, True, D("0.000005"), "BTC")
    prints = [(D(t["p"]), D(t["q"]), t["m"]) for t in await drain(trades)]
    assert prints == [(bid, bid_qty, True), (bid, D("0.005"), True)]  # the book's size, then the user's
    assert best(sim, "binance")[0] < bid  # the synthetic level is gone; the user's rest is hidden
    await ws.close()
    await trades.close()
