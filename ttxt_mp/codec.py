"""Fixed binary layouts for events, compiled once per kind into fast pack/unpack code.

An encoded event is ``header`` (a packed numpy structured record: the fixed fields, then a
``uint32`` count per variable part) followed by each variable part's items (count-prefixed
arrays: book levels, trades, balances, UTF-8 text). Rings and recordings carry exactly
these bytes, so a recorder writes what it reads and numpy can view a batch without
building Python objects. Nothing is ever truncated: a string longer than its fixed field
is refused with an error naming the field.

The pack/unpack functions are generated Python source (as :mod:`dataclasses` does): one
``struct.pack_into`` for the header, no per-field interpretation at run time.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import chain
from typing import Any

import msgspec
import numpy as np

__all__ = [
    "Array",
    "Fixed",
    "Layout",
    "Text",
    "LayoutError",
    "decode",
    "encode",
    "layout_for",
    "register_event",
    "registry_hash",
]

USER_KIND_MIN = 1000
"""Kinds 1..999 belong to the library; user-registered kinds start here."""

_STRUCT_CODES = {
    "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I",
    "i8": "q", "u8": "Q", "f4": "f", "f8": "d", "?": "?",
}  # fmt: skip
_CACHE_MAX = 4096


class LayoutError(ValueError):
    """An event does not fit its layout, or a layout declaration is invalid."""


@dataclass(frozen=True)
class Fixed:
    """A fixed-size field. ``dtype`` is a numpy code: ``i8``, ``f8``, ``?``, ``S16``…"""

    name: str
    dtype: str
    enum: type[IntEnum] | None = None


@dataclass(frozen=True)
class Array:
    """A count-prefixed array of fixed-size items; ``item`` builds each (tuple if None)."""

    name: str
    fields: list[tuple[str, str]]
    item: type | None = None
    enums: dict[str, type[IntEnum]] = field(default_factory=dict)


@dataclass(frozen=True)
class Text:
    """Variable-length UTF-8 text, count-prefixed."""

    name: str


def _fmt(dtype: str) -> str:
    if dtype.startswith("S"):
        return f"{int(dtype[1:])}s"
    try:
        return _STRUCT_CODES[dtype]
    except KeyError:
        raise LayoutError(f"unsupported field dtype {dtype!r}") from None


_LOW_CARDINALITY = frozenset({"exchange", "symbol", "interval", "asset", "fee_asset", "code"})


def _dstr_uncached(b: bytes) -> str:
    return b.rstrip(b"\0").decode()


class _StrCodec:
    """Bounded caches for str <-> fixed bytes; low-cardinality fields hit every time."""

    def __init__(self) -> None:
        self.enc: dict[str, bytes] = {}
        self.dec: dict[bytes, str] = {}

    def encoder(self, owner: str, fname: str, width: int):
        """Cached for low-cardinality fields; ids (unique) would only churn a cache."""
        enc = self.enc if fname in _LOW_CARDINALITY else {}

        def encode_str(s: str) -> bytes:
            b = enc.get(s)
            if b is None:
                if not isinstance(s, str):
                    raise LayoutError(f"{owner}.{fname}: expected str, got {type(s).__name__}")
                b = s.encode()
                if len(b) > width:
                    raise LayoutError(
                        f"{owner}.{fname}: {s!r} is {len(b)} bytes, the layout holds {width}"
                    )
                if fname in _LOW_CARDINALITY:
                    if len(enc) >= _CACHE_MAX:
                        enc.clear()
                    enc[s] = b
            return b

        return encode_str

    def decode(self, b: bytes) -> str:
        s = self.dec.get(b)
        if s is None:
            s = b.rstrip(b"\0").decode()
            if len(self.dec) >= _CACHE_MAX:
                self.dec.clear()
            self.dec[b] = s
        return s


class Layout:
    """The compiled layout of one event kind."""

    def __init__(self, kind: int, cls: type, parts: tuple[Fixed | Array | Text, ...]):
        self.kind = kind
        self.cls = cls
        self.name = cls.__name__
        self.parts = parts
        fixed = [p for p in parts if isinstance(p, Fixed)]
        varp = [p for p in parts if not isinstance(p, Fixed)]
        self.header_dtype = np.dtype(
            [(p.name, p.dtype) for p in fixed] + [(f"n_{p.name}", "u4") for p in varp]
        )
        self.item_dtypes: dict[str, np.dtype] = {
            p.name: np.dtype(p.fields) if isinstance(p, Array) else np.dtype("u1") for p in varp
        }
        self.header_size = self.header_dtype.itemsize
        self._header = struct.Struct("<" + "".join(_fmt(p.dtype) for p in fixed) + "I" * len(varp))
        assert self._header.size == self.header_size
        self.hash = hashlib.blake2b(
            repr((kind, self.name, self.header_dtype.descr,
                  [(k, v.descr) for k, v in self.item_dtypes.items()])).encode(),
            digest_size=8,
        ).digest()  # fmt: skip
        self._compile(fixed, varp)

    # The generated functions: pack_into(buf, off, ev) -> nbytes; unpack_from(buf, off) ->
    # (event, nbytes); size(ev) -> nbytes.
    def _compile(self, fixed: list[Fixed], varp: list[Array | Text]) -> None:
        strs = _StrCodec()
        ns: dict[str, Any] = {
            "_H": self._header, "_HS": self.header_size, "_cls": self.cls, "_dstr": strs.decode,
            "_dnc": _dstr_uncached,
            "_chain": chain.from_iterable,
            "_LayoutError": LayoutError, "_floats": _float_struct,
        }  # fmt: skip
        pk_args, up_kw = [], []
        for i, p in enumerate(fixed):
            v = f"ev.{p.name}"
            if p.dtype.startswith("S"):
                ns[f"_e{i}"] = strs.encoder(self.name, p.name, int(p.dtype[1:]))
                pk_args.append(f"_e{i}({v})")
                dec = "_dstr" if p.name in _LOW_CARDINALITY else "_dnc"
                up_kw.append(f"{p.name}={dec}(h[{i}])")
            elif p.enum is not None:
                ns[f"_m{i}"] = _enum_table(p.enum)
                pk_args.append(v)
                up_kw.append(f"{p.name}=_m{i}[h[{i}]]")
            else:
                pk_args.append(v)
                up_kw.append(f"{p.name}=h[{i}]")
        pk_pre, pk_body, up_body = [], [], []
        size_terms = ["_HS"]
        for j, p in enumerate(varp):
            hidx = len(fixed) + j
            isz = self.item_dtypes[p.name].itemsize
            if isinstance(p, Text):
                pk_pre.append(f"v{j} = ev.{p.name}.encode()")
                pk_body.append(f"buf[p:p + len(v{j})] = v{j}; p += len(v{j})")
                up_body.append(f"n = h[{hidx}]; v{j} = bytes(buf[p:p + n]).decode(); p += n")
                size_terms.append(f"len(ev.{p.name}.encode())")
            else:
                ifmt = "".join(_fmt(dt) for _, dt in p.fields)
                ns[f"_I{j}"] = struct.Struct("<" + ifmt)
                all_float = p.item is None and set(ifmt) == {"d"}
                pk_pre.append(f"v{j} = ev.{p.name}")
                if all_float:
                    # Levels: a few are cheapest packed one by one, many in one call with
                    # a Struct compiled once per array length (measured: the crossover is
                    # near 8 levels).
                    args = ", ".join(f"x[{k}]" for k in range(len(ifmt)))
                    pk_body.append(
                        f"if len(v{j}) <= {_SMALL_ARRAY}:\n"
                        f"        for x in v{j}:\n"
                        f"            _I{j}.pack_into(buf, p, {args}); p += {isz}\n"
                        f"    else:\n"
                        f"        _floats(len(v{j}) * {len(ifmt)}).pack_into(buf, p, *_chain(v{j}));"
                        f" p += {isz} * len(v{j})"
                    )
                else:
                    item_args = []
                    conv = []
                    for k, (fname, fdt) in enumerate(p.fields):
                        if fdt.startswith("S"):
                            ns[f"_e{j}_{k}"] = strs.encoder(
                                f"{self.name}.{p.name}", fname, int(fdt[1:])
                            )
                            item_args.append(f"_e{j}_{k}(x{_acc(p, k)})")
                            dec = "_dstr" if fname in _LOW_CARDINALITY else "_dnc"
                            conv.append(f"{dec}(t[{k}])")
                        elif fname in p.enums:
                            ns[f"_m{j}_{k}"] = _enum_table(p.enums[fname])
                            item_args.append(f"x{_acc(p, k)}")
                            conv.append(f"_m{j}_{k}[t[{k}]]")
                        else:
                            item_args.append(f"x{_acc(p, k)}")
                            conv.append(f"t[{k}]")
                    pk_body.append(
                        f"for x in v{j}:\n"
                        f"        _I{j}.pack_into(buf, p, {', '.join(item_args)}); p += {isz}"
                    )
                if p.item is None and all_float:
                    up_body.append(  # deltas mostly carry one level per side
                        f"n = h[{hidx}] * {isz}\n"
                        f"    if n == {isz}:\n"
                        f"        v{j} = (_I{j}.unpack_from(buf, p),)\n"
                        f"    else:\n"
                        f"        v{j} = tuple(_I{j}.iter_unpack(buf[p:p + n])) if n else ()\n"
                        f"    p += n"
                    )
                else:
                    ns[f"_C{j}"] = p.item if p.item is not None else (lambda *a: a)
                    item = f"_C{j}({', '.join(conv)})"
                    up_body.append(  # one item (a trade, a balance) is the common case
                        f"n = h[{hidx}] * {isz}\n"
                        f"    if n == {isz}:\n"
                        f"        t = _I{j}.unpack_from(buf, p); v{j} = ({item},)\n"
                        f"    else:\n"
                        f"        v{j} = tuple([{item} for t in _I{j}.iter_unpack(buf[p:p + n])])\n"
                        f"    p += n"
                    )
                size_terms.append(f"{isz} * len(ev.{p.name})")
            pk_args.append(f"len(v{j})")
            up_kw.append(f"{p.name}=v{j}")
        nl = "\n    "
        src = (
            f"def pack_into(buf, off, ev):\n    {nl.join(pk_pre) or 'pass'}\n"
            f"    _H.pack_into(buf, off, {', '.join(pk_args)})\n"
            f"    p = off + _HS\n    {nl.join(pk_body) or 'pass'}\n"
            f"    return p - off\n\n"
            f"def unpack_from(buf, off):\n    h = _H.unpack_from(buf, off)\n    p = off + _HS\n"
            f"    {nl.join(up_body) or 'pass'}\n"
            f"    return _cls({', '.join(up_kw)}), p - off\n\n"
            f"def size(ev):\n    return {' + '.join(size_terms)}\n"
        )
        exec(compile(src, f"<layout {self.name}>", "exec"), ns)
        self.source = src
        self._pack_into = ns["pack_into"]
        self.unpack_from = ns["unpack_from"]
        self.size = ns["size"]

    def pack_into(self, buf: Any, off: int, ev: Any) -> int:
        """Write ``ev`` at ``buf[off:]``; return the number of bytes written."""
        try:
            return self._pack_into(buf, off, ev)
        except LayoutError:
            raise
        except (struct.error, TypeError, AttributeError, IndexError) as e:
            raise LayoutError(f"{self.name}: cannot encode {ev!r}: {e}") from e

    def encode(self, ev: Any) -> bytes:
        buf = bytearray(self.size(ev))
        self.pack_into(buf, 0, ev)
        return bytes(buf)

    def decode(self, buf: Any) -> Any:
        return self.unpack_from(buf, 0)[0]

    def view(self, payload: np.ndarray) -> np.ndarray:
        """Headers of same-kind payload records (``uint8`` rows) as a structured array."""
        return np.ascontiguousarray(payload[:, : self.header_size]).view(self.header_dtype)[:, 0]


def _enum_table(enum: type[IntEnum]) -> list:
    table: list = [None] * (max(int(m) for m in enum) + 1)
    for m in enum:
        table[int(m)] = m
    return table


_SMALL_ARRAY = 8
_FLOAT_STRUCTS: dict[int, struct.Struct] = {}


def _float_struct(n: int) -> struct.Struct:
    """A compiled ``<n>d`` Struct, cached (bounded) per length."""
    s = _FLOAT_STRUCTS.get(n)
    if s is None:
        if len(_FLOAT_STRUCTS) >= _CACHE_MAX:
            _FLOAT_STRUCTS.clear()
        s = _FLOAT_STRUCTS[n] = struct.Struct(f"<{n}d")
    return s


def _acc(part: Array, k: int) -> str:
    """Source text reading item field ``k``: by attribute for Structs, by index for tuples."""
    return f"[{k}]" if part.item is None else f".{part.fields[k][0]}"


_BY_KIND: dict[int, Layout] = {}
_BY_CLS: dict[type, Layout] = {}


def register_event(
    kind: int, cls: type, parts: tuple[Fixed | Array | Text, ...] | list, *, _builtin: bool = True
) -> Layout:
    """Declare the binary layout of an event ``cls`` (a ``msgspec.Struct``) as ``kind``.

    User code registers its own kinds with ``kind >= 1000``, identically in every process
    that produces or consumes them.
    """
    parts = tuple(parts)
    names = [f.name for f in msgspec.structs.fields(cls)]
    declared = [p.name for p in parts]
    if sorted(names) != sorted(declared):
        raise LayoutError(
            f"layout of {cls.__name__} must declare exactly its fields: "
            f"missing {sorted(set(names) - set(declared))}, "
            f"unknown {sorted(set(declared) - set(names))}"
        )
    if not 0 < kind < 65536:
        raise LayoutError(f"event kind must be in 1..65535, got {kind}")
    if not _builtin and kind < USER_KIND_MIN:
        raise LayoutError(f"event kinds below {USER_KIND_MIN} are reserved; got {kind}")
    layout = Layout(kind, cls, parts)
    old = _BY_KIND.get(kind)
    if old is not None and (old.cls is not cls or old.hash != layout.hash):
        raise LayoutError(f"event kind {kind} is already registered to {old.name}")
    prev = _BY_CLS.get(cls)
    if prev is not None and prev.kind != kind:
        raise LayoutError(f"{cls.__name__} is already registered as kind {prev.kind}")
    _BY_KIND[kind] = layout
    _BY_CLS[cls] = layout
    return layout


def register_user_event(kind: int, cls: type, parts) -> Layout:
    """Public entry point for custom event kinds (``kind >= 1000``)."""
    return register_event(kind, cls, parts, _builtin=False)


def layout_for(key: int | type) -> Layout:
    try:
        return _BY_KIND[key] if isinstance(key, int) else _BY_CLS[key]
    except KeyError:
        what = f"kind {key}" if isinstance(key, int) else f"type {key.__name__}"
        raise LayoutError(
            f"unknown event {what}: register it with ttxt_mp.register_event() "
            "in every process that uses it"
        ) from None


def encode(ev: Any) -> tuple[int, bytes]:
    lay = layout_for(type(ev))
    return lay.kind, lay.encode(ev)


def decode(kind: int, buf: Any) -> Any:
    return layout_for(kind).decode(buf)


def registry_hash(kinds: list[int] | None = None) -> bytes:
    """8-byte hash of the layouts of ``kinds`` (default: all library kinds)."""
    ks = sorted(k for k in _BY_KIND if k < USER_KIND_MIN) if kinds is None else sorted(kinds)
    h = hashlib.blake2b(digest_size=8)
    for k in ks:
        h.update(layout_for(k).hash)
    return h.digest()
