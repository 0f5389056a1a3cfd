"""Fixed binary layouts for events, compiled once per kind into fast pack/unpack code.

An encoded event is ``header`` (a packed numpy structured record: the fixed fields, then a
``uint32`` count per variable part) followed by each variable part's items (count-prefixed
arrays: book levels, trades, balances, UTF-8 text). Rings and recordings carry exactly
these bytes, so a recorder writes what it reads and numpy can view a batch without
building Python objects. Nothing is ever truncated: a string longer than its fixed field
is refused with an error naming the field.

The pack/unpack functions are generated Python source (as :mod:`dataclasses` does): one
``struct.pack_into`` for the header, no per-field interpretation at run time. They are
the reference (``Layout.pure_*``); when the C extension is built, each layout's active
``pack_into``/``unpack_from``/``size`` are its compiled twin's (:mod:`ttxt_mp.codec_c`),
which writes the same bytes and hands every input it does not handle to these.
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

from ttxt_mp import codec_c

__all__ = [
    "Array",
    "Fixed",
    "Layout",
    "Text",
    "LayoutError",
    "USER_KIND_MAX",
    "USER_KIND_MIN",
    "decode",
    "encode",
    "event_class",
    "kind_of",
    "kinds",
    "layout_for",
    "register_event",
    "register_user_event",
    "registry_hash",
]

USER_KIND_MIN = 1000
"""Kinds 1..999 belong to the library; user-registered kinds start here."""
USER_KIND_MAX = 65535
"""The largest kind id (a ring slot stores the kind in 16 bits)."""

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
                if b[-1:] == b"\0":  # the padding: it would come back without it
                    raise LayoutError(
                        f"{owner}.{fname}: {s!r} ends with NUL, which a fixed-size text "
                        "field cannot keep (declare it Text)"
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
        # The generated functions stay as the reference (pure_*); with the extension built
        # the active ones are the C codec's (the same bytes), unless TTXT_MP_PURE=1.
        self.pure_pack_into = ns["pack_into"]
        self.pure_unpack_from = ns["unpack_from"]
        self.pure_size = ns["size"]
        self.c = codec_c.compile_layout(self)
        self.activate(codec_c.IMPLEMENTATION)

    def activate(self, impl: str) -> None:
        """Make ``"c"`` (if compiled) or ``"pure"`` this layout's pack/unpack/size. Ring ends
        look them up once, so ends made before keep theirs (see codec_c.set_implementation)."""
        if impl == "c" and self.c is not None:
            self._pack_into, self.unpack_from, self.size = (
                self.c.pack_into, self.c.unpack_from, self.c.size)  # fmt: skip
        else:
            self._pack_into, self.unpack_from, self.size = (
                self.pure_pack_into, self.pure_unpack_from, self.pure_size)  # fmt: skip

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
_BY_NAME: dict[str, Layout] = {}


def register_event(
    kind: int, cls: type, parts: tuple[Fixed | Array | Text, ...] | list, *, _builtin: bool = True
) -> Layout:
    """Declare the binary layout of an event ``cls`` (a ``msgspec.Struct``) as ``kind``.

    The library declares its kinds (1..999) with this, in :mod:`ttxt_mp.events`; user
    code calls :func:`register_user_event` (``ttxt_mp.register_event``), which only
    accepts custom kinds (``USER_KIND_MIN``..``USER_KIND_MAX``).
    """
    _check_kind_id(kind, _builtin)
    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        raise LayoutError(f"an event class must be a msgspec.Struct subclass, got {cls!r}")
    layout = Layout(kind, cls, _check_parts(cls, parts))
    old = _BY_KIND.get(kind)
    if old is not None:
        if old.cls is cls and old.hash == layout.hash:
            return old  # the same declaration again (e.g. a second config load)
        if old.cls is cls:
            raise LayoutError(
                f"{cls.__name__} is already registered as kind {kind} with another layout; "
                "declare it once, identically in every process"
            )
        twice = " (the same module imported twice, under two names or reloaded?)" if (
            old.cls.__qualname__ == cls.__qualname__) else ""  # fmt: skip
        raise LayoutError(
            f"event kind {kind} is already registered to {_where(old.cls)}; choose another "
            f"kind id for {cls.__module__}.{cls.__qualname__}{twice}"
        )
    prev = _BY_CLS.get(cls)
    if prev is not None:
        raise LayoutError(f"{cls.__name__} is already registered as kind {prev.kind}")
    same = _BY_NAME.get(layout.name)
    if same is not None:
        raise LayoutError(
            f"an event named {layout.name!r} is already registered (kind {same.kind}, "
            f"{same.cls.__module__}); event names must be unique (filters select kinds by "
            f"name): rename {cls.__module__}.{cls.__qualname__}"
        )
    _BY_KIND[kind] = layout
    _BY_CLS[cls] = layout
    _BY_NAME[layout.name] = layout
    return layout


def register_user_event(kind: int, cls: type, parts: tuple[Fixed | Array | Text, ...] | list
                        ) -> Layout:  # fmt: skip
    """Register a custom event kind (exported as ``ttxt_mp.register_event``).

    ``kind``: an id from 1000 to 65535 (below is the library's); ``cls``: a
    ``msgspec.Struct`` subclass, whose class name is also the kind's name (``EventFilter
    (kinds=["BestQuote"])``) and must be unique; ``parts``: exactly its fields, in the
    order they are laid out: ``Fixed(name, dtype)`` (``f8``, ``i8``, ``?``, ``S16`` for
    text of at most 16 UTF-8 bytes...), ``Text(name)`` (text of any length),
    ``Array(name, [(field, dtype), ...], item)`` (a tuple of items).

    Register it at import time of a module that every process producing or consuming
    the kind imports (an engine imports the modules of its config's ``[events]
    modules``): rings check at attach that both ends laid the kind out the same way.
    Registering the same declaration again is harmless; any conflicting one (a kind id,
    class or name already taken, a field missing or unknown, an unsupported dtype) is a
    :class:`LayoutError` saying which. Returns the compiled :class:`Layout`.
    """
    return register_event(kind, cls, parts, _builtin=False)


def _where(cls: type) -> str:
    return f"{cls.__name__} ({cls.__module__})"


def _check_kind_id(kind: Any, builtin: bool) -> None:
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise LayoutError(f"event kind must be an int, got {kind!r}")
    if builtin:
        if not 0 < kind <= USER_KIND_MAX:
            raise LayoutError(f"event kind must be in 1..{USER_KIND_MAX}, got {kind}")
    elif 0 < kind < USER_KIND_MIN:
        raise LayoutError(f"event kind {kind} is reserved for the library; custom kinds are "
                          f"{USER_KIND_MIN}..{USER_KIND_MAX}")  # fmt: skip
    elif not USER_KIND_MIN <= kind <= USER_KIND_MAX:
        raise LayoutError(f"custom event kinds are {USER_KIND_MIN}..{USER_KIND_MAX}, got {kind}")


_DTYPES = f"{' '.join(_STRUCT_CODES)} or S<bytes>"


def _check_dtype(where: str, dtype: Any) -> None:
    ok = isinstance(dtype, str) and (
        dtype in _STRUCT_CODES or (dtype[:1] == "S" and dtype[1:].isdigit() and int(dtype[1:]) > 0)
    )
    if not ok:
        raise LayoutError(f"{where}: unsupported field dtype {dtype!r}; expected {_DTYPES}")


def _check_parts(cls: type, parts: Any) -> tuple[Fixed | Array | Text, ...]:
    """``parts`` as a tuple, or a one-line LayoutError naming what is wrong with it."""
    name = cls.__name__
    try:
        parts = tuple(parts)
    except TypeError:
        raise LayoutError(f"the layout of {name} must be a list of Fixed, Array and Text "
                          f"parts, got {parts!r}") from None  # fmt: skip
    for i, p in enumerate(parts, 1):
        if not isinstance(p, Fixed | Array | Text):
            raise LayoutError(f"part {i} of {name} is {p!r}; expected Fixed, Array or Text")
    declared = [p.name for p in parts]
    for d in declared:
        if declared.count(d) > 1:
            raise LayoutError(f"the layout of {name} declares {d!r} twice")
    names = [f.name for f in msgspec.structs.fields(cls)]
    if sorted(names) != sorted(declared):
        raise LayoutError(
            f"layout of {name} must declare exactly its fields: "
            f"missing {sorted(set(names) - set(declared))}, "
            f"unknown {sorted(set(declared) - set(names))}"
        )
    for p in parts:
        if isinstance(p, Fixed):
            _check_dtype(f"{name}.{p.name}", p.dtype)
        elif isinstance(p, Array):
            try:
                fields = [(str(f), dt) for f, dt in p.fields]
            except (TypeError, ValueError):
                raise LayoutError(f"{name}.{p.name}: Array fields must be (name, dtype) "
                                  f"pairs, got {p.fields!r}") from None  # fmt: skip
            for f, dt in fields:
                _check_dtype(f"{name}.{p.name}.{f}", dt)
    return parts


def kinds(*, user: bool | None = None) -> list[int]:
    """The registered kind ids, sorted: every one (default), only the custom ones
    (``user=True``: ``>= USER_KIND_MIN``) or only the library's (``user=False``).

    ``ShmQueue.create(name, kinds=codec.kinds())`` creates a ring for every kind this
    process knows, the library's and the custom ones."""
    if user is None:
        return sorted(_BY_KIND)
    return sorted(k for k in _BY_KIND if (k >= USER_KIND_MIN) == user)


