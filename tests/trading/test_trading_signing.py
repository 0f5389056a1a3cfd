"""Known-answer tests from the venues' published signing examples, plus wire-exactness."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess

import msgspec
import pytest

from ttxt_mp.connectors.binance.auth import (
    API_KEY_HEADER,
    BinanceSigner,
    ServerClock,
    encode_query,
    hmac_sha256_hex,
)
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.secrets import Credentials, Secret

# Binance Spot docs, "SIGNED Endpoint Examples for POST /api/v3/order" (REST) and
# "SIGNED request example (HMAC)" (WebSocket API): example key pair.
BN_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BN_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BN_TS = 1499827319559
BN_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
BN_SIG_QUERY = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
BN_SIG_MIXED = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
BN_SIG_NON_ASCII = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
BN_WS_SIG_ASCII = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
BN_WS_SIG_NON_ASCII = "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"


class Parts(msgspec.Struct):
    """Same fields as the REST assistant's RequestParts."""

    method: str
    url: str
    path: str
    query: str
    body: bytes | None
    headers: dict[str, str]


@pytest.fixture
def bn() -> BinanceSigner:
    return BinanceSigner(Credentials(Secret(BN_KEY), Secret(BN_SECRET)), recv_window_ms=5000)


def test_binance_rest_query_kat(bn):
    query, body = bn.sign_parts(BN_QUERY, None, timestamp_ms=BN_TS)
    assert query == f"{BN_QUERY}&recvWindow=5000&timestamp={BN_TS}&signature={BN_SIG_QUERY}"
    assert body is None
    assert "?" not in query and query.count("signature=") == 1


def test_binance_rest_doc_payload_kat(bn):
    payload = f"{BN_QUERY}&recvWindow=5000&timestamp={BN_TS}"
    assert bn.signature(payload) == BN_SIG_QUERY
    assert _openssl_or_hmac(BN_SECRET, payload) == BN_SIG_QUERY


def test_binance_rest_mixed_query_and_body_kat(bn):
    """Example 3: totalParams = query + body with no '&' between them."""
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    assert bn.signature(query.encode() + body) == BN_SIG_MIXED
    # our signer appends the timing to the body when there is one; same doc rule
    q2, b2 = bn.sign_parts(query, b"quantity=1&price=0.1", timestamp_ms=BN_TS)
    assert q2 == query
    signed_part, _, sig = b2.rpartition(b"&signature=")
    assert sig.decode() == hmac_sha256_hex(BN_SECRET, query.encode() + signed_part)


def test_binance_rest_non_ascii_percent_encoded_kat(bn):
    params = {
        "symbol": "１２３４５６", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "1", "price": "0.1", "recvWindow": "5000", "timestamp": str(BN_TS),
    }  # fmt: skip
    out, body, headers = bn.sign("POST", "/api/v3/order", params, None, {}, timestamp_ms=BN_TS)
    assert encode_query(params).startswith("symbol=%EF%BC%91%EF%BC%92")
    assert out["signature"] == BN_SIG_NON_ASCII
    assert list(out)[-1] == "signature"
    assert headers[API_KEY_HEADER] == BN_KEY


def test_binance_dict_sign_matches_query_kat(bn):
    params = dict(p.split("=") for p in BN_QUERY.split("&"))
    out, _, _ = bn.sign("POST", "/api/v3/order", params, None, None, timestamp_ms=BN_TS)
    assert encode_query({k: v for k, v in out.items() if k != "signature"}) == (
        f"{BN_QUERY}&recvWindow=5000&timestamp={BN_TS}"
    )
    assert out["signature"] == BN_SIG_QUERY


def test_binance_request_parts_interface(bn):
    bn.clock.set_offset(0)
    parts = Parts("POST", "https://x/api/v3/order", "/api/v3/order", BN_QUERY, None, {})
    signed = bn(parts)
    assert signed.headers[API_KEY_HEADER] == BN_KEY
    q, _, sig = signed.query.rpartition("&signature=")
    assert q.startswith(BN_QUERY + "&recvWindow=5000&timestamp=")
    assert sig == hmac_sha256_hex(BN_SECRET, q)
    assert parts.query == BN_QUERY  # input untouched (retries re-sign fresh parts)


