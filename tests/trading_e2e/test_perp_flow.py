"""Perpetuals end to end: a client trades a USDT perpetual through a connector process
(market ``linear``) on each simulated venue. Leverage is set through the command ring,
orders open, reduce and close a position (a reduce-only order never goes beyond it),
funding is paid, and what the client sees adds up: the last ``PositionUpdate`` is the sum
of the signed fills at their average entry price, and the wallet balance (free + locked)
moved by exactly realized PnL - fees + funding. A restarted connector reconciles the
position over REST."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from ttxt_mp.events import MarginMode, OrderAction, OrderStatus, Side
from ttxt_mp.trading_client import TradingClient

from .helpers import (
    KEY,
    PASSPHRASE,
    SECRET,
    TIMINGS,
    SimThread,
    creds_env,
    totals,
    until,
    wait_reconciled,
    write_config,
)

SYM = "BTC/USDT:USDT"
NATIVE = "BTCUSDT"
START = Decimal(20000)
DEPTH = {"binance": 1000, "bybit": 50, "okx": 400}


class PerpSim(SimThread):
    def __init__(self) -> None:
        super(SimThread, self).__init__(
            symbols={"binance_linear": [NATIVE], "bybit_linear": [NATIVE], "okx_linear": [NATIVE]},
            seed=33, timings=TIMINGS, paused=True,
            accounts={KEY: (SECRET, {"USDT": str(START)}, PASSPHRASE)})


@pytest.fixture
def psim() -> Iterator[PerpSim]:
    with PerpSim() as s:
        yield s


def D(x: float) -> Decimal:  # noqa: N802
    return Decimal(repr(x))


def replay(fills: list) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(size, entry, realized PnL, fees) of a one-way position built from the fills, the
    way the venues document it: an average entry price, PnL on the closed part."""
    size = entry = realized = fees = Decimal(0)
    for f in fills:
        q = D(f.last_fill_qty) * (1 if f.side == Side.BUY else -1)
        p = D(f.last_fill_price)
        fees += D(f.fee)
        if size == 0 or (size > 0) == (q > 0):
            entry = (abs(size) * entry + abs(q) * p) / (abs(size) + abs(q))
            size += q
        else:
            closed = min(abs(q), abs(size))
            realized += closed * (p - entry) * (1 if size > 0 else -1)
            flipped = abs(q) > abs(size)
            size += q
            entry = p if flipped else (entry if size else Decimal(0))
    return size, entry, realized, fees


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
def test_perpetual_position_wallet_and_funding_add_up(venue, psim, engine) -> None:
    urls = psim.sim.urls.venues[f"{venue}_linear"]
    cfg = write_config(engine.tmp / "c.toml", engine.name, venue, urls, market="linear",
                       name=f"{venue}_perp", symbol=SYM, depth=DEPTH[venue])
    conn = engine.connector(f"{venue}_perp", cfg, creds_env()).start()
    tc = TradingClient(engine.name, "alice", connectors={venue: f"{venue}_perp"})
    engine.closers.append(tc.close)
    wait_reconciled(tc, venue)
    assert totals(tc, f"{venue}_perp") == {"USDT": START}
    core = psim.sim.trading[f"{venue}_linear"]

    # leverage and margin mode through the command ring
    rid = tc.set_leverage(venue, SYM, 20, MarginMode.ISOLATED)
    ack = tc.wait_ack(rid, 10)
    assert ack.accepted and ack.action == OrderAction.SET_LEVERAGE, ack
    assert psim.call(lambda: (core.position(KEY, NATIVE).leverage,
                              core.position(KEY, NATIVE).margin_mode)) == (20, "ISOLATED")
    bad = tc.set_leverage(venue, SYM, 1000)
    ack = tc.wait_ack(bad, 10)
    assert not ack.accepted and ack.code and ack.message, ack

    # reduce-only with nothing to reduce: the venue's refusal
    ro = tc.create_order(venue, SYM, Side.SELL, 0.01, reduce_only=True)
    ack = tc.wait_ack(ro, 10)
    assert not ack.accepted and ack.code, ack

    def filled(cid: str) -> bool:
        o = tc.orders.get(cid)
        return o is not None and o.status in (OrderStatus.FILLED, OrderStatus.CANCELED,
                                              OrderStatus.EXPIRED)  # fmt: skip

    def run(side: Side, qty: float, **kw: Any) -> str:
        cid = tc.create_order(venue, SYM, side, qty, **kw)
        ack = tc.wait_ack(cid, 10)
        assert ack.accepted, ack
        until(lambda: filled(cid), 10, f"{cid} to finish", tc)
        return cid

    run(Side.BUY, 0.02)  # open long
    run(Side.BUY, 0.01)  # add
    run(Side.SELL, 0.005)  # reduce
    last = run(Side.SELL, 0.05, reduce_only=True)  # close: never beyond the position
    assert tc.orders[last].filled_qty == pytest.approx(0.025)
    run(Side.SELL, 0.015)  # open short
    psim.call(lambda: core.fund_now(rate="0.0004"))  # shorts receive
    funding = psim.call(lambda: core.position(KEY, NATIVE).funding)
    assert funding > 0

    size, entry, realized, fees = replay(tc.fills)
    assert size == Decimal("-0.015")

    def settled() -> bool:
        p = tc.position(venue, SYM)
        total = totals(tc, f"{venue}_perp").get("USDT")
        return (p is not None and D(p.size) == size and total is not None
                and abs(total - (START + realized - fees + funding)) < Decimal("1e-6"))

    until(settled, 10, "position and wallet to add up", tc)
    p = tc.position(venue, SYM)
    assert abs(D(p.entry_price) - entry) < Decimal("1e-6") and p.leverage == 20
    assert all(f.fee_asset == "USDT" and f.fee > 0 for f in tc.fills)
    late = TradingClient(engine.name, "bob", connectors={venue: f"{venue}_perp"})
    engine.closers.append(late.close)
    until(lambda: late.position(venue, SYM) is not None
          and D(late.position(venue, SYM).size) == size, 10, "a late client's position", late)

    # a restarted connector reads the position back over REST
    conn.stop()
    before = sum(1 for s in tc.statuses if s.message.startswith("trading: reconciled"))
    tc.positions.clear()
    conn.start()
    wait_reconciled(tc, venue, after=before, timeout=30)
    until(lambda: tc.position(venue, SYM) is not None, 10, "the reconciled position", tc)
    p = tc.position(venue, SYM)
    assert D(p.size) == size and p.leverage == 20
    assert conn.proc.poll() is None
