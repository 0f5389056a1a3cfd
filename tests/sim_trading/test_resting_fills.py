"""The synthetic flow meets resting user orders like a venue's incoming orders do: best
price first, then queue order (a user's order behind the synthetic size that was at its
price when it was placed); the fills are public trades and private fills at the user's
price with the maker fee. Hand-built books, so every number is computed by hand."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim import Rates
from ttxt_mp.sim.book import Book
from ttxt_mp.sim.market import BookEvent, Market, Trade
from ttxt_mp.sim.matching import Result
from ttxt_mp.sim.specs import SymbolSpec
from ttxt_mp.sim.trading import AccountSpec, TradingCore

SYM = "TESTUSDT"
KEY = "restingKey01"
D = Decimal
TS = 1_700_000_000_000


class Venue:
    """A market with a hand-built book (bids 99.99 down, asks 100.01 up, 30 levels of
    10 lots = 0.1 TEST each), a trading core on it, and what both publish."""

    def __init__(self) -> None:
        spec = SymbolSpec(SYM, "TEST", "USDT", "0.01", "0.01", 100.0, 0.1)
        self.m = Market(spec, Rates(updates_per_sec=0, trades_per_sec=0, levels=30,
                                    max_levels=100), seed=1)  # fmt: skip
        self.m.book = Book()
        for i in range(30):
            self.m.book.bids.set(9999 - i, 10)
            self.m.book.asks.set(10001 + i, 10)
        assert self.m.mid == 10000.0  # in ticks
        self.core = TradingCore({SYM: self.m}, maker_fee="0.001", taker_fee="0.002",
                                clock_ns=lambda: TS * 1_000_000)  # fmt: skip
        self.core.add_account(AccountSpec(KEY, "s", {"USDT": "1000", "TEST": "10"}))
        self.books: list[BookEvent] = []
        self.trades: list[Trade] = []
        self.private: list[Result] = []
        self.m.book_listeners.append(self.books.append)
        self.m.trade_listeners.append(self.trades.extend)
        self.core.listeners.append(self.private.append)

    def bid(self, price: str, qty: str) -> int:
        r = self.core.place(KEY, SYM, Side.BUY, D(qty), D(price), OrderType.LIMIT,
                            TimeInForce.GTC, "")  # fmt: skip
        assert r.accepted and not r.fills, r
        return r.order_id

    def prints(self) -> list[tuple[int, int, bool]]:
        out = [(t.tick, t.lots, t.taker_buy) for t in self.trades]
        self.trades.clear()
        return out

    def user_fills(self) -> list[tuple[Decimal, Decimal, Decimal, str, bool, OrderStatus]]:
        out = [(e.last_price, e.last_qty, e.fee, e.fee_asset, e.is_maker, e.status)
               for r in self.private for e in r.events if e.exec_type == "TRADE"]  # fmt: skip
        self.private.clear()
        return out


def test_a_market_sell_fills_a_better_user_bid_first() -> None:
    v = Venue()
    v.bid("100.00", "0.05")  # inside the spread: nothing ahead of it
    v.private.clear()
    v.m.market_order(False, 12, TS)
    assert v.prints() == [(10000, 5, False), (9999, 7, False)]  # the user first, then the book
    assert v.books[-1].changes == [(True, 9999, 3)]  # the hidden order changes no level
    assert v.user_fills() == [(D("100.00"), D("0.05"), D("0.00005"), "TEST", True,
                               OrderStatus.FILLED)]  # fmt: skip
    assert v.core.wallet(KEY) == {"USDT": (D("995.0000"), D(0)),
                                  "TEST": (D("10.04995"), D(0))}  # fmt: skip
    assert v.core.engine.orders == {}


def test_a_crossing_synthetic_limit_order_fills_the_user_at_the_users_price() -> None:
    v = Venue()
    v.bid("100.00", "0.05")
    v.private.clear()
    v.m.limit_order(False, 9998, 20, TS)  # a seller down to 99.98
    assert v.prints() == [(10000, 5, False), (9999, 10, False), (9998, 5, False)]
    assert [(p, q) for p, q, *_ in v.user_fills()] == [(D("100.00"), D("0.05"))]
    assert v.m.book.bids.best() == 9998 and v.m.book.bids.levels[9998] == 5


def test_the_user_queues_behind_the_visible_size_at_its_price() -> None:
    v = Venue()
    v.bid("99.99", "0.05")  # 10 synthetic lots ahead
    v.private.clear()
    v.m.market_order(False, 8, TS)
    assert v.prints() == [(9999, 8, False)] and v.user_fills() == []
    v.m.limit_order(True, 9999, 5, TS)  # arrives after the user: queues behind
    v.m.market_order(False, 6, TS)
    assert v.prints() == [(9999, 2, False), (9999, 4, False)]  # 2 ahead, then the user
    assert v.user_fills() == [(D("99.99"), D("0.04"), D("0.00004"), "TEST", True,
                               OrderStatus.PARTIALLY_FILLED)]  # fmt: skip
    v.m.market_order(False, 3, TS)
    assert v.prints() == [(9999, 1, False), (9999, 2, False)]  # its last lot, then the 5
    assert [s for *_, s in v.user_fills()] == [OrderStatus.FILLED]
    assert v.m.book.bids.levels[9999] == 3


def test_a_cancel_at_the_level_shortens_the_queue_pro_rata() -> None:
    v = Venue()
    oid = v.bid("99.99", "0.05")
    v.m._cancel(True, 0.0, 1.0, TS)  # the level nearest the mid, 99.99, halved: 10 -> 5
    assert v.books[-1].changes == [(True, 9999, 5)]
    assert v.core.queues[SYM].ahead[oid][1] == 5  # 10 ahead x 5 / 10
    v.private.clear()
    v.m.market_order(False, 7, TS)
    assert v.prints() == [(9999, 5, False), (10000 - 1, 2, False)]
    assert [(p, q) for p, q, *_ in v.user_fills()] == [(D("99.99"), D("0.02"))]


def test_a_user_ask_is_filled_by_a_market_buy_and_orders_share_in_time_order() -> None:
    v = Venue()
    for _ in range(2):
        r = v.core.place(KEY, SYM, Side.SELL, D("0.03"), D("100.00"), OrderType.LIMIT,
                         TimeInForce.GTC, "")  # fmt: skip
        assert r.accepted
    first, second = sorted(v.core.engine.orders)
    v.private.clear()
    v.m.market_order(True, 4, TS)
    assert v.prints() == [(10000, 3, True), (10000, 1, True)]
    fills = [(e.order_id, e.last_qty, e.fee, e.fee_asset) for r in v.private for e in r.events
             if e.exec_type == "TRADE"]  # fmt: skip
    assert fills == [(first, D("0.03"), D("0.003"), "USDT"),
                     (second, D("0.01"), D("0.001"), "USDT")]  # fmt: skip


def test_flow_through_user_orders_is_deterministic_for_a_seed() -> None:
    """Two runs with one seed and the same user orders: the same public trades and fills,
    and the flow did fill the user (on the private stream as well as in the prints)."""

    def run() -> tuple[list, list]:
        v = Venue()
        v.m.rates = Rates(updates_per_sec=400, trades_per_sec=40, levels=30, max_levels=100)
        for i in range(20):
            mid = v.core.mid(SYM)
            v.core.place(KEY, SYM, Side.BUY if i % 2 else Side.SELL, D("0.02"),
                         mid + (D("-0.01") if i % 2 else D("0.01")), OrderType.LIMIT,
                         TimeInForce.GTC, "")  # fmt: skip
            for _ in range(5):
                v.m.step(0.05, TS)
                v.core.settle()
        return v.prints(), v.user_fills()

    a, b = run(), run()
    assert a == b
    assert a[1], "the flow never filled a user order"


_ops = st.lists(st.tuples(st.sampled_from(["bid", "ask", "mkt_buy", "mkt_sell", "lim_buy",
                                           "lim_sell", "cancel", "user_cancel"]),
                          st.integers(-3, 3), st.integers(1, 40)), max_size=40)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_flow_against_user_orders_keeps_the_books_and_the_money_consistent(ops: list) -> None:
    """Whatever the mix of user orders and synthetic flow: every fill of a resting user
    order is at its own price, the printed trades are exactly what left the synthetic book plus what
    the users got, no more is ahead of an order than its level shows, and money is only
    moved, never made (free + locked + fees collected per asset is constant)."""
    v = Venue()
    eng, m, q = v.core.engine, v.m, v.core.queues[SYM]

    def total(asset: str) -> Decimal:
        return (sum((sum(b.get(asset, [D(0), D(0)])) for b in eng.balances.values()), D(0))
                + eng.fees.get(asset, D(0)))

    money = {a: total(a) for a in ("USDT", "TEST")}
    for kind, off, lots in ops:
        if kind in ("bid", "ask"):
            side = Side.BUY if kind == "bid" else Side.SELL
            best = (m.book.bids.best() + 1 + off) if side == Side.BUY else (m.book.asks.best() - 1 - off)
            v.core.place(KEY, SYM, side, D(lots) / 100, D(best) / 100, OrderType.LIMIT,
                         TimeInForce.GTC, "")  # fmt: skip
        elif kind == "user_cancel" and eng.orders:
            v.core.cancel(KEY, order_id=min(eng.orders))
        elif kind == "cancel":
            m._cancel(off >= 0, 0.0, 1.0 if off else -1.0, TS)
        else:
            taker_buy = kind.endswith("buy")
            opp = m.book.side(not taker_buy)
            before = sum(opp.levels.values())
            v.private.clear()
            v.prints()  # the users' own takers printed too: not this flow's
            if kind.startswith("mkt"):
                m.market_order(taker_buy, lots, TS)
            else:
                mid = (m.book.bids.best() + m.book.asks.best()) // 2
                m.limit_order(taker_buy, mid + (off if taker_buy else -off), lots, TS)
            printed = sum(t for _, t, _ in v.prints())
            user_lots = sum(e.last_qty for r in v.private for e in r.events
                            if e.exec_type == "TRADE") * 100  # fmt: skip
            assert printed == before - sum(opp.levels.values()) + user_lots
            assert printed <= lots
        for r in v.private:
            for e in r.events:
                if e.exec_type == "TRADE" and e.is_maker:
                    assert e.last_price == e.price  # a user's resting order fills at its price
        for o in eng.orders.values():
            tick = int(o.price * 100)
            assert q.ahead[o.order_id][1] <= m.book.side(o.side == Side.BUY).levels.get(tick, 0)
        assert {a: total(a) for a in money} == money
