"""Exact decimal formatting of integer price ticks and quantity lots.

Prices and quantities live as integers (ticks, lots) inside the simulator so book arithmetic is
exact; they become decimal strings only at the wire, as both venues send them as strings.
"""

from __future__ import annotations

from decimal import Decimal


class Scale:
    """Maps integer units of one increment (e.g. tick 0.01) to decimal strings and back."""

    __slots__ = ("increment", "dp", "mult", "out_dp", "_pad", "_shift")

    def __init__(self, increment: str, out_decimals: int | None = None) -> None:
        d = Decimal(increment)
        if d <= 0:
            raise ValueError(f"increment must be > 0, got {increment!r}")
        dp = max(-d.as_tuple().exponent, 0)  # type: ignore[operator]
        self.increment = increment
        self.dp = dp
        self.mult = int(d.scaleb(dp))  # increment == mult * 10**-dp
        self.out_dp = dp if out_decimals is None else max(out_decimals, dp)
        self._shift = 10 ** (self.out_dp - dp)
        self._pad = self.out_dp + 1

    def fmt(self, units: int) -> str:
        """Decimal string of `units` increments with `out_dp` decimals, e.g. 123456 -> '1234.56'."""
        n = units * self.mult * self._shift
        if self.out_dp == 0:
            return str(n)
        s = str(n).rjust(self._pad, "0")
        return f"{s[:-self.out_dp]}.{s[-self.out_dp:]}"

    def to_float(self, units: int) -> float:
        return units * self.mult / 10**self.dp

    def from_str(self, text: str) -> int:
        """Integer units of a decimal string; raises ValueError if not a multiple of the increment."""
        units, rem = divmod(Decimal(text).scaleb(self.dp), self.mult)
        if rem != 0:
            raise ValueError(f"{text} is not a multiple of {self.increment}")
        return int(units)

    def from_float(self, value: float) -> int:
        return int(round(value * 10**self.dp / self.mult))


def fmt_product(a_units: int, a: Scale, b_units: int, b: Scale, out_dp: int) -> str:
    """Exact decimal string of (a_units*a.increment) * (b_units*b.increment), e.g. quote volume."""
    n = a_units * a.mult * b_units * b.mult
    dp = a.dp + b.dp
    if out_dp >= dp:
        n *= 10 ** (out_dp - dp)
    else:  # truncate extra precision (venues print fixed decimals)
        n //= 10 ** (dp - out_dp)
    if out_dp == 0:
        return str(n)
    s = str(n).rjust(out_dp + 1, "0")
    return f"{s[:-out_dp]}.{s[-out_dp:]}"
