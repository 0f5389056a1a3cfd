"""Recording file format, version 1 (full description: docs/FILE_FORMAT.md).

A recording file holds the events of one instrument (or the symbol-less events of one
exchange) as the exact codec bytes the rings carry, so the recorder never re-encodes and
the replayer can hand the bytes to a ring or view them with numpy.

All integers are little-endian::

    file   = file_header chunk*
    file_header (96 bytes)
        0  8s  magic            b"TTXTREC\\x00"
        8  u16 format version   1
       10  u16 header size      96
       12  u32 flags            0 (reserved)
       16  8s  codec registry hash (ttxt_mp.codec.registry_hash())
       24  i64 created_ns       wall clock when the file was created
       32  16s exchange         as in the events (lower case), NUL padded
       48  32s symbol           "BASE/QUOTE", empty for an exchange-level file
       80  u32 day              YYYYMMDD (UTC) with daily rotation, else 0
       84  8x  reserved (zero)
       92  u32 CRC32 of bytes 0..91
    chunk  = chunk_header body index
    chunk_header (40 bytes)
        0  4s  magic            b"\\x89TXC"
        4  u16 format version   1
        6  u16 flags            0 (reserved)
        8  u32 event count
       12  u32 body length in bytes
       16  i64 first ts         lowest record timestamp in the chunk
       24  i64 last ts          highest record timestamp in the chunk
       32  u32 CRC32 of body + index
       36  u32 CRC32 of header bytes 0..35
    body   = record*            exactly `count` records, exactly `body length` bytes
    record = u16 kind, u32 payload length, payload (ttxt_mp.codec bytes of that kind)
    index  = u32 * count        offset of each record from the start of the body

The index is redundant with the record lengths (the reader checks that they agree); it
lets the replayer frame the records of thousands of chunks with a few numpy operations
instead of walking them one after the other.

A record's timestamp is its ``exch_ts``, or its ``local_ts`` when ``exch_ts`` is 0
(connector status, gap notices). A chunk is written with one ``write`` call, so a crash
loses at most the chunk being written; the CRCs let a reader find and skip a damaged
chunk and resynchronize on the next chunk magic.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import UTC, datetime

import msgspec

from ttxt_mp import codec

FORMAT_VERSION = 1
FILE_MAGIC = b"TTXTREC\x00"
CHUNK_MAGIC = b"\x89TXC"
FILE_SUFFIX = ".bin"
DEFAULT_CHUNK_EVENTS = 150

FILE_HEADER = struct.Struct("<8sHHI8sq16s32sI8xI")
CHUNK_HEADER = struct.Struct("<4sHHIIqqII")
RECORD_HEADER = struct.Struct("<HI")
FILE_HEADER_SIZE = FILE_HEADER.size
CHUNK_HEADER_SIZE = CHUNK_HEADER.size
RECORD_HEADER_SIZE = RECORD_HEADER.size
assert (FILE_HEADER_SIZE, CHUNK_HEADER_SIZE, RECORD_HEADER_SIZE) == (96, 40, 6)

ENGINE_FILE_STEM = "_ENGINE"
"""Stem of the file for events that carry neither exchange nor symbol."""

_UNSAFE = re.compile(r"[^A-Z0-9.\-]")


class StorageError(Exception):
    """Base class of recording errors."""


class FormatError(StorageError):
    """A file is not a recording, or was written with an incompatible version or layout."""


class Problem(msgspec.Struct, frozen=True):
    """A damaged region found while reading: which file, where, how long, and why."""

    path: str
    offset: int
    length: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: offset {self.offset} (+{self.length} bytes): {self.reason}"


class FileHeader(msgspec.Struct, frozen=True):
    version: int
    registry_hash: bytes
    created_ns: int
    exchange: str
    symbol: str
    day: int = 0


class ChunkHeader(msgspec.Struct, frozen=True):
    count: int
    body_len: int
    first_ts: int
    last_ts: int
    body_crc: int


def _part(text: str) -> str:
    return _UNSAFE.sub("-", text.upper())


def file_stem(exchange: str, symbol: str) -> str:
    """``("binance", "BTC/USDT")`` -> ``"BINANCE_BTC_USDT"``.

    Names are upper case; characters other than ``A-Z 0-9 . -`` become ``-`` (e.g.
    ``BTC/USDT:USDT`` -> ``BINANCE_BTC_USDT-USDT``). The header keeps the exact exchange
    and symbol, so readers never parse names. Without a symbol the stem is the exchange
    alone (``BINANCE``: its status and gap records), without either ``_ENGINE``.
    """
    if not exchange and not symbol:
        return ENGINE_FILE_STEM
    if not exchange:
        raise ValueError(f"event for symbol {symbol!r} has no exchange")
    if not symbol:
        return _part(exchange)
    base, sep, quote = symbol.partition("/")
    parts = [_part(exchange), _part(base)] + ([_part(quote)] if sep else [])
    return "_".join(parts)


def file_name(exchange: str, symbol: str, day: int = 0) -> str:
    """The recording file name for an instrument; ``day`` (YYYYMMDD) adds ``_YYYY-MM-DD``."""
    stem = file_stem(exchange, symbol)
    if day:
        stem += f"_{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}"
    return stem + FILE_SUFFIX


def utc_day(ns: int) -> int:
    """YYYYMMDD of a nanosecond wall-clock time, in UTC."""
    d = datetime.fromtimestamp(ns / 1e9, UTC)
    return d.year * 10000 + d.month * 100 + d.day


def pack_file_header(exchange: str, symbol: str, created_ns: int, day: int = 0) -> bytes:
    head = FILE_HEADER.pack(
        FILE_MAGIC, FORMAT_VERSION, FILE_HEADER_SIZE, 0, codec.registry_hash(), created_ns,
        exchange.encode(), symbol.encode(), day, 0,
    )  # fmt: skip
    return head[:-4] + struct.pack("<I", zlib.crc32(head[:-4]))


def parse_file_header(buf, path: str = "?") -> FileHeader:
    """Decode and check a file header; :class:`FormatError` says exactly what is wrong."""
    if len(buf) < FILE_HEADER_SIZE:
        raise FormatError(
            f"{path}: {len(buf)} bytes, shorter than the {FILE_HEADER_SIZE}-byte file header"
        )
    magic, version, hsize, _flags, rhash, created, exch, sym, day, crc = FILE_HEADER.unpack_from(
        buf, 0
    )
    if magic != FILE_MAGIC:
        raise FormatError(f"{path}: not a ttxt-mp recording (magic {bytes(magic)!r})")
    if zlib.crc32(bytes(buf[: FILE_HEADER_SIZE - 4])) != crc:
        raise FormatError(f"{path}: file header CRC mismatch (damaged header)")
    if version != FORMAT_VERSION or hsize != FILE_HEADER_SIZE:
        raise FormatError(
            f"{path}: format version {version} (header {hsize} bytes); this reader "
            f"handles version {FORMAT_VERSION}"
        )
    if rhash != codec.registry_hash():
        raise FormatError(
            f"{path}: written with event layouts {rhash.hex()}, this process has "
            f"{codec.registry_hash().hex()} (different ttxt-mp event definitions)"
        )
    return FileHeader(
        version, rhash, created, exch.rstrip(b"\0").decode(), sym.rstrip(b"\0").decode(), day
    )


def chunk_size(body_len: int, count: int) -> int:
    """Bytes of a whole chunk: header, body and index."""
    return CHUNK_HEADER_SIZE + body_len + 4 * count


def pack_chunk(
    body: bytes | bytearray, index: bytes, count: int, first_ts: int, last_ts: int
) -> bytes:
    """Header + body + index of one chunk, ready for a single ``write``.

    ``index`` is the little-endian u32 offset of each record within ``body``.
    """
    if len(index) != 4 * count:
        raise ValueError(f"chunk index has {len(index)} bytes for {count} records")
    crc = zlib.crc32(index, zlib.crc32(body))
    head = CHUNK_HEADER.pack(
        CHUNK_MAGIC, FORMAT_VERSION, 0, count, len(body), first_ts, last_ts, crc, 0
    )
    return head[:-4] + struct.pack("<I", zlib.crc32(head[:-4])) + body + index


def parse_chunk_header(buf, pos: int) -> ChunkHeader | str:
    """The chunk header at ``pos``, or the reason it is not a valid one."""
    if len(buf) - pos < CHUNK_HEADER_SIZE:
        return f"truncated chunk header ({len(buf) - pos} of {CHUNK_HEADER_SIZE} bytes)"
    magic, version, _flags, count, blen, first, last, bcrc, hcrc = CHUNK_HEADER.unpack_from(
        buf, pos
    )
    if magic != CHUNK_MAGIC:
        return "bad chunk magic"
    if zlib.crc32(buf[pos : pos + CHUNK_HEADER_SIZE - 4]) != hcrc:
        return "chunk header CRC mismatch"
    if version != FORMAT_VERSION:
        return f"chunk format version {version}, expected {FORMAT_VERSION}"
    return ChunkHeader(count, blen, first, last, bcrc)
