"""The trading core without HTTP: determinism for a seed, account parsing, CLI wiring."""

from __future__ import annotations

from decimal import Decimal

import pytest
from st_helpers import KEY, make_sim

from ttxt_mp.events import OrderType, Side, TimeInForce
from ttxt_mp.sim.__main__ import build, parse_args
from ttxt_mp.sim.trading import AccountSpec, parse_account


def run_script() -> list[tuple]:
    """Same seed, same commands and steps -> the same fills and book."""
    sim = make_sim()
    core = sim.trading["binance"]
    out = []
    for i in range(30):
        sim.advance(5)
        side = Side.BUY if i % 2 else Side.SELL
        mid = core.mid("BTCUSDT")
        off = Decimal(30) if i % 3 == 0 else Decimal(-2)  # every third order crosses the spread
        price = (mid + (off if side == Side.BUY else -off)).quantize(Decimal("0.01"))
        r = core.place(KEY, "BTCUSDT", side, Decimal("0.01"), price, OrderType.LIMIT, TimeInForce.GTC, "")
        out.append((r.accepted, tuple((f.price, f.qty) for f in r.fills)))
    sim.advance(200)
    out.append(tuple(sorted(core.wallet(KEY).items())))
    out.append(sim.truth("binance", "BTCUSDT", 5).bids[0])
    return out


def test_deterministic_for_a_seed() -> None:
    a, b = run_script(), run_script()
    assert a == b
    assert any(fills for _, fills in a[:-2])  # it did trade


def test_parse_account_and_errors_name_the_cause() -> None:
    spec = parse_account("k1:s1:USDT=10000,btc=1.5")
    assert spec == AccountSpec("k1", "s1", {"USDT": "10000", "BTC": "1.5"})
    assert "s1" not in repr(spec)  # the secret never prints
    assert parse_account("k:s").balances == {}
    with pytest.raises(ValueError, match="KEY:SECRET"):
        parse_account("onlykey")
    with pytest.raises(ValueError, match="ASSET=AMOUNT"):
        parse_account("k:s:USDT")
    with pytest.raises(ValueError, match="not a decimal"):
        parse_account("k:s:USDT=lots")
    with pytest.raises(ValueError, match=">= 0"):
        parse_account("k:s:USDT=-1")


def test_cli_builds_accounts_on_every_venue() -> None:
    sim = build(parse_args(["--account", "ck:cs:USDT=7", "--maker-fee", "0.0002", "--paused"]))
    for core in sim.trading.values():
        assert core.wallet("ck") == {"USDT": (Decimal(7), Decimal(0))}
        assert core.maker_fee == Decimal("0.0002")
    with pytest.raises(ValueError, match="--account"):  # one CLI line, exit 2
        build(parse_args(["--account", "bad"]))


def test_duplicate_key_is_refused() -> None:
    sim = make_sim()
    with pytest.raises(ValueError, match="already registered"):
        sim.trading["bybit"].add_account(AccountSpec(KEY, "x"))
