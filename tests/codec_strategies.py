"""Hypothesis strategies for any event of a registered kind, derived from its layout, and
two user kinds: ``CodecProbe`` (1917: every dtype, enums, fixed and variable text, both
sorts of arrays) and ``Fills`` (1918: items that are NamedTuples, not Structs). Shared by
the codec's differential tests and the ring tests mixing the C and the pure codec."""

from __future__ import annotations

import enum
import struct
from typing import Any, NamedTuple

import msgspec
from hypothesis import strategies as st

import ttxt_mp
from ttxt_mp import codec
from ttxt_mp.codec import Array, Fixed, Text, layout_for


class Mood(enum.IntEnum):
    CALM = 0
    BUSY = 2  # a gap at 1: decoding 1 is the pure codec's business (its table has None)
    WILD = 7


class Leg(msgspec.Struct, frozen=True, array_like=True):
    venue: str
    px: float
    weight: int
    mood: Mood
    tiny: float


class CodecProbe(msgspec.Struct, frozen=True, kw_only=True):
    """A user kind with every dtype, enums, fixed and variable text, both sorts of arrays."""

    name: str
    i1: int
    u1: Mood
    i2: int
    u2: int
    i4: int
    u4: int
    i8: int
    u8: int
    f4: float
    f8: float
    flag: bool
    note: str
    legs: tuple[Leg, ...]
    pairs: tuple[tuple[int, float, str], ...]
    symbol: str = ""


PROBE_KIND = 1917
ttxt_mp.register_event(PROBE_KIND, CodecProbe, [
    Fixed("name", "S12"), Fixed("i1", "i1"), Fixed("u1", "u1", enum=Mood), Fixed("i2", "i2"),
    Fixed("u2", "u2"), Fixed("i4", "i4"), Fixed("u4", "u4"), Fixed("i8", "i8"),
    Fixed("u8", "u8"), Fixed("f4", "f4"), Fixed("f8", "f8"), Fixed("flag", "?"),
    Text("note"),
    Array("legs", [("venue", "S8"), ("px", "f8"), ("weight", "u2"), ("mood", "u1"),
                   ("tiny", "f4")], item=Leg, enums={"mood": Mood}),
    Array("pairs", [("n", "i4"), ("x", "f8"), ("tag", "S4")]),
    Fixed("symbol", "S32"),
])  # fmt: skip

class Fill(NamedTuple):
    """An array item that is not a msgspec Struct: the C codec reads it with getattr."""

    px: float
    qty: float
    tag: str


class Fills(msgspec.Struct, frozen=True, kw_only=True):
    fills: tuple[Fill, ...]
    venue: str = ""


FILLS_KIND = 1918
ttxt_mp.register_event(FILLS_KIND, Fills, [
    Array("fills", [("px", "f8"), ("qty", "f8"), ("tag", "S6")], item=Fill),
    Fixed("venue", "S16"),
])  # fmt: skip

RANGES = {
    "i1": (-(2**7), 2**7 - 1), "u1": (0, 2**8 - 1), "i2": (-(2**15), 2**15 - 1),
    "u2": (0, 2**16 - 1), "i4": (-(2**31), 2**31 - 1), "u4": (0, 2**32 - 1),
    "i8": (-(2**63), 2**63 - 1), "u8": (0, 2**64 - 1),
}  # fmt: skip
KINDS = sorted(codec.kinds(user=False)) + [PROBE_KIND, FILLS_KIND]
"""The library's kinds and the two user kinds above."""


def fixed_text(width: int) -> st.SearchStrategy[str]:
    """Any str that fits ``width`` UTF-8 bytes and does not end with NUL (inner NULs ok)."""
    chars = st.characters(blacklist_categories=("Cs",))
    return st.text(chars, max_size=width).filter(
        lambda s: len(s.encode()) <= width and not s.endswith("\0")
    )


def value(dtype: str, enum_cls: type[enum.IntEnum] | None) -> st.SearchStrategy[Any]:
    if enum_cls is not None:
        return st.sampled_from(list(enum_cls))
    if dtype.startswith("S"):
        return fixed_text(int(dtype[1:]))
    if dtype in RANGES:
        return st.integers(*RANGES[dtype])
    if dtype == "f4":
        return st.floats(width=32)
    return st.booleans() if dtype == "?" else st.floats()  # f8: NaN and inf too


def events_of(kind: int) -> st.SearchStrategy[Any]:
    """Any valid event of ``kind``, derived from its layout."""
    lay = layout_for(kind)
    kw: dict[str, st.SearchStrategy[Any]] = {}
    for part in lay.parts:
        if isinstance(part, Fixed):
            kw[part.name] = value(part.dtype, part.enum)
        elif isinstance(part, Text):
            kw[part.name] = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
        else:
            item = st.tuples(*(value(dt, part.enums.get(n)) for n, dt in part.fields))
            if part.item is not None:
                item = item.map(lambda t, c=part.item: c(*t))
            kw[part.name] = st.lists(item, max_size=12).map(tuple)
    return st.builds(lay.cls, **kw)


any_event = st.sampled_from(KINDS).flatmap(events_of)


def shape(x: Any) -> Any:
    """``x`` with every type and every float's exact bits: equal shapes = identical."""
    if isinstance(x, msgspec.Struct):
        return (type(x), tuple(shape(getattr(x, f)) for f in x.__struct_fields__))
    if isinstance(x, tuple | list):
        return (type(x), tuple(shape(v) for v in x))
    if isinstance(x, float):
        return (float, struct.pack("<d", x))
    return (type(x), x)


