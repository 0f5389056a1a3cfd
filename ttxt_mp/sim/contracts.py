"""Linear (USDT-settled) contract accounts of the simulator: positions, leverage, margin
mode, realized PnL and funding. Pure bookkeeping, no I/O; the matching engine calls it for
symbols whose :class:`~ttxt_mp.sim.matching.SymbolSpec` names a ``settle`` asset.

The model, kept small and deterministic (no liquidation, no risk tiers):

- one-way mode: one position per (account, symbol), ``size`` signed (negative = short),
  ``entry`` its average entry price; a fill in the position's direction moves the entry
  to the size-weighted average, a fill against it realizes ``closed x (price - entry)``
  (sign of the position) and, beyond the position, opens the other way at the fill price;
- the settle asset's balance is ``[free, locked]``: ``locked`` = the margin of open orders
  plus the margin of positions (``|size| x entry / leverage``), ``free`` the rest of the
  wallet balance (``free + locked``), which only changes by deposits, realized PnL, fees
  and funding;
- leverage per (account, symbol), 1..``max_leverage`` of the symbol; lowering it needs
  free funds for the larger position margin;
- margin mode (cross or isolated) per (account, symbol); it can change only without a
  position and open orders (what both venues document). Isolated positions are kept
  like cross ones here: the mode is stored and reported, margin is not segregated;
- funding: ``size x mark x rate`` moves from longs to shorts (rate > 0) at each funding
  time, out of / into the wallet balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["CROSS", "ISOLATED", "Contracts", "Position", "position_margin"]

ZERO = Decimal(0)
ENTRY_PLACES = Decimal("1e-10")  # an average entry price is kept to 10 decimals
MARGIN_PLACES = Decimal("1e-8")
CROSS = "CROSS"
ISOLATED = "ISOLATED"


@dataclass(slots=True)
class Position:
    account: str
    symbol: str
    size: Decimal = ZERO
    entry: Decimal = ZERO
    leverage: Decimal = ZERO
    margin_mode: str = CROSS
    margin: Decimal = ZERO  # locked for the position: |size| x entry / leverage
    realized: Decimal = ZERO  # cumulative realized PnL (fees and funding not included)
    funding: Decimal = ZERO  # cumulative funding received (negative: paid)
    updated_ns: int = 0

    def upnl(self, mark: Decimal) -> Decimal:
        return self.size * (mark - self.entry)


def position_margin(size: Decimal, entry: Decimal, leverage: Decimal) -> Decimal:
    """Initial margin of a position: ``|size| x entry / leverage`` (8 decimals)."""
    return (abs(size) * entry / leverage).quantize(MARGIN_PLACES, ROUND_HALF_UP)


class Contracts:
    """Positions and settings of every account on linear symbols (see module docstring)."""

    def __init__(self, default_leverage: Decimal | int = 10) -> None:
        self.default_leverage = Decimal(default_leverage)
        self.positions: dict[tuple[str, str], Position] = {}

    def position(self, account: str, symbol: str) -> Position:
        p = self.positions.get((account, symbol))
        if p is None:
            p = self.positions[(account, symbol)] = Position(account, symbol,
                                                             leverage=self.default_leverage)
        return p

    def closable(self, account: str, symbol: str, buy: bool) -> Decimal:
        """How much an order of this side can close: the size of an opposite position."""
        p = self.positions.get((account, symbol))
        if p is None:
            return ZERO
        return -p.size if buy and p.size < 0 else p.size if not buy and p.size > 0 else ZERO

    def order_margin(self, account: str, symbol: str, buy: bool, qty: Decimal, price: Decimal,
                     reduce_only: bool) -> Decimal:
        """Margin an order locks: the part that would open or grow a position, at its
        price over the leverage; a reduce-only order locks nothing."""
        if reduce_only:
            return ZERO
        opening = max(ZERO, qty - self.closable(account, symbol, buy))
        return position_margin(opening, price, self.position(account, symbol).leverage)

    def fill(self, account: str, symbol: str, signed_qty: Decimal, price: Decimal, ts: int
             ) -> tuple[Decimal, Decimal, Decimal]:  # fmt: skip
        """Apply a fill; returns (realized PnL, change of the position margin, closed qty)."""
        p = self.position(account, symbol)
        old_margin = p.margin
        realized = closed = ZERO
        size = p.size
        if size == 0 or (size > 0) == (signed_qty > 0):
            total = abs(size) + abs(signed_qty)
            p.entry = ((abs(size) * p.entry + abs(signed_qty) * price) / total
                       ).quantize(ENTRY_PLACES, ROUND_HALF_UP)
            p.size = size + signed_qty
        else:
            closed = min(abs(signed_qty), abs(size))
            realized = closed * (price - p.entry) * (1 if size > 0 else -1)
            p.size = size + signed_qty
            if p.size == 0:
                p.entry = ZERO
            elif (p.size > 0) != (size > 0):  # flipped: the rest opened at the fill price
                p.entry = price
        p.realized += realized
        p.margin = position_margin(p.size, p.entry, p.leverage)
        p.updated_ns = ts
        return realized, p.margin - old_margin, closed

    def set_leverage(self, account: str, symbol: str, leverage: Decimal) -> Decimal:
        """Set the leverage; returns the change of the position margin (applied)."""
        p = self.position(account, symbol)
        old = p.margin
        p.leverage = leverage
        p.margin = position_margin(p.size, p.entry, leverage)
        return p.margin - old

    def margin_after(self, account: str, symbol: str, leverage: Decimal) -> Decimal:
        """The change of the position margin that ``leverage`` would make."""
        p = self.position(account, symbol)
        return position_margin(p.size, p.entry, leverage) - p.margin

    def funding(self, symbol: str, mark: Decimal, rate: Decimal, places: int, ts: int
                ) -> list[tuple[Position, Decimal]]:  # fmt: skip
        """Funding of every open position of ``symbol``: (position, amount received)."""
        q = Decimal(1).scaleb(-places)
        out = []
        for p in self.positions.values():
            if p.symbol != symbol or not p.size:
                continue
            amount = (-p.size * mark * rate).quantize(q, ROUND_HALF_UP)
            p.funding += amount
            p.updated_ns = ts
            out.append((p, amount))
        return out
