"""Custom event kinds (ids 1000..65535): the public registration API and its errors, the
codec (property test), a shared-memory ring between two real processes, EventFilter by
name, the engine's ``[events] modules``, and the README's "Custom events" section run as
written (examples/book_ticker.py, examples/book_ticker.toml)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lines import Lines

import ttxt_mp
from ttxt_mp import EventFilter, Feed, Fixed, LayoutError, Text, codec
from ttxt_mp import events as ev
from ttxt_mp.config import ConfigError, load_config, parse_config
from ttxt_mp.queues import QueueClosed
from ttxt_mp.shm import ShmQueue, clean_objects

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `examples` is a package of the repository, not installed
    sys.path.insert(0, str(ROOT))

from examples.book_ticker import BestQuote  # noqa: E402  (registers kind 1000)

pytestmark = pytest.mark.timeout(120)

LIBRARY = [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31]


class CustomSignal(msgspec.Struct, frozen=True, kw_only=True):
    """A test kind with every sort of field: fixed text, variable text, float, int, bool."""

    source: str
    value: float
    ts: int
    live: bool
    note: str


SIGNAL_KIND = 1500
ttxt_mp.register_event(SIGNAL_KIND, CustomSignal, [
    Fixed("source", "S24"), Fixed("value", "f8"), Fixed("ts", "i8"), Fixed("live", "?"),
    Text("note"),
])  # fmt: skip


def one_line(e: BaseException) -> str:
    s = str(e)
    assert s and "\n" not in s, repr(s)
    return s


@pytest.fixture
def ring_name():
    prefix = f"tce{os.getpid()}"
    try:
        yield f"{prefix}-ring"
    finally:
        clean_objects(prefix, stale_only=False)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))


# ---------------------------------------------------------------------- public registry


def test_public_accessors_need_no_private_registry():
    assert codec.kind_of(BestQuote) == 1000
    assert codec.event_class(1000) is BestQuote
    assert codec.event_class("BestQuote") is BestQuote
    assert codec.kind_of("BestQuote") == 1000
    assert codec.event_class("Orderbook") is ev.Orderbook
    every = codec.kinds()
    assert every == sorted(every)
    assert set(LIBRARY) <= set(every) and {1000, SIGNAL_KIND} <= set(every)
    assert codec.kinds(user=False) == LIBRARY
    assert {1000, SIGNAL_KIND} <= set(codec.kinds(user=True))
    assert all(k >= codec.USER_KIND_MIN for k in codec.kinds(user=True))
    assert codec.register_user_event is not None and ttxt_mp.register_event is codec.register_user_event


def test_registering_the_same_declaration_again_is_harmless():
    first = codec.layout_for(BestQuote)
    again = ttxt_mp.register_event(1000, BestQuote, first.parts)
    assert again is first


def test_unknown_kinds_are_one_line_errors():
    with pytest.raises(LayoutError, match="unknown event kind 4321.*register_event"):
        codec.event_class(4321)
    with pytest.raises(LayoutError, match="unknown event kind 'BestQuot'; did you mean 'BestQuote'"):
        codec.event_class("BestQuot")
    with pytest.raises(LayoutError, match="not registered.*register_event") as e:
        codec.kind_of(CustomSignal.__mro__[1])  # msgspec.Struct itself
    one_line(e.value)


class Stray(msgspec.Struct, frozen=True):
    x: float
    label: str


@pytest.mark.parametrize(
    ("kind", "cls", "parts", "message"),
    [
        (999, Stray, [Fixed("x", "f8"), Text("label")],
         r"event kind 999 is reserved for the library; custom kinds are 1000\.\.65535"),
        (5, Stray, [Fixed("x", "f8"), Text("label")], "reserved for the library"),
        (0, Stray, [Fixed("x", "f8"), Text("label")], r"custom event kinds are 1000\.\.65535, got 0"),
        (65536, Stray, [Fixed("x", "f8"), Text("label")],
         r"custom event kinds are 1000\.\.65535, got 65536"),
        ("1600", Stray, [Fixed("x", "f8"), Text("label")], "event kind must be an int, got '1600'"),
        (True, Stray, [Fixed("x", "f8"), Text("label")], "event kind must be an int"),
        (1600, dict, [Fixed("x", "f8")], "must be a msgspec.Struct subclass, got <class 'dict'>"),
        (1600, Stray, [Fixed("x", "f8")], r"missing \['label'\]"),
        (1600, Stray, [Fixed("x", "f8"), Text("label"), Fixed("y", "i8")], r"unknown \['y'\]"),
        (1600, Stray, [Fixed("x", "f8"), Text("label"), Text("label")], "declares 'label' twice"),
        (1600, Stray, [Fixed("x", "f9"), Text("label")], "Stray.x: unsupported field dtype 'f9'"),
        (1600, Stray, [Fixed("x", "f8"), Fixed("label", "S0")], "Stray.label: unsupported field dtype 'S0'"),
        (1600, Stray, [Fixed("x", "f8"), ("label", "S8")], r"part 2 of Stray is \('label', 'S8'\); expected Fixed, Array or Text"),
        (1000, Stray, [Fixed("x", "f8"), Text("label")],
         r"event kind 1000 is already registered to BestQuote \(examples\.book_ticker\)"),
    ],
)  # fmt: skip
def test_registration_mistakes_are_one_line_errors(kind, cls, parts, message):
    with pytest.raises(LayoutError, match=message) as e:
        ttxt_mp.register_event(kind, cls, parts)
    one_line(e.value)
    with pytest.raises(LayoutError):
        codec.kind_of(Stray)  # nothing was registered by a refused declaration


def test_duplicates_are_refused_naming_the_first_registration():
    parts = codec.layout_for(BestQuote).parts
    with pytest.raises(LayoutError, match="BestQuote is already registered as kind 1000") as e:
        ttxt_mp.register_event(1601, BestQuote, parts)
    one_line(e.value)
    other = list(parts)
    other[0] = Fixed("exchange", "S8")
    with pytest.raises(LayoutError, match="already registered as kind 1000 with another layout") as e:
        ttxt_mp.register_event(1000, BestQuote, other)
    one_line(e.value)

    class Orderbook(msgspec.Struct, frozen=True):  # the name of a library kind
        x: float

    with pytest.raises(LayoutError, match="an event named 'Orderbook' is already registered "
                       r"\(kind 1, ttxt_mp.events\); event names must be unique") as e:  # fmt: skip
        ttxt_mp.register_event(1602, Orderbook, [Fixed("x", "f8")])
    one_line(e.value)
    with pytest.raises(LayoutError):
        codec.event_class(1602)


# ---------------------------------------------------------------------- codec


def fixed_text(width: int):
    """Any text a ``S<width>`` field holds: at most ``width`` UTF-8 bytes, no trailing NUL."""
    s = st.text(st.characters(codec="utf-8"), max_size=width)
    return s.filter(lambda x: len(x.encode()) <= width and not x.endswith("\0"))


floats = st.floats(allow_nan=False)
ints = st.integers(-(2**63), 2**63 - 1)
book_tickers = st.builds(BestQuote, exchange=fixed_text(16), symbol=fixed_text(32), bid=floats,
                         bid_qty=floats, ask=floats, ask_qty=floats, local_ts=ints)  # fmt: skip
signals = st.builds(CustomSignal, source=fixed_text(24), value=floats, ts=ints,
                    live=st.booleans(), note=st.text(st.characters(codec="utf-8")))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(book_tickers, signals))
def test_user_kinds_round_trip_through_the_codec(e):
    kind, payload = codec.encode(e)
    assert kind == codec.kind_of(type(e))
    back = codec.decode(kind, payload)
    assert type(back) is type(e) and back == e


@settings(max_examples=50, deadline=None)
@given(fixed_text(15))
def test_fixed_text_ending_in_nul_is_refused_not_changed(s):
    bad = BestQuote(exchange=s + "\0", symbol="BTC/USDT", bid=1, bid_qty=1, ask=2, ask_qty=1)
    with pytest.raises(LayoutError, match=r"BestQuote\.exchange: .* ends with NUL") as e:
        codec.encode(bad)
    one_line(e.value)


def test_numpy_view_of_user_kind_headers():
    lay = codec.layout_for(BestQuote)
    evs = [BestQuote(exchange="x", symbol="A/B", bid=i, bid_qty=1, ask=i + 1, ask_qty=2)
           for i in range(5)]  # fmt: skip
    import numpy as np

    rows = np.frombuffer(b"".join(lay.encode(e) for e in evs), np.uint8).reshape(5, -1)
    assert list(lay.view(rows)["ask"]) == [1.0, 2.0, 3.0, 4.0, 5.0]


# ---------------------------------------------------------------------- EventFilter


def test_event_filter_accepts_user_kinds_by_name_class_and_id():
    t = BestQuote(exchange="binance", symbol="BTC/USDT", bid=1, bid_qty=1, ask=2, ask_qty=1)
    s = CustomSignal(source="x", value=1.0, ts=0, live=True, note="")
    book = ev.Orderbook(exchange="binance", symbol="BTC/USDT")
    for spec in (["BestQuote"], [BestQuote], [1000]):
        f = EventFilter(kinds=spec)
        assert f(t) and not f(s) and not f(book)
    f = EventFilter(kinds=["BestQuote", "Orderbook"], symbols=["BTC/USDT"])
    assert f(t) and f(book) and not f(s)
    assert not f(BestQuote(exchange="binance", symbol="ETH/USDT", bid=1, bid_qty=1, ask=2,
                           ask_qty=1))  # fmt: skip


def test_event_filter_on_exchange_or_symbol_drops_events_without_that_field():
    s = CustomSignal(source="x", value=1.0, ts=0, live=True, note="")
    assert EventFilter()(s)
    assert not EventFilter(exchanges=["binance"])(s)  # never an AttributeError
    assert not EventFilter(symbols=["BTC/USDT"])(s)
    assert EventFilter(kinds=["CustomSignal"])(s)


def test_event_filter_typo_names_the_kind_and_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown event kind 'BestQuot'; did you mean "
                       "'BestQuote'\\?") as e:  # fmt: skip
        EventFilter(kinds=["BestQuot"])
    msg = one_line(e.value)
    for name in ("Orderbook", "MarketTrades", "BestQuote", "CustomSignal"):
        assert name in msg
    with pytest.raises(ValueError, match="unknown event kind 'Nothing'.*register_event") as e:
        EventFilter(kinds=["Nothing"])
    one_line(e.value)
    with pytest.raises(ValueError, match="unknown event kind 4321") as e:
        EventFilter(kinds=[4321])
    with pytest.raises(TypeError, match="event kinds are names, classes or kind ids, got 1.5"):
        EventFilter(kinds=[1.5])


def test_feed_filters_user_kinds_from_an_in_process_queue():
    from ttxt_mp import AsyncioQueue

    q = AsyncioQueue()
    t = BestQuote(exchange="bybit", symbol="ETH/USDT", bid=1, bid_qty=1, ask=2, ask_qty=1)
    for e in (ev.Kline(exchange="bybit", symbol="ETH/USDT"), t,
              CustomSignal(source="x", value=1.0, ts=0, live=True, note="")):
        q.put(e)
    q.close()
    got = []
    with Feed([q], EventFilter(kinds=["BestQuote"])) as feed, pytest.raises(QueueClosed):
        while True:
            got.append(feed.get(timeout=1))
    assert got == [t]


# ---------------------------------------------------------------------- rings


def test_a_ring_created_for_all_registered_kinds_carries_user_and_library_events(ring_name):
    t = BestQuote(exchange="binance", symbol="BTC/USDT", bid=1.5, bid_qty=2, ask=2.5, ask_qty=3)
    k = ev.Kline(exchange="binance", symbol="BTC/USDT", open=1.0)
    with ShmQueue.create(ring_name, capacity=64, kinds=codec.kinds()) as pub:
        with ShmQueue.attach(ring_name) as sub:
            pub.put(t)
            pub.put(k)
            assert sub.get(timeout=5) == t
            assert sub.get(timeout=5) == k
    with ShmQueue.create(ring_name + "x", capacity=64) as lib:  # default: library kinds only
        with pytest.raises(LayoutError, match="event kind 1000 is not one of them"):
            lib.put(t)


CONSUMER = textwrap.dedent("""
    import sys
    import msgspec
    import examples.book_ticker  # registers BestQuote, as the producer did
    from ttxt_mp import EventFilter, Feed, QueueClosed, QueueEmpty, ShmQueue
    ring = ShmQueue.attach(sys.argv[1], start="oldest")
    print("attached", flush=True)
    with Feed([ring], EventFilter(kinds=["BestQuote"])) as feed:
        while True:
            try:
                e = feed.get(timeout=20)
            except QueueEmpty:
                sys.exit(3)
            except QueueClosed:
                break
            print(type(e).__name__, msgspec.json.encode(e).decode(), flush=True)
    print("closed", flush=True)
