"""Bybit reports a fill on two private topics (``execution`` and ``order``): a client
trading through the connector process sees it once, as one ``FILLED`` order update whose
``avg_price`` is the venue's (cumulative quote / cumulative qty), and the fills it keeps
(``TradingClient.fills``) add up to the order."""

from __future__ import annotations

from decimal import Decimal

from ttxt_mp.events import OrderStatus, OrderUpdate, Side, TimeInForce
from ttxt_mp.trading_client import TradingClient

from .helpers import creds_env, until, wait_reconciled, write_config

SYM = "BTC/USDT"
VENUE = "bybit"


def D(x: float) -> Decimal:  # noqa: N802
    return Decimal(repr(x))


class Updates:
    def __init__(self) -> None:
        self.seen: list[OrderUpdate] = []

    def on_order_update(self, e: OrderUpdate) -> None:
        self.seen.append(e)


def test_a_fill_across_levels_is_one_filled_update_with_the_venues_average(simt, engine) -> None:
    cfg = write_config(engine.tmp / "c.toml", engine.name, VENUE, simt.urls(VENUE))
    conn = engine.connector(VENUE, cfg, creds_env()).start()
    h = Updates()
    tc = TradingClient(engine.name, "alice", handler=h)
    engine.closers.append(tc.close)
    wait_reconciled(tc, VENUE)
    bid, _, ask, ask_qty = simt.best(VENUE)

    # more than the best ask level holds, through the next levels: several executions
    qty = ask_qty + Decimal("0.001")
    cid = tc.create_order(VENUE, SYM, Side.BUY, float(qty), price=float(ask + 200),
                          tif=TimeInForce.IOC)  # fmt: skip
    assert tc.wait_ack(cid, 10).accepted
    until(lambda: tc.orders.get(cid) is not None and tc.orders[cid].status == OrderStatus.FILLED,
          10, "the fill", tc)  # fmt: skip
    # A later order's first update: everything the venue sent about the first is read by now
    # (one stream, in order).
    rest = tc.create_order(VENUE, SYM, Side.BUY, 0.001, price=float(bid - 100))
    assert tc.wait_ack(rest, 10).accepted
    until(lambda: rest in tc.open_orders, 10, "the resting order's update", tc)

    core = simt.sim.trading[VENUE]
    rec = simt.call(lambda: next(r.last for r in core.orders.values() if r.last.client_order_id == cid))
    assert rec.filled_qty == qty
    venue_avg = rec.cum_quote / rec.filled_qty

    mine = [u for u in h.seen if u.client_order_id == cid]
    filled = [u for u in mine if u.status == OrderStatus.FILLED]
    assert len(filled) == 1, [(u.status.name, u.filled_qty, u.avg_price) for u in mine]
    assert mine[-1] is filled[0]
    assert D(filled[0].filled_qty) == qty
    assert filled[0].avg_price == float(venue_avg), (filled[0].avg_price, venue_avg)
    assert all(u.avg_price > 0 for u in mine if u.filled_qty > 0), mine

    fills = [f for f in tc.fills if f.client_order_id == cid]
    assert len(fills) >= 2, fills  # it did take more than one level
    assert [f.status for f in fills].count(OrderStatus.FILLED) == 1
    assert fills[-1].status == OrderStatus.FILLED and fills[-1].avg_price == float(venue_avg)
    assert sum(D(f.last_fill_qty) for f in fills) == qty
    got = sum(D(f.last_fill_qty) * D(f.last_fill_price) for f in fills)
    assert abs(got - rec.cum_quote) < Decimal("1e-6"), (got, rec.cum_quote)
    assert len({f.trade_id for f in fills}) == len(fills) and all(f.trade_id for f in fills)
    assert all(f.fee > 0 and f.fee_asset == "BTC" for f in fills)
    assert conn.proc.poll() is None, "the connector must still run"
