"""A client process trades through a connector process on each simulated venue: places,
amends and cancels orders, sees acks, partial and full fills, and a wallet that adds up
(balances before + fills - fees = balances after)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ttxt_mp.events import OrderAction, OrderStatus, Side, TimeInForce
from ttxt_mp.trading_client import TradingClient

from .helpers import creds_env, totals, until, wait_reconciled, write_config

SYM = "BTC/USDT"


def D(x: float) -> Decimal:  # noqa: N802
    return Decimal(repr(x))


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
def test_place_amend_cancel_fills_and_wallet_add_up(venue, simt, engine) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, venue, simt.urls(venue))
    conn = engine.connector(venue, cfg, creds_env()).start()
    tc = TradingClient(engine.name, "alice")
    engine.closers.append(tc.close)
    wait_reconciled(tc, venue)
    before = totals(tc, venue)
    assert before == {"USDT": Decimal("100000"), "BTC": Decimal("2")}
    bid, _, ask, ask_qty = simt.best(venue)

    # a resting order, amended (price, then quantity) and canceled
    cid = tc.create_order(venue, SYM, Side.BUY, 0.01, price=float(bid - 100))
    ack = tc.wait_ack(cid, 10)
    assert ack.accepted and ack.action == OrderAction.CREATE and ack.order_id, ack
    until(lambda: cid in tc.open_orders, 5, "the NEW order update", tc)
    tc.amend_order(venue, SYM, cid, new_price=float(bid - 101))
    ack = tc.wait_ack(cid, 10)
    assert ack.accepted and ack.action == OrderAction.AMEND, ack
    until(lambda: tc.open_orders.get(cid) and tc.open_orders[cid].price == float(bid - 101), 5,
          "the amended price", tc)
    tc.amend_order(venue, SYM, cid, new_qty=0.005)
    assert tc.wait_ack(cid, 10).accepted
    until(lambda: tc.open_orders.get(cid) and tc.open_orders[cid].qty == 0.005, 5,
          "the amended quantity", tc)
    tc.cancel_order(venue, SYM, cid)
    ack = tc.wait_ack(cid, 10)
    assert ack.accepted and ack.action == OrderAction.CANCEL, ack
    until(lambda: cid not in tc.open_orders and tc.orders[cid].status == OrderStatus.CANCELED,
          5, "the cancel", tc)

    # a partial fill: buy more than the best ask level holds, at its price; then cancel
    qty = float(ask_qty + Decimal("0.01"))
    part = tc.create_order(venue, SYM, Side.BUY, qty, price=float(ask))
    assert tc.wait_ack(part, 10).accepted
    until(lambda: tc.orders.get(part) is not None
          and tc.orders[part].status == OrderStatus.PARTIALLY_FILLED, 5, "a partial fill", tc)
    tc.cancel_order(venue, SYM, part)
    assert tc.wait_ack(part, 10).accepted
    # a full fill: a small market sell, and an IOC buy across the book
    full = tc.create_order(venue, SYM, Side.SELL, 0.002)
    assert tc.wait_ack(full, 10).accepted
    ioc = tc.create_order(venue, SYM, Side.BUY, 0.001, price=float(ask + 50), tif=TimeInForce.IOC)
    assert tc.wait_ack(ioc, 10).accepted
    until(lambda: all(tc.orders.get(c) is not None and tc.orders[c].status == OrderStatus.FILLED
                      for c in (full, ioc)), 5, "full fills", tc)
    assert tc.outstanding == 0 and not tc.open_orders

    def expected() -> dict[str, Decimal]:
        out = dict(before)
        for f in tc.fills:
            q, p = D(f.last_fill_qty), D(f.last_fill_price)
            sign = 1 if f.side == Side.BUY else -1
            out["BTC"] += sign * q
            out["USDT"] -= sign * q * p
            out[f.fee_asset] -= D(f.fee)
        return out

    fills = {f.client_order_id for f in tc.fills}
    assert fills == {part, full, ioc}, fills
    assert all(f.fee > 0 and f.fee_asset for f in tc.fills)
    until(lambda: all(abs(totals(tc, venue)[a] - v) < Decimal("1e-8")
                      for a, v in expected().items()), 5, "the wallet to add up", tc)
    assert totals(tc, venue)["BTC"] != before["BTC"]
    assert conn.proc.poll() is None, "the connector must still run"
