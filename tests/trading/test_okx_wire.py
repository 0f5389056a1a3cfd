"""OKX v5 trading wire: signing (REST and WebSocket login) from the documented formula and
example values, documented private pushes and REST answers (tests/fixtures/okx_trading_docs.py,
each citing its page) -> OrderUpdate / Wallet / PositionUpdate / OrderAck, order bodies
(tdMode, ordType, clOrdId, reduceOnly, posSide), SetLeverage, credentials with a passphrase."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from fixtures import okx_trading_docs as docs
from fixtures.fake_rest import FakeRest
from hypothesis import given
from hypothesis import strategies as st

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.instruments import InstrumentBook, make_instrument
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.okx.auth import OkxSigner, iso_ms, okx_sign
from ttxt_mp.connectors.okx.denormalizer import OkxOrderDenormalizer, from_cl_ord_id, to_cl_ord_id
from ttxt_mp.connectors.okx.private import OkxPrivateNormalizer
from ttxt_mp.connectors.okx.trading import OkxTrading
from ttxt_mp.connectors.trading import UnknownOutcome
from ttxt_mp.connectors.trading.runner import credentials_for
from ttxt_mp.events import (
    AmendOrder,
    Balance,
    CancelOrder,
    CreateOrder,
    MarginMode,
    OrderAction,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSide,
    PositionUpdate,
    SetLeverage,
    Side,
    TimeInForce,
)
from ttxt_mp.secrets import Credentials, CredentialsError, Secret, load_credentials
from ttxt_mp.web.rest_assistant import RequestParts

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def creds(phrase: str | None = "my-Passphrase-9") -> Credentials:
    return Credentials(Secret("okxKey-0001"), Secret(docs.SIGN_SECRET),
                       Secret(phrase) if phrase else None)  # fmt: skip


@pytest.fixture
def book() -> InstrumentBook:
    return InstrumentBook("okx", [
        make_instrument("okx", "BTC-USDT", "BTC", "USDT", "spot", Decimal("0.1"),
                        Decimal("0.00000001")),
        make_instrument("okx", "BTC-USDT-SWAP", "BTC", "USDT", "linear", Decimal("0.1"),
                        Decimal("0.01"), settle="USDT"),
        make_instrument("okx", "ETH-USD-210430", "ETH", "USD", "linear", Decimal("0.01"),
                        Decimal(1), settle="ETH"),
    ])  # fmt: skip


def hmac_b64(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


# ------------------------------------------------------------------ signing


def test_rest_signature_uses_the_documented_prehash():
    # "REST Authentication": sign = Base64(HMAC-SHA256(timestamp + 'GET' + requestPath, secret))
    want = hmac_b64(docs.SIGN_SECRET, docs.SIGN_TIMESTAMP + "GET" + docs.SIGN_GET_PATH)
    assert okx_sign(docs.SIGN_SECRET, docs.SIGN_TIMESTAMP, "get", docs.SIGN_GET_PATH) == want
    assert iso_ms(1607418537715) == docs.SIGN_TIMESTAMP
    h = OkxSigner(creds()).headers("GET", docs.SIGN_GET_PATH, timestamp_ms=1607418537715)
    assert h == {"OK-ACCESS-KEY": "okxKey-0001", "OK-ACCESS-SIGN": want,
                 "OK-ACCESS-TIMESTAMP": docs.SIGN_TIMESTAMP, "OK-ACCESS-PASSPHRASE": "my-Passphrase-9"}
    post = OkxSigner(creds()).headers("POST", "/api/v5/account/set-leverage", docs.SIGN_POST_BODY,
                                      timestamp_ms=1607418537715)  # fmt: skip
    assert post["OK-ACCESS-SIGN"] == hmac_b64(docs.SIGN_SECRET, docs.SIGN_TIMESTAMP + "POST"
                                              + "/api/v5/account/set-leverage" + docs.SIGN_POST_BODY)
    assert "expTime" not in post  # only order requests carry it


def test_signer_signs_the_query_and_body_exactly_as_sent():
    s = OkxSigner(creds(), recv_window_ms=3000)
    parts = RequestParts("GET", "http://h/base/api/v5/trade/order", "/base/api/v5/trade/order",
                         "instId=BTC-USDT&clOrdId=a1", None, {})  # fmt: skip
    out = s(parts)
    ts = out.headers["OK-ACCESS-TIMESTAMP"]
    assert out.headers["OK-ACCESS-SIGN"] == hmac_b64(
        docs.SIGN_SECRET, f"{ts}GET/base/api/v5/trade/order?instId=BTC-USDT&clOrdId=a1")
    body = b'{"instId":"BTC-USDT"}'
    out = s(RequestParts("POST", "http://h/api/v5/trade/order", "/api/v5/trade/order", "", body, {}))
    ts = out.headers["OK-ACCESS-TIMESTAMP"]
    assert out.headers["OK-ACCESS-SIGN"] == hmac_b64(docs.SIGN_SECRET, f"{ts}POST/api/v5/trade/order{body.decode()}")
    assert out.headers["Content-Type"] == "application/json"
    sent_ms = int(out.headers["expTime"]) - 3000  # expTime = signed time + recv window
    assert iso_ms(sent_ms) == ts
    with pytest.raises(ValueError, match="no body"):
        s(RequestParts("GET", "http://h/x", "/x", "", b"{}", {}))


def test_ws_login_frame():
    frame = OkxSigner(creds()).ws_login(timestamp_s=int(docs.LOGIN_TIMESTAMP))
    assert frame == {"op": "login", "args": [{
        "apiKey": "okxKey-0001", "passphrase": "my-Passphrase-9", "timestamp": docs.LOGIN_TIMESTAMP,
        "sign": hmac_b64(docs.SIGN_SECRET, docs.LOGIN_TIMESTAMP + "GET/users/self/verify")}]}  # fmt: skip


def test_signer_needs_a_passphrase_and_never_prints_secrets():
    with pytest.raises(CredentialsError, match="passphrase"):
        OkxSigner(creds(phrase=None))
    s = OkxSigner(creds())
    text = repr(s) + str(creds()) + repr(creds())
    assert docs.SIGN_SECRET not in text and "my-Passphrase-9" not in text and "***" in text
    with pytest.raises(TypeError):
        msgspec.json.encode(creds())


# ------------------------------------------------------------------ credentials


def test_passphrase_from_env_and_file(tmp_path):
    env = {"K": "key-0001", "S": "secret-0001", "P": "phrase-0001"}
    c = load_credentials(api_key_env="K", api_secret_env="S", passphrase_env="P", environ=env)
    assert c is not None and c.passphrase is not None and c.passphrase.reveal() == "phrase-0001"
    with pytest.raises(CredentialsError, match="not set or empty: P$") as e:
        load_credentials(api_key_env="K", api_secret_env="S", passphrase_env="P",
                         environ={"K": "key-0001", "S": "secret-0001"})  # fmt: skip
    assert "phrase-0001" not in str(e.value)
    f = tmp_path / "c.toml"
    f.write_text('api_key = "key-0001"\napi_secret = "secret-0001"\npassphrase = "phrase-0002"\n')
    f.chmod(0o600)
    c = load_credentials(file=f)
    assert c is not None and c.passphrase is not None and c.passphrase.reveal() == "phrase-0002"
    f.write_text('api_key = "key-0001"\napi_secret = "secret-0001"\npassphrase = 3\n')
    with pytest.raises(CredentialsError, match="passphrase must be a non-empty string"):
        load_credentials(file=f)
    with pytest.raises(CredentialsError, match="not both"):
        load_credentials(file=f, passphrase_env="P")


def test_okx_trading_off_without_a_passphrase(monkeypatch):
    monkeypatch.setenv("OKXT_K", "key-0001")
    monkeypatch.setenv("OKXT_S", "secret-0001")
    cfg = msgspec.convert({"exchange": "okx", "symbols": [SPOT], "credentials": {
        "api_key_env": "OKXT_K", "api_secret_env": "OKXT_S"}}, ConnectorConfig)  # fmt: skip
    got, why = credentials_for(cfg)
    assert got is None and "passphrase_env" in why and "okx" in why
    monkeypatch.setenv("OKXT_P", "phrase-0001")
    cfg = msgspec.convert({"exchange": "okx", "symbols": [SPOT], "credentials": {
        "api_key_env": "OKXT_K", "api_secret_env": "OKXT_S", "passphrase_env": "OKXT_P"}},
        ConnectorConfig)  # fmt: skip
    got, why = credentials_for(cfg)
    assert got is not None and why == "" and "phrase-0001" not in repr(got)


# ------------------------------------------------------------------ private pushes


def test_order_push_doc_example(book):
    (u,) = OkxPrivateNormalizer(book).normalize(docs.OKX_ORDER_PUSH.frame, local_ts=1)
    assert u == OrderUpdate(
        exchange="okx", symbol=SPOT, exch_ts=1654084353264_000_000, local_ts=1, client_order_id="",
        order_id="452197707845865472", side=Side.SELL, order_type=OrderType.LIMIT,
        tif=TimeInForce.GTC, status=OrderStatus.FILLED, price=31527.1, qty=0.001, filled_qty=0.001,
        avg_price=31527.1, last_fill_price=31527.1, last_fill_qty=0.001, fee=0.02522168,
        fee_asset="USDT", trade_id="242589207")  # fmt: skip


def test_account_and_positions_doc_examples(book):
    n = OkxPrivateNormalizer(book)
    (w,) = n.normalize(docs.OKX_ACCOUNT_PUSH.frame, local_ts=1)
    assert w.balances == (Balance("USDT", 4734.371190691436, 158.57998),)
    assert w.exch_ts == 1705564223311_000_000
    (p,) = n.normalize(docs.OKX_POSITIONS_PUSH.frame, local_ts=1)
    assert p == PositionUpdate(exchange="okx", symbol="ETH/USD:ETH", exch_ts=1619507761462_000_000,
                               local_ts=1, size=1.0, entry_price=2566.31, mark_price=2353.849,
                               unrealized_pnl=-0.0000009932766034, leverage=10.0)  # fmt: skip
    short = json.loads(docs.OKX_POSITIONS_PUSH.frame)
    short["data"][0]["posSide"] = "short"
    (p,) = n.normalize(json.dumps(short).encode(), local_ts=1)
    assert p.size == -1.0


def test_positions_teach_the_margin_mode_of_later_orders(book):
    modes: dict[str, str] = {}
    n, d = OkxPrivateNormalizer(book, modes), OkxOrderDenormalizer(book, modes)
    push = json.loads(docs.OKX_POSITIONS_PUSH.frame)
    push["data"][0]["instId"] = "BTC-USDT-SWAP"  # the doc's isolated position, on our swap
    n.normalize(json.dumps(push).encode())
    assert modes == {PERP: "isolated"}  # e.g. after a restart: orders keep the position's mode
    assert body(d.create(create(symbol=PERP, qty=1)))["tdMode"] == "isolated"


def test_op_replies_pong_and_errors(book):
    n = OkxPrivateNormalizer(book)
    assert n.normalize(docs.OKX_LOGIN_OK.frame) == [] and n.normalize(b"pong") == []
    assert n.normalize(b'{"event":"subscribe","arg":{"channel":"account"},"connId":"a"}') == []
    with pytest.raises(MalformedFrame, match="failed: 60009 Login failed"):
        n.normalize(docs.OKX_LOGIN_FAILED.frame)
    bad = json.loads(docs.OKX_ORDER_PUSH.frame)
    bad["data"][0]["state"] = "exploded"
    with pytest.raises(MalformedFrame, match="unknown state 'exploded'"):
        n.normalize(json.dumps(bad).encode())
    bad["data"][0]["state"], bad["data"][0]["fillSz"] = "filled", "x1"
    with pytest.raises(MalformedFrame, match="fillSz is not a number"):
        n.normalize(json.dumps(bad).encode())
    with pytest.raises(MalformedFrame, match="unsupported private channel 'fills'"):
        n.normalize(b'{"arg":{"channel":"fills"},"data":[{}]}')
    with pytest.raises(MalformedFrame):
        n.normalize(b"{not json")


def test_rest_orders_are_states_not_fills(book):
    (o,) = OkxPrivateNormalizer(book).parse_orders(docs.OKX_ORDERS_PENDING.frame, local_ts=1)
    assert (o.symbol, o.order_id, o.status, o.tif, o.price, o.qty) == \
        (SPOT, "1752588852617379840", OrderStatus.NEW, TimeInForce.POST_ONLY, 13013.5, 0.001)
    filled = json.loads(docs.OKX_ORDER_PUSH.frame)
    rest = json.dumps({"code": "0", "msg": "", "data": filled["data"]}).encode()
    (o,) = OkxPrivateNormalizer(book).parse_orders(rest)
    assert (o.filled_qty, o.last_fill_qty, o.fee, o.trade_id) == (0.001, 0.0, 0.0, "")
    with pytest.raises(MalformedFrame, match="failed: 50113 Invalid Sign"):
        OkxPrivateNormalizer(book).parse_balance(b'{"code":"50113","msg":"Invalid Sign","data":[]}')


# ------------------------------------------------------------------ orders


def create(**kw: Any) -> CreateOrder:
    base = {"exchange": "okx", "symbol": SPOT, "local_ts": 1, "client_order_id": "alice-k3j9x0ab1",
            "side": Side.BUY, "qty": 0.01, "price": 30000.0}  # fmt: skip
    return CreateOrder(**{**base, **kw})


def body(req) -> dict:  # noqa: ANN001
    return json.loads(req.body)


def test_spot_order_bodies(book):
    d = OkxOrderDenormalizer(book)
    req = d.create(create())
    assert (req.method, req.path) == ("POST", "/api/v5/trade/order")
    assert body(req) == {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": "aliceZdk3j9x0ab1",
                         "side": "buy", "ordType": "limit", "px": "30000.0", "sz": "0.01000000"}
    for tif, typ in ((TimeInForce.IOC, "ioc"), (TimeInForce.FOK, "fok"),
                     (TimeInForce.POST_ONLY, "post_only")):  # fmt: skip
        assert body(d.create(create(tif=tif)))["ordType"] == typ
    m = body(d.create(create(order_type=OrderType.MARKET, side=Side.SELL, price=0.0)))
    assert (m["ordType"], m["tgtCcy"], m["side"], "px" in m) == ("market", "base_ccy", "sell", False)
    ack = d.create(create(reduce_only=True))
    assert not ack.accepted and "derivatives" in ack.message
    ack = d.create(create(client_order_id="x" * 31 + "-"))
    assert not ack.accepted and "clOrdId" in ack.message
    c = d.cancel(CancelOrder(exchange="okx", symbol=SPOT, local_ts=1, client_order_id="alice-1"))
    assert (c.path, body(c)) == ("/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "aliceZd1"})
    a = d.amend(AmendOrder(exchange="okx", symbol=SPOT, local_ts=1, client_order_id="alice-1",
                           order_id="77", new_price=29999.9, new_qty=0.02))  # fmt: skip
    assert (a.path, body(a)) == ("/api/v5/trade/amend-order",
                                 {"instId": "BTC-USDT", "ordId": "77", "newSz": "0.02000000", "newPx": "29999.9"})


def test_swap_order_body_with_margin_mode(book):
    modes: dict[str, str] = {}
    d = OkxOrderDenormalizer(book, modes)
    b = body(d.create(create(symbol=PERP, qty=2, reduce_only=True, side=Side.SELL)))
    assert (b["instId"], b["tdMode"], b["posSide"], b["reduceOnly"], b["sz"]) == \
        ("BTC-USDT-SWAP", "cross", "net", True, "2.00")
    modes[PERP] = "isolated"
    b = body(d.create(create(symbol=PERP, qty=2, position_side=PositionSide.LONG)))
    assert (b["tdMode"], b["posSide"], "reduceOnly" in b) == ("isolated", "long", False)


def test_acks_from_documented_answers(book):
    d = OkxOrderDenormalizer(book)
    req = d.create(create(client_order_id="oktswap6"))
    ok = d.parse_ack(req, 200, docs.OKX_PLACE_ORDER_OK.frame, 5)
    assert (ok.accepted, ok.order_id, ok.code, ok.action, ok.local_ts) == (True, "312269865356374016", "", OrderAction.CREATE, 5)
    bad = d.parse_ack(req, 200, docs.OKX_PLACE_ORDER_FAILED.frame)
    assert (bad.accepted, bad.code, bad.message) == \
        (False, "51008", "Order failed. Insufficient USDT balance in account.")
    top = d.parse_ack(req, 200, b'{"code":"50102","msg":"Timestamp request expired","data":[]}')
    assert (top.accepted, top.code) == (False, "50102")
    with pytest.raises(ValueError, match="does not match"):
        d.parse_ack(d.create(create()), 200, docs.OKX_PLACE_ORDER_OK.frame)
    with pytest.raises(msgspec.DecodeError, match="unexpected response"):
        d.parse_ack(req, 200, b"<html>")


@given(st.text(alphabet="abcXYZ019-_", min_size=1, max_size=12))
def test_cl_ord_id_round_trip(cid: str):
    wire = to_cl_ord_id(cid)
    assert wire is not None and wire.isalnum() and len(wire) <= 32
    assert from_cl_ord_id(wire) == cid


# ------------------------------------------------------------------ venue: leverage, positions


def venue(book: InstrumentBook, answers: list[Any], market: str = "linear") -> tuple[OkxTrading, FakeRest]:
    cfg = ConnectorConfig(exchange="okx", market=market, symbols=[PERP])
    v = OkxTrading(cfg, creds())
    v.instruments = book
    v.denormalizer = OkxOrderDenormalizer(book, v.margin_modes)
    v.private = OkxPrivateNormalizer(book)
    v.rest = FakeRest(answers)  # type: ignore[assignment]
    return v, v.rest  # type: ignore[return-value]


def lev(leverage: float = 0.0, mode: MarginMode = MarginMode.UNCHANGED, sym: str = PERP) -> SetLeverage:
    return SetLeverage(exchange="okx", symbol=sym, local_ts=1, client_order_id="r-1",
                       leverage=leverage, margin_mode=mode)  # fmt: skip


async def test_set_leverage_and_margin_mode(book):
    v, rest = venue(book, [docs.OKX_SET_LEVERAGE_OK.frame])
    ack = await v.set_leverage(lev(12.5, MarginMode.ISOLATED))
    assert ack.accepted and ack.action == OrderAction.SET_LEVERAGE
    assert rest.sent == [("POST", "/api/v5/account/set-leverage",
                          {"instId": "BTC-USDT-SWAP", "lever": "12.5", "mgnMode": "isolated"})]
    assert body(v.denormalizer.create(create(symbol=PERP, qty=1)))["tdMode"] == "isolated"
    v, rest = venue(book, [{"code": "51000", "msg": "Parameter lever error", "data": []}])
    ack = await v.set_leverage(lev(500))
    assert (ack.accepted, ack.code, ack.message) == (False, "51000", "Parameter lever error")
    assert v.margin_modes == {}
    v, rest = venue(book, [])
    assert (await v.set_leverage(lev(0, MarginMode.CROSS))).accepted and not rest.sent
    ack = await v.set_leverage(lev(5, sym=SPOT))
    assert not ack.accepted and "not a contract market" in ack.message


async def test_flat_position_reads_leverage_info_and_missing_order(book):
    v, rest = venue(book, [{"code": "0", "msg": "", "data": []},
                           {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP",
                                                               "mgnMode": "cross", "posSide": "net",
                                                               "lever": "7"}]},
                           {"code": "51603", "msg": "Order does not exist", "data": []}])  # fmt: skip
    (p,) = await v.positions(PERP)
    assert (p.symbol, p.size, p.leverage) == (PERP, 0.0, 7.0)
    assert [s[1] for s in rest.sent] == ["/api/v5/account/positions", "/api/v5/account/leverage-info"]
    assert await v.query_order(PERP, "alice-1") is None
    assert rest.sent[-1] == ("GET", "/api/v5/trade/order", {"instId": "BTC-USDT-SWAP", "clOrdId": "aliceZd1"})


def test_secrets_never_logged_by_the_signer(caplog):
    from ttxt_mp.secrets import install_redaction, uninstall_redaction

    install_redaction()
    try:
        with caplog.at_level(logging.DEBUG):
            c = creds()
            logging.getLogger("t").warning("frame %s", OkxSigner(c).ws_login(timestamp_s=1))
        assert "my-Passphrase-9" not in caplog.text and "okxKey-0001" not in caplog.text
    finally:
        uninstall_redaction()


# ------------------------------------------------------------------ order entry over the WebSocket


class FakeWs:
    """The logged-in private socket: records the frames sent; ``reply`` answers each one."""

    def __init__(self, v: OkxTrading, reply: Any = None) -> None:
        self.v, self.reply, self.sent = v, reply, []

    async def send(self, req: Any) -> None:
        self.sent.append(req.payload)
        if self.reply is not None:
            frame = self.reply(req.payload)
            asyncio.get_running_loop().call_soon(self.v._op_reply, json.dumps(frame).encode())


async def test_orders_go_over_the_private_websocket_while_it_is_up(book):
    v, rest = venue(book, [docs.OKX_PLACE_ORDER_OK.frame], market="spot")
    req = v.denormalizer.create(create(client_order_id="oktswap6"))
    ack = await v.send(req)  # no socket yet: REST
    assert ack.accepted and rest.sent[0][:2] == ("POST", "/api/v5/trade/order")
    place_ok = json.loads(docs.OKX_PLACE_ORDER_OK.frame)
    ws = FakeWs(v, lambda f: {"id": f["id"], "op": f["op"], **place_ok})
    v._ws = ws  # type: ignore[assignment]
    ack = await v.send(req)
    assert (ack.accepted, ack.order_id) == (True, "312269865356374016")
    (frame,) = ws.sent
    assert (frame["op"], frame["args"], len(rest.sent)) == ("order", [json.loads(req.body)], 1)
    assert int(frame["expTime"]) > time.time_ns() // 1_000_000  # bounds when it can still run
    failed = json.loads(docs.OKX_PLACE_ORDER_FAILED.frame)
    ws.reply = lambda f: {"id": f["id"], "op": f["op"], **failed}
    ack = await v.send(req)
    assert (ack.accepted, ack.code) == (False, "51008")
    cancel = v.denormalizer.cancel(CancelOrder(exchange="okx", symbol=SPOT, local_ts=1,
                                               client_order_id="oktswap6"))  # fmt: skip
    ws.reply = lambda f: {"id": f["id"], "op": f["op"], "code": "0", "msg": "", "data": [
        {"ordId": "1", "clOrdId": "oktswap6", "sCode": "0", "sMsg": ""}]}  # fmt: skip
    assert (await v.send(cancel)).accepted and ws.sent[-1]["op"] == "cancel-order"
    assert v.orders_sent == {"ws": 3, "rest": 1}
    # another client's reply, or a channel push, is not taken for ours
    assert v._op_reply(b'{"id":"zz","op":"order","code":"0","data":[]}') is True
    assert v._op_reply(docs.OKX_ORDER_PUSH.frame) is False


async def test_a_lost_websocket_reply_is_an_unknown_outcome(book):
    v, _ = venue(book, [], market="spot")
    req = v.denormalizer.create(create())
    v._ws = FakeWs(v)  # type: ignore[assignment]  # never answers
    v.ws_reply_timeout_s = 0.2
    with pytest.raises(UnknownOutcome, match="TimeoutError"):
        await v.send(req)
    v.ws_reply_timeout_s = 30.0
    task = asyncio.ensure_future(v.send(req))
    for _ in range(1000):  # until it is sent and waiting (a few loop turns)
        if v._replies:
            break
        await asyncio.sleep(0)
    v._ws_down()  # the socket closed with the operation in flight
    with pytest.raises(UnknownOutcome, match="closed"):
        await task
    assert v._ws is None and not v._replies
