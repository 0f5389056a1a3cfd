"""The engine's bridge child: ``python -m ttxt_mp.bus.bridge --engine E --config P --bridge I``.

Started and restarted by the supervisor for each ``[[bridges]]`` entry. It publishes every
``<engine>-<connector>-<stream>`` ring of the configured streams (``market``; ``private``
on request) to the Redis stream ``ttxt:<engine>:ring:<connector>-<stream>``
(:mod:`ttxt_mp.bus.format`), keeps each ring's state hash current for late joiners and
writes its status into the meta hash. Two sides (docs/BUS.md):

- a thread reads the rings as an ordinary consumer into a bounded buffer
  (:mod:`ttxt_mp.bus.tap`); it never waits for Redis, so connectors are never slowed,
  and counts exactly what it must drop when Redis is slow or down;
- the main thread's event loop writes the buffer with redis-py's asyncio client
  (:mod:`ttxt_mp.bus.writer`), pipelined, and reconnects with backoff.

An unreachable Redis is reported DOWN (the engine keeps running; the bridge retries); a
wrong password is permanent: the bridge exits with one line naming the URL and the
supervisor does not restart it. Each second it writes a ChildReport line for ``status``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading
import time
from typing import Any

from ttxt_mp.bus.tap import Buffer, RingTap
from ttxt_mp.bus.url import BusUrlError, password_from_env, redact_url
from ttxt_mp.bus.writer import PermanentBusError, StreamWriter
from ttxt_mp.config import BridgeConfig
from ttxt_mp.engine.protocol import ChildReport, Reporter
from ttxt_mp.engine.ring_scan import RingScan

__all__ = ["Bridge", "main"]

log = logging.getLogger("ttxt_mp.bus.bridge")
RESCAN_S = 1.0
IDLE_MIN_S, IDLE_MAX_S = 0.0005, 0.005
DRAIN_S = 1.0


class Bridge:
    """Publishes engine ``engine``'s rings per ``cfg`` (one :class:`BridgeConfig`)."""

    def __init__(self, engine: str, cfg: BridgeConfig, name: str = "redis0",
                 password: str | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.cfg = cfg
        self.name = name
        self.buffer = Buffer(int(cfg.max_buffer_mb * 1e6))
        self.taps: dict[str, RingTap] = {}
        self.stop_event = threading.Event()
        self.scanner = RingScan(engine, tuple(cfg.rings), f"bridge {name}: not publishing", log)
        self.writer = StreamWriter(
            cfg.url, password, engine, self.buffer,
            lambda: {k: t.created_ns for k, t in list(self.taps.items())},
            maxlen=cfg.maxlen, connect_timeout=cfg.connect_timeout,
            socket_timeout=cfg.socket_timeout, tls_ca_file=cfg.tls_ca_file,
            on_connect=self._reconnected,
        )  # fmt: skip
        self.reader: threading.Thread | None = None
        self.reader_error: BaseException | None = None

    # ------------------------------------------------------------------ rings
    def scan(self) -> None:
        """Attach to rings not tapped yet (all exist once the engine is up; new ones are
        picked up within a second)."""
        from ttxt_mp.join import StateRequest
        from ttxt_mp.shm import ShmQueue
        from ttxt_mp.storage.engine_recorder import ring_created_ns
        from ttxt_mp.trust import UntrustedObject

        found, instance = self.scanner.new(self.taps, key=lambda r: f"{r.connector}-{r.stream}")
        for r in found:
            key = f"{r.connector}-{r.stream}"
            try:
                consumer = ShmQueue.attach(r.name, start="latest", instance_id=instance)
            except UntrustedObject as e:
                self.scanner.refuse(r.name, str(e))
                continue
            except Exception as e:  # being created: next scan
                log.debug("cannot tap ring %s yet: %s", r.name, e)
                continue
            try:
                created = ring_created_ns(r.name)
            except OSError as e:
                consumer.close()
                log.debug("cannot tap ring %s yet: %s", r.name, e)
                continue
            request = StateRequest(r.name, instance_id=instance)
            self.taps[key] = RingTap(key, consumer, self.buffer, request=request, created_ns=created,
                                     batch_events=self.cfg.batch_events,
                                     state_interval=self.cfg.state_interval)  # fmt: skip
            log.info("bridge %s: publishing ring %s", self.name, r.name)

    def _reconnected(self) -> None:
        for tap in list(self.taps.values()):
            tap.ask_state()

    def read_loop(self) -> None:
        """The reading thread: every ring, as fast as events come, never waiting on Redis."""
        idle = IDLE_MIN_S
        next_scan = 0.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_scan:
                    self.scan()
                    next_scan = now + RESCAN_S
                n = 0
                for tap in list(self.taps.values()):
                    n += tap.poll()
                if n:
                    idle = IDLE_MIN_S
                else:
                    self.stop_event.wait(idle)
                    idle = min(idle * 2, IDLE_MAX_S)
        except BaseException as e:
            self.reader_error = e
            log.exception("bridge %s: ring reader failed", self.name)

    # ------------------------------------------------------------------ status
    def report(self) -> ChildReport:
        st = self.writer.status
        taps = list(self.taps.values())
        st.dropped = sum(t.lost for t in taps) + self.writer.restart_lost
        st.gaps = sum(1 for t in taps if t.lost) + (1 if self.writer.restart_lost else 0)
        st.lag_entries = self.buffer.events + sum(t.lag for t in taps)
        oldest = self.buffer.oldest_ns()
        st.lag_ms = 0.0 if oldest is None else (time.monotonic_ns() - oldest) / 1e6
        msg = (f"{redact_url(self.cfg.url)} {len(taps)} rings, lag {st.lag_entries:,} events "
               f"/ {st.lag_ms:,.0f} ms, dropped {st.dropped:,}")  # fmt: skip
        if st.last_error:
            msg += f"; {st.last_error}"
        detail: dict[str, Any] = {
            "url": redact_url(self.cfg.url), "rings": sorted(self.taps), "state": st.state,
            "published": st.published, "dropped": st.dropped, "lag_entries": st.lag_entries,
            "lag_ms": round(st.lag_ms, 1), "states": st.states, "last_error": st.last_error,
        }  # fmt: skip
        return ChildReport(state=st.state, events=st.published, gaps=st.gaps, lost=st.dropped,
                           message=msg, detail=detail)  # fmt: skip

    # ------------------------------------------------------------------ life-cycle
    async def run(self, reporter: Reporter | None = None) -> int:
        """Until ``stop_event``; 0 on a stop, raises PermanentBusError on a wrong password."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        wake = self.writer.wake
        self.buffer.on_ready = lambda: loop.call_soon_threadsafe(wake.set)
        self.reader = threading.Thread(target=self.read_loop, name="bridge-read", daemon=True)
        self.reader.start()

        def report() -> None:
            if self.reader_error is not None:
                raise RuntimeError(f"ring reader failed: {self.reader_error}")
            if reporter is not None:
                reporter.maybe_report(self.report())

        async def watch() -> None:
            while not self.stop_event.is_set():
                await asyncio.sleep(0.05)
            stop.set()

        watcher = asyncio.create_task(watch())
        writing = asyncio.create_task(self.writer.run(stop, report))
        try:
            await asyncio.wait({writing, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not writing.done():  # stopping: a write stuck on a paused Redis is abandoned
                try:
                    await asyncio.wait_for(asyncio.shield(writing), DRAIN_S)
                except TimeoutError:
                    writing.cancel()
                    await asyncio.gather(writing, return_exceptions=True)
                    await self.writer.disconnect()
            if writing.done() and not writing.cancelled():
                writing.result()  # a PermanentBusError or a reader failure
            await asyncio.wait_for(self._drain(), DRAIN_S + 0.5)
        except TimeoutError:
            pass
        finally:
            self.stop_event.set()
            watcher.cancel()
            writing.cancel()
            self.reader.join(5)
            await self.writer.disconnect()
            for tap in self.taps.values():
                tap.close()
        if reporter is not None:
            self.writer.status.state = "STOPPED"
            reporter.maybe_report(self.report(), force=True)
        return 0

    async def _drain(self) -> None:
        """On stop: write what the buffer holds while Redis answers, up to DRAIN_S."""
        deadline = time.monotonic() + DRAIN_S
        while len(self.buffer) and self.writer.client is not None and time.monotonic() < deadline:
            if not await self.writer.step():
                break


def main(argv: list[str] | None = None) -> int:
    from ttxt_mp.config import ConfigError
    from ttxt_mp.engine.protocol import launch_config, report_permanent
    from ttxt_mp.logs import setup_logging

    p = argparse.ArgumentParser(prog="python -m ttxt_mp.bus.bridge",
                                description="the engine's bus bridge (started by the supervisor)")
    p.add_argument("--engine", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--bridge", type=int, required=True, help="index in [[bridges]]")
    ns = p.parse_args(argv)
    setup_logging()
    reporter = Reporter()
    try:
        cfg = launch_config(ns.config)
        bcfg = cfg.bridges[ns.bridge]
    except (ConfigError, IndexError) as e:
        return report_permanent(f"bridge: {e}", reporter)
    name = bcfg.id(ns.bridge)
    try:
        password = password_from_env(bcfg.password_env)
    except BusUrlError as e:
        return report_permanent(f"bridge {name}: {e}", reporter)
    bridge = Bridge(ns.engine, bcfg, name, password)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: bridge.stop_event.set())
    log.info("bridge %s of engine %r: publishing %s rings to %s", name, ns.engine,
             "/".join(bcfg.rings), redact_url(bcfg.url))  # fmt: skip
    from ttxt_mp.engine.loop import run

    try:
        return run(bridge.run(reporter))
    except PermanentBusError as e:
        hint = f" (password from ${bcfg.password_env})" if bcfg.password_env else ""
        return report_permanent(f"bridge {name}: {e}{hint}", reporter)


if __name__ == "__main__":
    raise SystemExit(main())