def kind_of(event: type | str) -> int:
    """The kind id of a registered event class (or class name)."""
    return layout_for(event).kind


def event_class(kind: int | str) -> type:
    """The event class registered as ``kind`` (an id, or the class's name)."""
    return layout_for(kind).cls


def _unknown_name(name: str) -> str:
    import difflib

    known = [lay.name for _, lay in sorted(_BY_KIND.items())]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"unknown event kind {name!r}{hint}; known: {', '.join(known)} (a custom kind "
            "is known once registered with ttxt_mp.register_event())")  # fmt: skip


def layout_for(key: int | type | str) -> Layout:
    """The layout of a kind id, a registered event class, or a class name."""
    try:
        if isinstance(key, int):
            return _BY_KIND[key]
        if isinstance(key, str):
            return _BY_NAME[key]
        return _BY_CLS[key]
    except KeyError:
        if isinstance(key, str):
            raise LayoutError(_unknown_name(key)) from None
        what = f"unknown event kind {key}" if isinstance(key, int) else (
            f"event type {getattr(key, '__name__', key)} is not registered")  # fmt: skip
        raise LayoutError(
            f"{what}: register it with ttxt_mp.register_event() in every process that uses "
            "it (an engine's processes import the modules of its config's [events] modules)"
        ) from None
    except TypeError:  # unhashable
        raise LayoutError(f"expected an event kind id, class or name, got {key!r}") from None


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
