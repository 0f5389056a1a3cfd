"""The Kraken WebSocket v2 book checksum ("Book checksum (WebSocket v2)" guide).

CRC32 of a string built from the top 10 levels of each side: asks low to high, then bids
high to low; each level is its price then its quantity, each written with the instrument's
precision (price ``pair_decimals``, quantity ``lot_decimals``: the v2 wire carries full
precision, ``45285.2`` and ``0.00100000``) with the decimal point and the leading zeros
removed (``45285.2`` -> ``452852``, ``0.00100000`` -> ``100000``). The result is an
unsigned 32-bit integer, compared with the message's ``checksum``.

Speed: prices and quantities repeat (the top of a book moves slowly), so each level text is
formatted once and kept in a small dict per instrument; a checksum is then 20 lookups, one
join and ``zlib.crc32`` (see benchmarks/bench_normalize.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from ttxt_mp.events import Level

__all__ = ["TOP", "BookChecksum", "checksum", "level_text"]

TOP = 10
"""Levels per side the checksum covers, whatever the subscribed depth."""
_CACHE_MAX = 50_000


def level_text(value: float, decimals: int) -> str:
    """``value`` written with ``decimals`` decimals, without the point and leading zeros."""
    return f"{value:.{decimals}f}".replace(".", "").lstrip("0")


def checksum(asks: Iterable[Level], bids: Iterable[Level], price_decimals: int,
             qty_decimals: int) -> int:  # fmt: skip
    """The checksum of the best ``TOP`` asks (low to high) and bids (high to low)."""
    parts: list[str] = []
    for side in (asks, bids):
        for n, (p, q) in enumerate(side):
            if n == TOP:
                break
            parts.append(level_text(p, price_decimals))
            parts.append(level_text(q, qty_decimals))
    return zlib.crc32("".join(parts).encode())


class BookChecksum:
    """:func:`checksum` for one instrument, with each level's text (price and quantity)
    cached by its ``(price, qty)`` tuple (see the module docstring); :meth:`of` takes the
    book's best levels, best first."""

    __slots__ = ("price_decimals", "qty_decimals", "_texts")

    def __init__(self, price_decimals: int, qty_decimals: int) -> None:
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        self._texts: dict[Level, str] = {}

    def _fill(self, levels: list[Level]) -> None:
        texts = self._texts
        if len(texts) >= _CACHE_MAX:
            texts.clear()
        pd, qd = self.price_decimals, self.qty_decimals
        for lv in levels:
            if lv not in texts:
                texts[lv] = level_text(lv[0], pd) + level_text(lv[1], qd)

    def of(self, asks: list[Level], bids: list[Level]) -> int:
        """The checksum of ``asks`` (best first) and ``bids`` (best first), top 10 each."""
        levels = asks[:TOP] + bids[:TOP]
        texts = self._texts
        try:
            text = "".join([texts[lv] for lv in levels])
        except KeyError:
            self._fill(levels)
            text = "".join([texts[lv] for lv in levels])
        return zlib.crc32(text.encode())
