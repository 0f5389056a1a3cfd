"""``ttxt-mp demo``: the whole system offline, in one command.

Starts the exchange simulator on a free loopback port, launches an engine (one process
per connector: one connector per installed venue that has a simulator adapter) against it
with the packaged ``demo.toml``, attaches to the engine from
this process and shows a live top-of-book table. Everything it started is stopped and
every shared-memory object removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ttxt_mp import events as ev
from ttxt_mp.client import BaseClient, attach
from ttxt_mp.config import parse_config
from ttxt_mp.engine.supervisor import die_with_parent
from ttxt_mp.queues import QueueClosed, QueueEmpty

if TYPE_CHECKING:
    from ttxt_mp.connectors.venue import VenueSpec
    from ttxt_mp.sim.venue import VenueBase

SIM_START_TIMEOUT = 20.0
ENGINE_START_TIMEOUT = 20.0
BOOKS_TIMEOUT = 60.0


def demo_venues(venues: Sequence[str] | None = None) -> list[tuple[VenueSpec, type[VenueBase]]]:
    """The demo's venues: every simulated market of every installed venue (registry
    order), as the venue's market view with its simulator adapter; ``venues`` keeps those
    whose simulator id (``binance``, ``binance_linear``, ...) it lists (None: all, and a
    name no venue has is a ValueError naming the simulated ones)."""
    from ttxt_mp.connectors import venue as registry
    from ttxt_mp.sim.venue import sim_venues

    adapters = sim_venues()
    if venues is not None:
        unknown = [v for v in venues if v not in adapters]
        if unknown:
            raise ValueError(f"unknown demo venue {unknown[0]!r}; simulated venues: "
                             f"{', '.join(adapters)}")  # fmt: skip
    views = (spec.for_market(m) for spec in registry.venues().values() for m in spec.markets)
    return [(v, adapters[v.sim_id]) for v in views
            if v.sim_id in adapters and (venues is None or v.sim_id in venues)]  # fmt: skip


def market_symbol(symbol: str, market: str) -> str:
    """A demo symbol on ``market``: ``BTC/USDT`` on spot, the USDT-margined perpetual
    ``BTC/USDT:USDT`` on ``linear``."""
    return symbol if market in ("", "spot") else f"{symbol}:{symbol.partition('/')[2]}"


def _names(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def demo_config_text(sim_host_port: str, engine: str = "demo", symbols: list[str] | None = None,
                     venues: Sequence[str] | None = None) -> str:  # fmt: skip
    """The packaged demo config pointed at a simulator: one connector per simulated venue
    market (``demo.toml``'s connector block, at the depth the venue's adapter asks for);
    ``venues``: simulator ids to keep (None: all; see :func:`demo_venues`)."""
    text = resources.files("ttxt_mp.engine").joinpath("demo.toml").read_text()
    head, _, rest = text.partition("#>connector")
    block, _, tail = rest.partition("#<connector\n")
    block = block.partition("\n")[2]  # the marker line's own text
    blocks = []
    symbols = symbols or ["BTC/USDT", "ETH/USDT"]
    chosen = demo_venues(venues)
    for spec, cls in chosen:
        levels = cls.demo_levels or (spec.book_levels[-1] if spec.book_levels else 1000)
        listed = ", ".join(f'"{market_symbol(s, spec.market)}"' for s in symbols)
        b = (block.replace("SIM_ID", spec.sim_id).replace("EXCHANGE", spec.id)
             .replace("MARKET", spec.market).replace("LEVELS", str(levels))
             .replace('symbols = ["BTC/USDT", "ETH/USDT"]', f"symbols = [{listed}]"))  # fmt: skip
        if spec.kline_intervals and "1m" not in spec.kline_intervals:
            b = b.replace('klines = ["1m"]', "klines = []")
        if "mark_price" in spec.extra_streams:  # a perpetual: show its mark and funding
            b = b.replace("] }\n", "], mark_price = true }\n", 1)
        blocks.append(b)
    names = [spec.label.replace(spec.id, (spec.title or spec.id).split()[0], 1)
             for spec, _ in chosen]  # fmt: skip
    text = head.replace("VENUE_NAMES", _names(names)) + "".join(blocks) + tail
    return text.replace("SIM_URL", sim_host_port).replace('name = "demo"', f'name = "{engine}"')


class SimProcess:
    """The simulator as a child process; its first stdout line says where it listens."""

    def __init__(self, symbols: list[str], seed: int = 7, extra: list[str] | None = None,
                 venues: Sequence[str] | None = None) -> None:  # fmt: skip
        """``venues``: the simulator ids it serves (None: every simulated venue)."""
        native = ",".join(s.replace("/", "") for s in symbols)
        argv = [sys.executable, "-m", "ttxt_mp.sim", "--port", "0", "--seed", str(seed)]
        chosen = {spec.sim_id for spec, _ in demo_venues(venues)}
        for spec, _ in demo_venues():
            argv += [f"--{spec.sim_id}", native if spec.sim_id in chosen else ""]
        argv += extra or []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True,
                                     preexec_fn=die_with_parent)  # fmt: skip
        self.info = self._read_info()

    def _read_info(self) -> dict[str, Any]:
        import selectors

        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(SIM_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"the simulator did not start within {SIM_START_TIMEOUT:.0f}s")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"the simulator exited with code {code} before listening")
        return msgspec.json.decode(line)

    @property
    def host_port(self) -> str:
        return f"{self.info['host']}:{self.info['port']}"

    def stop(self) -> None:
        _terminate(self.proc)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait_engine(engine: str, sup: subprocess.Popen) -> bool:
    """True once *our* supervisor answers on the engine's control socket."""
    from ttxt_mp.engine.control import EngineNotRunning, request

    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    while time.monotonic() < deadline and sup.poll() is None:
        try:
            if request(engine, "status")["pid"] == sup.pid:
                return True
        except (EngineNotRunning, OSError):
            pass
        time.sleep(0.1)
    return False


