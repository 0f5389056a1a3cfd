"""The venue registry: built-in venue packages found on disk, third-party ones through the
``ttxt_mp.venues`` entry points of installed distributions (a broken or clashing plug-in
is logged and skipped), one-line errors naming the installed venues."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from ttxt_mp.config import ConfigError, parse_config
from ttxt_mp.connectors import venue as registry
from ttxt_mp.connectors.venue import UnknownVenue, VenueSpec, venue, venue_ids


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A directory importlib.metadata treats as installed distributions (what pip writes:
    the package and a ``*.dist-info`` with ``entry_points.txt``)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.venues.cache_clear()

    def install(dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
        for name, text in modules.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        eps = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[ttxt_mp.venues]\n{eps}")

    yield install
    for name in [m for m in sys.modules if m.startswith("toy_")]:
        del sys.modules[name]
    registry.venues.cache_clear()


def test_builtin_venues_are_the_packages_that_declare_one():
    assert set(venue_ids()) >= {"binance", "bybit"}
    for spec in registry.venues().values():
        assert isinstance(spec, VenueSpec)
        assert spec.book_levels and spec.kline_intervals and spec.endpoint("live")
        assert spec.load("connector").__name__.endswith("Connector")
    assert "ttxt_mp.connectors.trading" not in registry.builtin_packages()


def test_a_plugin_venue_is_found_and_used_by_config_validation(site):
    site("toy_dist", {"toy_venue": """
        from ttxt_mp.connectors.venue import VenueSpec
        VENUE = VenueSpec(id="toy", endpoints={"live": ("ws://toy", "http://toy")},
                          book_levels=(10,), kline_intervals=("1m",), connector="x:Y")
    """}, {"toy": "toy_venue:VENUE"})
    assert "toy" in venue_ids()
    assert venue("toy").endpoint() == ("ws://toy", "http://toy")
    cfg = parse_config('[engine]\nname = "e"\n[[connectors]]\nexchange = "toy"\n'
                       'symbols = ["A/B"]\nstreams = { depth = { levels = 10 } }\n', "c.toml")
    assert cfg.connectors[0].ws_url() == "ws://toy"
    with pytest.raises(ConfigError, match=r"toy offers depth levels \(10,\), got 20"):
        parse_config('[engine]\nname = "e"\n[[connectors]]\nexchange = "toy"\n'
                     'symbols = ["A/B"]\nstreams = { depth = { levels = 20 } }\n', "c.toml")


def test_broken_and_clashing_plugins_are_skipped_with_one_warning_each(site, caplog):
    site("toy_bad", {"toy_broken": "raise RuntimeError('boom')\n",
                     "toy_wrong": "VENUE = 42\n",
                     "toy_clash": """
        from ttxt_mp.connectors.venue import VenueSpec
        VENUE = VenueSpec(id="binance")
    """}, {"broken": "toy_broken:VENUE", "wrong": "toy_wrong:VENUE",
           "clash": "toy_clash:VENUE"})  # fmt: skip
    with caplog.at_level(logging.WARNING, "ttxt_mp.venues"):
        ids = venue_ids()
    assert "broken" not in ids and "wrong" not in ids
    assert venue("binance").title != ""  # the built-in one, not the clash
    msgs = [r.getMessage() for r in caplog.records]
    assert any("'broken'" in m and "RuntimeError: boom" in m for m in msgs), msgs
    assert any("'wrong'" in m and "not a VenueSpec" in m for m in msgs), msgs
    assert any("'clash'" in m and "already installed" in m for m in msgs), msgs
    assert all("\n" not in m for m in msgs)


def test_unknown_exchange_names_the_installed_venues():
    with pytest.raises(UnknownVenue, match=r"unknown exchange 'nosuchvenue'; installed venues: "
                                           r"binance, bybit"):  # fmt: skip
        venue("nosuchvenue")
    with pytest.raises(ConfigError, match=r"connectors\[0\]\.exchange': unknown exchange "
                                          r"'nosuchvenue'; installed venues: binance, bybit"):  # fmt: skip
        parse_config('[engine]\nname = "e"\n[[connectors]]\nexchange = "nosuchvenue"\n'
                     'symbols = ["A/B"]\n', "c.toml")


def test_missing_parts_and_endpoints_are_clear():
    spec = VenueSpec(id="bare")
    with pytest.raises(LookupError, match="venue 'bare' has no trading"):
        spec.load("trading")
    with pytest.raises(LookupError, match="venue 'bare' has no 'testnet' endpoints; it has none"):
        spec.endpoint("testnet")
