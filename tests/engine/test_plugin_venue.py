"""A third-party venue runs under ``ttxt-mp launch`` with no edit to ttxt-mp.

The venue is the distribution in ``tests/plugin_venue`` (package ``ttxt_toyvenue``: the
exchange ``toy``, its ConnectorBase subclass, its own event kind ``ToyTicker``, and the
toy exchange server it talks to). Its ``pyproject.toml`` declares the entry point
``[project.entry-points."ttxt_mp.venues"] toy = "ttxt_toyvenue:VENUE"``.

How it is installed: not into the shared venv (other tests run in it, and would then
see a venue ``toy``), and not with pip: ``pip install --target DIR --no-deps
--no-build-isolation --no-index tests/plugin_venue`` fails offline here, because the
venv's setuptools (65) needs the ``wheel`` package to build one. Instead
:func:`install_plugin` writes what pip would write into a temporary site directory: the
package's files and ``ttxt_toyvenue-0.1.dist-info/`` (``METADATA``, ``entry_points.txt``,
``top_level.txt``, ``INSTALLER``, ``RECORD``), all taken from ``pyproject.toml``.
``importlib.metadata`` finds distributions on every ``sys.path`` entry, so putting that
directory on ``PYTHONPATH`` installs the venue for the ``ttxt-mp launch`` subprocess, the
connector processes its supervisor starts (they inherit the environment) and the
consumer process the test starts; this pytest process never sees it. Fast (a copy of a
few files), offline, and nothing to uninstall.

The toy exchange (:class:`ttxt_toyvenue.server.ToyExchange`) runs in a thread of this
process on 127.0.0.1 (a free port) and knows the truth: its books, the trades and
tickers it sent. Every wait is bounded; engines are stopped in ``finally`` and nothing
of theirs may be left in /dev/shm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from engine_process import EngineProcess, engine_factory
from lines import Lines

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugin_venue"
sys.path.insert(0, str(PLUGIN))  # the server only: the dist-info is never on this path
from ttxt_toyvenue.server import ToyExchange  # noqa: E402

from ttxt_mp.connectors.venue import builtin_packages  # noqa: E402

sys.path.remove(str(PLUGIN))

pytestmark = pytest.mark.timeout(240)

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
BUILTIN = [p.rsplit(".", 1)[1] for p in builtin_packages()]
"""The built-in venues (their package names are their ids), found as the registry does."""
STEPS = 300
DROP = {"ETH-USDT": 100}  # the 100th ETH delta is lost on the wire: a gap to resync
WAIT = 60.0  # the longest any single wait may take on a loaded machine


# ---------------------------------------------------------------------- installing


def install_plugin(site: Path, src: Path = PLUGIN) -> Path:
    """Install the distribution at ``src`` into ``site`` the way pip lays it out (its
    files, ``<name>-<version>.dist-info``), without pip; returns ``site``."""
    pyproject = tomllib.loads((src / "pyproject.toml").read_text())
    project = pyproject["project"]
    name, version = project["name"], project["version"]
    packages = pyproject["tool"]["setuptools"]["packages"]
    site.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        shutil.copytree(src / pkg, site / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir()
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
            f"Summary: {project.get('description', '')}"]  # fmt: skip
    if "requires-python" in project:
        meta.append(f"Requires-Python: {project['requires-python']}")
    meta += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    eps = []
    for group, entries in project.get("entry-points", {}).items():
        eps.append(f"[{group}]")
        eps += [f"{k} = {v}" for k, v in entries.items()]
        eps.append("")
    (dist / "METADATA").write_text("\n".join(meta) + "\n")
    (dist / "entry_points.txt").write_text("\n".join(eps))
    (dist / "top_level.txt").write_text("".join(f"{p}\n" for p in packages))
    (dist / "INSTALLER").write_text("ttxt-mp tests\n")
    rows = []
    for f in sorted(p for p in site.rglob("*") if p.is_file()):
        data = f.read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{f.relative_to(site)},sha256={digest},{len(data)}")
    rows.append(f"{dist.name}/RECORD,,")
    (dist / "RECORD").write_text("\n".join(rows) + "\n")
    return site


def env_with(site: Path | None) -> dict[str, str]:
    """This environment, with ``site`` as the only PYTHONPATH entry (none: no plug-in)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return install_plugin(tmp_path_factory.mktemp("plugin") / "site")


@pytest.fixture
def exchange():
    ex = ToyExchange().start()
    try:
        yield ex
    finally:
        ex.stop()


def config_text(name: str, *, exchange: str = "toy", ws: str = "ws://127.0.0.1:9",
                rest: str = "http://127.0.0.1:9", events: bool = True) -> str:  # fmt: skip
    text = f"""
        [engine]
        name = "{name}"
        log_level = "INFO"

        [[connectors]]
        exchange = "{exchange}"
        symbols = {json.dumps(SYMBOLS)}
        streams = {{ depth = {{ levels = 50 }}, trades = true }}
        endpoints = {{ ws = "{ws}", rest = "{rest}" }}
        heartbeat_timeout = 10.0
        reconnect_backoff = 0.1
        reconnect_backoff_max = 1.0
    """
    if events:
        text += """
        [events]
        modules = ["ttxt_toyvenue.events"]
        """
    return textwrap.dedent(text)


