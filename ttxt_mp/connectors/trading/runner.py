"""Process wiring: what trading needs in a connector process (credentials, journal,
private ring, session, command ring discovery, state on join), started by ``run.py``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ttxt_mp.config import ConnectorConfig, RingConfig
from ttxt_mp.connectors.state import StateServer, open_board
from ttxt_mp.connectors.trading.command_rings import CommandRings
from ttxt_mp.connectors.trading.journal import CommandJournal
from ttxt_mp.connectors.trading.session import TradingSession
from ttxt_mp.connectors.trading.venue import venue_class
from ttxt_mp.events import ConnectorState, ConnectorStatus
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.secrets import Credentials, CredentialsError, install_redaction, load_credentials
from ttxt_mp.trust import UntrustedObject

__all__ = ["TradingRunner", "credentials_for", "open_private_publisher"]

log = logging.getLogger("ttxt_mp.trading")

S = ConnectorState


def credentials_for(cfg: ConnectorConfig) -> tuple[Credentials | None, str]:
    """(credentials, "") or (None, why trading is off); the reason never holds a value."""
    ref = cfg.credentials
    if ref is None:
        return None, (f"trading off for {cfg.id}: no credentials configured (add "
                      "[connectors.credentials] with api_key_env/api_secret_env or file)")  # fmt: skip
    try:
        creds = load_credentials(api_key_env=ref.api_key_env, api_secret_env=ref.api_secret_env,
                                 passphrase_env=ref.passphrase_env, file=ref.file)  # fmt: skip
    except CredentialsError as e:
        return None, f"trading off for {cfg.id}: {e}"
    if creds is None:
        return None, f"trading off for {cfg.id}: no credentials configured"
    try:
        needs = venue_class(cfg.exchange, cfg.market).needs_passphrase
    except ValueError:
        needs = False  # no trading class: the session reports it
    if needs and creds.passphrase is None:
        return None, (f"trading off for {cfg.id}: {cfg.exchange} API keys have a passphrase; "
                      "name its environment variable in [connectors.credentials] passphrase_env "
                      "(or put passphrase in the credentials file)")  # fmt: skip
    return creds, ""


def open_private_publisher(
    engine: str, connector_id: str, ring: RingConfig | None = None
) -> tuple[IQueuePublisher, Callable[[], None]]:
    """The producer end of ``<engine>-<connector>-private`` (a ``block`` ring)."""
    from ttxt_mp.connectors.run import open_ring_publisher

    ring = ring or RingConfig(capacity=4096, policy="block")
    return open_ring_publisher(engine, connector_id, "private", ring)


class TradingRunner:
    """Everything trading needs in a connector process, started by ``run.py``.

    Without credentials it only publishes ``ConnectorStatus(DISABLED)`` (naming the
    missing variable or file) into the market ring, and market data keeps running.
    """

    def __init__(self, engine: str, cfg: ConnectorConfig, market: IQueuePublisher,
                 private_ring: RingConfig | None = None, *, fsync: bool = True,
                 trading_gid: int | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.trading_gid = trading_gid
        """``[engine] trading_group``: its members' command rings are accepted too."""
        self.cfg = cfg
        self.market = market
        self.private_ring = private_ring
        self.fsync = fsync
        self.session: TradingSession | None = None
        self._cleanup: Callable[[], None] | None = None
        self._journal: CommandJournal | None = None
        self.disabled_reason = ""
        self._stopped = False

    async def run(self) -> None:
        creds, why = credentials_for(self.cfg)
        if creds is None:
            self.disabled_reason = why
            # Not configured is a choice (market data only); configured but unusable is not.
            (log.info if self.cfg.credentials is None else log.warning)("%s", why)
            self.market.put(ConnectorStatus(exchange=self.cfg.exchange, state=S.DISABLED,
                                            message=why, local_ts=time.time_ns()), timeout=1.0)  # fmt: skip
            return
        install_redaction()
        from ttxt_mp.engine.naming import runtime_dir

        try:  # a journal we cannot trust means no exactly-once: no trading at all
            path = runtime_dir() / f"{self.engine}-{self.cfg.id}.trading-journal"
            self._journal = CommandJournal(path, fsync=self.fsync)
        except UntrustedObject as e:
            self.disabled_reason = f"trading off for {self.cfg.id}: {e}"
            log.error("%s", self.disabled_reason)
            self.market.put(ConnectorStatus(exchange=self.cfg.exchange, state=S.DISABLED,
                                            message=self.disabled_reason,
                                            local_ts=time.time_ns()), timeout=1.0)  # fmt: skip
            return
        pub, self._cleanup = open_private_publisher(self.engine, self.cfg.id, self.private_ring)
        self.session = TradingSession(self.cfg, creds, pub, journal=self._journal)
        if self._stopped:
            self.session.stop()
        rings = CommandRings(self.engine, self.cfg.id, self.session,
                             trading_gid=self.trading_gid)  # fmt: skip
        tasks = [asyncio.ensure_future(rings.run())]
        board = open_board(pub, f"{self.cfg.id}: no state on join for late trading clients")
        if board is not None:
            tasks.append(asyncio.ensure_future(StateServer(self.session, board).run()))
        try:
            await self.session.run()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if board is not None:
                board.close()
            self.close()

    def stop(self) -> None:
        self._stopped = True
        if self.session is not None:
            self.session.stop()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None
