"""``ttxt-mp replay DIR``: recorded files as JSON lines on stdout, or, with ``--name``,
as a feed registered exactly like a running engine of that name.

``--name ENGINE``: the replay takes the host-wide engine lock (``/dev/shm/ttxt-ENGINE.lock``;
a live engine or replay of that name is refused with the engine's one-line "already
running" message, exit code 2), removes this uid's objects of a run of that name that
did not exit cleanly, and creates one market ring per recorded exchange,
``ENGINE-<exchange>-market``, carrying the lock's instance id and the metadata an engine
writes. It answers ``status``, ``rings`` and ``shutdown`` on the engine's control socket.
So ``ttxt_mp.attach("ENGINE")``, ``ttxt-mp tail ENGINE`` and ``ttxt-mp status ENGINE``
find it like a launched engine. ``--name ENGINE-CONNECTOR-market`` registers ENGINE with
that one ring, carrying every exchange.

At the end of the recording, on SIGINT or SIGTERM, or on a ``shutdown`` request, the rings
are closed (consumers drain them, then get ``QueueClosed``), then every object of the
engine is unlinked and the lock released. A crashed replay leaves its objects behind,
like a crashed engine, and the next start of that name takes them over.

``--speed X`` paces both outputs by the recorded timestamps
(:meth:`MarketDataReplayer.publish`); without it the replay runs as fast as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from ttxt_mp import codec
from ttxt_mp.storage.format import FILE_SUFFIX
from ttxt_mp.storage.replayer import (
    GAP_KIND,
    MarketDataReplayer,
    ReplayStats,
    recording_paths,
    to_ns,
)

log = logging.getLogger("ttxt_mp.replay")

WAIT_CONSUMERS_TIMEOUT = 60.0
_SINGLE_RING = re.compile(r"^([A-Za-z0-9_]+)-([A-Za-z0-9_]+)-market$")
_NOT_CONNECTOR = re.compile(r"[^A-Za-z0-9_]")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def replay_target(text: str) -> tuple[str, str | None]:
    """``--name``: (engine, None) for an engine name (one ring per exchange), or
    (engine, connector) for ``ENGINE-CONNECTOR-market`` (that one ring)."""
    from ttxt_mp.config import ENGINE_NAME

    if ENGINE_NAME.match(text):
        return text, None
    m = _SINGLE_RING.match(text)
    if m and ENGINE_NAME.match(m.group(1)):
        return m.group(1), m.group(2)
    raise ValueError(
        f"invalid ring name {text!r}: expected an engine name (1-24 letters, digits or "
        "'_'), or ENGINE-CONNECTOR-market for a single ring"
    )


def _checked_target(text: str) -> str:
    replay_target(text)
    return text


def add_replay_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``ttxt-mp replay DIR [--speed X] [--name ENGINE]``."""
    from ttxt_mp.argtypes import checked, non_negative, positive

    parser.add_argument("paths", nargs="+", help="recording files or directories")
    parser.add_argument("--speed", type=positive(), default=None,
                        help="pace at recorded speed times X (default: as fast as possible)")  # fmt: skip
    parser.add_argument("--name", type=checked(_checked_target, "ring name"), default=None,
                        metavar="ENGINE",
                        help="publish as engine ENGINE: attach(), `ttxt-mp tail/status "
                             "ENGINE` find it like a running engine (default: print "
                             "JSON lines)")  # fmt: skip
    parser.add_argument("--wait-consumers", type=non_negative(int), default=0, metavar="N",
                        help="with --name: wait (up to 60 s) until every ring has N "
                             "consumers attached")  # fmt: skip
    when = checked(to_ns, "time")
    parser.add_argument("--from", "--start", dest="start", type=when, default=None,
                        help="ns or ISO 8601 time (inclusive); each book starts at its last "
                             "snapshot before it, so books are exact from there")  # fmt: skip
    parser.add_argument("--no-seek", action="store_true",
                        help="with --from: cut every file at that time (no snapshot seek)")
    parser.add_argument("--end", type=when, default=None, help="ns or ISO 8601 time (exclusive)")
    parser.add_argument("--exchange", action="append", help="only this exchange (repeatable)")
    parser.add_argument("--symbol", action="append", help="only this symbol, e.g. BTC/USDT")
    parser.add_argument("--no-verify", action="store_true", help="skip chunk CRC checks")
    return parser


def replay_main(args: argparse.Namespace) -> int:
    from ttxt_mp.argtypes import NothingFound

    if not recording_paths(args.paths):
        raise NothingFound(f"no recording files (*{FILE_SUFFIX}) in {', '.join(args.paths)}")
    rp = MarketDataReplayer(
        args.paths, start=args.start, end=args.end, exchanges=args.exchange,
        symbols=args.symbol, verify=not args.no_verify, seek=not args.no_seek,
    )  # fmt: skip
    with rp:
        if args.name is None:
            stats = _print_events(rp, args.speed)
        else:
            engine, connector = replay_target(args.name)
            stats = ReplayEngine(rp, engine, connector=connector, speed=args.speed,
                                 wait_consumers=args.wait_consumers).run()  # fmt: skip
    print(msgspec.json.encode(stats).decode(), file=sys.stderr)
    return 1 if stats.problems else 0


