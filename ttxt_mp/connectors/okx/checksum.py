"""OKX order-book checksum ("Order book channel", Checksum): CRC32 of the best 25 bids and
asks, interleaved bid, ask, bid, ask (a side with fewer levels simply ends), each level as
``price:size`` with the strings exactly as OKX sent them, all joined by ``:``; compared as a
signed 32-bit integer. Only ``books`` (and the VIP tick-by-tick books) carry one; OKX
announced that from June 2026 it is always 0, which means "no checksum", never a mismatch.

:class:`TextSides` keeps, beside the numeric book, the ``price:size`` text of every level
(keyed by the same float price the book uses), so the checksum is computed from the book's
own best 25 prices without formatting a number.
"""

from __future__ import annotations

import zlib
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


def _put(side: dict[float, str], levels: Iterable[Level], text: Iterable[Sequence[str]]) -> None:
    for (p, q), t in zip(levels, text, strict=True):
        if q:
            side[p] = f"{t[0]}:{t[1]}"
        else:
            side.pop(p, None)


class TextSides:
    """The ``price:size`` text of each level of one book, per side."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids: dict[float, str] = {}
        self.asks: dict[float, str] = {}

    def replace(self, bids: Iterable[Level], asks: Iterable[Level],
                bids_text: Iterable[Sequence[str]], asks_text: Iterable[Sequence[str]]) -> None:  # fmt: skip
        self.bids = {}
        self.asks = {}
        self.apply(bids, asks, bids_text, asks_text)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level],
              bids_text: Iterable[Sequence[str]], asks_text: Iterable[Sequence[str]]) -> None:  # fmt: skip
        _put(self.bids, bids, bids_text)
        _put(self.asks, asks, asks_text)

    def checksum(self, best_bids: Iterable[Level], best_asks: Iterable[Level]) -> int:
        """The checksum of the book whose best levels (price order) are given."""
        bt, at = self.bids, self.asks
        return okx_checksum([bt[p] for p, _ in best_bids], [at[p] for p, _ in best_asks])
