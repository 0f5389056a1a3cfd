"""Run one connector as its own process: ``python -m ttxt_mp.connectors.run``.

    python -m ttxt_mp.connectors.run --engine NAME --config PATH --connector ID

Loads and validates the config, finds connector ``ID`` (its ``name``, or its exchange
when unnamed), opens the market ring ``ttxt-<engine>-<ID>-market`` as its producer and
streams into it on uvloop until SIGTERM/SIGINT. Every ``TTXT_STATS_INTERVAL`` seconds
(default 1) it writes one :class:`~ttxt_mp.engine.protocol.ChildReport` JSON line on
stdout, which the supervisor reads; logs go to stderr.

Exit codes: 0 stopped cleanly, 1 the connector could not run this time (e.g. the ring
cannot be opened), 2 a usage or config mistake (message on stderr), 78
(:data:`~ttxt_mp.engine.protocol.EXIT_PERMANENT`) it can never run with this config (none
of its symbols exists): one line on stderr and a final FAILED report, and the supervisor
does not restart it. Under the supervisor the config is the one parsed at launch
(:func:`~ttxt_mp.engine.protocol.launch_config`), not the file as it is now.

:func:`run_connector` is the same thing for any publisher, in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ttxt_mp.config import ConfigError, ConnectorConfig, RingConfig
from ttxt_mp.connectors.base import ConnectorBase, ConnectorError
from ttxt_mp.connectors.registry import create_connector
from ttxt_mp.engine.protocol import (
    EXIT_PERMANENT,
    ChildReport,
    Reporter,
    launch_config,
    report_permanent,
)
from ttxt_mp.queues import IQueuePublisher

__all__ = ["EXIT_PERMANENT", "UsageError", "find_connector", "main", "open_market_publisher",
           "run_connector", "serve_connector"]  # fmt: skip

log = logging.getLogger("ttxt_mp.connectors.run")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A mistake in the command line or config, worded for the user (exit code 2)."""


def find_connector(
    connectors: Sequence[ConnectorConfig], connector_id: str, source: str = ""
) -> ConnectorConfig:
    """The connector whose id (name, or exchange when unnamed) is ``connector_id``."""
    for c in connectors:
        if c.id == connector_id:
            return c
    known = ", ".join(repr(c.id) for c in connectors) or "none"
    where = f" in {source}" if source else ""
    raise UsageError(f"no connector {connector_id!r}{where}; the config defines {known}")


def report_from_stats(stats: dict[str, Any]) -> ChildReport:
    return ChildReport(
        state=stats["state"],
        events=stats["events"],
        reconnects=stats["reconnects"],
        gaps=stats["gaps"],
        message=stats["message"][:200],
    )


async def serve_connector(
    connector: ConnectorBase,
    *,
    reporter: Reporter | None = None,
    handle_signals: bool = True,
    duration: float | None = None,
    trading: Any = None,
) -> int:
    """Run ``connector`` until SIGTERM/SIGINT (or ``duration`` s); returns the exit code.

    ``trading``: an object with ``run()``/``stop()`` (a ``TradingRunner``) run alongside.
    """
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, connector.stop)
    if reporter is not None:
        connector.on_report = lambda st: reporter.maybe_report(report_from_stats(st))
        connector.report_interval = reporter.interval
    timer = loop.call_later(duration, connector.stop) if duration is not None else None
    side = _start_trading(trading)
    failure = ""
    try:
        await connector.run()
    except ConnectorError as exc:
        failure = str(exc)
    finally:
        await _stop_trading(trading, side)
        if timer is not None:
            timer.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
        if reporter is not None and not failure:
            reporter.maybe_report(report_from_stats(connector.stats()), force=True)
    if failure:  # e.g. no symbol exists: a restart would fail the same way
        if reporter is not None:
            return report_permanent(failure, reporter)
        log.error("%s", failure)
        return EXIT_PERMANENT
    return EXIT_OK


def run_connector(
    cfg: ConnectorConfig,
    publisher: IQueuePublisher,
    *,
    reporter: Reporter | None = None,
    handle_signals: bool = True,
    duration: float | None = None,
    trading: Any = None,
    **connector_kwargs: Any,
) -> int:
    """Build the connector of ``cfg`` publishing into ``publisher`` and run it on uvloop
    until SIGTERM/SIGINT (signals need the main thread) or ``duration`` seconds.

    ``reporter`` gets a ChildReport every interval; ``connector_kwargs`` go to the
    connector (``factory``, ``rng``, ...). Returns the exit code (0 clean, 78: cannot run with this config).
    """
    from ttxt_mp.engine.loop import run

    connector = create_connector(cfg, publisher, **connector_kwargs)
    return run(
        serve_connector(
            connector, reporter=reporter, handle_signals=handle_signals, duration=duration,
            trading=trading,
        )
    )


