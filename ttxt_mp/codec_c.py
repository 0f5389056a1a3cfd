"""The compiled codec (``ttxt_mp._ccodec``): which implementation runs, and its descriptors.

:mod:`ttxt_mp.codec` compiles every layout to pure-Python pack/unpack functions, the
reference. When the C extension was built (``pip install`` builds it; the build is
optional) each layout also gets a :class:`ttxt_mp._ccodec.Codec`, made here once at
registration from what the pure codec computed (offsets, struct codes, enum tables,
array items), so user kinds get it too. It writes and reads the same bytes; for any input
it does not handle itself (wrong types, out-of-range values, too-long strings, short
buffers) it calls the pure function, so errors are the pure codec's by construction.

``TTXT_MP_PURE=1`` in the environment (read at import) keeps the pure functions active;
:func:`implementation` says which one runs.
"""

from __future__ import annotations

import os
import struct
import types
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ttxt_mp.codec import Layout

try:
    from ttxt_mp import _ccodec
except ImportError:  # not built (no compiler at install time): the pure codec runs
    _ccodec = None

__all__ = [
    "AVAILABLE", "IMPLEMENTATION", "PURE_ENV", "compile_layout", "implementation",
    "set_implementation",
]  # fmt: skip

PURE_ENV = "TTXT_MP_PURE"
AVAILABLE: bool = _ccodec is not None
"""The extension is importable (whether or not it is used)."""
IMPLEMENTATION: str = (
    "c" if AVAILABLE and os.environ.get(PURE_ENV, "") in ("", "0") else "pure"
)
"""``"c"`` or ``"pure"``: the codec every layout's pack/unpack/size use in this process."""


def implementation() -> str:
    """``"c"`` when layouts encode and decode with the extension, else ``"pure"``."""
    return IMPLEMENTATION


def set_implementation(impl: str) -> None:
    """Switch every layout, registered or to come, to ``"c"`` or ``"pure"`` in this process.

    For tests and benchmarks that compare both in one process; ring ends created before
    keep the functions they looked up. Production code selects with ``TTXT_MP_PURE``."""
    global IMPLEMENTATION
    if impl not in ("c", "pure"):
        raise ValueError(f"implementation must be 'c' or 'pure', got {impl!r}")
    if impl == "c" and not AVAILABLE:
        raise RuntimeError("ttxt_mp._ccodec is not built: only the pure codec is available")
    IMPLEMENTATION = impl
    from ttxt_mp import codec

    for lay in codec._BY_KIND.values():
        lay.activate(impl)


def slot_of(cls: type | None, name: str) -> types.MemberDescriptorType | None:
    """The ``__slots__`` member of attribute ``name`` of ``cls`` instances (msgspec Struct
    fields are slots), found in the MRO's own dicts; None: C reads it with getattr."""
    for k in getattr(cls, "__mro__", ()):
        d = k.__dict__.get(name)
        if d is not None:
            ok = isinstance(d, types.MemberDescriptorType) and d.__objclass__ is k
            return d if ok else None
    return None


def compile_layout(layout: Layout) -> Any | None:
    """The C codec of ``layout`` (whose pure functions are already compiled), or None
    without the extension (or, with a warning, for a layout it cannot describe). Called
    whatever ``TTXT_MP_PURE`` says, so tests can compare the two."""
    if _ccodec is None:
        return None
    from ttxt_mp import codec  # imported here: codec imports this module

    def field(cls: type | None, name: str, dtype: str, pos: int, enum: Any) -> tuple:
        code = codec._fmt(dtype)[-1]
        table = None if enum is None else tuple(codec._enum_table(enum))
        member = slot_of(cls, name)
        width = int(dtype[1:]) if code == "s" else struct.calcsize("<" + code)
        return (name, member, code, width, pos, table, name in codec._LOW_CARDINALITY)

    hdr = layout.header_dtype.fields
    fixed, var = [], []
    for p in layout.parts:
        if isinstance(p, codec.Fixed):
            fixed.append(field(layout.cls, p.name, p.dtype, hdr[p.name][1], p.enum))
            continue
        member, count_pos = slot_of(layout.cls, p.name), hdr[f"n_{p.name}"][1]
        if isinstance(p, codec.Text):
            var.append((p.name, member, "T", count_pos))
            continue
        idt = layout.item_dtypes[p.name]
        items = [field(p.item, f, dt, idt.fields[f][1], p.enums.get(f)) for f, dt in p.fields]
        var.append((p.name, member, "A", count_pos, p.item, idt.itemsize, items))
    try:
        return _ccodec.Codec(
            layout.cls, layout.header_size, fixed, var,
            layout.pure_pack_into, layout.pure_unpack_from, layout.pure_size,
        )  # fmt: skip
    except (TypeError, ValueError) as e:  # a descriptor the C side refuses: stay correct
        warnings.warn(f"{layout.name}: the C codec refused the layout ({e}); this kind "
                      "uses the pure-Python codec", RuntimeWarning, stacklevel=2)  # fmt: skip
        return None