""")


def test_user_kind_through_a_ring_between_two_processes(ring_name):
    expect = [BestQuote(exchange="binance", symbol="BTC/USDT", bid=100 + i / 7, bid_qty=i * 0.1,
                        ask=101 + i / 3, ask_qty=1e-9 * i, local_ts=i) for i in range(200)]  # fmt: skip
    kinds = [*codec.kinds(user=False), codec.kind_of(BestQuote)]  # what the child knows
    pub = ShmQueue.create(ring_name, capacity=1024, policy="block", kinds=kinds)
    child = subprocess.Popen([sys.executable, "-c", CONSUMER, ring_name], cwd=ROOT, env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out = Lines(child.stdout)
        err = Lines(child.stderr)
        assert out.next(30, "the consumer attached").strip() == "attached", err.lines
        for i, t in enumerate(expect):
            pub.put(t, timeout=10)
            if i % 10 == 0:  # library events in between, filtered out by the consumer
                pub.put(ev.MarketTrades(exchange="binance", symbol="BTC/USDT", local_ts=i),
                        timeout=10)  # fmt: skip
        pub.close()  # the consumer drains the ring, then sees QueueClosed
        assert child.wait(timeout=30) == 0, err.lines
        out.wait(lambda: out.closed, 10, "the consumer's output")
        lines = [x.rstrip("\n") for x in out.lines[1:]]
        assert lines[-1] == "closed", (lines[-3:], err.lines)
        got = [msgspec.json.decode(x.split(" ", 1)[1], type=BestQuote) for x in lines[:-1]]
        assert all(x.startswith("BestQuote ") for x in lines[:-1])
        assert got == expect
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        pub.close()
        pub.unlink()


NO_MODULE = textwrap.dedent("""
    import sys
    from ttxt_mp.shm import ShmQueue
    try:
        ShmQueue.attach(sys.argv[1])
    except Exception as e:
        print(type(e).__name__, e)
