"""RFC 3339 times of the Advanced Trade feed (``2023-02-09T20:32:50.714964855Z``) -> ns.

Parsed by hand: ``datetime.fromisoformat`` keeps microseconds only and is slower. The
whole-second part is cached (a feed's messages share a few seconds at a time), so a time
costs a dict lookup and the fraction."""

from __future__ import annotations

import calendar
import re

__all__ = ["rfc3339_ns"]

_NS = 1_000_000_000
_HEAD = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)\Z")
_SECONDS: dict[str, int] = {}
_KEEP = 4096


def _seconds_ns(head: str) -> int:
    m = _HEAD.match(head)
    if m is None:
        raise ValueError(f"not an RFC 3339 UTC time: {head!r}")
    y, mo, d, h, mi, s = map(int, m.groups())
    if len(_SECONDS) >= _KEEP:
        _SECONDS.clear()
    ns = _SECONDS[head] = calendar.timegm((y, mo, d, h, mi, s)) * _NS
    return ns


_SCALE = tuple(10 ** (9 - k) for k in range(10))
"""Nanoseconds per unit of a fraction of k digits (k = 0..9)."""


def rfc3339_ns(text: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` (UTC) -> ns since the epoch; ValueError if not.

    The feed's own forms (whole seconds, or 1-9 fraction digits) take the short path:
    two per Coinbase trade frame, they were a third of its normalizing time."""
    head = text[:19]
    base = _SECONDS.get(head)
    if base is None:
        base = _seconds_ns(head)
    n = len(text)
    if 22 <= n <= 30 and text[19] == "." and text[-1] in "Zz":
        frac = text[20:-1]
        if frac.isdigit():
            return base + int(frac) * _SCALE[n - 21]
    return _general(text, base)


def _general(text: str, base: int) -> int:
    tail = text[19:]
    if tail == "Z" or tail == "z":
        return base
    frac = tail[1:-1]
    if len(tail) < 3 or tail[0] != "." or tail[-1] not in "Zz" or not frac.isdigit():
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    return base + int(frac[:9].ljust(9, "0"))
