"""Damaged files: every problem is reported with file and offset, everything else replays."""

from __future__ import annotations

import random

import pytest
from storage_helpers import book, record, replay

from ttxt_mp.storage import MarketDataReplayer, RecordingFile
from ttxt_mp.storage.format import CHUNK_HEADER_SIZE, FILE_HEADER_SIZE

CHUNK = 25
N = 1000


@pytest.fixture
def clean(rec_dir):
    evs = [book(i, levels=1 + i % 5) for i in range(N)]
    record(evs, rec_dir, chunk_events=CHUNK)
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    f = RecordingFile(path)
    bounds = [(int(p), int(e)) for p, e in zip(f.index.pos, f.index.end_pos, strict=True)]
    assert len(bounds) == N // CHUNK
    return path, path.read_bytes(), evs, bounds


def _chunk_at(bounds, offset):
    return next(i for i, (a, b) in enumerate(bounds) if a <= offset < b)


def _without(evs, chunk):
    return evs[: chunk * CHUNK] + evs[(chunk + 1) * CHUNK :]


def test_flipped_byte_anywhere_in_a_chunk(clean):
    path, data, evs, bounds = clean
    rng = random.Random(7)
    for _ in range(40):
        off = rng.randrange(FILE_HEADER_SIZE, len(data))
        bad = bytearray(data)
        bad[off] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(bad))
        c = _chunk_at(bounds, off)
        problems = []
        out = replay(path, on_problem=problems.append)
        assert out == _without(evs, c), f"flip at {off} (chunk {c})"
        assert len(problems) == 1
        p = problems[0]
        assert (p.path, p.offset, p.length) == (str(path), bounds[c][0], bounds[c][1] - bounds[c][0])
        where = "header" if off < bounds[c][0] + CHUNK_HEADER_SIZE else "body"
        assert ("header" in p.reason or "magic" in p.reason) if where == "header" else (
            p.reason == "chunk body CRC mismatch"
        )


def test_several_damaged_chunks_are_all_skipped(clean):
    path, data, evs, bounds = clean
    bad = bytearray(data)
    hit = [3, 4, 17, 39]
    for c in hit:
        bad[bounds[c][0] + 1] ^= 0x40  # chunk magic
    path.write_bytes(bytes(bad))
    with MarketDataReplayer(path) as rp:
        out = list(rp.events())
        # two adjacent damaged chunks are one damaged region
        assert [(p.offset, p.length) for p in rp.problems] == [
            (bounds[3][0], bounds[4][1] - bounds[3][0]),
            (bounds[17][0], bounds[17][1] - bounds[17][0]),
            (bounds[39][0], bounds[39][1] - bounds[39][0]),
        ]
    keep = [e for i, e in enumerate(evs) if i // CHUNK not in hit]
    assert out == keep


def test_truncated_anywhere(clean):
    path, data, evs, bounds = clean
    rng = random.Random(11)
    for _ in range(30):
        cut = rng.randrange(FILE_HEADER_SIZE + 1, len(data))
        path.write_bytes(data[:cut])
        c = _chunk_at(bounds, cut)
        with MarketDataReplayer(path) as rp:
            out = list(rp.events())
            if cut == bounds[c][0]:  # cut exactly between chunks: nothing damaged
                assert rp.problems == []
            else:
                assert [(p.offset, p.length) for p in rp.problems] == [(bounds[c][0], cut - bounds[c][0])]
                assert "truncated" in rp.problems[0].reason
        assert out == evs[: c * CHUNK]


def test_damaged_file_header_skips_only_that_file(clean, rec_dir):
    path, data, evs, _ = clean
    other = [book(i, symbol="ETH/USDT") for i in range(10)]
    record(other, rec_dir)
    path.write_bytes(data[:10] + b"\xff" + data[11:])
    with MarketDataReplayer(rec_dir) as rp:
        assert list(rp.events()) == other
        assert len(rp.problems) == 1
        assert rp.problems[0].path == str(path) and rp.problems[0].offset == 0
        assert "file header CRC mismatch" in rp.problems[0].reason


def test_garbage_between_chunks_is_one_problem(clean):
    path, data, evs, bounds = clean
    a = bounds[10][0]
    path.write_bytes(data[:a] + b"\x89TXC" + b"\0" * 60 + data[a:])
    with MarketDataReplayer(path) as rp:
        assert list(rp.events()) == evs
        assert [(p.offset, p.length) for p in rp.problems] == [(a, 64)]


def test_no_verify_reads_without_crc(clean):
    path, data, evs, _ = clean
    with MarketDataReplayer(path, verify=False) as rp:
        assert list(rp.events()) == evs and rp.problems == []


def test_chunk_whose_index_disagrees_with_its_records(rec_dir):
    from ttxt_mp import codec
    from ttxt_mp.storage.format import RECORD_HEADER, pack_chunk, pack_file_header

    body, index = bytearray(), []
    for i in range(3):
        kind, payload = codec.encode(book(i))
        index.append(len(body))
        body += RECORD_HEADER.pack(kind, len(payload)) + payload
    good = pack_chunk(bytes(body), b"".join(x.to_bytes(4, "little") for x in index), 3, 0, 0)
    index[1] += 1  # CRC is right (written that way), the index is not
    bad = pack_chunk(bytes(body), b"".join(x.to_bytes(4, "little") for x in index), 3, 0, 0)
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    path.write_bytes(pack_file_header("binance", "BTC/USDT", 0) + good + bad + good)
    for verify in (True, False):
        with MarketDataReplayer(path, verify=verify) as rp:
            assert list(rp.events()) == [book(i) for i in range(3)] * 2
            assert [(p.offset, p.reason) for p in rp.problems] == [
                (FILE_HEADER_SIZE + len(good), "chunk records disagree with its index")
            ]
