"""The backtest account of one venue: balances (free / locked per asset), positions, fees
and funding, in exact decimals so that balances reconcile with fills to the last digit.

Contract positions (one-way, leverage, margin, realized PnL, funding) are the simulator's
:class:`~ttxt_mp.sim.contracts.Contracts`; spot symbols get a second ``Contracts`` used only
to track the net traded position and its realized / unrealized PnL (no margin moves).

Cash flows, per fill of ``qty`` at ``price`` (notional = qty x price, fee = notional x rate):

- spot buy: the quote locked for the order pays notional + fee, the base is credited free;
- spot sell: the base locked for the order is delivered, notional - fee is credited free;
- contract: the order's margin for the filled part is released, the position margin
  (``|size| x entry / leverage``) is locked, realized PnL is credited and the fee debited,
  all in the settle asset;
- funding: ``-size x mark x rate`` credited in the settle asset (longs pay a positive rate).
"""

from __future__ import annotations

import math
from decimal import Context, Decimal, localcontext
from typing import NamedTuple

from ttxt_mp.sim.contracts import Contracts, Position

__all__ = ["ACCOUNT", "Accounts", "Instrument", "dec", "exact"]

ZERO = Decimal(0)
ACCOUNT = ""  # the one account of a backtest
FUNDING_PLACES = 8
_CTX = Context(prec=80)


def exact():
    """A decimal context wide enough that products and sums of float-derived amounts are
    exact (the default 28 digits would round)."""
    return localcontext(_CTX)


def dec(x: float) -> Decimal:
    """A float as the shortest decimal that reads back as it (``0.1`` -> ``Decimal("0.1")``)."""
    return Decimal(repr(float(x)))


class Instrument(NamedTuple):
    """A symbol ``BASE/QUOTE`` (spot) or ``BASE/QUOTE:SETTLE`` (a contract settled in SETTLE)."""

    symbol: str
    base: str
    quote: str
    settle: str

    @classmethod
    def parse(cls, symbol: str) -> Instrument:
        pair, _, settle = symbol.partition(":")
        base, _, quote = pair.partition("/")
        if not base or not quote or "/" in quote or (":" in symbol and not settle):
            raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE or BASE/QUOTE:SETTLE")
        return cls(symbol, base, quote, settle)

    @property
    def contract(self) -> bool:
        return bool(self.settle)


class Accounts:
    """Balances and positions of the backtest account (see the module docstring)."""

    def __init__(self, balances: dict[str, float], default_leverage: int = 10) -> None:
        self.bal: dict[str, list[Decimal]] = {}
        for asset in sorted(balances):
            amount = balances[asset]
            if not isinstance(amount, int | float) or not math.isfinite(amount) or amount < 0:
                raise ValueError(f"balance of {asset!r} must be a finite number >= 0, "
                                 f"got {amount!r}")  # fmt: skip
            self.bal[asset] = [dec(amount), ZERO]
        self.contracts = Contracts(default_leverage)
        self.spot = Contracts(1)
        self.fees: dict[str, Decimal] = {}
        self.funding: dict[str, Decimal] = {}

    def balance(self, asset: str) -> list[Decimal]:
        """[free, locked] of ``asset`` (created at zero)."""
        b = self.bal.get(asset)
        if b is None:
            b = self.bal[asset] = [ZERO, ZERO]
        return b

    def free(self, asset: str) -> Decimal:
        return self.balance(asset)[0]

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked (negative: back)."""
        b = self.balance(asset)
        b[0] -= amount
        b[1] += amount

    def position(self, inst: Instrument) -> Position:
        return (self.contracts if inst.contract else self.spot).position(ACCOUNT, inst.symbol)

    def spot_fill(self, inst: Instrument, buy: bool, qty: Decimal, price: Decimal,
                  fee: Decimal, ts: int) -> Decimal:  # fmt: skip
        """Settle a spot fill paid from the order's lock; returns the realized PnL."""
        notional = qty * price
        if buy:
            self.balance(inst.quote)[1] -= notional + fee
            self.balance(inst.base)[0] += qty
        else:
            self.balance(inst.base)[1] -= qty
            self.balance(inst.quote)[0] += notional - fee
        self.fees[inst.quote] = self.fees.get(inst.quote, ZERO) + fee
        return self.spot.fill(ACCOUNT, inst.symbol, qty if buy else -qty, price, ts)[0]

    def contract_fill(self, inst: Instrument, signed_qty: Decimal, price: Decimal, fee: Decimal,
                      release: Decimal, ts: int) -> Decimal:  # fmt: skip
        """Settle a contract fill: ``release`` of the order's margin goes back, the position
        margin moves, realized PnL and the fee settle; returns the realized PnL."""
        realized, dm, _ = self.contracts.fill(ACCOUNT, inst.symbol, signed_qty, price, ts)
        b = self.balance(inst.settle)
        b[0] += release + realized - fee - dm
        b[1] += dm - release
        self.fees[inst.settle] = self.fees.get(inst.settle, ZERO) + fee
        return realized

    def fund(self, inst: Instrument, mark: Decimal, rate: Decimal, ts: int) -> Decimal:
        """Pay funding on the position of ``inst``: the amount received (0 when flat)."""
        for _, amount in self.contracts.funding(inst.symbol, mark, rate, FUNDING_PLACES, ts):
            self.balance(inst.settle)[0] += amount
            self.funding[inst.settle] = self.funding.get(inst.settle, ZERO) + amount
            return amount
        return ZERO
