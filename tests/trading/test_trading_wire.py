"""What is signed is what is sent: denormalized requests go through the real REST assistant
to a local server that verifies the HMAC over the raw query/body it received."""

from __future__ import annotations

import hashlib
import hmac

import msgspec
import pytest
from aiohttp import web

from ttxt_mp.connectors.binance.auth import BinanceSigner
from ttxt_mp.connectors.binance.denormalizer import BinanceOrderDenormalizer
from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.connectors.bybit.denormalizer import BybitOrderDenormalizer
from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.events import CreateOrder, Side
from ttxt_mp.secrets import Credentials, Secret
from ttxt_mp.web.connection_factory import ConnectionFactory
from ttxt_mp.web.rest_assistant import RESTAssistant

KEY, SECRET = "wire-test-key-123", "wire-test-secret-456"


def _hex(payload: bytes) -> str:
    return hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()


@pytest.fixture
async def serve():
    runners: list[web.AppRunner] = []
    factory = ConnectionFactory()

    async def start(handler) -> RESTAssistant:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return RESTAssistant(factory, base_url=f"http://{host}:{port}")

    try:
        yield start
    finally:
        await factory.close()
        for r in runners:
            await r.cleanup()


async def test_binance_order_signature_verifies_on_the_wire(serve, binance_doc):
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        raw_query = request.rel_url.raw_query_string
        payload, _, sig = raw_query.rpartition("&signature=")
        seen["query"] = raw_query
        if request.headers.get("X-MBX-APIKEY") != KEY or sig != _hex(payload.encode()):
            return web.json_response({"code": -1022, "msg": "Signature for this request is not valid."}, status=400)
        return web.json_response({"symbol": "ETHBTC", "orderId": 5, "clientOrderId": request.query["newClientOrderId"]})

    book = InstrumentBook("binance", binance_instruments(msgspec.json.encode(binance_doc["exchange_info"])))
    denorm = BinanceOrderDenormalizer(book)
    signer = BinanceSigner(Credentials(Secret(KEY), Secret(SECRET)))
    rest = await serve(handler)
    rest.signer = signer
    req = denorm.create(CreateOrder(exchange="binance", symbol="ETH/BTC", client_order_id="a:b/c.d",
                                    side=Side.BUY, qty=1.0, price=0.05))  # fmt: skip
    resp = await rest.request(req.method, req.path, params=req.params, signed=True, raw=True)
    ack = denorm.parse_ack(req, resp.status, resp.body)
    assert ack.accepted and ack.order_id == "5", ack
    assert "?" not in seen["query"] and "%253A" not in seen["query"]  # no doubled '?' or double encoding


async def test_bybit_order_signature_verifies_on_the_wire(serve, bybit_doc):
    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        plain = f"{h['X-BAPI-TIMESTAMP']}{KEY}{h['X-BAPI-RECV-WINDOW']}".encode() + body
        if h.get("X-BAPI-API-KEY") != KEY or h.get("X-BAPI-SIGN") != _hex(plain):
            return web.json_response({"retCode": 10004, "retMsg": "Error sign", "result": {}})
        link = msgspec.json.decode(body)["orderLinkId"]
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": {"orderId": "9", "orderLinkId": link}})

    book = InstrumentBook("bybit", bybit_instruments(msgspec.json.encode(bybit_doc["instruments_spot"])))
    denorm = BybitOrderDenormalizer(book)
    rest = await serve(handler)
    rest.signer = BybitSigner(Credentials(Secret(KEY), Secret(SECRET)))
    req = denorm.create(CreateOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="x-1",
                                    side=Side.SELL, qty=0.01, price=30000.0))  # fmt: skip
    resp = await rest.request(req.method, req.path, data=req.body, headers=req.headers, signed=True, raw=True)
    ack = denorm.parse_ack(req, resp.status, resp.body)
    assert ack.accepted and ack.order_id == "9", ack
