"""Bybit's ``order`` and ``execution`` topics report the same fills independently and in
any order: the connector's private-stream handler (:class:`BybitPrivateStream`) merges
them into one ``OrderUpdate`` per change of the order, one ``FILLED`` with the exact
average price, and counts each ``execId`` once (replays after a reconnect count nothing).

Messages are built from the documented examples (tests/fixtures/trading/bybit.json:
``ws_order``, ``ws_execution``) with the fields of one order filled in ``k`` executions."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.bybit import private as bybit_private
from ttxt_mp.connectors.bybit.private import BybitPrivateStream
from ttxt_mp.events import OrderStatus, OrderUpdate

DOC = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "trading" / "bybit.json").read_text())
OID = "1321003749386327552"
CID = "alice-x1"
T0 = 1_672_364_262_000


def D(x: float | str) -> Decimal:  # noqa: N802
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def enc(msg: dict) -> bytes:
    return json.dumps(msg).encode()


def order_msg(qty: Decimal, cum: Decimal, value: Decimal, fee: Decimal, status: str, n: int,
              *, value_text: str | None = None, avg_text: str | None = None,
              oid: str = OID, price: str = "30000") -> bytes:  # fmt: skip
    """The ``order`` topic after ``n`` fills (cumulative ``cum``/``value``/``fee``)."""
    m = copy.deepcopy(DOC["ws_order"])
    o = m["data"][0]
    o.update(symbol="BTCUSDT", orderId=oid, orderLinkId=CID, side="Buy", orderType="Limit",
             timeInForce="GTC", price=price, qty=str(qty), orderStatus=status, category="spot",
             cumExecQty=str(cum), leavesQty=str(qty - cum) if status != "Filled" else "0",
             cumExecValue=str(value) if value_text is None else value_text,
             avgPrice=(str(value / cum) if cum else "0") if avg_text is None else avg_text,
             cumExecFee=str(fee), feeCurrency="BTC", cumFeeDetail={"BTC": str(fee)} if fee else {},
             updatedTime=str(T0 + 10 * n + 5))  # fmt: skip
    return enc(m)


def exec_msg(order_qty: Decimal, px: Decimal, leaves: Decimal, qty: Decimal, i: int,
             *, oid: str = OID, fee: Decimal = Decimal("0.00001")) -> bytes:  # fmt: skip
    """The ``execution`` topic: one fill of ``qty`` at ``px`` leaving ``leaves``."""
    m = copy.deepcopy(DOC["ws_execution"])
    x = m["data"][0]
    x.update(category="spot", symbol="BTCUSDT", orderId=oid, orderLinkId=CID, side="Buy",
             orderType="Limit", orderPrice="30000", orderQty=str(order_qty), execId=f"{oid}-e{i}",
             execPrice=str(px), execQty=str(qty), execFee=str(fee), feeCurrency="BTC",
             leavesQty=str(leaves), execValue=str(px * qty), execTime=str(T0 + 10 * i))  # fmt: skip
    return enc(m)


def fill_messages(fills: list[tuple[Decimal, Decimal]], variants: list[int]) -> tuple[list[bytes], list[bytes]]:
    """(order messages, execution messages) of one Buy order filled by ``fills``
    ((qty, price) each); ``variants`` picks how each order message states its value."""
    total = sum(q for q, _ in fills)
    orders = [order_msg(total, Decimal(0), Decimal(0), Decimal(0), "New", 0)]
    execs = []
    cum = value = fee = Decimal(0)
    for i, ((q, px), var) in enumerate(zip(fills, variants, strict=True), 1):
        f = (q / 1000).quantize(Decimal("1e-9"))
        cum, value, fee = cum + q, value + q * px, fee + f
        m = copy.deepcopy(DOC["ws_execution"])
        x = m["data"][0]
        x.update(category="spot", symbol="BTCUSDT", orderId=OID, orderLinkId=CID, side="Buy",
                 orderType="Limit", orderPrice="30000", orderQty=str(total), execId=f"e{i}",
                 execPrice=str(px), execQty=str(q), execFee=str(f), feeCurrency="BTC",
                 leavesQty=str(total - cum), execValue=str(px * q), execTime=str(T0 + 10 * i))  # fmt: skip
        execs.append(enc(m))
        status = "Filled" if cum == total else "PartiallyFilled"
        exact_avg = value / cum
        # 0: cumExecValue and avgPrice; 1: avgPrice ""; 2: avgPrice "0";
        # 3: no value at all (cumExecValue "", avgPrice ""); 4: cumExecValue "0", only an
        # avgPrice (used when it is exact, else "0" too)
        value_text, avg_text = [
            (None, None), (None, ""), (None, "0"), ("", ""),
            ("0", str(exact_avg) if exact_avg * cum == value else "0"),
        ][var]  # fmt: skip
        orders.append(order_msg(total, cum, value, fee, status, i, value_text=value_text,
                                avg_text=avg_text))  # fmt: skip
    return orders, execs


def feed(h: BybitPrivateStream, frames: list[bytes]) -> list[OrderUpdate]:
    out: list[OrderUpdate] = []
    for i, f in enumerate(frames):
        out.extend(h.normalize(f, local_ts=i + 1))
    assert all(isinstance(u, OrderUpdate) for u in out)
    return out


def check_merged(updates: list[OrderUpdate], fills: list[tuple[Decimal, Decimal]]) -> None:
    total = sum(q for q, _ in fills)
    value = sum(q * p for q, p in fills)
    lo, hi = min(p for _, p in fills), max(p for _, p in fills)
    assert updates, "nothing published"
    filled = [u for u in updates if u.status == OrderStatus.FILLED]
    assert len(filled) == 1, [(u.status.name, u.filled_qty) for u in updates]
    assert updates[-1] is filled[0], "nothing may follow the FILLED update"
    prev = 0.0
    for u in updates:
        assert u.order_id == OID and u.client_order_id == CID
        assert u.filled_qty >= prev, "filled qty went back"
        prev = u.filled_qty
        if u.filled_qty > 0:
            assert u.avg_price != 0.0, u
            assert float(lo) <= u.avg_price <= float(hi), u
        if u.last_fill_qty:  # the fills this update adds: real ones, at their average
            assert float(lo) <= u.last_fill_price <= float(hi), u
            assert u.fee > 0 and u.fee_asset == "BTC", u
    last = filled[0]
    assert D(last.filled_qty) == total
    assert last.avg_price == float(value / total)
    # the fills a client keeps (TradingClient.fills: last_fill_qty != 0) add up to the order
    assert sum(D(u.last_fill_qty) for u in updates) == total
    got = sum(D(u.last_fill_qty) * D(u.last_fill_price) for u in updates)
    assert abs(got - value) <= value * Decimal("1e-12"), (got, value)


qty_st = st.integers(1, 2000).map(lambda n: Decimal(n).scaleb(-4))  # 0.0001 .. 0.2 BTC
px_st = st.integers(2_500_000, 3_500_000).map(lambda n: Decimal(n).scaleb(-2))  # 25000.00 ..


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[Decimal, Decimal]], list[bytes]]:
    k = draw(st.integers(1, 6), label="k")
    fills = draw(st.lists(st.tuples(qty_st, px_st), min_size=k, max_size=k), label="fills")
    variants = draw(st.lists(st.integers(0, 4), min_size=k, max_size=k), label="variants")
    orders, execs = fill_messages(fills, variants)
    frames = draw(st.permutations(orders + execs), label="interleaving")
    # duplicated executions (a replay after a reconnect), anywhere, also after the end
    for _ in range(draw(st.integers(0, 4), label="duplicates")):
        dup = draw(st.sampled_from(execs))
        frames.insert(draw(st.integers(0, len(frames))), dup)
    return fills, frames


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_interleaving_gives_one_filled_with_the_exact_average(scenario) -> None:
    fills, frames = scenario
    h = BybitPrivateStream()
    updates = feed(h, frames)
    check_merged(updates, fills)
    assert h.active_orders == 0, "a filled order's state is dropped"
    # a replay of everything afterwards publishes nothing
    assert feed(h, frames) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(qty_st, px_st), min_size=1, max_size=6), st.data())
def test_topics_in_their_own_order_interleaved(fills, data) -> None:
    """Each topic keeps its own order (as on one connection); only the interleaving varies."""
    orders, execs = fill_messages(fills, [0] * len(fills))
    picks = data.draw(st.permutations([0] * len(orders) + [1] * len(execs)), label="interleaving")
    queues = [list(orders), list(execs)]
    frames = [queues[p].pop(0) for p in picks]
    check_merged(feed(BybitPrivateStream(), frames), fills)


# ----------------------------------------------------------------------------- cases


def test_execution_then_order_message_is_one_update() -> None:
    q, px = Decimal("0.01"), Decimal("30000.5")
    orders, execs = fill_messages([(q, px)], [0])
    h = BybitPrivateStream()
    (new,) = h.normalize(orders[0], 1)
    assert (new.status, new.filled_qty, new.avg_price, new.last_fill_qty) == (OrderStatus.NEW, 0, 0, 0)
    (u,) = h.normalize(execs[0], 2)
    assert (u.status, u.filled_qty, u.avg_price) == (OrderStatus.FILLED, 0.01, 30000.5)
    assert (u.last_fill_qty, u.last_fill_price, u.trade_id, u.fee, u.fee_asset) == (0.01, 30000.5, "e1", 0.00001, "BTC")
    assert h.normalize(orders[1], 3) == []


def test_order_message_first_carries_the_fill_once() -> None:
    """``avgPrice`` "" on the order message: the average comes from ``cumExecValue``; the
    executions arriving afterwards add nothing."""
    fills = [(Decimal("0.004"), Decimal("30000")), (Decimal("0.006"), Decimal("30010"))]
    orders, execs = fill_messages(fills, [1, 1])
    h = BybitPrivateStream()
    h.normalize(orders[0], 1)
    (u,) = h.normalize(orders[2], 2)  # the last one: Filled, cum 0.01
    assert (u.status, u.filled_qty, u.avg_price) == (OrderStatus.FILLED, 0.01, 30006.0)
    assert (u.last_fill_qty, u.last_fill_price, u.trade_id, u.fee_asset) == (0.01, 30006.0, "", "BTC")
    assert u.fee == pytest.approx(0.00001)
    assert feed(h, execs + orders) == []


def test_a_filled_order_message_without_value_waits_for_the_executions() -> None:
    fills = [(Decimal("0.004"), Decimal("30000")), (Decimal("0.006"), Decimal("30010"))]
    orders, execs = fill_messages(fills, [3, 3])
    h = BybitPrivateStream()
    assert [u.status for u in feed(h, orders)] == [OrderStatus.NEW]  # fills of unknown value
    (a,) = h.normalize(execs[1], 1)
    assert (a.status, a.filled_qty, a.avg_price, a.trade_id) == (OrderStatus.PARTIALLY_FILLED, 0.006, 30010.0, "e2")
    (b,) = h.normalize(execs[0], 2)
    assert (b.status, b.filled_qty, b.avg_price, b.trade_id) == (OrderStatus.FILLED, 0.01, 30006.0, "e1")


def test_avg_price_from_avgprice_when_cumexecvalue_is_missing() -> None:
    orders, _ = fill_messages([(Decimal("0.5"), Decimal("30000"))], [4])
    h = BybitPrivateStream()
    (_, u) = feed(h, orders)
    assert (u.status, u.filled_qty, u.avg_price, u.last_fill_qty) == (OrderStatus.FILLED, 0.5, 30000.0, 0.5)


def test_partial_fill_then_cancel_and_amend() -> None:
    h = BybitPrivateStream()
    total = Decimal("0.02")
    (n,) = h.normalize(order_msg(total, Decimal(0), Decimal(0), Decimal(0), "New", 0), 1)
    (a,) = h.normalize(order_msg(total, Decimal(0), Decimal(0), Decimal(0), "New", 1, price="29990"), 2)
    assert (n.price, a.price, a.status) == (30000.0, 29990.0, OrderStatus.NEW)  # an amendment
    assert h.normalize(order_msg(total, Decimal(0), Decimal(0), Decimal(0), "New", 1, price="29990"), 3) == []
    (p,) = h.normalize(exec_msg(total, Decimal("29990"), Decimal("0.015"), Decimal("0.005"), 2), 4)
    assert (p.status, p.filled_qty, p.avg_price, p.last_fill_qty) == (OrderStatus.PARTIALLY_FILLED, 0.005, 29990.0, 0.005)
    q = Decimal("0.005")
    assert h.normalize(order_msg(total, q, q * 29990, Decimal(0), "PartiallyFilled", 2, price="29990"), 5) == []
    (c,) = h.normalize(order_msg(total, q, q * 29990, Decimal(0), "PartiallyFilledCanceled", 3, price="29990"), 6)
    assert (c.status, c.filled_qty, c.avg_price, c.last_fill_qty) == (OrderStatus.CANCELED, 0.005, 29990.0, 0)
    assert h.active_orders == 0
    assert h.normalize(exec_msg(total, Decimal("29990"), Decimal("0.015"), Decimal("0.005"), 2), 7) == []


def test_a_canceled_order_stays_until_its_reported_fills_are_known() -> None:
    """Canceled after a fill whose execution has not arrived, the order message without its
    value: CANCELED now, the fill (with its price) when the execution comes."""
    h = BybitPrivateStream()
    total, q = Decimal("0.02"), Decimal("0.005")
    h.normalize(order_msg(total, Decimal(0), Decimal(0), Decimal(0), "New", 0), 1)
    (c,) = h.normalize(order_msg(total, q, q * 30000, Decimal(0), "PartiallyFilledCanceled", 3,
                                 value_text="", avg_text=""), 2)  # fmt: skip
    assert (c.status, c.filled_qty, c.avg_price) == (OrderStatus.CANCELED, 0, 0)
    assert h.active_orders == 1
    (f,) = h.normalize(exec_msg(total, Decimal("30000"), Decimal("0.015"), Decimal("0.005"), 2), 3)
    assert (f.status, f.filled_qty, f.avg_price, f.last_fill_qty) == (OrderStatus.CANCELED, 0.005, 30000.0, 0.005)
    assert h.active_orders == 0


def test_execution_only_documented_example_and_funding() -> None:
    h = BybitPrivateStream()
    (u,) = h.normalize(enc(DOC["ws_execution"]), 1)
    assert (u.status, u.filled_qty, u.avg_price, u.last_fill_qty, u.last_fill_price) == (OrderStatus.FILLED, 25.0, 0.3374, 25.0, 0.3374)
    assert (u.fee, u.trade_id, u.price, u.qty) == (0.005061, "7e2ae69c-4edf-5800-a352-893d52b446aa", 0.3207, 25.0)
    m = copy.deepcopy(DOC["ws_execution"])
    m["data"][0].update(execType="Funding", orderId="other")
    assert h.normalize(enc(m), 1) == []
    (o,) = BybitPrivateStream().normalize(enc(DOC["ws_order"]), 1)
    assert (o.status, o.filled_qty, o.avg_price, o.fee) == (OrderStatus.FILLED, 1.0, 75.0, 0.358635)


def test_a_malformed_frame_changes_nothing() -> None:
    from ttxt_mp.connectors.normalizer import MalformedFrame

    orders, execs = fill_messages([(Decimal("0.01"), Decimal("30000"))], [0])
    m = msgspec.json.decode(execs[0])
    bad = copy.deepcopy(m["data"][0])
    bad.update(execId="bad", execPrice="abc")
    m["data"].append(bad)
    h = BybitPrivateStream()
    with pytest.raises(MalformedFrame, match="execPrice"):
        h.normalize(enc(m), 1)
    (u,) = h.normalize(execs[0], 2)  # the good execution of that frame was not half-applied
    assert u.status == OrderStatus.FILLED and u.filled_qty == 0.01


def test_memory_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(bybit_private, "RECENT_FINISHED", 50)
    monkeypatch.setattr(bybit_private, "MAX_ACTIVE_ORDERS", 20)
    h = BybitPrivateStream()
    q, px = Decimal("0.01"), Decimal("30000")
    for i in range(200):
        oid = f"o{i}"
        h.normalize(order_msg(q, Decimal(0), Decimal(0), Decimal(0), "New", 0, oid=oid), 1)
        (u,) = h.normalize(exec_msg(q, px, Decimal(0), q, i, oid=oid), 2)
        assert u.status == OrderStatus.FILLED
        assert h.normalize(exec_msg(q, px, Decimal(0), q, i, oid=oid), 3) == []
    assert h.active_orders == 0 and len(h._finished) == 50
    for i in range(100):  # orders that never finish (e.g. closed while the stream was down)
        h.normalize(order_msg(q, Decimal(0), Decimal(0), Decimal(0), "New", 0, oid=f"n{i}"), 1)
    assert h.active_orders == 20
