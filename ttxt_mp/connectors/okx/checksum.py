"""OKX order-book checksum ("Order book channel", Checksum): CRC32 of the best 25 bids and
asks, interleaved bid, ask, bid, ask (a side with fewer levels simply ends), each level as
``price:size`` with the strings exactly as OKX sent them, all joined by ``:``; compared as a
signed 32-bit integer. Only ``books`` (and the VIP tick-by-tick books) carry one; OKX
announced that from June 2026 it is always 0, which means "no checksum", never a mismatch.

:class:`TextSides` keeps, beside the numeric book, the ``price:size`` text of every level
(keyed by the same float price the book uses) and the prices in order, so the checksum of
the best 25 is two slices, a join and a CRC, without formatting a number.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence

from ttxt_mp.events import Level

__all__ = ["CHECKSUM_LEVELS", "TextSides", "okx_checksum", "signed32"]

CHECKSUM_LEVELS = 25
_crc32 = zlib.crc32


def signed32(crc: int) -> int:
    """An unsigned CRC32 as the signed 32-bit integer OKX sends."""
    return crc - 0x100000000 if crc & 0x80000000 else crc


def okx_checksum(bids: Sequence[str], asks: Sequence[str]) -> int:
    """The checksum of ``price:size`` strings, best first (only the first 25 of each count)."""
    b = bids[:CHECKSUM_LEVELS]
    a = asks[:CHECKSUM_LEVELS]
    n = min(len(b), len(a))
    parts: list[str] = [""] * (2 * n)
    parts[0::2] = b[:n]
    parts[1::2] = a[:n]
    parts += b[n:] if len(b) > n else a[n:]
    return signed32(_crc32(":".join(parts).encode()))


def _put(side: dict[float, str], keys: list[float], levels: Iterable[Level],
         text: Iterable[Sequence[str]]) -> None:
    """Apply levels (numbers and their text) to one side and its sorted prices."""
    for (p, q), t in zip(levels, text, strict=True):
        if q:
            if p not in side:
                insort(keys, p)
            side[p] = f"{t[0]}:{t[1]}"
        elif p in side:
            del side[p]
            del keys[bisect_left(keys, p)]


class TextSides:
    """The ``price:size`` text of each level of one book, per side, with its prices sorted
    (ascending), so the best 25 are two slices."""

    __slots__ = ("bids", "asks", "bid_keys", "ask_keys")

    def __init__(self) -> None:
        self.bids: dict[float, str] = {}
        self.asks: dict[float, str] = {}
        self.bid_keys: list[float] = []
        self.ask_keys: list[float] = []

    def replace(self, bids: Iterable[Level], asks: Iterable[Level],
                bids_text: Iterable[Sequence[str]], asks_text: Iterable[Sequence[str]]) -> None:  # fmt: skip
        self.__init__()  # type: ignore[misc]
        self.apply(bids, asks, bids_text, asks_text)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level],
              bids_text: Iterable[Sequence[str]], asks_text: Iterable[Sequence[str]]) -> None:  # fmt: skip
        _put(self.bids, self.bid_keys, bids, bids_text)
        _put(self.asks, self.ask_keys, asks, asks_text)

    def checksum(self) -> int:
        """The checksum of the book this text describes (its best 25 levels)."""
        bt, at = self.bids, self.asks
        b = [bt[p] for p in self.bid_keys[:-CHECKSUM_LEVELS - 1:-1]]
        a = [at[p] for p in self.ask_keys[:CHECKSUM_LEVELS]]
        n = len(b)
        if n == len(a):
            parts: list[str] = [""] * (2 * n)
            parts[0::2] = b
            parts[1::2] = a
            return signed32(_crc32(":".join(parts).encode()))
        return okx_checksum(b, a)
