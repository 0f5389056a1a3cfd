"""Row factories and hypothesis strategies for the results tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ttxt_mp.backtest.records import BalanceRow, EquityRow, FillRow, OrderRow, PositionRow
from ttxt_mp.backtest.results import Results, ResultsBuilder

T0 = 1_714_521_600_000_000_000  # 2024-05-01T00:00:00Z
H = 3600 * 10**9
EX, SYM = "binance", "BTC/USDT"


def order(cid: str, status: str, ts: int = T0, filled: float = 0.0, **kw: Any) -> OrderRow:
    base = dict(ts=ts, exchange=EX, symbol=SYM, client_order_id=cid, order_id="o" + cid,
                side="BUY", order_type="LIMIT", tif="GTC", status=status, price=100.0,
                qty=1.0, filled_qty=filled, avg_price=100.0 if filled else 0.0)  # fmt: skip
    return OrderRow(**{**base, **kw})


def fill(cid: str, price: float, qty: float, fee: float, ts: int = T0, side: str = "BUY",
         fee_asset: str = "USDT", liquidity: str = "maker", **kw: Any) -> FillRow:  # fmt: skip
    base = dict(ts=ts, exchange=EX, symbol=SYM, client_order_id=cid, order_id="o" + cid,
                trade_id=f"t{cid}{ts}", side=side, price=price, qty=qty, liquidity=liquidity,
                fee=fee, fee_asset=fee_asset)  # fmt: skip
    return FillRow(**{**base, **kw})


def equity(ts: int, value: float, **kw: Any) -> EquityRow:
    base = dict(ts=ts, equity=value, realized_pnl=0.0, unrealized_pnl=0.0, fees=0.0,
                funding=0.0, position=0.0, mid=100.0, symbol=SYM, quote="USDT")  # fmt: skip
    return EquityRow(**{**base, **kw})


def build(rows: list[Any], events: int = 0, wall_s: float = 1.0, **kw: Any) -> Results:
    b = ResultsBuilder()
    for r in rows:
        b.add(r)
    end = max((r.ts for r in rows), default=T0)
    return b.finish(events=events, sim_start_ns=T0, sim_end_ns=end, wall_s=wall_s, **kw)


def sample_results() -> Results:
    """A small run with every row type, odd strings included (commas, quotes, newlines,
    non-ASCII) so the CSV quoting is exercised."""
    rows: list[Any] = [
        BalanceRow(ts=T0, exchange=EX, asset="USDT", free=1000.0, locked=0.0, reason="initial"),
        order("c1", "NEW"),
        order("c2", "REJECTED", reason='post-only "would cross", at 100.0\nsecond line'),
        BalanceRow(ts=T0 + 1, exchange=EX, asset="USDT", free=900.0, locked=100.0, reason="lock"),
        fill("c1", 100.0, 0.25, 0.005, ts=T0 + H // 2),
        order("c1", "PARTIALLY_FILLED", ts=T0 + H // 2, filled=0.25),
        PositionRow(ts=T0 + H // 2, exchange=EX, symbol="BTC/USDT:USDT", size=-0.1,
                    entry_price=101.5, realized_pnl=0.0, funding=-0.0125),  # fmt: skip
        equity(T0, 1000.0),
        equity(T0 + H, 1001.5, position=0.25, mid=101.0, unrealized_pnl=0.25),
        equity(T0 + 2 * H, 999.25, position=0.25, mid=99.1, unrealized_pnl=-0.1 / 3),
        order("ünï,cödé", "CANCELED", ts=T0 + 2 * H),
    ]
    return build(rows, events=12_345, meta={"strategy": "mm:Maker", "latency_ms": "5"},
                 gaps=["binance BTC/USDT: 3 events lost at 2024-05-01T00:30:00Z"])  # fmt: skip


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
ids = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
              max_size=8)  # any valid text but NUL (numpy drops trailing NULs)


@st.composite
def fill_rows(draw: Any) -> FillRow:
    return fill(draw(st.sampled_from(["a", "b", "c", "d"])), draw(positive), draw(positive),
                draw(finite), ts=T0 + draw(st.integers(0, 10 * H)),
                side=draw(st.sampled_from(["BUY", "SELL"])),
                fee_asset=draw(st.sampled_from(["USDT", "USDC", "BNB"])),
                liquidity=draw(st.sampled_from(["maker", "taker"])))  # fmt: skip


@st.composite
def order_rows(draw: Any) -> OrderRow:
    return order(draw(st.sampled_from(["a", "b", "c", "d", "e", "f"])),
                 draw(st.sampled_from(["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED",
                                       "REJECTED", "EXPIRED"])),
                 filled=draw(st.sampled_from([0.0, 0.5])), client_order_id=draw(ids))  # fmt: skip


@st.composite
def equity_curves(draw: Any, min_size: int = 0) -> list[EquityRow]:
    values = draw(st.lists(positive, min_size=min_size, max_size=40))
    steps = draw(st.lists(st.integers(0, 2 * H), min_size=len(values), max_size=len(values)))
    ts, out = T0, []
    for v, dt in zip(values, steps, strict=True):
        ts += dt
        out.append(equity(ts, v))
    return out
