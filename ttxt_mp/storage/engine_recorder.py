"""The engine's recorder child: ``python -m ttxt_mp.storage.recorder --engine NAME --config PATH``.

The supervisor starts it when the config says ``[recorder] enabled = true`` and restarts
it if it dies. It records every ``<engine>-<connector>-market`` ring (found with
:func:`ttxt_mp.engine.naming.discover`, re-scanned every second, so a ring that appears
later is picked up) with one :class:`MarketDataRecorder` thread per ring, into
``[recorder] dir``. A relative ``dir`` is taken relative to the config file's directory
(not the launch directory), so the same config always records to the same place.

Connector restarts need nothing: the ring, its sequence numbers and this consumer's
cursor outlive the connector process (the supervisor keeps the ring), so reading simply
continues. SIGTERM/SIGINT: it reads what the rings already hold (up to 0.5 s), writes and
fsyncs every buffered event, then exits 0.

Restarts of the recorder itself: for each ring it keeps ``<dir>/.recorder-<ring>.state``
(the ring's creation time and the *written position*: every ring event before it is in the
files). A recorder that finds the state of the same ring instance attaches at the newest
event and records an explicit ``GapNotice`` in the exchange file and every instrument file
of that connector, with ``lost`` = events the ring published from the written position to
the new start. It is an upper bound: it covers the dead recorder's unfinished chunks
(lost with it) and the time nobody recorded; nothing is duplicated. A ring seen for the
first time is read from its oldest event; if it had already wrapped, that loss is
recorded as a gap too.

Each second it writes one :class:`~ttxt_mp.engine.protocol.ChildReport` line to stdout
(events recorded, gaps) for ``ttxt-mp status``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from ttxt_mp.engine.protocol import ChildReport, Reporter
from ttxt_mp.engine.ring_scan import RingScan
from ttxt_mp.storage.recorder import MarketDataRecorder, RecorderStats
from ttxt_mp.storage.writer import DEFAULT_FILE_MODE, dir_mode, open_private

log = logging.getLogger(__name__)

STATE_PREFIX = ".recorder-"
DRAIN_S = 0.5  # on SIGTERM, read what the rings already hold (the supervisor allows 3 s)
STATE_SUFFIX = ".state"


class RingState(msgspec.Struct):
    """What a recorder leaves behind about one ring, for the recorder that follows it."""

    ring: str
    created_ns: int
    written_position: int
    pid: int = 0
    updated_ns: int = 0


def recording_dir(directory: str, config_path: str | os.PathLike[str]) -> Path:
    """``[recorder] dir``, relative paths taken from the config file's directory."""
    d = Path(directory).expanduser()
    return d if d.is_absolute() else Path(config_path).resolve().parent / d


def state_path(directory: str | os.PathLike[str], ring: str) -> Path:
    return Path(directory) / f"{STATE_PREFIX}{ring}{STATE_SUFFIX}"


