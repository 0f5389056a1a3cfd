"""ConnectionFactory (one lazy session per process/loop), WebAssistantFactory, redaction."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiohttp import web

from ttxt_mp.web import (
    ConnectionFactory,
    RateLimit,
    RateLimiter,
    SessionSettings,
    WebAssistantFactory,
    redact_headers,
    redact_url,
)


async def test_session_is_lazy_shared_and_closed_cleanly():
    f = ConnectionFactory(SessionSettings(limit=10, ttl_dns_cache=60))
    assert not f.has_session
    s1 = f.get_session()
    assert f.get_session() is s1 and f.has_session
    assert s1.connector is not None and s1.connector.limit == 10
    await f.close()
    assert s1.closed and not f.has_session
    await f.close()  # idempotent
    s2 = f.get_session()
    assert s2 is not s1 and not s2.closed
    await f.close()


def test_get_session_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="no running event loop"):
        ConnectionFactory().get_session()


def test_session_of_another_loop_is_refused():
    f = ConnectionFactory()

    async def make():
        return f.get_session()

    loop1 = asyncio.new_event_loop()
    try:
        loop1.run_until_complete(make())
        with pytest.raises(RuntimeError, match="belongs to another event loop"):
            asyncio.run(make())
    finally:
        loop1.run_until_complete(f.close())
        loop1.close()


async def test_forked_child_gets_a_new_session(monkeypatch):
    f = ConnectionFactory()
    parent = f.get_session()
    real_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)
    try:
        child = f.get_session()
        assert child is not parent and not parent.closed  # the parent's is left alone
        assert ConnectionFactory.default() is ConnectionFactory.default()
    finally:
        monkeypatch.undo()
        await parent.close()
        await f.close()
        ConnectionFactory._default = None


async def test_web_assistant_factory_shares_session_limiter_and_closes(start_server):
    async def hello(request):
        return web.json_response({"hi": 1})

    app = web.Application()
    app.router.add_get("/hello", hello)
    base = await start_server(app)
    limiter = RateLimiter([RateLimit("w", 100, 1, is_global=True)])
    waf = WebAssistantFactory(ConnectionFactory(), rate_limiter=limiter, rest_base_url=base)
    rest = waf.get_rest_assistant()
    assert waf.get_rest_assistant() is rest and rest.rate_limiter is limiter
    ws1, ws2 = waf.get_ws_assistant(), waf.get_ws_assistant()
    assert ws1 is not ws2
    assert await rest.request("GET", "/hello", weight=7) == {"hi": 1}
    assert limiter.used("w") == 7
    session = waf.connection_factory.get_session()
    await waf.close()
    assert session.closed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abcdef",
         "https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=<redacted>"),
        ("https://x/y?apiKey=K&Signature=S&sign=T#frag",
         "https://x/y?apiKey=<redacted>&Signature=<redacted>&sign=<redacted>#frag"),
        ("wss://user:pw@host/ws?listenKey=LK", "wss://<redacted>@host/ws?listenKey=<redacted>"),
        ("https://api.bybit.com/v5/market/orderbook?category=spot",
         "https://api.bybit.com/v5/market/orderbook?category=spot"),
        ("https://h/p", "https://h/p"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_headers():
    h = {"X-MBX-APIKEY": "k", "x-bapi-sign": "s", "X-BAPI-API-KEY": "k2", "Authorization": "Bearer t",
         "Content-Type": "application/json", "OK-ACCESS-SIGN": "o"}
    assert redact_headers(h) == {
        "X-MBX-APIKEY": "<redacted>", "x-bapi-sign": "<redacted>", "X-BAPI-API-KEY": "<redacted>",
        "Authorization": "<redacted>", "Content-Type": "application/json",
        "OK-ACCESS-SIGN": "<redacted>",
    }
    assert redact_headers(None) == {}
