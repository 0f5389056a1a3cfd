"""Walk the chunk headers of a recording: where each chunk is, and which regions are damaged.

The walk reads only the 40-byte headers (each protected by its own CRC); bodies are
checked later, when they are read. After a bad header the walk resynchronizes on the next
chunk magic whose header CRC is valid, so one damaged chunk never hides the rest.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ttxt_mp import codec_c
from ttxt_mp.storage.format import (
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    FORMAT_VERSION,
    ChunkHeader,
    Problem,
    chunk_size,
    parse_chunk_header,
)


@dataclass
class ChunkIndex:
    """The valid-looking chunks of one file, as parallel numpy arrays."""

    pos: np.ndarray  # int64 offset of the chunk header
    count: np.ndarray  # int64 events
    body_len: np.ndarray  # int64
    first_ts: np.ndarray  # int64
    last_ts: np.ndarray  # int64
    body_crc: np.ndarray  # uint32
    problems: list[Problem] = field(default_factory=list)
    end: int = 0  # end offset of the last chunk whose header is valid and complete

    def __len__(self) -> int:
        return len(self.pos)

    @property
    def body_start(self) -> np.ndarray:
        return self.pos + CHUNK_HEADER_SIZE

    @property
    def end_pos(self) -> np.ndarray:
        """Offset just after each chunk (header, body and index)."""
        return self.pos + CHUNK_HEADER_SIZE + self.body_len + 4 * self.count

    def body_ok(self, buf, i: int) -> bool:
        """Does chunk ``i``'s body + index match its CRC?"""
        start = int(self.pos[i]) + CHUNK_HEADER_SIZE
        stop = int(self.end_pos[i])
        return zlib.crc32(buf[start:stop]) == int(self.body_crc[i])


def _find_magic(buf, start: int) -> int:
    find = getattr(buf, "find", None)
    if find is not None:
        return find(CHUNK_MAGIC, start)
    return bytes(buf[start:]).find(CHUNK_MAGIC) + start if start < len(buf) else -1


def fast_crc() -> bool:
    """The compiled codec is active and this CPU runs its PCLMULQDQ CRC32 (else zlib's):
    the header walk here and the body checks of :mod:`ttxt_mp.storage.reader` use it."""
    c = codec_c._ccodec
    return codec_c.IMPLEMENTATION == "c" and c is not None and c.fast_crc_available()


def scan_chunks(buf, path: str, start: int) -> ChunkIndex:
    """Index the chunks of ``buf`` (bytes, mmap or uint8 array) from offset ``start``.

    Compiled, the run of valid chunks is walked in one C call (a 2 M-event recording has
    ~13k chunk headers, a quarter of a batch replay's time in Python); this loop stays the
    reference, and handles each damaged region either way."""
    pieces: list[np.ndarray] = []
    problems: list[Problem] = []
    size = len(buf)
    pos = start
    end = start
    fast = fast_crc()
    while pos < size:
        if fast:
            got, stop = codec_c._ccodec.scan_headers(buf, pos, CHUNK_MAGIC, FORMAT_VERSION,
                                                     CHUNK_HEADER_SIZE)  # fmt: skip
            if got:
                pieces.append(np.frombuffer(got, np.int64).reshape(-1, 6))
                pos = end = stop
            if pos >= size:
                break
        head = parse_chunk_header(buf, pos)
        if isinstance(head, ChunkHeader):
            stop = pos + chunk_size(head.body_len, head.count)
            if stop <= size:
                pieces.append(np.array([(pos, head.count, head.body_len, head.first_ts,
                                         head.last_ts, head.body_crc)], np.int64))  # fmt: skip
                pos = end = stop
                continue
            reason = (
                f"truncated chunk: header announces {stop - pos} bytes, {size - pos} present"
            )
        else:
            reason = head
        nxt = _find_magic(buf, pos + 1)
        while nxt >= 0 and not isinstance(parse_chunk_header(buf, nxt), ChunkHeader):
            nxt = _find_magic(buf, nxt + 1)
        stop = size if nxt < 0 else nxt
        problems.append(Problem(path, pos, stop - pos, reason))
        pos = stop
    rows = np.concatenate(pieces) if pieces else np.zeros((0, 6), np.int64)
    arr = np.ascontiguousarray(rows.T)
    return ChunkIndex(
        arr[0], arr[1], arr[2], arr[3], arr[4], arr[5].astype(np.uint32), problems, end
    )
