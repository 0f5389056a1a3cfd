"""The engine's TOML configuration, parsed into typed structs and checked before start.

Every mistake is reported as :class:`ConfigError` with the file, the key path and what
was expected, before any process or shared-memory object exists. Secrets are never in
the file: credentials name environment variables (or a 0600 file).
"""

from __future__ import annotations

import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

ENGINE_NAME = re.compile(r"^[A-Za-z0-9_]{1,24}$")
SYMBOL = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,12}(:[A-Z0-9]{1,12}(-[0-9]{6})?)?$")
"""A normalized symbol: spot ``BTC/USDT``, perpetual ``BTC/USDT:USDT`` (settled in USDT,
as CCXT writes it), dated future ``BTC/USDT:USDT-250627`` (expiry YYMMDD)."""

if TYPE_CHECKING:
    from ttxt_mp.connectors.venue import VenueSpec


def market_spec(exchange: str, market: str = "spot") -> VenueSpec:
    """The venue ``exchange`` as seen from one of its markets (UnknownVenue / LookupError)."""
    from ttxt_mp.connectors.venue import venue

    return venue(exchange).for_market(market)


EXTRA_STREAMS = ("book_ticker", "agg_trades", "mark_price", "open_interest", "liquidations")
"""Optional ``streams`` keys a market offers only if its ``VenueSpec.extra_streams`` says so."""


def extra_stream_error(spec: VenueSpec, name: str) -> str | None:
    """Why the venue market ``spec`` cannot give the optional stream ``name`` (None: it can)."""
    offered = spec.extra_streams
    if name in offered:
        return None
    return (f"{spec.label} offers no {name} stream (its optional streams: "
            f"{', '.join(offered) or 'none'})")  # fmt: skip


PosInt = Annotated[int, msgspec.Meta(gt=0)]
PosFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]


class ConfigError(ValueError):
    """A configuration mistake, worded for the user: file, key path, expectation."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class EngineSection(_Strict):
    name: str
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    restart_backoff: PosFloat = 0.5
    restart_backoff_max: PosFloat = 30.0
    trading_group: str | int | None = None
    """Opt-in: a group (name or gid) whose members may read the engine's rings and
    trade (their command rings are accepted). Default: only the engine's own uid."""

    def trading_gid(self) -> int | None:
        """The numeric gid of :attr:`trading_group` (validated at load), or None."""
        return None if self.trading_group is None else resolve_group(self.trading_group)


def resolve_group(group: str | int) -> int:
    """A group name or gid -> gid; ``KeyError`` with a one-line message if unknown."""
    import grp

    try:
        if isinstance(group, int) or str(group).isdigit():
            return grp.getgrgid(int(group)).gr_gid
        return grp.getgrnam(group).gr_gid
    except (KeyError, OverflowError, ValueError):
        raise KeyError(f"no group {group!r} on this host") from None


class DepthStream(_Strict):
    levels: PosInt | None = None
    """Book depth; None: the venue's default (``VenueSpec.default_depth``)."""


class Streams(_Strict):
    depth: DepthStream | None = msgspec.field(default_factory=DepthStream)
    trades: bool = True
    klines: list[str] = []
    book_ticker: bool = False
    """The venue's best bid/offer stream, as ``BookTicker`` events."""
    agg_trades: bool = False
    """Trades from the venue's aggregate-trade stream (one trade per taker order and
    price, its id the aggregate id) instead of its trade stream; needs ``trades``."""
    mark_price: bool = False
    """A derivative's mark price, index price and funding rate, as ``MarkPrice`` events."""
    open_interest: bool = False
    """A derivative's open interest, as ``OpenInterest`` events."""
    liquidations: bool = False
    """Liquidation orders the venue prints, as ``Liquidation`` events."""


class Endpoints(_Strict):
    ws: str | None = None
    rest: str | None = None


class CredentialsRef(_Strict):
    """Where the keys live: environment variable names, or a file readable only by you."""

    api_key_env: str | None = None
    api_secret_env: str | None = None
    passphrase_env: str | None = None
    """The key's passphrase, for venues whose keys have one; in a file: ``passphrase``."""
    file: str | None = None


