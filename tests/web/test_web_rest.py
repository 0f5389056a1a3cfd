"""RESTAssistant against a real aiohttp server: retries, Retry-After, errors, timeout,
signing and redaction."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time

import msgspec
import pytest
from aiohttp import web

from ttxt_mp.web import (
    RateLimit,
    RateLimiter,
    RequestParts,
    RESTAssistant,
    RESTConnectionError,
    RESTError,
    RESTResponse,
    RESTTimeoutError,
    RetryPolicy,
)

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


class Depth(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class Venue:
    """A tiny Binance-like server; `script` maps a path to a list of canned answers."""

    def __init__(self) -> None:
        self.hits: dict[str, list[web.Request]] = {}
        self.times: dict[str, list[float]] = {}
        self.queries: list[str] = []
        self.script: dict[str, list[web.Response]] = {}
        self.slow_first: dict[str, float] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits.setdefault(path, []).append(request)
        self.times.setdefault(path, []).append(time.monotonic())
        self.queries.append(request.rel_url.raw_query_string)
        n = len(self.hits[path])
        if path in self.slow_first and n == 1:
            await asyncio.sleep(self.slow_first[path])
        if path == "/api/v3/depth":
            return web.json_response(
                {"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]],
                 "asks": [["4.00000200", "12.00000000"]]}
            )
        if path == "/echo":
            body = await request.read()
            return web.json_response(
                {"query": request.rel_url.raw_query_string, "body": body.decode(),
                 "ctype": request.headers.get("Content-Type")}
            )
        if path == "/api/v3/order":
            return await self.order(request)
        answers = self.script.get(path, [])
        if answers:
            return answers.pop(0)
        return web.json_response({"ok": n})

    async def order(self, request: web.Request) -> web.Response:
        """Verifies a Binance-style HMAC-SHA256 signature over the exact query string."""
        qs = request.rel_url.raw_query_string
        payload, _, sig = qs.rpartition("&signature=")
        want = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if request.headers.get("X-MBX-APIKEY") != API_KEY:
            return web.json_response({"code": -2015, "msg": "Invalid API-key."}, status=401)
        if not hmac.compare_digest(sig, want):
            return web.json_response(
                {"code": -1022, "msg": "Signature for this request is not valid."}, status=400
            )
        answers = self.script.get("/api/v3/order", [])
        if answers:
            return answers.pop(0)
        return web.json_response({"orderId": 28, "status": "NEW"})


@pytest.fixture
async def venue(start_server):
    v = Venue()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", v.handle)
    v.base = await start_server(app)
    return v


def binance_signer(parts: RequestParts) -> RequestParts:
    ts = time.time_ns() // 1_000_000
    query = "&".join(q for q in (parts.query, f"timestamp={ts}") if q)
    sig = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    headers = dict(parts.headers, **{"X-MBX-APIKEY": API_KEY})
    return RequestParts(parts.method, parts.url, parts.path, f"{query}&signature={sig}",
                        parts.body, headers)


def rest(factory, venue, **kw) -> RESTAssistant:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.05))
    kw.setdefault("rng", random.Random(0))
    return RESTAssistant(factory, base_url=venue.base, **kw)


async def test_get_returns_msgspec_decoded_json(factory, venue):
    r = rest(factory, venue)
    got = await r.request("GET", "/api/v3/depth", params={"symbol": "BNBBTC", "limit": 5})
    assert got["lastUpdateId"] == 1027024
    typed = await r.request("GET", "api/v3/depth", response_type=Depth)
    assert typed == Depth(1027024, [("4.00000000", "431.00000000")], [("4.00000200", "12.00000000")])
    raw = await r.request("GET", f"{venue.base}/api/v3/depth", raw=True)
    assert isinstance(raw, RESTResponse) and raw.status == 200 and raw.body.startswith(b"{")
    assert venue.queries[0] == "symbol=BNBBTC&limit=5"


async def test_params_form_and_json_bodies_are_encoded(factory, venue):
    r = rest(factory, venue)
    got = await r.request("POST", "/echo", params={"a": True, "b": "x y"}, data={"q": 1.5, "f": False})
    assert got == {"query": "a=true&b=x%20y", "body": "q=1.5&f=false",
                   "ctype": "application/x-www-form-urlencoded"}
    got = await r.request("POST", "/echo?pre=1", params="z=2", json={"k": [1, 2]})
    assert got == {"query": "pre=1&z=2", "body": '{"k":[1,2]}', "ctype": "application/json"}
    with pytest.raises(ValueError, match="either data= or json="):
        await r.request("POST", "/echo", data=b"x", json={})
    with pytest.raises(TypeError, match="data must be a mapping"):
        await r.request("POST", "/echo", data=3)  # type: ignore[arg-type]


async def test_retry_on_503_then_success(factory, venue, caplog):
    venue.script["/flaky"] = [web.json_response({"code": -1001, "msg": "busy"}, status=503)]
    r = rest(factory, venue)
    with caplog.at_level(logging.WARNING, logger="ttxt_mp.web"):
        assert await r.request("GET", "/flaky") == {"ok": 2}
    assert len(venue.hits["/flaky"]) == 2
    assert "HTTP 503" in caplog.text and "attempt 1/3" in caplog.text


async def test_5xx_on_post_is_not_retried_unless_idempotent(factory, venue):
    venue.script["/p"] = [web.json_response({}, status=503), web.json_response({}, status=503)]
    r = rest(factory, venue)
    with pytest.raises(RESTError) as info:
        await r.request("POST", "/p")
    assert info.value.status == 503 and len(venue.hits["/p"]) == 1
    assert await r.request("POST", "/p", idempotent=True) == {"ok": 3}


async def test_retries_are_bounded(factory, venue):
    venue.script["/down"] = [web.Response(status=502, text="Bad Gateway") for _ in range(5)]
    r = rest(factory, venue)
    with pytest.raises(RESTError, match=r"HTTP 502 from GET .*/down: Bad Gateway"):
        await r.request("GET", "/down")
    assert len(venue.hits["/down"]) == 3


async def test_429_retry_after_is_honoured_and_pauses_limiter(factory, venue):
    venue.script["/limited"] = [
        web.json_response({"code": -1003, "msg": "Too many requests"}, status=429,
                          headers={"Retry-After": "1"})
    ]
    limiter = RateLimiter([RateLimit("w", 1000, 60, is_global=True)])
    r = rest(factory, venue, rate_limiter=limiter)

    async def other_request_during_the_pause():
        await asyncio.sleep(0.2)
        return await r.request("GET", "/other")

    t0 = time.monotonic()
    got = await asyncio.gather(r.request("GET", "/limited"), other_request_during_the_pause())
    assert got == [{"ok": 2}, {"ok": 1}]
    assert 1.0 <= time.monotonic() - t0 < 2.5
    first_429 = venue.times["/limited"][0]
    assert venue.times["/limited"][1] - first_429 >= 0.99
    assert venue.times["/other"][0] - first_429 >= 0.95  # the limiter held it too


async def test_418_retry_after_and_too_long_retry_after(factory, venue):
    venue.script["/ban"] = [
        web.json_response({"code": -1003, "msg": "banned"}, status=418, headers={"Retry-After": "0"}),
    ]
    r = rest(factory, venue)
    assert await r.request("POST", "/ban") == {"ok": 2}  # 418 means rejected: safe for POST
    venue.script["/ban2"] = [
        web.json_response({"code": -1003, "msg": "banned"}, status=418, headers={"Retry-After": "120"})
    ]
    t0 = time.monotonic()
    with pytest.raises(RESTError, match=r"HTTP 418 .*code -1003: banned \(Retry-After 120 s exceeds"):
        await r.request("GET", "/ban2")
    assert time.monotonic() - t0 < 1


async def test_4xx_error_names_status_code_and_message(factory, venue, caplog):
    venue.script["/api/v3/ticker"] = [
        web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
    ]
    r = rest(factory, venue)
    with pytest.raises(RESTError) as info:
        await r.request("GET", "/api/v3/ticker", params={"symbol": "NOPE"})
    e = info.value
    assert (e.status, e.code, e.message) == (400, -1121, "Invalid symbol.")
    assert str(e) == f"HTTP 400 from GET {venue.base}/api/v3/ticker?symbol=NOPE: code -1121: Invalid symbol."
    assert len(venue.hits["/api/v3/ticker"]) == 1  # not retried

    venue.script["/v5/x"] = [web.json_response({"retCode": 10001, "retMsg": "params error"}, status=403)]
    with pytest.raises(RESTError, match="HTTP 403 .*code 10001: params error"):
        await r.request("GET", "/v5/x")
    venue.script["/html"] = [web.Response(status=404, text="<h1>Not Found</h1>")]
    with pytest.raises(RESTError, match="HTTP 404 .*: <h1>Not Found</h1>"):
        await r.request("GET", "/html")


async def test_invalid_json_success_body(factory, venue):
    venue.script["/bad"] = [web.Response(status=200, text="{not json")]
    with pytest.raises(RESTError, match="HTTP 200 .*invalid JSON response"):
        await rest(factory, venue).request("GET", "/bad")


async def test_timeout_is_honoured(factory, venue):
    venue.slow_first["/slow"] = 3.0
    r = rest(factory, venue, retry=RetryPolicy(max_attempts=1))
    t0 = time.monotonic()
    with pytest.raises(RESTTimeoutError, match=r"no response within 0.2 s"):
        await r.request("GET", "/slow", timeout=0.2)
    assert time.monotonic() - t0 < 1.5
    venue.hits.clear()
    # an idempotent GET is retried after a timeout and then succeeds
    r2 = rest(factory, venue)
    t0 = time.monotonic()
    assert await r2.request("GET", "/slow", timeout=0.2) == {"ok": 2}
    assert time.monotonic() - t0 < 1.5


async def test_connection_refused_is_a_clear_error(factory):
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    r = RESTAssistant(factory, retry=RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_cap=0.01))
    with pytest.raises(RESTConnectionError, match=f"request failed from GET http://127.0.0.1:{port}/x"):
        await r.request("GET", f"http://127.0.0.1:{port}/x")


async def test_signed_request_verified_by_server_and_resigned_on_retry(factory, venue):
    venue.script["/api/v3/order"] = [web.json_response({"code": -1003, "msg": "slow"}, status=429,
                                                       headers={"Retry-After": "0.05"})]
    r = rest(factory, venue, signer=binance_signer)
    got = await r.request("POST", "/api/v3/order", params={"symbol": "LTCBTC", "side": "BUY",
                                                          "type": "LIMIT", "quantity": 1},
                          signed=True)
    assert got == {"orderId": 28, "status": "NEW"}
    first, second = venue.queries
    assert first != second  # fresh timestamp and signature on the retry
    with pytest.raises(ValueError, match="no signer"):
        await rest(factory, venue).request("GET", "/api/v3/order", signed=True)


async def test_async_signer_is_supported(factory, venue):
    async def signer(parts: RequestParts) -> RequestParts:
        await asyncio.sleep(0)
        return binance_signer(parts)

    r = rest(factory, venue, signer=signer)
    assert (await r.request("DELETE", "/api/v3/order", params={"orderId": 28}, signed=True))["orderId"] == 28


async def test_secrets_never_logged_nor_in_errors(factory, venue, caplog):
    def bybit_like(parts: RequestParts) -> RequestParts:
        parts = binance_signer(parts)
        parts.headers.update({"X-BAPI-API-KEY": API_KEY, "X-BAPI-SIGN": "bybitsig" + SECRET[:8]})
        return parts

    venue.script["/api/v3/order"] = [
        web.json_response({"code": -1013, "msg": "Filter failure: LOT_SIZE"}, status=400)
    ]
    r = rest(factory, venue, signer=bybit_like)
    with caplog.at_level(logging.DEBUG, logger="ttxt_mp.web"):
        with pytest.raises(RESTError) as info:
            await r.request("POST", "/api/v3/order", params={"symbol": "LTCBTC"}, signed=True,
                            data={"apiKey": API_KEY})
        assert await r.request("POST", "/api/v3/order", params={"symbol": "LTCBTC"}, signed=True)
    signature = venue.queries[0].rpartition("signature=")[2]
    assert len(signature) == 64
    text = caplog.text + str(info.value)
    assert "signature=<redacted>" in str(info.value)
    assert "POST" in caplog.text and "<redacted>" in caplog.text and "X-BAPI-SIGN" in caplog.text
    for secret in (API_KEY, SECRET, signature, SECRET[:8]):
        assert secret not in text


async def test_rate_limit_is_applied_to_requests(factory, venue):
    limiter = RateLimiter([RateLimit("w", 3, 0.3, is_global=True), RateLimit("orders", 1, 0.3)])
    r = rest(factory, venue, rate_limiter=limiter)
    t0 = time.monotonic()
    await asyncio.gather(*(r.request("GET", "/x") for _ in range(7)))
    assert time.monotonic() - t0 >= 0.58  # 7 requests at 3 per 0.3 s need two full windows
    with pytest.raises(ValueError, match="exceeds rate limit 'w'"):
        await r.request("GET", "/x", weight=4)
    with pytest.raises(ValueError, match="unknown rate limit id 'order'"):
        await r.request("GET", "/x", limit_id="order")
    assert len(venue.hits["/x"]) == 7  # refused requests were never sent
    t0 = time.monotonic()
    await r.request("GET", "/x", limit_id="orders")
    await r.request("GET", "/x", limit_id="orders")
    assert time.monotonic() - t0 >= 0.29


async def test_bad_urls_fail_clearly_without_leaking_the_signature(factory):
    r = RESTAssistant(factory, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ValueError, match=r"invalid URL .*signature=<redacted>: Port out of range"):
        await r.request("GET", "http://127.0.0.1:99999/x?signature=abc123secret")
    with pytest.raises(ValueError, match="relative URL '/x' needs a base_url"):
        await r.request("GET", "/x")
    with pytest.raises(RESTConnectionError) as info:
        await r.request("GET", "ftp2://h/x?timestamp=1&signature=abc123secret")
    assert "abc123secret" not in str(info.value) and "<redacted>" in str(info.value)