def test_binance_refuses_double_signing_and_leading_question_mark(bn):
    with pytest.raises(ValueError, match="already signed"):
        bn.sign_parts(f"{BN_QUERY}&signature=abc", None)
    with pytest.raises(ValueError, match="'\\?'"):
        bn.sign_parts("?" + BN_QUERY, None)


def test_binance_empty_query_has_no_leading_ampersand(bn):
    q, _ = bn.sign_parts("", None, timestamp_ms=BN_TS)
    assert q.startswith(f"recvWindow=5000&timestamp={BN_TS}&signature=")


def test_binance_recv_window_bounds():
    c = Credentials(Secret(BN_KEY), Secret(BN_SECRET))
    with pytest.raises(ValueError, match="recvWindow"):
        BinanceSigner(c, recv_window_ms=60_001)
    q, _ = BinanceSigner(c, recv_window_ms=None).sign_parts("", None, timestamp_ms=1)
    assert "recvWindow" not in q


def test_binance_ws_api_kat_ascii(bn):
    params = {
        "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "0.01000000", "price": "52000.00", "recvWindow": 100,
        "timestamp": 1645423376532, "apiKey": BN_KEY,
    }  # fmt: skip
    assert bn.ws_payload(params) == (
        f"apiKey={BN_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
        "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert bn.sign_ws_params(params)["signature"] == BN_WS_SIG_ASCII


def test_binance_ws_api_kat_non_ascii(bn):
    params = {
        "symbol": "１２３４５６", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "1.00000000", "price": "0.10000000", "recvWindow": 5000,
        "timestamp": 1645423376532, "apiKey": BN_KEY,
    }  # fmt: skip
    assert bn.sign_ws_params(params)["signature"] == BN_WS_SIG_NON_ASCII


def test_binance_user_data_subscribe_request(bn):
    req = bn.user_data_subscribe_request("sub-1", timestamp_ms=1645423376532)
    assert req["method"] == "userDataStream.subscribe.signature"
    p = req["params"]
    assert p["apiKey"] == BN_KEY and p["timestamp"] == 1645423376532
    payload = f"apiKey={BN_KEY}&recvWindow=5000&timestamp=1645423376532"
    assert p["signature"] == hmac_sha256_hex(BN_SECRET, payload)


def test_server_clock_offset_from_round_trip_midpoint():
    now = [10_000 * 1_000_000]
    clock = ServerClock(lambda: now[0])
    # sent at 1000 ms, answered at 1100 ms, server said 3050 ms -> offset 2000 ms
    assert clock.update(3050, 1000 * 1_000_000, 1100 * 1_000_000) == 2000
    assert clock.now_ms() == 12_000
    signer = BinanceSigner(Credentials(Secret(BN_KEY), Secret(BN_SECRET)), clock=clock)
    q, _ = signer.sign_parts("", None)
    assert q.startswith("recvWindow=5000&timestamp=12000&")
    with pytest.raises(ValueError):
        clock.update(1, 2, 1)


# ----------------------------------------------------------------------------- Bybit

# Bybit v5 "Integration Guidance": documented strings to sign. The docs print example
# signatures but not the secret that produced them, so the HMAC step is cross-checked
# against OpenSSL (an independent implementation) instead.
BB_KEY = "XXXXXXXXXX"
BB_GET_TS, BB_GET_QUERY = 1658384314791, "category=option&symbol=BTC-29JUL22-25000-C"
BB_GET_PLAIN = "1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C"
BB_POST_TS, BB_POST_BODY = 1658385579423, b'{"category": "option"}'
BB_POST_PLAIN = '1658385579423XXXXXXXXXX5000{"category": "option"}'
BB_SECRET = "bybit-test-secret-0123456789"


@pytest.fixture
def bb() -> BybitSigner:
    return BybitSigner(Credentials(Secret(BB_KEY), Secret(BB_SECRET)), recv_window_ms=5000)


def _openssl_or_hmac(secret: str, payload: str) -> str:
    if shutil.which("openssl") is None:
        return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return _openssl_hmac(secret, payload)


def _openssl_hmac(secret: str, payload: str) -> str:
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret],
        input=payload.encode(), capture_output=True, check=True, timeout=10,
    ).stdout.decode()
    return out.strip().split("= ")[-1]