# ---------------------------------------------------------------------- stdout


class _JsonLines:
    """A queue for :meth:`MarketDataReplayer.publish` that prints each event as a JSON
    line; paced lines are flushed at once, so a reader sees them at the replay's pace."""

    def __init__(self, out: Any, flush: bool) -> None:
        self.out, self.flush = out, flush
        self._encode = msgspec.json.Encoder().encode

    def put(self, event: Any, timeout: float | None = None) -> None:
        self.out.write(self._encode(event) + b"\n")
        if self.flush:
            self.out.flush()


def _print_events(rp: MarketDataReplayer, speed: float | None) -> ReplayStats:
    out = sys.stdout.buffer
    try:
        return rp.publish(_JsonLines(out, flush=speed is not None), speed=speed)
    finally:
        out.flush()


# ---------------------------------------------------------------------- --name


def connector_name(exchange: str) -> str:
    """The connector part of a replay ring's name: the exchange (as a launched engine
    names its connectors by default), reduced to ``[A-Za-z0-9_]``."""
    return _NOT_CONNECTOR.sub("_", exchange) or "replay"


class _Router:
    """The queue :meth:`MarketDataReplayer.publish` writes to: each record goes to the
    ring of its exchange (read from the record's header, no decoding); a record naming
    no exchange (a ring-wide gap notice) concerns every ring, so each one gets it."""

    def __init__(self, rings: dict[str, Any], by_exchange: dict[bytes, Any]) -> None:
        self.rings = rings
        self.by_exchange = by_exchange
        self.events = 0
        self.gaps = 0
        self._fields: dict[int, slice] = {}

    def _exchange(self, kind: int) -> slice:
        """Where a record of ``kind`` holds its exchange (empty: a custom kind without)."""
        sl = self._fields.get(kind)
        if sl is None:
            field = codec.layout_for(kind).header_dtype.fields.get("exchange")
            sl = slice(0, 0) if field is None else slice(field[1], field[1] + field[0].itemsize)
            self._fields[kind] = sl
        return sl

    def put_raw(self, kind: int, payload: bytes, timeout: float | None = None) -> None:
        ring = self.by_exchange.get(payload[self._exchange(kind)].rstrip(b"\0"))
        if ring is not None:
            ring.put_raw(kind, payload, timeout)
        else:
            for r in self.rings.values():
                r.put_raw(kind, payload, timeout)
        self.events += 1
        if kind == GAP_KIND:
            self.gaps += 1

    def close(self) -> None:
        for r in self.rings.values():
            r.close()