# ---------------------------------------------------------------------- trading hook
#
# The trading session (ttxt_mp.connectors.trading) runs in the same process and loop as
# the market-data connector; without credentials it only publishes a DISABLED status.


def _start_trading(trading: Any) -> asyncio.Task[Any] | None:
    return asyncio.ensure_future(trading.run()) if trading is not None else None


async def _stop_trading(trading: Any, task: asyncio.Task[Any] | None) -> None:
    if trading is None or task is None:
        return
    trading.stop()
    done, _ = await asyncio.wait({task}, timeout=5.0)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    elif task.exception() is not None:
        log.error("trading session failed: %r", task.exception())


# ---------------------------------------------------------------------- the ring
#
# Under the engine, the supervisor creates every ring and keeps it across restarts; a
# connector process adopts the producer end (ShmQueue.adopt) and releases it when it
# stops, so consumers never re-attach. Started on its own (no supervisor), the connector
# creates the ring itself and removes it on exit.


def open_market_publisher(
    engine: str, connector_id: str, ring: RingConfig | None = None
) -> tuple[IQueuePublisher, Callable[[], None]]:
    """The producer end of ring ``<engine>-<connector_id>-market`` and its cleanup."""
    return open_ring_publisher(engine, connector_id, "market", ring or RingConfig())


def open_ring_publisher(
    engine: str, connector_id: str, stream: str, ring: RingConfig
) -> tuple[IQueuePublisher, Callable[[], None]]:
    """Adopt ring ``<engine>-<connector_id>-<stream>`` from the supervisor, or create it
    when there is none; the cleanup releases (adopted) or removes (created) it."""
    from ttxt_mp.engine.naming import ring_name
    from ttxt_mp.shm import RingExists, RingNotFound, ShmQueue

    name = ring_name(engine, connector_id, stream)
    try:
        pub = ShmQueue.adopt(name)
        own = False
    except RingNotFound:
        meta = {"engine": engine, "connector": connector_id, "stream": stream}
        pub = ShmQueue.create(name, ring.capacity, ring.slot_size, ring.policy, metadata=meta)
        own = True
    except RingExists as exc:
        raise ConnectorError(f"{exc}: another connector process is running") from None

    def cleanup() -> None:
        if own:
            with contextlib.suppress(Exception):
                pub.close()
            with contextlib.suppress(Exception):
                pub.unlink()
        else:
            with contextlib.suppress(Exception):
                pub.release()

    return pub, cleanup


# ---------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ttxt_mp.connectors.run",
        description="Run one connector of an engine config as its own process.",
    )
    p.add_argument("--engine", required=True, help="engine name (names the rings)")
    p.add_argument("--config", required=True, help="path of the engine's TOML config")
    p.add_argument("--connector", required=True, help="connector id: its name, or its exchange")
    p.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: until SIGTERM/SIGINT)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse exits 2 on its own errors
    try:
        cfg = launch_config(args.config)
        if not cfg.engine.name == args.engine:
            log.debug("engine %r from the command line, %r in the config", args.engine,
                      cfg.engine.name)  # fmt: skip
        ccfg = find_connector(cfg.connectors, args.connector, cfg.source)
    except (ConfigError, UsageError) as exc:
        print(f"ttxt_mp.connectors.run: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=args.log_level or cfg.engine.log_level, stream=sys.stderr,
        format=f"%(asctime)s {ccfg.id} %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    try:
        publisher, cleanup = open_market_publisher(args.engine, ccfg.id, cfg.rings.market)
    except (ConnectorError, OSError, ValueError) as exc:
        print(f"ttxt_mp.connectors.run: error: cannot open the market ring: {exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    from ttxt_mp.connectors.trading import TradingRunner

    trading = TradingRunner(args.engine, ccfg, publisher, cfg.rings.private,
                            trading_gid=cfg.engine.trading_gid())
    try:
        return run_connector(ccfg, publisher, reporter=Reporter(), duration=args.duration,
                             trading=trading)  # fmt: skip
    finally:
        trading.close()
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
