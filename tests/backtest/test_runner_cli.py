"""``ttxt-mp backtest``: every bad input is one line naming the cause, exit code 2, no
traceback, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from bt_doubles import market, write_recording

from ttxt_mp.cli import main


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recording(market(2), tmp_path_factory.mktemp("cli") / "rec")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(["backtest", *argv])
    except SystemExit as e:  # argparse's own errors
        code = int(e.code or 0)
    err = capsys.readouterr().err
    return code, err


GOOD = "ttxt_mp.client:BaseClient"


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "nocolon"], "argument --strategy: expected module:Class"),
    (["--strategy", GOOD, "--from", "yesterday"], "argument --from: time 'yesterday': expected "
                                                  "nanoseconds or ISO 8601"),
    (["--strategy", GOOD, "--latency-ms", "-1"], "argument --latency-ms: expected a number >= 0"),
    (["--strategy", GOOD, "--ack-ms", "x"], "argument --ack-ms: expected a number, got 'x'"),
    (["--strategy", GOOD, "--fees", "binance=0.1"], "argument --fees: expected venue=maker,taker"),
    (["--strategy", GOOD, "--fees", "binance=a,b"], "maker and taker must be numbers"),
    (["--strategy", GOOD, "--fees", "binance=5,5"], "rates are fractions of notional"),
    (["--strategy", GOOD, "--balance", "binance=USDT"], "expected venue:ASSET=amount"),
    (["--strategy", GOOD, "--balance", "binance:USDT=-5"], "amount must be a number >= 0"),
    (["--strategy", GOOD, "--on-gap", "skip"], "argument --on-gap: invalid choice: 'skip'"),
    (["--strategy", GOOD, "--equity-interval", "0"], "expected a number > 0"),
    (["--strategy", GOOD, "--sharpe-interval", "1y"], "argument --sharpe-interval: expected a "
                                                      "positive whole number and a unit"),
    (["--strategy", GOOD, "--sharpe-interval", "0h"], "expected a positive whole number"),
])
def test_bad_options(rec: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                     message: str) -> None:  # fmt: skip
    code, err = run(capsys, str(rec), *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "no_such_module_x:Foo"], "cannot load client 'no_such_module_x:Foo': No "
                                             "module named 'no_such_module_x'"),
    (["--strategy", "ttxt_mp.client:Nope"], "has no attribute 'Nope'"),
    (["--strategy", "ttxt_mp.events:Side"], "is not a BaseClient subclass"),
])
def test_bad_strategy(rec: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                      message: str) -> None:  # fmt: skip
    code, err = run(capsys, str(rec), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_or_empty_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, str(tmp_path / "nope"), "--strategy", GOOD)
    assert code == 2 and err.strip() == f"ttxt-mp: no recording at {tmp_path / 'nope'}"
    code, err = run(capsys, str(tmp_path), "--strategy", GOOD)
    assert code == 2 and err.strip() == f"ttxt-mp: no recording files (*.bin) in {tmp_path}"


def test_strategy_from_the_current_directory(tmp_path: Path, rec: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`ttxt-mp` is a console script: the current directory is put on the import path, so
    `--strategy mypackage.module:Class` works from a project's root (here it breaks at
    import, which proves it was found)."""
    (tmp_path / "mystrat_cwd_x.py").write_text("raise RuntimeError('imported from cwd')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    code, err = run(capsys, str(rec), "--strategy", "mystrat_cwd_x:S")
    assert code == 2 and "RuntimeError: imported from cwd" in err