class ReplayEngine:
    """A replay registered as engine ``engine`` (see the module docstring)."""

    def __init__(self, rp: MarketDataReplayer, engine: str, *, connector: str | None = None,
                 speed: float | None = None, wait_consumers: int = 0,
                 wait_timeout: float = WAIT_CONSUMERS_TIMEOUT) -> None:  # fmt: skip
        from ttxt_mp.engine.supervisor import EngineLock

        self.rp = rp
        self.engine = engine
        self.connector = connector
        self.speed = speed
        self.wait_consumers = wait_consumers
        self.wait_timeout = wait_timeout
        self.lock = EngineLock(engine)
        self.instance_id = self.lock.instance_id
        self.router = _Router({}, {})
        self.state = "STARTING"
        self.started = time.monotonic()
        self._publish_started = 0.0
        self._stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ life-cycle
    def run(self) -> ReplayStats:
        """Lock, take over leftovers, create the rings, publish, clean up. Signals are
        held back until the event loop handles them, and again while cleaning up, so a
        SIGINT/SIGTERM at any moment still leaves nothing behind."""
        from ttxt_mp.engine.loop import run
        from ttxt_mp.engine.supervisor import remove_leftovers

        main = threading.current_thread() is threading.main_thread()
        with _held_signals(main):
            self.lock.acquire()  # EngineAlreadyRunning: the engine's one-line refusal
            try:
                removed = remove_leftovers(self.engine)
                if removed:
                    log.warning("removed %d leftover shared-memory objects of engine %r from "
                                "a run that did not exit cleanly", len(removed), self.engine)  # fmt: skip
                self._create_rings()
                return run(self._serve(main))
            finally:
                self.router.close()
                remove_leftovers(self.engine)  # the rings, consumers' FIFOs, the socket
                self.lock.release()

    def _create_rings(self) -> None:
        from ttxt_mp.config import RingConfig
        from ttxt_mp.engine.naming import ring_name
        from ttxt_mp.shm import ShmQueue

        exchanges: dict[str, set[str]] = {}
        for f in self.rp.files:
            if f.exchange:
                syms = exchanges.setdefault(f.exchange, set())
                if f.symbol:
                    syms.add(f.symbol)
        groups: dict[str, list[str]] = {}  # connector -> exchanges
        if self.connector is not None:
            groups[self.connector] = sorted(exchanges)
        else:
            for ex in sorted(exchanges):
                groups.setdefault(connector_name(ex), []).append(ex)
            groups = groups or {"replay": []}
        rc = RingConfig()  # the engine's market ring defaults
        for conn, exs in groups.items():
            name = ring_name(self.engine, conn, "market")
            meta = {"engine": self.engine, "connector": conn, "stream": "market",
                    "exchange": exs[0] if len(exs) == 1 else "",
                    "symbols": sorted(s for ex in exs for s in exchanges[ex])}  # fmt: skip
            pub = ShmQueue.create(name, rc.capacity, rc.slot_size, rc.policy, metadata=meta,
                                  keeper_pid=os.getpid(), max_consumers=rc.max_consumers,
                                  instance_id=self.instance_id)  # fmt: skip
            self.router.rings[name] = pub
            if self.connector is None:
                for ex in exs:
                    self.router.by_exchange[ex.encode()] = pub

    async def _serve(self, main: bool) -> ReplayStats:
        from ttxt_mp.engine import control
        from ttxt_mp.engine.naming import control_socket

        loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        if main:  # from now on a signal (also one held back so far) stops the replay
            for sig in _SIGNALS:
                loop.add_signal_handler(sig, stop.set)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        try:
            server = await control.serve(control_socket(self.engine), self._handle)
        except BaseException:
            self._restore_signals(loop, main)
            raise
        try:
            if not await self._wait_for_consumers(stop):
                self.state = "STOPPED"
                return ReplayStats(problems=len(self.rp.problems))
            self.state = "RUNNING"
            self._publish_started = time.monotonic()
            task = asyncio.ensure_future(self.rp.apublish(self.router, speed=self.speed,
                                                          close=True))  # fmt: skip
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                self.rp.stop()  # publish ends after its current record
            stopped.cancel()
            stats = await task
            self.state = "STOPPED" if stop.is_set() else "FINISHED"
            return stats
        finally:
            server.close()
            self._restore_signals(loop, main)

    @staticmethod
    def _restore_signals(loop: asyncio.AbstractEventLoop, main: bool) -> None:
        """Hold signals back again (cleaning up must not be cut short), then drop the
        loop's handlers."""
        if main:
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
            for sig in _SIGNALS:
                loop.remove_signal_handler(sig)

    async def _wait_for_consumers(self, stop: asyncio.Event) -> bool:
        """Until every ring has ``wait_consumers`` live consumers (True), or a stop."""
        if not self.wait_consumers:
            return not stop.is_set()
        self.state = "WAITING"
        deadline = time.monotonic() + self.wait_timeout
        while True:
            short = {name: n for name, pub in self.router.rings.items()
                     if (n := sum(c["alive"] for c in pub.consumers())) < self.wait_consumers}  # fmt: skip
            if not short:
                return True
            if time.monotonic() > deadline:
                name, n = next(iter(short.items()))
                raise TimeoutError(f"--wait-consumers {self.wait_consumers}: {n} attached to "
                                   f"ring {name!r} within {self.wait_timeout:g}s")  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.01)
            if stop.is_set():
                return False

    # ------------------------------------------------------------------ control
    async def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, **self.status()}
        if cmd == "rings":
            return {"ok": True, "rings": list(self.router.rings)}
        if cmd == "shutdown":
            if self._stop is not None:
                self._stop.set()
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}; expected status, rings or shutdown"}

    def status(self) -> dict[str, Any]:
        """What ``ttxt-mp status`` shows: the replay as the engine's one process."""
        from ttxt_mp.shm import ring_stats

        now = time.monotonic()
        events = self.router.events
        busy = now - self._publish_started if self._publish_started else 0.0
        paths = [f.path for f in self.rp.files]
        speed = "as fast as possible" if self.speed is None else f"speed {self.speed:g}"
        child = {
            "name": "replay", "role": "replay", "state": self.state, "pid": os.getpid(),
            "uptime": now - self.started, "restarts": 0, "last_exit": None,
            "last_exit_reason": "", "events": events,
            "events_per_s": events / busy if busy > 0 else 0.0, "reconnects": 0,
            "gaps": self.router.gaps, "lost": 0,
            "message": f"{len(paths)} files, {speed}",
        }  # fmt: skip
        rings = []
        for name in self.router.rings:
            try:
                rings.append(ring_stats(name))
            except Exception as e:
                rings.append({"name": name, "policy": "?", "capacity": 0, "published": 0,
                              "fill": 0.0, "consumers": [], "error": str(e)})  # fmt: skip
        return {"engine": self.engine, "pid": os.getpid(), "uptime": now - self.started,
                "children": [child], "rings": rings}  # fmt: skip


@contextlib.contextmanager
def _held_signals(main: bool) -> Iterator[None]:
    """SIGINT/SIGTERM stay pending (not lost) inside, except where the event loop
    handles them (:meth:`ReplayEngine._serve`); a pending one is delivered on the way
    out, once everything is cleaned up."""
    if not main:
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

