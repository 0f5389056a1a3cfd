"""Naive reference models for the order book tests: plain dicts, sorted on every read,
and the venues' sequence rules written out literally from their documentation."""

from __future__ import annotations

from hypothesis import strategies as st

from ttxt_mp.events import Orderbook

EX, SYM = "binance", "BTC/USDT"

prices = st.integers(min_value=1, max_value=60).map(lambda i: i / 4)
qtys = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.25, 7.0])
levels = st.lists(st.tuples(prices, qtys), max_size=12).map(tuple)
snapshot_levels = st.lists(st.tuples(prices, qtys.filter(bool)), max_size=20).map(tuple)


class DictBook:
    """The obvious implementation: dict per side, sort when read."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def snapshot(self, ev: Orderbook) -> None:
        self.bids = {p: q for p, q in ev.bids if q}
        self.asks = {p: q for p, q in ev.asks if q}

    def delta(self, ev: Orderbook) -> None:
        for side, lv in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for p, q in lv:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)

    def clear(self) -> None:
        self.bids, self.asks = {}, {}

    def bid_levels(self) -> list:
        return sorted(self.bids.items(), reverse=True)

    def ask_levels(self) -> list:
        return sorted(self.asks.items())


def assert_same(book, model: DictBook) -> None:
    bids, asks = model.bid_levels(), model.ask_levels()
    assert book.bids() == bids
    assert book.asks() == asks
    assert book.best_bid == (bids[0] if bids else None)
    assert book.best_ask == (asks[0] if asks else None)
    for n in (1, 3, 10):
        assert book.top(n) == (bids[:n], asks[:n])
    assert book.depth() == (len(bids), len(asks))
    assert book.crossed == bool(bids and asks and bids[0][0] >= asks[0][0])


def ob(bids=(), asks=(), *, U=0, u=0, pu=-1, snapshot=False, seq=-1, ex=EX, sym=SYM):
    return Orderbook(
        exchange=ex,
        symbol=sym,
        is_snapshot=snapshot,
        bids=tuple(bids),
        asks=tuple(asks),
        first_update_id=U,
        last_update_id=u,
        prev_update_id=pu,
        seq=seq,
    )