def test_bybit_documented_plaintexts(bb):
    assert bb.plaintext(BB_GET_TS, BB_GET_QUERY) == BB_GET_PLAIN
    assert bb.plaintext(BB_POST_TS, BB_POST_BODY.decode()) == BB_POST_PLAIN


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_bybit_signature_matches_openssl(bb):
    for ts, payload, plain in ((BB_GET_TS, BB_GET_QUERY, BB_GET_PLAIN),
                               (BB_POST_TS, BB_POST_BODY.decode(), BB_POST_PLAIN)):  # fmt: skip
        assert bb.signature(ts, payload) == _openssl_hmac(BB_SECRET, plain)


def test_bybit_get_and_post_headers(bb):
    _, _, h = bb.sign("GET", "/v5/order/realtime", {"category": "option",
                      "symbol": "BTC-29JUL22-25000-C"}, None, {}, timestamp_ms=BB_GET_TS)  # fmt: skip
    assert h["X-BAPI-API-KEY"] == BB_KEY
    assert h["X-BAPI-TIMESTAMP"] == str(BB_GET_TS)
    assert h["X-BAPI-RECV-WINDOW"] == "5000"
    assert h["X-BAPI-SIGN-TYPE"] == "2"
    expected = hmac.new(BB_SECRET.encode(), BB_GET_PLAIN.encode(), hashlib.sha256).hexdigest()
    assert h["X-BAPI-SIGN"] == expected
    _, body, h = bb.sign("POST", "/v5/order/create", None, BB_POST_BODY, {}, timestamp_ms=BB_POST_TS)
    assert body == BB_POST_BODY  # signed and sent byte for byte (no re-encoding)
    assert h["X-BAPI-SIGN"] == hmac_sha256_hex(BB_SECRET, BB_POST_PLAIN)
    assert h["Content-Type"] == "application/json"


def test_bybit_request_parts_interface_signs_exact_body(bb):
    body = b'{"category":"spot","symbol":"BTCUSDT"}'
    parts = Parts("POST", "https://x/v5/order/cancel", "/v5/order/cancel", "", body, {})
    signed = bb(parts)
    ts = int(signed.headers["X-BAPI-TIMESTAMP"])
    assert signed.body is body
    assert signed.headers["X-BAPI-SIGN"] == bb.signature(ts, body.decode())


def test_bybit_refuses_query_on_post_and_body_on_get(bb):
    with pytest.raises(ValueError, match="JSON body"):
        bb.sign("POST", "/v5/order/create", {"a": "1"}, b"{}", {})
    with pytest.raises(ValueError, match="no body"):
        bb.sign("GET", "/v5/order/realtime", None, b"{}", {})


def test_bybit_ws_auth_frame(bb):
    frame = bb.ws_auth(expires_ms=1662350400000, req_id="10001")
    assert frame["op"] == "auth" and frame["req_id"] == "10001"
    key, expires, sig = frame["args"]
    assert (key, expires) == (BB_KEY, 1662350400000)
    assert sig == hmac_sha256_hex(BB_SECRET, "GET/realtime1662350400000")


def test_bybit_ws_auth_expiry_uses_server_clock():
    clock = ServerClock(lambda: 1_000 * 1_000_000)
    clock.set_offset(500)
    s = BybitSigner(Credentials(Secret(BB_KEY), Secret(BB_SECRET)), clock=clock)
    assert s.ws_auth(valid_for_ms=10_000)["args"][1] == 11_500
