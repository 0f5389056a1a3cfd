"""Backtest rows as numpy structured arrays, and those arrays to and from files.

Column types follow the row Structs of :mod:`ttxt_mp.backtest.records`: ``int`` ->
``int64``, ``float`` -> ``float64``, ``str`` -> fixed-width unicode (``<U{n}``, ``n`` the
longest value in that column, at least 1) so columns compare, sort and mask like any
numpy array. (numpy drops trailing NUL characters of fixed-width strings; no exchange,
symbol or id has one.)

Files: one per table, ``<name>.parquet`` (pyarrow) or ``<name>.csv`` (the standard
library; floats written as their shortest round-trip text so they read back bit for bit,
texts quoted). Both are
byte-deterministic: the same rows give the same bytes, and nothing in them depends on the
wall clock or the machine. Each file is written to a temporary name and renamed, so a
reader never sees half a table.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ttxt_mp.backtest.records import BalanceRow, EquityRow, FillRow, OrderRow, PositionRow

__all__ = [
    "FORMATS",
    "TABLES",
    "ResultsError",
    "from_array",
    "read_table",
    "to_array",
    "write_bytes",
    "write_table",
]

# File name stem -> row type, in the order tables are written and listed.
TABLES: dict[str, type[msgspec.Struct]] = {
    "orders": OrderRow,
    "fills": FillRow,
    "balances": BalanceRow,
    "positions": PositionRow,
    "equity": EquityRow,
}
FORMATS = ("auto", "parquet", "csv")
_KINDS = {int: "<i8", float: "<f8", str: "str"}


class ResultsError(ValueError):
    """A bad request about results (format, interval, path): one line naming the cause."""


def _columns(cls: type[msgspec.Struct]) -> list[tuple[str, str]]:
    out = []
    for f in msgspec.structs.fields(cls):
        if f.type not in _KINDS:  # a field added to records.py with a new type
            raise TypeError(f"{cls.__name__}.{f.name}: no column type for {f.type!r}")
        out.append((f.name, _KINDS[f.type]))
    return out


def _dtype(cls: type[msgspec.Struct], widths: dict[str, int]) -> np.dtype:
    return np.dtype([(n, f"<U{widths.get(n, 1)}" if k == "str" else k)
                     for n, k in _columns(cls)])  # fmt: skip


def to_array(cls: type[msgspec.Struct], rows: Sequence[msgspec.Struct]) -> np.ndarray:
    """Rows of one type -> a structured array (an empty one keeps the columns)."""
    if not rows:
        return np.empty(0, dtype=_dtype(cls, {}))
    widths = {n: max(1, max(map(len, map(attrgetter(n), rows))))
              for n, k in _columns(cls) if k == "str"}  # fmt: skip
    return np.array(list(map(msgspec.structs.astuple, rows)), dtype=_dtype(cls, widths))


def from_array(cls: type[msgspec.Struct], arr: np.ndarray) -> list[Any]:
    """A structured array (from :func:`to_array` or a file) -> row Structs."""
    names = [n for n, _ in _columns(cls)]
    return [cls(**dict(zip(names, rec, strict=True))) for rec in arr[names].tolist()]


# ---------------------------------------------------------------------- files


def have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_format(fmt: str) -> str:
    """``"auto"`` -> ``"parquet"`` when pyarrow imports, else ``"csv"``."""
    if fmt not in FORMATS:
        raise ResultsError(f"unknown results format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "parquet" and not have_pyarrow():
        raise ResultsError("format 'parquet' needs pyarrow: pip install pyarrow (or use csv)")
    if fmt == "auto":
        return "parquet" if have_pyarrow() else "csv"
    return fmt


def _parquet_bytes(cls: type[msgspec.Struct], arr: np.ndarray) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({n: pa.array(arr[n].tolist(), type=pa.string()) if k == "str"
                      else pa.array(arr[n]) for n, k in _columns(cls)})  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _csv_bytes(cls: type[msgspec.Struct], arr: np.ndarray) -> bytes:
    """Numbers bare (a float as its shortest round-trip text), every text quoted: the
    reader splits lines at a bare ``\r`` too, which minimal quoting would leave bare."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([n for n, _ in _columns(cls)])
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).writerows(arr.tolist())
    return buf.getvalue().encode()


def write_bytes(path: Path, data: bytes) -> None:
    """Write to ``path`` through a temporary name in the same directory, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_table(out_dir: Path, name: str, arr: np.ndarray, fmt: str) -> Path:
    """Write one table as ``out_dir/<name>.<fmt>``; a stale file of the other format for
    the same table is removed so a directory never holds two versions."""
    cls = TABLES[name]
    path = out_dir / f"{name}.{fmt}"
    write_bytes(path, _parquet_bytes(cls, arr) if fmt == "parquet" else _csv_bytes(cls, arr))
    for other in ("parquet", "csv"):
        if other != fmt:
            (out_dir / f"{name}.{other}").unlink(missing_ok=True)
    return path


def read_table(out_dir: Path, name: str) -> np.ndarray:
    """Read ``<name>.parquet`` or ``<name>.csv`` from ``out_dir`` back into the array
    :func:`to_array` gives for the same rows."""
    cls = TABLES[name]
    cols = _columns(cls)
    pq_path, csv_path = out_dir / f"{name}.parquet", out_dir / f"{name}.csv"
    if pq_path.exists():
        if not have_pyarrow():
            raise ResultsError(f"{pq_path} is Parquet: reading it needs pyarrow (pip install pyarrow)")
        import pyarrow.parquet as pq

        data = pq.read_table(pq_path).to_pydict()
        missing = [n for n, _ in cols if n not in data]
        if missing:
            raise ResultsError(f"{pq_path}: not a {name} table (no column {missing[0]!r})")
        rows = list(zip(*(data[n] for n, _ in cols), strict=True))
    elif csv_path.exists():
        rows = _read_csv(csv_path, name, cols)
    else:
        raise ResultsError(f"no {name}.parquet or {name}.csv in {out_dir}")
    names = [n for n, _ in cols]
    return to_array(cls, [cls(**dict(zip(names, r, strict=True))) for r in rows])


def _read_csv(path: Path, name: str, cols: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    conv = {"<i8": int, "<f8": float, "str": str}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != [n for n, _ in cols]:
            raise ResultsError(f"{path}: not a {name} table (header {header!r})")
        try:
            return [tuple(conv[k](v) for (_, k), v in zip(cols, row, strict=True))
                    for row in reader]  # fmt: skip
        except ValueError as e:
            raise ResultsError(f"{path} line {reader.line_num}: {e}") from None
