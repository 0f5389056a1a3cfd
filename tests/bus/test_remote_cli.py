"""``ttxt-mp tail redis://...`` and ``ttxt-mp record redis://...`` as real processes against a
real redis-server: output, one-line errors (exit 2, no traceback), and the Redis password
never printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from remote_writer import EXCHANGE, BusWriter

from ttxt_mp.storage.replayer import MarketDataReplayer

ENGINE = "remote_cli"
SYMS = ("AAA/USDT", "BBB/USDT")
ROOT = Path(__file__).resolve().parents[2]


def cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttxt_mp.cli", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env or _env())  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TTXT_MP_REDIS_PASSWORD"}
    env.update(extra)
    return env


def bare_url(srv) -> str:
    return f"redis://127.0.0.1:{srv.port}/0/{ENGINE}"


def fill(w: BusWriter) -> None:
    w.meta()
    w.publish([w.snapshot(s) for s in SYMS])
    for i in range(5):
        w.publish([w.delta(SYMS[i % 2], i), w.trade(SYMS[i % 2])])
    w.write_state()


def test_tail_prints_the_remote_state_and_events_without_the_password(redis_server_auth):
    pw = redis_server_auth.password
    w = BusWriter(redis_server_auth.url, ENGINE)
    fill(w)
    out = cli("--log-level", "DEBUG", "tail", bare_url(redis_server_auth), "--count", "2",
              env=_env(TTXT_MP_REDIS_PASSWORD=pw))  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("book snap" in ln for ln in lines)
    assert pw not in out.stdout + out.stderr  # not in DEBUG logs either
    out = cli("tail", bare_url(redis_server_auth), "--start", "oldest", "--kind",
              "MarketTrades", "--timeout", "0.5", env=_env(TTXT_MP_REDIS_PASSWORD=pw))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(" trades ") == 5
    assert pw not in out.stdout + out.stderr
    w.close()


@pytest.mark.parametrize("case", ["wrong-password", "no-password", "unreachable", "layout",
                                  "no-engine", "bad-id", "bad-port", "status-wrong-password",
                                  "password-in-argv", "record-password-in-argv"])  # fmt: skip
def test_tail_errors_are_one_line_naming_the_url(redis_server_auth, case, tmp_path):
    pw = redis_server_auth.password
    port = redis_server_auth.port
    argv = ["tail", bare_url(redis_server_auth)]
    env = _env(TTXT_MP_REDIS_PASSWORD=pw)
    code, pattern = 2, ""
    if case == "wrong-password":
        env = _env(TTXT_MP_REDIS_PASSWORD=f"nope-{pw}")
        pattern = rf"redis://:\*\*\*@127\.0\.0\.1:{port}/0/{ENGINE}: Redis refused the credentials"
    elif case == "no-password":
        env = _env()
        pattern = rf"127\.0\.0\.1:{port}/0/{ENGINE}: Redis requires a password"
    elif case == "unreachable":
        redis_server_auth.stop()
        pattern = rf"redis://:\*\*\*@127\.0\.0\.1:{port}/0/{ENGINE}: cannot reach Redis"
    elif case == "layout":
        w = BusWriter(redis_server_auth.url, ENGINE)
        w.meta(layout=b"1:00112233deadbeef")
        w.close()
        pattern = r"written with bus format/layout .*refusing to decode it"
    elif case == "no-engine":
        code, pattern = 1, r"no rings of engine 'remote_cli' on redis://:\*\*\*@"
    elif case == "bad-id":
        argv += ["--start", "yesterday"]
        pattern = r"invalid stream id 'yesterday'"
    elif case == "bad-port":
        argv = ["tail", f"redis://127.0.0.1:port/0/{ENGINE}"]
        pattern = r"bad Redis URL redis://127\.0\.0\.1:port/0/remote_cli"
    elif case == "status-wrong-password":
        argv = ["status", bare_url(redis_server_auth)]
        env = _env(TTXT_MP_REDIS_PASSWORD=f"nope-{pw}")
        pattern = r"redis://:\*\*\*@.*Redis refused the credentials"
    elif case in ("password-in-argv", "record-password-in-argv"):
        url = f"redis://:{pw}@127.0.0.1:{port}/0/{ENGINE}"
        argv = ["tail", url] if case == "password-in-argv" else \
            ["record", url, "--dir", str(tmp_path / "rec")]
        pattern = r"redis://:\*\*\*@.*a password on the command line .* \$TTXT_MP_REDIS_PASSWORD"
    out = cli(*argv, env=env)
    assert out.returncode == code, out.stderr
    err = out.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("ttxt-mp: ")
    import re

    assert re.search(pattern, err), err
    assert pw not in out.stdout + out.stderr


def test_record_from_a_remote_feed_writes_the_normal_recording(redis_server, tmp_path):
    w = BusWriter(redis_server.url, ENGINE)
    fill(w)
    rec = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, "-m", "ttxt_mp.cli", "record", f"{redis_server.url}/{ENGINE}",
                             "--dir", str(rec), "--max-chunk-age", "0.1", "--fsync-interval", "0",
                             "--snapshot-interval", "0.2"],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        book_file = rec / "VENUE1_AAA_USDT.bin"
        deadline = time.monotonic() + 30
        while not book_file.exists():  # the state's snapshots are written first
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "no file"
            time.sleep(0.02)
        for i in range(5, 25):
            w.publish([w.delta(SYMS[i % 2], i), w.trade(SYMS[i % 2])])
        new_trades = w.trades[5:]

        def recorded() -> list:
            with MarketDataReplayer(str(rec)) as rp:
                return list(rp.events())

        while True:
            evs = recorded()
            got = [t.id for e in evs if type(e).__name__ == "MarketTrades" for t in e.trades]
            if got == new_trades:
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.05)

        def snapshots() -> dict:
            n: dict = {}
            for e in recorded():
                if type(e).__name__ == "Orderbook" and e.is_snapshot:
                    n[e.symbol] = n.get(e.symbol, 0) + 1
            return n

        # the bus serves no state between gaps: the recorder writes its own books' snapshots
        # every --snapshot-interval while records come (the state's first, then >= 2 more)
        i = 25
        while min(snapshots().get(s, 0) for s in SYMS) < 3:
            assert time.monotonic() < deadline + 30, snapshots()
            w.publish([w.delta(SYMS[i % 2], i)])
            i += 1
            time.sleep(0.02)  # pacing the producer, not synchronisation

        def last_ids() -> dict:
            return {e.symbol: e.last_update_id for e in recorded()
                    if type(e).__name__ == "Orderbook" and not e.is_snapshot}  # fmt: skip

        while last_ids() != {s: w.update_id[s] for s in SYMS}:  # the last deltas are in
            assert time.monotonic() < deadline + 60, (last_ids(), w.update_id)
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "recorded up to stream id" in err
    books: dict = {}
    for e in recorded():
        if type(e).__name__ == "Orderbook":
            b = books.setdefault(e.symbol, {})
            if e.is_snapshot:
                b.clear()
            for p, q in e.bids:
                if q:
                    b[p] = q
                else:
                    b.pop(p, None)
    for s in SYMS:  # every snapshot replaced the book with exactly what it was
        assert sorted(books[s].items(), reverse=True) == w.truth(s)[0]
    assert all(f.name.startswith(EXCHANGE.upper()) for f in rec.glob("*.bin"))
    w.close()


def test_status_of_a_remote_engine_shows_its_bridge_and_streams(redis_server_auth):
    import json

    pw = redis_server_auth.password
    w = BusWriter(redis_server_auth.url, ENGINE)
    fill(w)
    w.r.hset(f"ttxt:{ENGINE}:meta", "bridge", json.dumps({
        "state": "UP", "published": 1234, "dropped": 7, "lag_entries": 3, "lag_ms": 12.5,
        "last_error": "", "updated_ns": time.time_ns()}))  # fmt: skip
    env = _env(TTXT_MP_REDIS_PASSWORD=pw)
    out = cli("status", bare_url(redis_server_auth), "--json", env=env)
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    assert st["bridge"]["published"] == 1234 and st["bridge"]["dropped"] == 7
    assert [(r["ring"], r["entries"]) for r in st["rings"]] == [("venue1-market", 6)]
    assert st["rings"][0]["state_after"] == st["rings"][0]["last_id"]
    out = cli("status", bare_url(redis_server_auth), env=env)
    assert out.returncode == 0, out.stderr
    assert "venue1-market" in out.stdout and "1,234" in out.stdout
    assert pw not in out.stdout + out.stderr and "redis://:***@" in out.stdout
    w.close()
