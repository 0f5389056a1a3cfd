"""Every class of config mistake is refused with the file, the key path and the expectation."""

from __future__ import annotations

import pytest

from ttxt_mp.config import ConfigError, load_config, parse_config

GOOD = """
[engine]
name = "demo"

[[connectors]]
exchange = "binance"
symbols = ["BTC/USDT", "ETH/USDT"]
streams = { depth = { levels = 1000 }, trades = true, klines = ["1m"] }
endpoints = { ws = "ws://127.0.0.1:1", rest = "http://127.0.0.1:1" }

[[connectors]]
exchange = "bybit"
symbols = ["BTC/USDT"]
streams = { depth = { levels = 50 } }
credentials = { api_key_env = "BYBIT_KEY", api_secret_env = "BYBIT_SECRET" }

[rings.market]
capacity = 65536
policy = "overwrite"

[recorder]
enabled = true
dir = "rec"

[[clients]]
target = "examples.clients.top_of_book:TopOfBook"
"""


def test_good_config_parses_into_typed_structs():
    cfg = parse_config(GOOD, "good.toml")
    assert cfg.engine.name == "demo"
    assert [c.id for c in cfg.connectors] == ["binance", "bybit"]
    assert cfg.connectors[0].streams.klines == ["1m"]
    assert cfg.connectors[0].ws_url() == "ws://127.0.0.1:1"
    assert cfg.connectors[1].rest_url() == "https://api.bybit.com"
    assert cfg.connectors[1].credentials.api_key_env == "BYBIT_KEY"
    assert cfg.rings.private.policy == "block"
    assert cfg.recorder.enabled and cfg.recorder.chunk_events == 150


def _with(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


BAD = [
    ("not toml", "[engine\nname=1", r"not valid TOML"),
    ("unknown top key", "foo = 1\n" + GOOD, r"key '\(top level\)': unknown key `foo`"),
    ("unknown nested key", _with('policy = "overwrite"', 'polcy = "overwrite"'),
     r"key 'rings.market': unknown key `polcy`"),
    ("wrong type", _with("capacity = 65536", 'capacity = "big"'),
     r"key 'rings.market.capacity': Expected `int`, got `str`"),
    ("bad enum value", _with('policy = "overwrite"', 'policy = "drop"'),
     r"key 'rings.market.policy': Invalid enum value 'drop'; expected one of overwrite, block"),
    ("missing engine name", _with('name = "demo"', ""), r"key 'engine': missing required key `name`"),
    ("bad engine name", _with('name = "demo"', 'name = "my demo!"'), r"key 'engine.name'"),
    ("unknown exchange", _with('exchange = "bybit"', 'exchange = "nosuchvenue"'),
     r"key 'connectors\[1\].exchange': unknown exchange 'nosuchvenue'"),
    ("bad symbol", _with('"ETH/USDT"', '"ethusdt"'),
     r"key 'connectors\[0\].symbols\[1\]': expected BASE/QUOTE"),
    ("duplicate symbol", _with('"ETH/USDT"', '"BTC/USDT"'), r"key 'connectors\[0\].symbols'"),
    ("no symbols", _with('symbols = ["BTC/USDT"]\nstreams = { depth = { levels = 50 } }',
                         'symbols = []'), r"key 'connectors\[1\].symbols'"),
    ("bad depth", _with("levels = 50", "levels = 51"),
     r"key 'connectors\[1\].streams.depth.levels': bybit offers depth levels"),
    ("bad kline", _with('klines = ["1m"]', 'klines = ["7m"]'),
     r"key 'connectors\[0\].streams.klines\[0\]': binance kline intervals"),
    ("bad ws url", _with('ws = "ws://127.0.0.1:1"', 'ws = "http://x"'),
     r"key 'connectors\[0\].endpoints.ws'"),
    ("half credentials", _with('api_key_env = "BYBIT_KEY", ', ""),
     r"key 'connectors\[1\].credentials': expected both"),
    ("secret in file", _with('api_key_env = "BYBIT_KEY"', 'api_key = "abc"'),
     r"key 'connectors\[1\].credentials': unknown key `api_key`"),
    ("capacity not power of two", _with("capacity = 65536", "capacity = 1000"),
     r"key 'rings.market.capacity': expected a power of two"),
    ("negative number", _with("capacity = 65536", "capacity = -4"),
     r"key 'rings.market.capacity': Expected `int` >= 1"),
    ("bad client target", _with('"examples.clients.top_of_book:TopOfBook"', '"nonsense"'),
     r"key 'clients\[0\].target'"),
    ("agg trades where the venue has none", _with("streams = { depth = { levels = 50 } }",
     "streams = { agg_trades = true }"),
     r"key 'connectors\[1\].streams.agg_trades': bybit offers no agg_trades stream \(its "
     r"optional streams: book_ticker\)"),
    ("agg trades without trades", _with("trades = true", "trades = false, agg_trades = true"),
     r"key 'connectors\[0\].streams.agg_trades': needs trades = true"),
    ("book ticker not a bool", _with("trades = true", 'trades = true, book_ticker = "yes"'),
     r"key 'connectors\[0\].streams.book_ticker': Expected `bool`, got `str`"),
    ("duplicate connector", GOOD.replace('exchange = "bybit"', 'exchange = "binance"')
     .replace("levels = 50", "levels = 100"), r"connector name 'binance' is used twice"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_refused_with_key_path(case, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text, "engine.toml")
    assert str(info.value).startswith("engine.toml: ")


def test_optional_streams_parse_and_default_off():
    cfg = parse_config(_with("trades = true", "trades = true, book_ticker = true, agg_trades = true")
                       .replace("{ depth = { levels = 50 } }",
                                "{ depth = { levels = 50 }, book_ticker = true }"))  # fmt: skip
    assert [(c.streams.book_ticker, c.streams.agg_trades) for c in cfg.connectors] == [
        (True, True), (True, False)]
    plain = parse_config(GOOD).connectors[0].streams
    assert (plain.book_ticker, plain.agg_trades) == (False, False)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_load_from_file(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text(GOOD)
    assert load_config(p).source == str(p)


def test_shipped_example_configs_are_valid():
    from pathlib import Path

    from ttxt_mp.engine.demo import demo_config_text

    root = Path(__file__).parent.parent / "examples"
    shipped = sorted(root.rglob("*.toml"))
    assert len(shipped) >= 7, shipped  # demo, venues, testnets, perpetuals, bus, strategies
    for path in shipped:
        cfg = load_config(path)
        assert cfg.connectors, path
    # examples/demo.toml is the packaged demo config pointed at `ttxt-mp sim --port 8765`
    assert (root / "demo.toml").read_text() == demo_config_text("127.0.0.1:8765")
