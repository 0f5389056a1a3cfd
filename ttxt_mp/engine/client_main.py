"""Run one ``[[clients]]`` entry as its own process: ``python -m ttxt_mp.engine.client_main``.

    python -m ttxt_mp.engine.client_main --engine NAME --config PATH --client INDEX

Loads ``target`` of entry ``INDEX`` (``package.module:ClassName``, a
:class:`~ttxt_mp.client.BaseClient` subclass), builds it with the entry's ``args``, attaches
to the engine and runs it until SIGTERM, the end of the feed, or its ``stop()``.

Why a module of its own: run as ``python -m ttxt_mp.client``, that file would be executed a
second time as ``__main__``, with a ``BaseClient`` class of its own, and no user client
(which subclasses ``ttxt_mp.client.BaseClient``) would ever pass the subclass check. Here
everything is imported from ``ttxt_mp.client``.

Output: stdout is the supervisor's pipe for :class:`~ttxt_mp.engine.protocol.ChildReport`
lines, so it is kept for them alone (on a private descriptor); whatever the client prints
goes to stderr, i.e. the engine's log (the terminal or file of ``ttxt-mp launch``).

Exit codes: 0 the client finished (the feed closed or it stopped itself; not restarted);
1 (the engine's rings not found, in one line) or a signal: a crash, restarted with backoff;
2 a usage mistake; 78 (:data:`~ttxt_mp.engine.protocol.EXIT_PERMANENT`) it can never run
with this config (the target cannot be imported, is not a BaseClient subclass, or refuses
its args): one line on stderr, a final FAILED report, and the supervisor marks it FAILED
without restarting it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import IO, Any

from ttxt_mp.client import BaseClient, FeedNotFound, attach, load_target
from ttxt_mp.config import ConfigError
from ttxt_mp.engine.protocol import ChildReport, Reporter, launch_config, report_permanent
from ttxt_mp.logs import setup_logging
from ttxt_mp.queues import IQueueConsumer

log = logging.getLogger("ttxt_mp.client")
PROG = "python -m ttxt_mp.engine.client_main"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG)
    p.add_argument("--engine", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--client", type=int, required=True, help="index in [[clients]]")
    return p


def reports_stream() -> IO[str]:
    """Keep stdout (the supervisor's report pipe) for reports only: return it on a private
    descriptor and point descriptor 1 and ``sys.stdout`` at stderr, so a client's prints
    (and anything written to fd 1) land in the engine's log, never in the report pipe."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")  # dup: not inherited
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return out


class ReportingFeed(IQueueConsumer):
    """``feed`` as the client reads it, writing an UP report with the client's event count
    at most every report interval (the :class:`Reporter` rate-limits)."""

    def __init__(self, feed: IQueueConsumer, client: BaseClient, reporter: Reporter) -> None:
        self.feed, self.client, self.reporter = feed, client, reporter

    def report(self, force: bool = False) -> None:
        self.reporter.maybe_report(ChildReport(state="UP", events=self.client.events), force)

    def get_nowait(self) -> Any:
        try:
            return self.feed.get_nowait()
        finally:
            self.report()

    def get(self, timeout: float | None = None) -> Any:
        try:
            return self.feed.get(timeout=timeout)
        finally:
            self.report()

    async def aget(self) -> Any:
        try:
            return await self.feed.aget()
        finally:
            self.report()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of a client process started by the supervisor (``[[clients]]`` in config)."""
    ns = build_parser().parse_args(argv)  # argparse exits 2 on its own errors
    reporter = Reporter(reports_stream())
    setup_logging()
    # What cannot work with this config ends the process for good (the supervisor does not
    # restart it): one line, a final FAILED report, exit code 78.
    try:
        cfg = launch_config(ns.config)
        if not 0 <= ns.client < len(cfg.clients):
            raise ConfigError(f"{ns.config}: no client {ns.client}; it defines {len(cfg.clients)}")
        spec = cfg.clients[ns.client]
        client = load_target(spec.target)(**spec.args)
    except (ConfigError, ImportError, TypeError) as e:
        return report_permanent(f"client: {e}", reporter)
    signal.signal(signal.SIGTERM, lambda *_: client.stop())
    try:
        feed = attach(ns.engine, wait=10.0)
    except FeedNotFound as e:  # the engine's rings are not there (yet): worth a restart
        log.error("client: %s", e)
        return 1
    with feed:
        source = ReportingFeed(feed, client, reporter)
        source.report(force=True)
        log.info("client %s (%s) attached to engine %r", spec.name or f"client{ns.client}",
                 spec.target, ns.engine)  # fmt: skip
        client.run(source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