""")


def test_a_process_without_the_kind_registered_is_told_what_to_do(ring_name):
    with ShmQueue.create(ring_name, capacity=64, kinds=[codec.kind_of(BestQuote)]):
        out = subprocess.run([sys.executable, "-c", NO_MODULE, ring_name], env=_env(),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, (out.stdout, out.stderr)
    assert lines[0].startswith("RingLayoutError ")
    assert "unknown event kind 1000" in lines[0] and "register_event" in lines[0]
    assert "[events] modules" in lines[0]


# ---------------------------------------------------------------------- [events] in config

BASE = """
[engine]
name = "{name}"

[[connectors]]
exchange = "binance"
symbols = ["BTC/USDT"]
"""


def test_events_modules_are_imported_when_the_config_is_loaded():
    cfg = parse_config(BASE.format(name="ev1") + '\n[events]\nmodules = ["examples.book_ticker"]\n')
    assert cfg.events.modules == ["examples.book_ticker"]
    assert 1000 in codec.kinds()
    assert parse_config(BASE.format(name="ev2")).events.modules == []


def test_the_supervisor_passes_events_to_children_which_import_them():
    """A child gets the config as JSON (protocol.launch_config): decoding it imports the
    modules, so the kinds register in connector, recorder and client processes too."""
    cfg = parse_config(BASE.format(name="ev3") + '\n[events]\nmodules = ["examples.book_ticker"]\n')
    code = textwrap.dedent("""
        import sys, msgspec
        from ttxt_mp import codec
        from ttxt_mp.config import Config
        assert 1000 not in codec.kinds()
        msgspec.json.decode(sys.stdin.buffer.read(), type=Config)
        print(codec.event_class(1000).__module__, codec.kinds(user=True))
    """)
    out = subprocess.run([sys.executable, "-c", code], input=msgspec.json.encode(cfg),
                         capture_output=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == ["examples.book_ticker", "[1000]"]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ('["no_such_module_xyz"]', "key 'events': cannot import event module 'no_such_module_xyz': "
         "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        ('["not a module"]', "key 'events': 'not a module' is not a module name"),
        ('[""]', "key 'events': '' is not a module name"),
        ('"examples.book_ticker"', "key 'events.modules': Expected `array`, got `str`"),
    ],
)  # fmt: skip
def test_events_module_mistakes_are_config_errors(modules, message):
    with pytest.raises(ConfigError) as e:
        parse_config(BASE.format(name="ev4") + f"\n[events]\nmodules = {modules}\n", "t.toml")
    assert message in one_line(e.value)
    with pytest.raises(ConfigError, match="key 'events': unknown key `kinds`"):
        parse_config(BASE.format(name="ev4") + "\n[events]\nkinds = [1000]\n", "t.toml")


def test_an_event_module_next_to_the_config_is_found_and_its_errors_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "tce_bad_events.py").write_text(textwrap.dedent("""
        import msgspec, ttxt_mp
        class Mine(msgspec.Struct):
            x: float
        ttxt_mp.register_event(7, Mine, [ttxt_mp.Fixed("x", "f8")])
    """))
    (tmp_path / "tce_good_events.py").write_text(textwrap.dedent("""
        import msgspec, ttxt_mp
        class TceNextToConfig(msgspec.Struct):
            x: float
        ttxt_mp.register_event(1777, TceNextToConfig, [ttxt_mp.Fixed("x", "f8")])
    """))
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.format(name="ev5") + '\n[events]\nmodules = ["tce_bad_events"]\n')
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert one_line(e.value) == (
        f"{bad}: key 'events': cannot import event module 'tce_bad_events': LayoutError: "
        "event kind 7 is reserved for the library; custom kinds are 1000..65535"
    )
    good = tmp_path / "good.toml"
    good.write_text(BASE.format(name="ev6") + '\n[events]\nmodules = ["tce_good_events"]\n')
    load_config(good)
    assert codec.event_class(1777).__name__ == "TceNextToConfig"


def test_engine_rings_carry_the_kinds_of_the_events_modules():
    from ttxt_mp.engine.rings import EngineRings

    name = f"tce{os.getpid()}"
    cfg = parse_config(BASE.format(name=name) + '\n[events]\nmodules = ["examples.book_ticker"]\n')
    rings = EngineRings(cfg, instance_id=0)
    rings.create()
    try:
        (market,) = rings.names()
        with ShmQueue.attach(market, start="oldest") as sub:
            assert isinstance(sub.get(timeout=5), ev.ConnectorStatus)  # the engine's STARTING
            pub = ShmQueue.adopt(market)  # as the connector process does
            try:
                t = BestQuote(exchange="binance", symbol="BTC/USDT", bid=1, bid_qty=1, ask=2,
                              ask_qty=1)  # fmt: skip
                pub.put(t)
                assert sub.get(timeout=5) == t
            finally:
                pub.release()
    finally:
        rings.destroy()
    plain = EngineRings(parse_config(BASE.format(name=name)), instance_id=0)
    plain.create()  # no [events]: library rings as before, whatever this process registered
    try:
        pub = ShmQueue.adopt(plain.names()[0])
        try:
            with pytest.raises(LayoutError, match="kind 1000 is not one of them"):
                pub.put(BestQuote(exchange="b", symbol="s", bid=1, bid_qty=1, ask=2, ask_qty=1))
        finally:
            pub.release()
    finally:
        plain.destroy()


# ---------------------------------------------------------------------- README, as written


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Custom events\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Custom events' section"
    return m.group(1)


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", readme_section(), re.S | re.M)


def test_readme_declaration_runs_and_is_the_example_files():
    declare, _ = blocks("python")
    check = "\nprint(ttxt_mp.codec.layout_for(1000).hash.hex())\n"
    out = subprocess.run([sys.executable, "-c", declare + check], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == codec.layout_for(BestQuote).hash.hex()  # the same layout
    (toml,) = blocks("toml")
    example = (ROOT / "examples/book_ticker.toml").read_text()
    for line in toml.strip().splitlines():
        assert line in example, line
    cfg = load_config(ROOT / "examples/book_ticker.toml")
    assert cfg.events.modules == ["examples.book_ticker"]


def test_readme_ring_snippet_runs_as_shown():
    _, snippet = blocks("python")
    out = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "BestQuote(exchange='binance', symbol='BTC/USDT', bid=100.0, bid_qty=1.5, ask=100.5, "
        "ask_qty=2.0, local_ts=0)"
    ]
    assert not list(Path("/dev/shm").glob("ttxt-readme_tickers*"))


def test_readme_commands_run_an_engine_whose_client_publishes_book_tickers(tmp_path):
    from engine_process import EngineProcess, sim_process

    (cmds,) = blocks("bash")
    lines = [c.split("#")[0].strip() for c in cmds.strip().splitlines()]
    assert lines == [
        "ttxt-mp sim --port 8765",
        "ttxt-mp launch examples/book_ticker.toml",
        "python -m examples.tail_book_tickers bt_demo-tickers --count 5",
    ]
    name = f"bt{os.getpid()}"
    text = (ROOT / "examples/book_ticker.toml").read_text()
    with sim_process(seed=5) as sim:
        # The same config with this test's simulator port and a name of its own.
        text = text.replace("127.0.0.1:8765", sim.host_port).replace("bt_demo", name)
        eng = EngineProcess(tmp_path, name, text, cwd=str(ROOT))
        try:
            eng.start(wait_rings=1)
            tail = lines[2].replace("bt_demo", name).split()
            out = subprocess.run([sys.executable, *tail[1:], "--timeout", "30"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=90)  # fmt: skip
            assert out.returncode == 0, (out.stderr, eng.output())
            got = out.stdout.splitlines()
            assert len(got) == 5, got
            assert all(re.match(r"binance  (BTC|ETH)/USDT +bid [0-9.]+ x [0-9.]+  ask ", x)
                       for x in got), got  # fmt: skip
            client = eng.child("client:tickers")
            assert client["pid"] and client["restarts"] == 0, client
            # Every consumer of this engine needs the kind: ours has it (imported above)...
            with ttxt_mp.attach(name, wait=5) as feed:
                assert feed.get(timeout=10) is not None
            # ...one without it is told which kind and what to do.
            out = subprocess.run([sys.executable, "-c", f"import ttxt_mp; ttxt_mp.attach({name!r})"],
                                 capture_output=True, text=True, timeout=60, env=_env())  # fmt: skip
            assert out.returncode != 0
            assert "unknown event kind 1000" in out.stderr.strip().splitlines()[-1], out.stderr
            # ttxt-mp tail imports them with --events, as the README says
            readme = readme_section()
            assert "ttxt-mp tail bt_demo --events examples.book_ticker" in readme
            cli = [sys.executable, "-m", "ttxt_mp.cli", "tail", name, "--count", "3"]
            out = subprocess.run([*cli, "--events", "examples.book_ticker"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60, env=_env())  # fmt: skip
            assert out.returncode == 0 and len(out.stdout.splitlines()) == 3, out.stderr
            out = subprocess.run([*cli, "--events", "examples.book_ticker", "--kind", "BestQuot"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=60, env=_env())  # fmt: skip
            assert out.returncode == 2 and "unknown event kind 'BestQuot'" in out.stderr
            out = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=60,
                                 env=_env())  # fmt: skip
            assert out.returncode == 2 and "unknown event kind 1000" in out.stderr, out.stderr
            assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        finally:
            eng.stop()
    from ttxt_mp.engine.naming import engine_objects

    assert not engine_objects(name), engine_objects(name)
