"""Results as numpy tables and files: read back, deterministic bytes, CSV fallback, plot,
and the one-line errors a user can cause."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import msgspec
import numpy as np
import pytest
from backtest.results_helpers import T0, build, equity, fill, order, sample_results

from ttxt_mp.backtest.records import BalanceRow, EquityRow, FillRow, OrderRow, PositionRow
from ttxt_mp.backtest.results import Results, ResultsBuilder, ResultsError

TABLE_NAMES = ["orders", "fills", "balances", "positions", "equity"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def files_bytes(paths) -> dict[str, bytes]:
    return {os.path.basename(p): open(p, "rb").read() for p in paths}


def test_tables_are_structured_arrays_with_the_row_fields():
    res = sample_results()
    t = res.tables()
    assert list(t) == TABLE_NAMES
    for name, cls in zip(TABLE_NAMES, (OrderRow, FillRow, BalanceRow, PositionRow, EquityRow),
                         strict=True):  # fmt: skip
        assert t[name].dtype.names == cls.__struct_fields__
        assert len(t[name]) == len(getattr(res, name))
    o = t["orders"]
    assert o.dtype["ts"] == np.int64 and o.dtype["price"] == np.float64
    assert o.dtype["client_order_id"].kind == "U"
    assert o["client_order_id"].tolist() == ["c1", "c2", "c1", "ünï,cödé"]
    assert o["status"][o["client_order_id"] == "c1"].tolist() == ["NEW", "PARTIALLY_FILLED"]
    assert t["equity"]["equity"].tolist() == [1000.0, 1001.5, 999.25]


def test_empty_tables_keep_their_columns():
    t = build([]).tables()
    assert all(len(a) == 0 for a in t.values())
    assert t["fills"].dtype.names == FillRow.__struct_fields__


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_then_read_back_gives_the_same_rows(tmp_path, fmt):
    res = sample_results()
    paths = res.write(tmp_path, format=fmt)
    assert sorted(p.name for p in paths) == sorted([f"{n}.{fmt}" for n in TABLE_NAMES] + ["run.json"])
    back = Results.read(tmp_path)
    for name in TABLE_NAMES:
        assert getattr(back, name) == getattr(res, name), name
    assert (back.events, back.sim_start_ns, back.sim_end_ns, back.error, back.gaps, back.meta) == (
        res.events, res.sim_start_ns, res.sim_end_ns, res.error, res.gaps, res.meta)
    assert back.wall_s == 0.0  # not stored: it differs run to run
    # the same arrays as tables() of the original
    for name, arr in back.tables().items():
        assert arr.tolist() == res.tables()[name].tolist()


def test_parquet_files_are_readable_by_pyarrow(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    res = sample_results()
    res.write(tmp_path)  # auto picks Parquet with pyarrow installed
    fills = pq.read_table(tmp_path / "fills.parquet")
    assert fills.column_names == list(FillRow.__struct_fields__)
    assert fills.column("price").to_pylist() == [f.price for f in res.fills]
    assert str(fills.schema.field("ts").type) == "int64"


def test_without_pyarrow_auto_writes_csv(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    res = sample_results()
    paths = res.write(tmp_path)
    assert {p.suffix for p in paths} == {".csv", ".json"}
    assert msgspec.json.decode((tmp_path / "run.json").read_bytes())["format"] == "csv"
    assert Results.read(tmp_path).orders == res.orders
    with pytest.raises(ResultsError) as e:
        res.write(tmp_path / "x", format="parquet")
    assert "needs pyarrow" in one_line(e)


def test_csv_is_plain_text_with_exact_floats(tmp_path):
    res = build([equity(T0, 0.1 + 0.2), equity(T0 + 1, 1e-300), equity(T0 + 2, -0.0)])
    res.write(tmp_path, format="csv")
    lines = (tmp_path / "equity.csv").read_text().splitlines()
    assert lines[0] == ",".join(EquityRow.__struct_fields__)
    assert lines[1].startswith(f"{T0},0.30000000000000004,")
    assert lines[1].endswith(',"BTC/USDT","USDT"')  # texts quoted
    back = Results.read(tmp_path).equity
    assert [r.equity for r in back] == [0.1 + 0.2, 1e-300, -0.0]
    assert str(back[2].equity) == "-0.0"


def test_switching_format_leaves_one_version_of_each_table(tmp_path):
    res = sample_results()
    res.write(tmp_path, format="parquet")
    res.write(tmp_path, format="csv")
    assert sorted(os.listdir(tmp_path)) == sorted([f"{n}.csv" for n in TABLE_NAMES] + ["run.json"])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_rows_give_identical_bytes(tmp_path, fmt):
    a = files_bytes(sample_results().write(tmp_path / "a", format=fmt))
    # built again from scratch, with a different wall time: nothing of it is written
    b = files_bytes(build(sample_results().equity + sample_results().orders, events=1).write(
        tmp_path / "b", format=fmt))
    c_res = sample_results()
    c_res.wall_s = 99.0
    c = files_bytes(c_res.write(tmp_path / "c", format=fmt))
    assert a == c
    assert a != b  # the check can fail: different rows, different bytes


def test_bytes_do_not_depend_on_the_process(tmp_path):
    """Hash seeds and a fresh interpreter change nothing (no set or id order leaks)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{HERE!r}, {ROOT!r}]
        from results_helpers import sample_results
        sample_results().write(sys.argv[1], format=sys.argv[2])
    """)  # fmt: skip
    for fmt in ("parquet", "csv"):
        mine = files_bytes(sample_results().write(tmp_path / f"mine-{fmt}", format=fmt))
        for seed in ("1", "2"):
            out = tmp_path / f"{fmt}-{seed}"
            subprocess.run([sys.executable, "-c", script, str(out), fmt], check=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": seed})  # fmt: skip
            assert files_bytes(sorted(out.iterdir())) == mine


def test_run_json_has_no_wall_clock_and_the_summary(tmp_path):
    res = sample_results()
    res.write(tmp_path, interval="30m")
    doc = msgspec.json.decode((tmp_path / "run.json").read_bytes())
    assert doc["rows"] == {n: len(getattr(res, n)) for n in TABLE_NAMES}
    assert doc["summary"]["interval"] == "30m"
    assert "wall_s" not in doc["summary"] and "events_per_s" not in doc["summary"]
    assert doc["summary"]["turnover"] == res.summary().turnover
    assert doc["meta"] == {"latency_ms": "5", "strategy": "mm:Maker"}


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = sample_results().plot(tmp_path / "run.png")
    assert out == tmp_path / "run.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_plot_of_a_run_without_rows_still_draws(tmp_path):
    pytest.importorskip("matplotlib")
    out = build([]).plot(tmp_path / "empty")  # no suffix: PNG
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(ResultsError) as e:
        sample_results().plot(tmp_path / "x.png")
    assert one_line(e).startswith("plotting needs matplotlib: pip install")
    assert not (tmp_path / "x.png").exists()


def test_plot_to_a_bad_place_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ResultsError) as e:
        sample_results().plot(tmp_path / "no" / "such" / "dir.png")
    assert "cannot write the plot to" in one_line(e)
    with pytest.raises(ResultsError) as e:
        sample_results().plot(tmp_path / "x.notaformat")
    assert "notaformat" in one_line(e)


def test_out_dir_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ResultsError) as e:
        sample_results().write(f / "sub")
    assert one_line(e).startswith(f"cannot write results to {f / 'sub'}: ")


def test_out_dir_not_writable_is_one_line():
    # in /tmp itself: pytest's tmp_path is private to its user, and the check may run as
    # another user (root writes anywhere)
    base = tempfile.mkdtemp(prefix="ttxt-results-ro-")
    ro = Path(base) / "ro"
    try:
        os.chmod(base, 0o755)
        ro.mkdir(mode=0o555)

        def attempt() -> str:
            try:
                sample_results().write(ro / "out", format="csv")
            except ResultsError as e:
                return str(e)
            return "written"

        if os.geteuid() == 0:
            from as_user import run_as

            msg = run_as(attempt)
        else:
            msg = attempt()
        assert msg == f"cannot write results to {ro / 'out'}: Permission denied"
        assert not (ro / "out").exists()
    finally:
        shutil.rmtree(base)


def test_bad_format_and_bad_reads_are_one_line(tmp_path):
    with pytest.raises(ResultsError) as e:
        sample_results().write(tmp_path, format="xlsx")
    assert one_line(e) == "unknown results format 'xlsx': expected one of auto, parquet, csv"
    with pytest.raises(ResultsError) as e:
        Results.read(tmp_path / "missing")
    assert one_line(e) == f"no results directory at {tmp_path / 'missing'}"
    sample_results().write(tmp_path / "r", format="csv")
    (tmp_path / "r" / "fills.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ResultsError) as e:
        Results.read(tmp_path / "r")
    assert "fills.csv: not a fills table" in one_line(e)
    (tmp_path / "r" / "fills.csv").write_text(",".join(FillRow.__struct_fields__) + "\nx\n")
    with pytest.raises(ResultsError) as e:
        Results.read(tmp_path / "r")
    assert "fills.csv line 2:" in one_line(e)
    sample_results().write(tmp_path / "r", format="csv")
    (tmp_path / "r" / "run.json").write_text('{"events": "many"}')
    with pytest.raises(ResultsError) as e:
        Results.read(tmp_path / "r")
    assert one_line(e) == f"{tmp_path / 'r' / 'run.json'}: Expected `int`, got `str` - at `$.events`"
    (tmp_path / "r" / "run.json").write_text("{not json")
    with pytest.raises(ResultsError) as e:
        Results.read(tmp_path / "r")
    assert one_line(e).startswith(f"{tmp_path / 'r' / 'run.json'}: JSON is malformed")
    (tmp_path / "r" / "fills.csv").unlink()
    with pytest.raises(ResultsError) as e:
        Results.read(tmp_path / "r")
    assert one_line(e) == f"no fills.parquet or fills.csv in {tmp_path / 'r'}"


def test_builder_refuses_other_objects_and_copies_on_finish():
    b = ResultsBuilder()
    with pytest.raises(TypeError, match="not dict"):
        b.add({"ts": 1})  # type: ignore[arg-type]
    b.add(order("c1", "NEW"))
    res = b.finish(events=1, sim_start_ns=T0, sim_end_ns=T0, wall_s=0.1)
    b.add(fill("c1", 100.0, 1.0, 0.0))
    assert len(b) == 2 and res.fills == [] and len(res.orders) == 1


def test_print_summary_is_a_rich_table():
    from rich.console import Console

    console = Console(record=True, width=120)
    res = sample_results()
    res.error = "strategy raised ZeroDivisionError at 2024-05-01T01:00:00Z on Orderbook"
    res.print_summary(console, interval="30m")
    text = console.export_text()
    assert "Backtest summary" in text and "Sharpe (30m / annualized)" in text
    assert "fill ratio" in text and "33.3 %" in text  # c1 filled, of c1, c2, ünï,cödé
    assert "stopped by an error" in text and "ZeroDivisionError" in text
    assert "12,345" in text and "USDT" in text and "(2.00 h)" in text
    assert "max drawdown" in text and "(0.225 %)" in text  # 1001.5 -> 999.25


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "0.5 s"), (119.9, "119.9 s"),
                                               (120, "2.0 min"), (7199, "120.0 min"),
                                               (7200, "2.00 h"), (172_800, "2.0 days")])  # fmt: skip
def test_simulated_span_reads_in_a_fitting_unit(seconds, text):
    from ttxt_mp.backtest.report import _span

    assert _span(seconds) == text


def test_undefined_figures_print_as_na_and_encode_as_null():
    from rich.console import Console

    console = Console(record=True, width=120)
    res = build([])
    res.print_summary(console)
    text = console.export_text()
    assert "fill ratio" in text and "n/a" in text and "nan" not in text.lower().replace("n/a", "")
    doc = msgspec.json.decode(msgspec.json.encode(res.summary()))
    assert doc["fill_ratio"] is None and doc["sharpe"] is None


def test_public_names_load_lazily_from_the_package():
    import ttxt_mp

    assert ttxt_mp.Results is Results and ttxt_mp.ResultsBuilder is ResultsBuilder
    assert ttxt_mp.Summary.__name__ == "Summary"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_texts_with_line_breaks_and_quotes_read_back(tmp_path, fmt):
    odd = ['a\rb', "c\nd", 'e"f', "g,h", "\r", " ", ""]
    res = build([order(cid, "NEW", reason=cid) for cid in odd])
    res.write(tmp_path, format=fmt)
    assert [o.reason for o in Results.read(tmp_path).orders] == odd


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_text_that_is_not_unicode_is_one_line(tmp_path, fmt):
    res = build([order("c1", "NEW", reason="bad \ud800 text")])
    with pytest.raises(ResultsError) as e:
        res.write(tmp_path / "out", format=fmt)
    assert one_line(e) == (f"cannot write results to {tmp_path / 'out'}: a text field is not "
                           "valid Unicode ('\\ud800')")