def load_state(path: Path) -> RingState | None:
    """The state a previous recorder left, if it is ours (no symlink, our uid)."""
    try:
        fd = open_private(str(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as e:  # a planted link or another user's file: not trusted, not used
        log.warning("ignoring recorder state %s: %s", path, e)
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            return msgspec.json.decode(f.read(), type=RingState)
    except (OSError, msgspec.DecodeError) as e:
        log.warning("ignoring unreadable recorder state %s: %s", path, e)
        return None


def save_state(path: Path, state: RingState, file_mode: int = DEFAULT_FILE_MODE) -> None:
    """Atomically (write + rename): a crash leaves the old state or the new one. The
    temporary file is created ``file_mode`` (0600) and never through a symlink."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crashed recorder of this pid (or a planted link)
    fd = open_private(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.encode(state))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def ring_created_ns(ring: str) -> int:
    """The ring's creation time from its header: tells one instance of a name from the next."""
    from ttxt_mp.shm import layout
    from ttxt_mp.shm.objects import shm_path
    from ttxt_mp.trust import open_checked

    fd = open_checked(shm_path(ring), os.O_RDONLY, what="ring")  # ours, never a symlink
    try:
        return int.from_bytes(os.pread(fd, 8, layout.OFF["created_ns"]), "little")
    finally:
        os.close(fd)


class RingRecording:
    """One ring: its consumer, its recorder thread and its state file."""

    def __init__(self, ring: str, directory: Path, options: dict[str, Any],
                 instance_id: int | None = None) -> None:  # fmt: skip
        from ttxt_mp.shm import ShmQueue

        self.ring = ring
        self._saved: int | None = None
        self.created_ns = ring_created_ns(ring)
        self.state_file = state_path(directory, ring)
        prev = load_state(self.state_file)
        resume = prev is not None and prev.created_ns == self.created_ns
        self.consumer = ShmQueue.attach(ring, start="latest" if resume else "oldest",
                                        instance_id=instance_id)  # fmt: skip
        try:
            meta = self.consumer.metadata or {}
            self.exchange = str(meta.get("exchange", ""))
            self.symbols = [str(s) for s in meta.get("symbols", [])]
            self.recorder = MarketDataRecorder(self.consumer, directory, source=ring, **options)
            if self.recorder.position is None:
                raise TypeError(f"{ring}: {type(self.consumer).__name__} has no batch reads")
            start = self.recorder.position()  # ring event number of the first one to read
            expected = prev.written_position if resume and prev is not None else 0
            self.restart_gap = max(0, start - expected)
            if self.restart_gap:
                why = ("events the ring published while no recorder wrote them (restart)"
                       if resume else "events the ring overwrote before the recorder attached")
                self.recorder.mark_gap(self.restart_gap, self.exchange, self.symbols,
                                       f"{ring}: recording a gap of {self.restart_gap} {why}")
            # Until the gap notice itself is written, a crash must leave the old position.
            self.recorder.stats.written_position = min(start, expected)
            self.save()
        except BaseException:
            self.consumer.close()
            raise
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"rec-{ring}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.recorder.run()
        except BaseException as e:  # reported by the main loop; buffers were flushed
            self.error = e

    @property
    def stats(self) -> RecorderStats:
        return self.recorder.stats

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def save(self) -> None:
        """Write the state file if the written position moved since the last save."""
        if self.stats.written_position == self._saved:
            return
        self._saved = self.stats.written_position
        state = RingState(self.ring, self.created_ns, self.stats.written_position,
                          os.getpid(), time.time_ns())  # fmt: skip
        try:
            save_state(self.state_file, state, self.recorder.file_mode)
        except OSError as e:
            log.warning("cannot save recorder state %s: %s", self.state_file, e)

    def stop(self) -> None:
        """Flush and close; the consumer is closed only once the thread is done with it."""
        self.recorder.stop()
        r = self.recorder
        self.thread.join(r.poll_interval + r.drain_timeout + r.close_timeout + 1.0)
        if self.alive:
            log.error("recording of ring %s did not finish flushing", self.ring)
            return
        if self.error is not None:
            log.error("recording of ring %s ended with an error: %s", self.ring, self.error)
        self.save()
        self.consumer.close()


class EngineRecorder:
    """Records every market ring of ``engine`` until ``stop`` is set."""

    def __init__(self, engine: str, directory: str | os.PathLike[str], *,
                 rescan_interval: float = 1.0, **options: Any) -> None:  # fmt: skip
        self.engine = engine
        self.directory = Path(directory)
        mode = dir_mode(options.get("file_mode", DEFAULT_FILE_MODE))
        self.directory.mkdir(mode=mode, parents=True, exist_ok=True)
        self.options = options
        self.rescan_interval = rescan_interval
        self.rings: dict[str, RingRecording] = {}
        self.finished: list[RingRecording] = []
        self._ended: set[tuple[str, int]] = set()
        self.scanner = RingScan(engine, ("market",), "not recording", log)

    def scan(self) -> None:
        """Attach to market rings not being recorded yet (a ring that ended, e.g. closed by
        its producer, is not attached again unless it is a new instance of the name)."""
        from ttxt_mp.trust import UntrustedObject

        rings, instance = self.scanner.new(self.rings)
        for r in rings:
            try:
                if (r.name, ring_created_ns(r.name)) in self._ended:
                    continue
                self.rings[r.name] = RingRecording(r.name, self.directory, self.options,
                                                   instance)  # fmt: skip
                log.info("recording ring %s into %s", r.name, self.directory)
            except UntrustedObject as e:  # foreign or of another instance: once per ring
                self.scanner.refuse(r.name, str(e))
            except Exception as e:  # gone meanwhile, or being created: next scan
                log.warning("cannot record ring %s yet: %s", r.name, e)

    def check(self) -> None:
        """Save each ring's written position; retire rings whose recorder ended."""
        for name, rr in list(self.rings.items()):
            rr.save()
            if not rr.alive:
                rr.stop()
                self._ended.add((name, rr.created_ns))
                self.finished.append(self.rings.pop(name))

    def report(self, state: str = "UP") -> ChildReport:
        every = [*self.rings.values(), *self.finished]
        total = sum((rr.stats for rr in every), start=_Totals())
        errors = [rr.stats.last_error for rr in every if rr.stats.pending_chunks]
        if errors and state == "UP":
            state = "DEGRADED"
        # events lost go in ``lost`` (the supervisor adds them up across restarts)
        msg = f"{len(self.rings)} rings, {total.files} files, {total.bytes / 1e6:.1f} MB"
        if errors:
            msg += f"; write errors: {errors[0]}"
        return ChildReport(state=state, events=total.events, gaps=total.gaps, lost=total.lost,
                           message=msg)  # fmt: skip

    def run(self, stop: threading.Event, reporter: Reporter | None = None,
            tick: float = 0.2) -> int:  # fmt: skip
        """Record until ``stop``; returns 0, or 1 if events could not be written."""
        next_scan = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_scan:
                    self.scan()
                    next_scan = now + self.rescan_interval
                self.check()
                if reporter is not None:
                    reporter.maybe_report(self.report())
                stop.wait(tick)
        finally:
            for rr in self.rings.values():  # all at once: each drains and flushes
                rr.recorder.stop(timeout=0)
            for rr in self.rings.values():
                rr.stop()
            self.finished.extend(self.rings.values())
            self.rings.clear()
            if reporter is not None:
                reporter.maybe_report(self.report("STOPPED"), force=True)
        unwritten = any(rr.stats.pending_chunks for rr in self.finished)
        return 1 if unwritten else 0


def unusable_dir(directory: Path) -> str:
    """Why ``directory`` cannot hold recordings ("" if it can): created if missing, it must
    be a directory this process can create files in."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "it exists and is not a directory"
    except OSError as e:
        return f"cannot create it: {e.strerror or e}"
    if not directory.is_dir():
        return "it is not a directory"
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        return f"cannot write files in it: {e.strerror or e}"
    return ""


class _Totals(msgspec.Struct):
    events: int = 0
    gaps: int = 0
    lost: int = 0
    files: int = 0
    bytes: int = 0

    def __add__(self, s: RecorderStats) -> _Totals:
        return _Totals(self.events + s.events, self.gaps + s.gaps, self.lost + s.lost,
                       self.files + s.files, self.bytes + s.bytes)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from ttxt_mp.config import ConfigError
    from ttxt_mp.engine.protocol import launch_config, report_permanent
    from ttxt_mp.logs import setup_logging

    p = argparse.ArgumentParser(prog="python -m ttxt_mp.storage.recorder",
                                description="the engine's recorder (started by the supervisor)")
    p.add_argument("--engine", required=True, help="engine name (records its market rings)")
    p.add_argument("--config", required=True, help="the engine's config file ([recorder])")
    ns = p.parse_args(argv)
    setup_logging()
    reporter = Reporter()
    try:
        cfg = launch_config(ns.config)
    except ConfigError as e:
        return report_permanent(f"recorder: {e}", reporter)
    rc = cfg.recorder
    directory = recording_dir(rc.dir, ns.config)
    unusable = unusable_dir(directory)
    if unusable:  # the same on every restart: stop for good with one line
        return report_permanent(f"recorder: cannot record into {directory}: {unusable}", reporter)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rec = EngineRecorder(ns.engine, directory, chunk_events=rc.chunk_events,
                         fsync_interval=rc.fsync_interval, rotate_daily=rc.rotate_daily,
                         drain_timeout=DRAIN_S, file_mode=rc.mode(),
                         max_buffer_bytes=int(rc.max_buffer_mb * 1e6),
                         snapshot_interval=rc.snapshot_interval)  # fmt: skip
    log.info("recorder of engine %r: recording into %s", ns.engine, directory)
    return rec.run(stop, reporter)
