"""inspect: counts, time range, gaps, holes, damage with offsets; the optional plot."""

from __future__ import annotations

import argparse
import builtins
import json

import pytest
from storage_helpers import T0, book, record

from ttxt_mp.events import GapNotice, Kline
from ttxt_mp.storage.inspect import add_inspect_arguments, inspect_main, inspect_paths


def _make(rec_dir):
    evs = [book(i, snapshot=i == 0) for i in range(100)]
    evs += [Kline(exchange="binance", symbol="BTC/USDT", exch_ts=T0 + 100_000, close=1.0)]
    evs += [GapNotice(exchange="binance", symbol="BTC/USDT", local_ts=T0 + 150_000, lost=12)]
    evs += [book(i, ts=T0 + 30 * 10**9 + i) for i in range(100, 110)]  # a 30 s hole
    record(evs, rec_dir, chunk_events=20)
    return evs


def test_report(rec_dir):
    _make(rec_dir)
    (r,) = inspect_paths([str(rec_dir)], hole_seconds=10)
    assert (r.exchange, r.symbol, r.events, r.chunks) == ("binance", "BTC/USDT", 112, 6)
    assert r.kinds == {"Orderbook": 110, "Kline": 1, "GapNotice": 1}
    assert (r.first_ts, r.last_ts) == (T0, T0 + 30 * 10**9 + 109)
    assert (r.gap_notices, r.lost) == (1, 12)
    assert len(r.holes) == 1 and 29 < r.holes[0].seconds < 31
    assert r.problems == [] and 100 < r.bytes_per_event < 200


def test_damage_is_listed_and_exit_code_set(rec_dir, capsys):
    _make(rec_dir)
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    data = bytearray(path.read_bytes())
    data[500] ^= 1
    path.write_bytes(bytes(data))
    args = add_inspect_arguments(argparse.ArgumentParser()).parse_args([str(rec_dir), "--json"])
    assert inspect_main(args) == 1
    (r,) = json.loads(capsys.readouterr().out)
    assert r["problems"][0]["offset"] == 96 and r["problems"][0]["reason"] == "chunk body CRC mismatch"
    assert r["events"] == 92


def test_rich_tables(rec_dir, capsys):
    _make(rec_dir)
    args = add_inspect_arguments(argparse.ArgumentParser()).parse_args([str(rec_dir)])
    assert inspect_main(args) == 0
    out = capsys.readouterr().out
    assert "BINANCE_BTC_USDT.bin" in out and "Timestamp holes" in out and "12" in out


def test_plot(rec_dir, tmp_path):
    pytest.importorskip("matplotlib")
    _make(rec_dir)
    out = tmp_path / "mid.png"
    args = add_inspect_arguments(argparse.ArgumentParser()).parse_args(
        [str(rec_dir), "--plot", str(out)]
    )
    assert inspect_main(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_plot_without_matplotlib_says_how_to_install(rec_dir, tmp_path, monkeypatch):
    _make(rec_dir)
    real = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    args = add_inspect_arguments(argparse.ArgumentParser()).parse_args(
        [str(rec_dir), "--plot", str(tmp_path / "x.png")]
    )
    with pytest.raises(SystemExit, match=r"pip install 'ttxt-mp\[plot\]'"):
        inspect_main(args)


def test_mid_series_spans_the_recording_when_a_snapshot_has_no_exchange_time(rec_dir):
    """A REST snapshot of old (Binance spot: no time in the body) recorded exch_ts=0: the
    series uses its local time, so the plot spans minutes, not 1970-2026."""
    import msgspec

    from ttxt_mp.storage.inspect import mid_spread_series

    snap = msgspec.structs.replace(book(0, snapshot=True), exch_ts=0)
    record([snap] + [book(i) for i in range(1, 50)], rec_dir, chunk_events=10)
    ((t, mid, spread),) = mid_spread_series([str(rec_dir)]).values()
    assert len(t) > 1 and t.min() >= T0 and t.max() - t.min() < 10**9
