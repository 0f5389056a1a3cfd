"""What a backtest produces, row by row (the contract between the simulated venue and
:mod:`ttxt_mp.backtest.results`).

Every row carries ``ts``: the simulated exchange time (int64 ns) it happened at. Rows are
appended in simulated-time order, so two runs of the same recording and strategy give the
same rows in the same order (the determinism test compares the written files byte for byte).
"""

from __future__ import annotations

import msgspec

__all__ = ["BalanceRow", "EquityRow", "FillRow", "OrderRow", "PositionRow"]


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    """One state change of one order: accepted, amended, cancelled, rejected, expired,
    (partially) filled. ``status`` / ``side`` / ``order_type`` / ``tif`` hold the names of
    :class:`~ttxt_mp.events.OrderStatus` etc. (``"NEW"``, ``"BUY"``, ``"LIMIT"``,
    ``"POST_ONLY"``); ``reason`` says why for a reject (one line)."""

    ts: int
    exchange: str
    symbol: str
    client_order_id: str
    order_id: str
    side: str
    order_type: str
    tif: str
    status: str
    price: float
    qty: float
    filled_qty: float
    avg_price: float
    reason: str = ""


class FillRow(msgspec.Struct, frozen=True, kw_only=True):
    """One fill. ``liquidity`` is ``"maker"`` or ``"taker"``; ``fee`` is in ``fee_asset``
    (the quote for spot, the settle asset for perpetuals); positive = paid."""

    ts: int
    exchange: str
    symbol: str
    client_order_id: str
    order_id: str
    trade_id: str
    side: str
    price: float
    qty: float
    liquidity: str
    fee: float
    fee_asset: str


class BalanceRow(msgspec.Struct, frozen=True, kw_only=True):
    """A wallet balance after a change; ``reason`` is ``"fill"``, ``"fee"``, ``"funding"``,
    ``"lock"`` / ``"unlock"`` (orders resting), or ``"initial"``."""

    ts: int
    exchange: str
    asset: str
    free: float
    locked: float
    reason: str


class PositionRow(msgspec.Struct, frozen=True, kw_only=True):
    """A perpetual position after a change (fill or funding); ``size`` signed (+ long)."""

    ts: int
    exchange: str
    symbol: str
    size: float
    entry_price: float
    realized_pnl: float
    funding: float


class EquityRow(msgspec.Struct, frozen=True, kw_only=True):
    """The account marked to market at ``ts`` (sampled at a fixed simulated interval and at
    every fill): ``equity`` in ``quote`` (the account's valuation asset) = balances + open
    positions' unrealized PnL at the mids; ``position`` = net base position of ``symbol``
    (the main instrument), ``mid`` its mid price."""

    ts: int
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    funding: float
    position: float
    mid: float
    symbol: str
    quote: str
