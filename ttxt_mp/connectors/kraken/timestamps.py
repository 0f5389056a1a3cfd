"""RFC 3339 timestamps of the v2 API (``2023-10-06T17:35:55.440295Z``, up to nanoseconds as in
``interval_begin``) -> int nanoseconds since the epoch, cached per minute so the hot path is
a slice, one dict lookup and two int() calls."""

from __future__ import annotations

import calendar

__all__ = ["rfc3339_ns"]

_MINUTES: dict[str, int] = {}


def rfc3339_ns(text: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS[.f...]Z`` -> ns (ValueError if it is not one)."""
    minute = text[:16]
    base = _MINUTES.get(minute)
    if base is None:
        if len(text) < 20 or text[-1] != "Z" or text[4] != "-" or text[10] != "T":
            raise ValueError(f"not an RFC 3339 UTC timestamp: {text!r}")
        y, mo, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
        h, mi = int(text[11:13]), int(text[14:16])
        base = calendar.timegm((y, mo, d, h, mi, 0, 0, 0, 0)) * 1_000_000_000
        if len(_MINUTES) > 4096:
            _MINUTES.clear()
        _MINUTES[minute] = base
    sec = text[17:19]
    if text[-1] != "Z" or not sec.isdigit():
        raise ValueError(f"not an RFC 3339 UTC timestamp: {text!r}")
    frac = text[20:-1] if text[19:20] == "." else ""
    if frac and not frac.isdigit() or len(frac) > 9:
        raise ValueError(f"not an RFC 3339 UTC timestamp: {text!r}")
    return base + int(sec) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
