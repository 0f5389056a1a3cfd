"""RFC 3339 times of the Advanced Trade feed (``2023-02-09T20:32:50.714964855Z``) -> ns.

Parsed by hand: ``datetime.fromisoformat`` keeps microseconds only and is slower; the date
part is cached (a feed's messages share a handful of dates)."""

from __future__ import annotations

import calendar
import functools

__all__ = ["rfc3339_ns", "unix_seconds_ns"]

_NS = 1_000_000_000


@functools.lru_cache(maxsize=64)
def _day_ns(date: str) -> int:
    y, m, d = int(date[0:4]), int(date[5:7]), int(date[8:10])
    return calendar.timegm((y, m, d, 0, 0, 0)) * _NS


def rfc3339_ns(text: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` (UTC) -> ns since the epoch; ValueError if not."""
    if len(text) < 20 or text[10] not in "Tt " or text[-1] not in "Zz" or text[4] != "-":
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    secs = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
    frac = text[20:-1] if text[19] == "." else ""
    if text[19] not in ".Zz" or (frac and not frac.isdigit()):
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    ns = int(frac[:9].ljust(9, "0")) if frac else 0
    return _day_ns(text[:10]) + secs * _NS + ns


def unix_seconds_ns(text: str) -> int:
    """A candle's ``start`` (UNIX seconds, as a string) -> ns."""
    return int(text) * _NS