class ConnectorConfig(_Strict):
    exchange: str
    symbols: list[str]
    name: str = ""
    market: str = "spot"
    """One of the venue's markets: ``spot``, ``linear`` (USDT/USDC-margined perpetuals and
    futures), ``inverse``; it chooses endpoints, streams and instruments."""
    streams: Streams = msgspec.field(default_factory=Streams)
    endpoints: Endpoints = msgspec.field(default_factory=Endpoints)
    credentials: CredentialsRef | None = None
    checksum: bool = True
    """Verify the venue's book checksums where it sends them (a mismatch resyncs that one
    instrument and is reported); false turns the check off for this connector."""
    heartbeat_timeout: PosFloat = 10.0
    reconnect_backoff: PosFloat = 0.25
    reconnect_backoff_max: PosFloat = 30.0

    @property
    def id(self) -> str:
        return self.name or self.exchange

    def spec(self) -> VenueSpec:
        """The venue as seen from this connector's market."""
        return market_spec(self.exchange, self.market)

    def depth_levels(self) -> int:
        """Book depth to subscribe: the configured one, else the venue's default; 0 = no book."""
        if self.streams.depth is None:
            return 0
        if self.streams.depth.levels is not None:
            return self.streams.depth.levels
        return self.spec().default_depth

    def ws_url(self) -> str:
        return self.endpoints.ws or self._live()[0]

    def rest_url(self) -> str:
        return self.endpoints.rest or self._live()[1]

    def _live(self) -> tuple[str, str]:
        return self.spec().endpoint("live")


class RingConfig(_Strict):
    capacity: PosInt = 1 << 16
    slot_size: PosInt = 256
    policy: Literal["overwrite", "block"] = "overwrite"
    max_consumers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    """Consumer slots of the ring (each attached process takes one)."""


class Rings(_Strict):
    market: RingConfig = msgspec.field(default_factory=RingConfig)
    private: RingConfig = msgspec.field(
        default_factory=lambda: RingConfig(capacity=4096, policy="block")
    )


class RecorderConfig(_Strict):
    enabled: bool = False
    dir: str = "recordings"
    chunk_events: PosInt = 150
    fsync_interval: PosFloat = 1.0
    rotate_daily: bool = False
    file_mode: str = "0600"
    """Octal mode of recordings and state files; group read ("0640") is the most allowed."""
    max_buffer_mb: PosFloat = 64.0
    """Chunks kept in memory while writes fail (disk full); beyond it events are dropped,
    counted as lost and recorded as a gap."""
    snapshot_interval: NonNegFloat = 600.0
    """Seconds between book snapshots written into the recording (besides its start,
    every lap and every file rotation), so a replay from any time builds correct books;
    0 = only at those points."""

    def mode(self) -> int:
        from ttxt_mp.storage.writer import parse_mode

        return parse_mode(self.file_mode)


class BridgeConfig(_Strict):
    """``[[bridges]]``: publish the engine's rings to an external bus (docs/BUS.md)."""

    kind: Literal["redis"]
    url: str
    """``redis://host:port/db``, or ``rediss://`` for TLS; no password in it."""
    rings: list[str] = msgspec.field(default_factory=lambda: ["market"])
    """Which rings of every connector: ``market``, and ``private`` on request."""
    name: str = ""
    password_env: str | None = None
    """The environment variable holding the Redis password (never the password itself)."""
    maxlen: PosInt = 100_000
    """Entries each stream keeps (approximate trimming; an entry holds up to
    ``batch_events`` events)."""
    batch_events: PosInt = 512
    """Events per stream entry at most."""
    max_buffer_mb: PosFloat = 64.0
    """Events held while Redis is slow or down; beyond it they are dropped, counted, and
    announced by a GapNotice in the stream once Redis is back."""
    state_interval: PosFloat = 1.0
    """Seconds between two refreshes of the state hash (books for late joiners)."""
    connect_timeout: PosFloat = 5.0
    socket_timeout: PosFloat = 5.0
    tls_ca_file: str | None = None
    """With ``rediss://``: the CA certificate (PEM) the server's certificate must chain to
    (default: the system's CAs); the server certificate is always verified."""

    def id(self, index: int) -> str:
        return self.name or f"redis{index}"


class ClientConfig(_Strict):
    target: str
    name: str = ""
    args: dict[str, str | int | float | bool | list[str]] = {}


MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_config_dir: ContextVar[str | None] = ContextVar("ttxt_mp_config_dir", default=None)


class EventsSection(_Strict):
    """``[events]``: custom event kinds (README "Custom events")."""

    modules: list[str] = []
    """Modules that register custom kinds (``ttxt_mp.register_event``) when imported.
    Every process that loads this config imports them, the supervisor and each of its
    connector, recorder and client processes (they decode the supervisor's copy), before
    any ring is created or attached; the engine's rings then carry those kinds too."""

    def __post_init__(self) -> None:
        import_event_modules(self.modules)


def import_event_modules(modules: list[str]) -> None:
    """Import ``modules`` like ``[[clients]]`` targets: installed, or found in the current
    directory or the config file's (the supervisor's children have both on PYTHONPATH).
    A ValueError (a ConfigError at load) names a module that cannot be imported."""
    for m in modules:
        if not isinstance(m, str) or not MODULE_NAME.match(m):
            raise ValueError(f"{m!r} is not a module name (like 'mypkg.events')")
    if not modules:
        return
    import importlib
    import os
    import sys

    for d in (os.getcwd(), _config_dir.get()):
        if d and d not in sys.path:
            sys.path.append(d)
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as e:
            why = str(e).strip().splitlines()
            raise ValueError(f"cannot import event module {m!r}: {type(e).__name__}: "
                             f"{why[-1] if why else ''}") from None  # fmt: skip


class Config(_Strict):
    engine: EngineSection
    connectors: list[ConnectorConfig]
    rings: Rings = msgspec.field(default_factory=Rings)
    recorder: RecorderConfig = msgspec.field(default_factory=RecorderConfig)
    clients: list[ClientConfig] = []
    bridges: list[BridgeConfig] = []
    events: EventsSection = msgspec.field(default_factory=EventsSection)
    source: str = ""


