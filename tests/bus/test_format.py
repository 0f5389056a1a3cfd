import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis_server import RedisServer

from ttxt_mp.bus import format as bf
from ttxt_mp.events import ConnectorState, ConnectorStatus, MarketTrades, Side, Trade


def _trades(n: int) -> MarketTrades:
    return MarketTrades(exchange="binance", symbol="BTC/USDT", exch_ts=n, local_ts=n + 1,
                        trades=tuple(Trade(id=str(i), price=100.0 + i, qty=0.5, side=Side.BUY, ts=n)
                                     for i in range(n % 4)))


@given(st.lists(st.integers(0, 10**12), max_size=20))
def test_entry_round_trip(ts):
    evs = [_trades(t) for t in ts]
    fields = bf.encode_entry(bf.codec.encode(e) for e in evs)
    items = bf.decode_entry(fields)
    assert [bf.codec.decode(k, p) for k, p in items] == evs


def test_foreign_layout_refused():
    fields = bf.encode_entry([bf.codec.encode(_trades(3))])
    fields[b"v"] = b"1:0000000000000000"
    with pytest.raises(bf.BusLayoutError, match="refusing to decode"):
        bf.decode_entry(fields, "ttxt:e:ring:x 1-0")


def test_truncated_entry_refused():
    fields = bf.encode_entry([bf.codec.encode(_trades(3))])
    fields[b"e"] = fields[b"e"][:-1]
    with pytest.raises(bf.BusLayoutError, match="truncated"):
        bf.decode_entry(fields)


def test_state_field_one_per_key():
    a = ConnectorStatus(exchange="x", symbol="", exch_ts=0, local_ts=0,
                        state=ConnectorState.UP)
    assert bf.state_field(a) == bf.state_field(a)
    assert bf.state_field(a) != bf.state_field(_trades(1))


def test_server_fixture_answers():
    with RedisServer() as srv:
        assert srv.ping()
    assert not srv.ping()