def launch_refused(tmp_path: Path, text: str, env: dict[str, str]) -> str:
    """``ttxt-mp launch`` of a bad config: exit 2 and exactly one line on stderr."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "launch", str(path)],
                         capture_output=True, text=True, timeout=WAIT, env=env, cwd=ROOT)  # fmt: skip
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


# ---------------------------------------------------------------------- the consumer

CONSUMER = textwrap.dedent("""
    import json, sys, time
    import ttxt_toyvenue.events  # the engine's custom kind, as its [events] says
    import ttxt_mp
    from ttxt_mp import codec, events as ev
    from ttxt_mp.orderbook import OrderBook

    engine, final = sys.argv[1], json.loads(sys.argv[2])
    books = {s: OrderBook("toy", s) for s in final}
    trades, tickers, statuses, checked = [], [], [], [0, 0]
    done_tickers = set()
    said_synced = False
    deadline = time.monotonic() + float(sys.argv[3])

    def done():
        return all(s in done_tickers and books[s].synced and books[s].update_id == f
                   for s, f in final.items())

    with ttxt_mp.attach(engine, wait=20) as feed:
        while time.monotonic() < deadline and not done():
            try:
                e = feed.get(timeout=0.5)
            except ttxt_mp.QueueEmpty:
                continue
            if isinstance(e, ev.Orderbook):
                books[e.symbol].update(e)
                if not said_synced and all(b.synced for b in books.values()):
                    said_synced = True
                    print("synced", json.dumps({s: b.update_id for s, b in books.items()}),
                          flush=True)
            elif isinstance(e, ev.MarketTrades):
                trades += [[e.symbol, t.id, t.price, t.qty, t.side.name.lower(), t.ts]
                           for t in e.trades]
            elif isinstance(e, ev.ConnectorStatus):
                statuses.append([e.exchange, e.symbol, e.state.name, e.message])
            elif type(e).__name__ == "ToyTicker":
                tickers.append({"kind": codec.kind_of(type(e)), "cls": type(e).__module__,
                                "exchange": e.exchange, "symbol": e.symbol, "last": e.last,
                                "bid": e.bid, "ask": e.ask, "volume": e.volume, "seq": e.seq,
                                "exch_ts": e.exch_ts})
                b = books[e.symbol]
                if b.synced and b.update_id == e.seq:  # taken at this very book
                    checked[0] += 1
                    checked[1] += (e.bid, e.ask) == (b.best_bid[0], b.best_ask[0])
                if e.seq == final.get(e.symbol):
                    done_tickers.add(e.symbol)
    print("result", json.dumps({
        "done": done(),
        "books": {s: {"seq": b.update_id, "synced": b.synced,
                      "bids": [list(x) for x in b.bids()], "asks": [list(x) for x in b.asks()]}
                  for s, b in books.items()},
        "trades": trades, "tickers": tickers, "statuses": statuses, "checked": checked,
    }), flush=True)
""")


def native(sym: str) -> str:
    return sym.replace("/", "-")


# ---------------------------------------------------------------------- tests


def test_the_site_dir_installs_the_venue_for_importlib_metadata(site):
    code = textwrap.dedent("""
        from importlib import metadata
        from ttxt_mp.connectors.venue import venue, venue_ids
        (ep,) = metadata.entry_points(group="ttxt_mp.venues", name="toy")
        print(ep.value, metadata.version("ttxt-toyvenue"), ",".join(venue_ids()),
              venue("toy").connector, venue("toy").book_levels)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=WAIT, env=env_with(site), cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ttxt_toyvenue:VENUE", "0.1", ",".join(sorted([*BUILTIN, "toy"])),
                                  "ttxt_toyvenue.connector:ToyConnector", "(50,)"]  # fmt: skip
    assert "ttxt_mp.venues" not in out.stderr  # no plug-in was ignored with a warning