def load_config(path: str | Path) -> Config:
    """Read, type-check and validate a TOML config file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:  # TOML is UTF-8 by definition; say where it is not
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}: not a UTF-8 text file (TOML must be UTF-8): byte "
                          f"0x{data[e.start]:02x} at line {line}, offset {e.start}") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    if "source" in raw:
        raise ConfigError(f"{source}: unknown key 'source'")
    path = Path(source)
    token = _config_dir.set(str(path.resolve().parent) if path.is_file() else None)
    try:
        cfg = msgspec.convert(raw, Config)  # imports the [events] modules
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_humanize(str(e))}") from None
    finally:
        _config_dir.reset(token)
    cfg.source = source
    _validate(cfg, source)
    return cfg


_CHOICES = {"policy": ("overwrite", "block"), "log_level": ("DEBUG", "INFO", "WARNING", "ERROR")}


def _humanize(msg: str) -> str:
    """msgspec says 'Expected `int`, got `str` - at `$.rings.market.capacity`'; lead with
    the key path, which is what a user looks for."""
    m = re.match(r"(.*) - at `\$(.*)`$", msg)
    what, where = m.groups() if m else (msg, "")
    where = where.lstrip(".") or "(top level)"
    what = what.replace("Object missing required field", "missing required key")
    what = what.replace("Object contains unknown field", "unknown key")
    choices = _CHOICES.get(where.rsplit(".", 1)[-1])
    if what.startswith("Invalid enum value") and choices:
        what += f"; expected one of {', '.join(choices)}"
    return f"key '{where}': {what}"


MAX_SLOT_SIZE = 1 << 20  # an event larger than a slot is split into fragments anyway
MAX_CAPACITY = 1 << 32
FALLBACK_MAX_RING_BYTES = 4 << 30  # without ttxt_mp.shm.limits: min(4 GiB, half of /dev/shm)


def max_ring_bytes() -> int:
    """The largest ring a config may ask for: :func:`ttxt_mp.shm.limits.max_ring_bytes`
    when the transport provides it, else min(4 GiB, half of /dev/shm)."""
    try:
        from ttxt_mp.shm.limits import max_ring_bytes as shm_max
    except ImportError:
        import os

        env = os.environ.get("TTXT_MP_MAX_RING_BYTES", "")
        if env.isdigit():
            return int(env)
        try:
            st = os.statvfs("/dev/shm")
            return min(FALLBACK_MAX_RING_BYTES, st.f_blocks * st.f_frsize // 2)
        except OSError:
            return FALLBACK_MAX_RING_BYTES
    return int(shm_max())


def _check_ring_size(fail, key: str, capacity: int, slot_size: int) -> None:
    """Why: a 32 GiB ring filled /dev/shm and 2**62 slots gave an OverflowError
    traceback; refuse before anything is created, naming the limit."""
    if slot_size > MAX_SLOT_SIZE:
        fail(f"{key}.slot_size", f"expected at most {MAX_SLOT_SIZE} bytes, got {slot_size}")
    if capacity > MAX_CAPACITY:
        fail(f"{key}.capacity", f"expected at most 2**32 slots, got {capacity}")
    limit = max_ring_bytes()
    if capacity * slot_size > limit:
        fail(f"{key}.capacity", f"{capacity} slots x {slot_size} bytes = "
             f"{capacity * slot_size / 2**30:.1f} GiB exceeds the ring size limit of "
             f"{limit / 2**30:.2f} GiB (shared memory; TTXT_MP_MAX_RING_BYTES raises it)")


def _validate(cfg: Config, source: str) -> None:
    from ttxt_mp.connectors.venue import UnknownVenue, venue

    def fail(key: str, expected: str) -> None:
        raise ConfigError(f"{source}: key '{key}': {expected}")

    if not ENGINE_NAME.match(cfg.engine.name):
        fail("engine.name", f"expected 1-24 letters, digits or '_', got {cfg.engine.name!r}")
    if not cfg.connectors:
        fail("connectors", "expected at least one [[connectors]] table")
    seen: set[str] = set()
    for i, c in enumerate(cfg.connectors):
        key = f"connectors[{i}]"
        try:
            spec = venue(c.exchange)
        except UnknownVenue as e:
            fail(f"{key}.exchange", str(e))
        if c.market not in spec.markets:
            fail(f"{key}.market", f"{c.exchange} offers the markets {', '.join(spec.markets)}; "
                 f"got {c.market!r}")  # fmt: skip
        spec = spec.for_market(c.market)
        if c.id in seen:
            fail(f"{key}.name", f"connector name {c.id!r} is used twice; set distinct names")
        if not ENGINE_NAME.match(c.id):
            fail(f"{key}.name", f"expected 1-24 letters, digits or '_', got {c.id!r}")
        seen.add(c.id)
        if not c.symbols:
            fail(f"{key}.symbols", "expected at least one symbol like 'BTC/USDT'")
        for j, s in enumerate(c.symbols):
            if not SYMBOL.match(s):
                fail(f"{key}.symbols[{j}]", f"expected BASE/QUOTE in capitals like 'BTC/USDT' "
                     f"(perpetual 'BTC/USDT:USDT', dated 'BTC/USDT:USDT-250627'), got {s!r}")
        if len(set(c.symbols)) != len(c.symbols):
            fail(f"{key}.symbols", "a symbol is listed twice")
        if (c.streams.depth is not None and c.streams.depth.levels is not None
                and c.streams.depth.levels not in spec.book_levels):  # fmt: skip
            fail(f"{key}.streams.depth.levels", f"{spec.label} offers depth levels "
                 f"{spec.book_levels}, got {c.streams.depth.levels}")  # fmt: skip
        for name in EXTRA_STREAMS:
            why = extra_stream_error(spec, name) if getattr(c.streams, name) else None
            if why:
                fail(f"{key}.streams.{name}", why)
        if c.streams.agg_trades and not c.streams.trades:
            fail(f"{key}.streams.agg_trades", "needs trades = true (it says where trades "
                 "come from)")  # fmt: skip
        for j, iv in enumerate(c.streams.klines):
            if iv not in spec.kline_intervals:
                fail(f"{key}.streams.klines[{j}]", f"{spec.label} kline intervals are "
                     f"{', '.join(spec.kline_intervals)}; got {iv!r}")  # fmt: skip
        for name, url, schemes in (("ws", c.endpoints.ws, ("ws://", "wss://")),
                                   ("rest", c.endpoints.rest, ("http://", "https://"))):  # fmt: skip
            if url is not None and not url.startswith(schemes):
                fail(f"{key}.endpoints.{name}", f"expected a URL starting with "
                     f"{' or '.join(schemes)}, got {url!r}")  # fmt: skip
        cr = c.credentials
        if cr is not None:
            by_env = (cr.api_key_env is not None or cr.api_secret_env is not None
                      or cr.passphrase_env is not None)  # fmt: skip
            if by_env and cr.file is not None:
                fail(f"{key}.credentials", "give either api_key_env/api_secret_env"
                     "(/passphrase_env) or file")  # fmt: skip
            if by_env and (cr.api_key_env is None or cr.api_secret_env is None):
                fail(f"{key}.credentials", "expected both api_key_env and api_secret_env")
            if not by_env and cr.file is None:
                fail(f"{key}.credentials", "expected api_key_env/api_secret_env or file")
    for rname in ("market", "private"):
        r: RingConfig = getattr(cfg.rings, rname)
        if r.capacity & (r.capacity - 1):
            fail(f"rings.{rname}.capacity", f"expected a power of two, got {r.capacity}")
        if r.slot_size % 64 or r.slot_size < 128:
            fail(f"rings.{rname}.slot_size", f"expected a multiple of 64, >= 128, got {r.slot_size}")
        _check_ring_size(fail, f"rings.{rname}", r.capacity, r.slot_size)
    if cfg.engine.trading_group is not None:
        g = cfg.engine.trading_group
        if isinstance(g, bool) or (isinstance(g, int) and g < 0):
            fail("engine.trading_group", f"expected a group name or gid, got {g!r}")
        try:
            resolve_group(g)
        except KeyError:
            fail("engine.trading_group", f"expected an existing group name or gid, got {g!r}")
    try:
        cfg.recorder.mode()
    except ValueError as e:
        fail("recorder.file_mode", str(e))
    _validate_bridges(cfg, fail)
    for i, cl in enumerate(cfg.clients):
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", cl.target):
            fail(f"clients[{i}].target", f"expected 'package.module:ClassName', got {cl.target!r}")


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _validate_bridges(cfg: Config, fail) -> None:
    import os

    from ttxt_mp.bus.url import check_url

    seen: set[str] = set()
    urls: dict[str, int] = {}
    for i, b in enumerate(cfg.bridges):
        key = f"bridges[{i}]"
        target = b.url.rstrip("/").removesuffix("/0")
        if target in urls:  # both would write the same meta hash and state hashes
            fail(f"{key}.url", f"bridges[{urls[target]}] already publishes to {b.url!r}: "
                 "list every ring in one bridge per Redis")  # fmt: skip
        urls[target] = i
        why = check_url(b.url, allow_password=False)
        if why:
            fail(f"{key}.url", why)
        if not b.rings:
            fail(f"{key}.rings", "expected at least one of 'market', 'private'")
        for j, r in enumerate(b.rings):
            if r not in ("market", "private"):
                fail(f"{key}.rings[{j}]", f"expected 'market' or 'private', got {r!r}")
        if len(set(b.rings)) != len(b.rings):
            fail(f"{key}.rings", "a ring is listed twice")
        if b.tls_ca_file is not None:
            if not os.path.isabs(b.tls_ca_file) and Path(cfg.source).is_file():
                b.tls_ca_file = str(Path(cfg.source).resolve().parent / b.tls_ca_file)
            if not b.url.startswith("rediss://"):
                fail(f"{key}.tls_ca_file", "only with a rediss:// (TLS) url")
            if not os.access(b.tls_ca_file, os.R_OK):
                fail(f"{key}.tls_ca_file", f"cannot read {b.tls_ca_file!r}")
        if b.password_env is not None and not ENV_NAME.match(b.password_env):
            fail(f"{key}.password_env", "expected the NAME of an environment variable "
                 "(letters, digits, '_'), not a password")  # fmt: skip
        if not ENGINE_NAME.match(b.id(i)):
            fail(f"{key}.name", f"expected 1-24 letters, digits or '_', got {b.id(i)!r}")
        if b.id(i) in seen:
            fail(f"{key}.name", f"bridge name {b.id(i)!r} is used twice; set distinct names")
        seen.add(b.id(i))