def _terminate(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 8.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class TopOfBookTable(BaseClient):
    """Best bid/ask per instrument, kept from the events; renders as a rich table."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: dict[tuple[str, str], int] = {}
        self.last_trade: dict[tuple[str, str], ev.Trade] = {}
        self.marks: dict[tuple[str, str], ev.MarkPrice] = {}
        self.state: dict[str, str] = {}
        self.started = time.monotonic()

    def on_orderbook(self, e: ev.Orderbook) -> None:
        key = (e.exchange, e.symbol)
        self.updates[key] = self.updates.get(key, 0) + 1

    def on_trades(self, e: ev.MarketTrades) -> None:
        if e.trades:
            self.last_trade[(e.exchange, e.symbol)] = e.trades[-1]

    def on_mark_price(self, e: ev.MarkPrice) -> None:
        self.marks[(e.exchange, e.symbol)] = e

    def on_status(self, e: ev.ConnectorStatus) -> None:
        where = e.exchange + (f" {e.symbol}" if e.symbol else "")
        self.state[where] = e.state.name + (f": {e.message}" if e.message else "")

    def rows(self) -> list[tuple[str, ...]]:
        out = []
        for (exch, sym), book in sorted(self.books.items()):
            bb, ba = book.best_bid, book.best_ask
            if bb is None or ba is None:
                continue
            mid = (bb[0] + ba[0]) / 2
            tr = self.last_trade.get((exch, sym))
            mark = self.marks.get((exch, sym))
            out.append((
                exch, sym, f"{bb[1]:.4f} @ {bb[0]:,.2f}", f"{ba[0]:,.2f} x {ba[1]:.4f}",
                f"{(ba[0] - bb[0]) / mid * 1e4:.2f}", f"{sum(book.depth()):,}",
                f"{self.updates.get((exch, sym), 0):,}",
                f"{tr.side.name} {tr.qty:g} @ {tr.price:,.2f}" if tr else "-",
                f"{mark.mark_price:,.2f} / {mark.funding_rate * 100:.4f}%" if mark else "-",
            ))  # fmt: skip
        return out

    def table(self) -> Table:
        t = Table(title=f"ttxt-mp demo: live books ({time.monotonic() - self.started:.0f}s, "
                  f"{self.events:,} events)", title_justify="left")  # fmt: skip
        for col in ("exchange", "symbol", "bid", "ask", "spread bps", "levels", "updates",
                    "last trade", "mark / funding"):  # fmt: skip
            t.add_column(col, justify="left" if col in ("exchange", "symbol") else "right")
        for r in self.rows():
            t.add_row(*r)
        return t


def run_demo(duration: float | None = None, engine: str = "demo",
             symbols: list[str] | None = None, venues: Sequence[str] | None = None) -> int:  # fmt: skip
    """The offline demo; ``venues``: simulator ids to run (None: every simulated venue)."""
    from ttxt_mp.sim.specs import known_symbols

    if duration is not None and not duration >= 0:
        raise ValueError(f"demo duration must be >= 0 seconds, got {duration}")
    unknown = [s for s in symbols or () if s not in known_symbols()]
    if unknown:
        raise ValueError(f"unknown demo symbol {unknown[0]!r}; expected some of "
                         f"{', '.join(known_symbols())}")  # fmt: skip
    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table into 80 cols
        console = Console(width=140)
    symbols = symbols or ["BTC/USDT", "ETH/USDT"]
    say = console.print
    say("[bold]ttxt-mp demo[/]: local exchange simulator -> one connector process per "
        "exchange -> shared-memory rings -> this process. Nothing leaves 127.0.0.1.")  # fmt: skip
    sim = sup = None
    demo = demo_venues(venues)
    ids = sorted({spec.id for spec, _ in demo})
    tmp = tempfile.TemporaryDirectory(prefix="ttxt-demo-")
    # A closed terminal or a kill stops the demo like Ctrl-C: everything it started stops.
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    old_hup = signal.signal(signal.SIGHUP, _interrupt)
    try:
        titles = " + ".join(spec.title or spec.id for spec, _ in demo)
        say(f"  starting the exchange simulator ({titles}) ...", end=" ")
        sim = SimProcess(symbols, venues=venues)
        say(f"listening on {sim.host_port}")
        cfg_path = Path(tmp.name) / "demo.toml"
        cfg_path.write_text(demo_config_text(sim.host_port, engine, symbols, venues))
        parse_config(cfg_path.read_text(), str(cfg_path))  # refuse early, in this process
        say(f"  launching engine {engine!r}: {_names([v.label for v, _ in demo])} connector "
            "processes ...", end=" ")  # fmt: skip
        env = dict(os.environ, TTXT_LOG_LEVEL=os.environ.get("TTXT_LOG_LEVEL", "WARNING"))
        sup = subprocess.Popen([sys.executable, "-m", "ttxt_mp.cli", "launch", str(cfg_path)],
                               env=env, start_new_session=True,
                               preexec_fn=die_with_parent)  # fmt: skip
        if not _wait_engine(engine, sup):
            say(f"[red]the engine did not start (exit code {sup.poll()}; see above)[/]")
            return 1
        feed = attach(engine, wait=ENGINE_START_TIMEOUT)
        say("attached")
        return _show(console, feed, duration, sup, set(ids))
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGHUP, old_hup)
        if sup is not None:
            say("  stopping the engine ...", end=" ")
            _terminate(sup, signal.SIGINT)
            say(f"exit code {sup.returncode}")
        if sim is not None:
            sim.stop()
        tmp.cleanup()


def _wait_first_books(console: Console, feed: Any, client: TopOfBookTable,
                      sup: subprocess.Popen, exchanges: set[str]) -> bool:  # fmt: skip
    """Dispatch events until every exchange has a book, so ``--duration`` counts live
    time, not start-up; False if the engine died or books never came."""
    console.print(f"  waiting for the first books from {', '.join(sorted(exchanges))} ...",
                  end=" ")  # fmt: skip
    deadline = time.monotonic() + BOOKS_TIMEOUT
    while {e for e, _ in client.books} < exchanges:
        if sup.poll() is not None or time.monotonic() > deadline:
            console.print("[red]no books[/]")
            return False
        with contextlib.suppress(QueueEmpty):
            client.dispatch(feed.get(timeout=0.25))
    console.print(f"ok ({time.monotonic() - client.started:.1f}s)")
    return True


def _show(console: Console, feed: Any, duration: float | None, sup: subprocess.Popen,
          exchanges: set[str]) -> int:  # fmt: skip
    client = TopOfBookTable()
    if not _wait_first_books(console, feed, client, sup, exchanges):
        console.print(f"[red]the engine did not deliver books (exit code {sup.poll()})[/]")
        return 1
    deadline = None if duration is None else time.monotonic() + duration
    interactive = console.is_terminal
    next_print = time.monotonic() + 1.0
    with feed, Live(client.table(), console=console, refresh_per_second=4,
                    transient=False) if interactive else contextlib.nullcontext() as live:  # fmt: skip
        while deadline is None or time.monotonic() < deadline:
            if sup.poll() is not None:
                console.print(f"[red]the engine exited with code {sup.returncode}[/]")
                return 1
            try:
                client.dispatch(feed.get(timeout=0.25))
            except QueueEmpty:
                pass
            except QueueClosed:
                break
            now = time.monotonic()
            if now >= next_print:
                next_print = now + (0.25 if interactive else 1.0)
                if live is not None:
                    live.update(client.table())
                else:
                    for r in client.rows():
                        print("book", " ".join(r[:5]), flush=True)
    console.print(client.table())
    return 0