def test_the_toy_venue_runs_under_launch_with_its_custom_event(tmp_path, site, exchange):
    env = env_with(site)
    name = f"tpv{os.getpid()}"
    text = config_text(name, ws=exchange.ws_url, rest=exchange.rest_url)
    start = {native(s): exchange.truth(native(s))["seq"] for s in SYMBOLS}
    final = {s: start[native(s)] + STEPS for s in SYMBOLS}
    with engine_factory(lambda i, **kw: EngineProcess(tmp_path, name, text, cwd=str(ROOT),
                                                      env=env)) as make:  # fmt: skip
        eng = make().start(wait_rings=1)
        child = subprocess.Popen([sys.executable, "-c", CONSUMER, name, json.dumps(final),
                                  str(2 * WAIT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env, cwd=ROOT)  # fmt: skip
        try:
            out, err = Lines(child.stdout), Lines(child.stderr)
            first = out.next(WAIT, "the consumer's synced books")
            assert first.startswith("synced "), (first, err.lines[-5:], eng.output()[-3000:])
            assert json.loads(first.split(" ", 1)[1]) == {s: start[native(s)] for s in SYMBOLS}

            up = eng.wait_child("connector:toy", lambda c: c["state"] == "UP", timeout=WAIT)
            assert up["pid"] and up["restarts"] == 0, up
            st = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "status", name],
                                capture_output=True, text=True, timeout=WAIT, env=env)  # fmt: skip
            assert st.returncode == 0, st.stderr
            row = next(ln for ln in st.stdout.splitlines() if "connector:toy" in ln)
            assert re.search(r"connector:toy\W+UP\b", row), row
            assert f"{name}-toy-market" in st.stdout

            exchange.play(STEPS, drop=DROP, timeout=WAIT)
            line = out.next(2 * WAIT, "the consumer's result")
            assert child.wait(timeout=WAIT) == 0, err.lines[-10:]
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        assert line.startswith("result "), (line, err.lines[-5:])
        got = json.loads(line.split(" ", 1)[1])
        assert got["done"], (got["books"], got["statuses"][-5:], eng.output()[-3000:])

        # books: exactly the exchange's, after the gap on ETH was resynced
        for s in SYMBOLS:
            truth = exchange.truth(native(s))
            book = got["books"][s]
            assert book["seq"] == truth["seq"] == final[s]
            assert book["bids"] == truth["bids"] and book["asks"] == truth["asks"], s
            assert book["bids"] and book["asks"]
        # trades: every one the exchange sent, in order
        sent = [[t["sym"].replace("-", "/"), t["id"], float(t["px"]), float(t["qty"]),
                 t["side"], t["ts"] * 1_000_000] for t in exchange.trades]  # fmt: skip
        assert len(sent) == len(SYMBOLS) * (STEPS // 3)
        assert got["trades"] == sent
        # the custom kind: every ticker, with the exchange's values
        want = [{"kind": 4242, "cls": "ttxt_toyvenue.events", "exchange": "toy",
                 "symbol": t["sym"].replace("-", "/"), "last": float(t["last"]),
                 "bid": float(t["bid"]), "ask": float(t["ask"]), "volume": float(t["vol"]),
                 "seq": t["seq"], "exch_ts": t["ts"] * 1_000_000}
                for t in exchange.tickers]  # fmt: skip
        assert len(want) == len(SYMBOLS) * (STEPS // 10)
        assert got["tickers"] == want
        checked, matched = got["checked"]  # tickers taken at the book the consumer had
        assert checked >= STEPS // 10 and matched == checked  # at least every BTC one
        # the lost delta was a gap, reported and resynced by subscribing again
        eth = [x for x in got["statuses"] if x[1] == "ETH/USDT"]
        assert [x[2] for x in eth][-3:] == ["GAP", "RESYNCING", "UP"], eth
        assert "missed 5100..5100" in eth[-3][3]
        assert not [x for x in got["statuses"] if x[1] == "BTC/USDT" and x[2] == "GAP"]
        assert exchange.subscribes[-1] == ["book:ETH-USDT"]
        assert eng.wait_child("connector:toy", lambda c: c["gaps"] >= 1 and c["state"] == "UP",
                              timeout=WAIT)["reconnects"] == 0  # fmt: skip
        assert exchange.connections == 1
        assert "Traceback" not in eng.output(), eng.output()[-3000:]
    # engine_factory stopped the engine and asserted that none of its objects is left


def test_an_unknown_exchange_names_the_installed_venues_with_the_plugin(tmp_path, site):
    line = launch_refused(tmp_path, config_text(f"tpu{os.getpid()}", exchange="toyz"),
                          env_with(site))  # fmt: skip
    want = ", ".join(sorted([*BUILTIN, "toy"]))
    assert line.endswith("key 'connectors[0].exchange': unknown exchange 'toyz'; installed "
                         f"venues: {want}"), line  # fmt: skip


def test_without_the_plugin_a_toy_config_is_refused_in_one_line(tmp_path):
    env = env_with(None)
    # The same config: its [events] module is the first thing it cannot load.
    line = launch_refused(tmp_path, config_text(f"tpn{os.getpid()}"), env)
    assert line.endswith("key 'events': cannot import event module 'ttxt_toyvenue.events': "
                         "ModuleNotFoundError: No module named 'ttxt_toyvenue'"), line  # fmt: skip
    # Without [events]: the exchange, naming the venues that are installed.
    line = launch_refused(tmp_path, config_text(f"tpn{os.getpid()}", events=False), env)
    assert line.endswith("key 'connectors[0].exchange': unknown exchange 'toy'; installed "
                         f"venues: {', '.join(BUILTIN)}"), line  # fmt: skip
