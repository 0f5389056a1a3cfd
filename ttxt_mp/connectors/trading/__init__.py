"""Connector-side trading: order commands in, ``OrderAck``/``OrderUpdate``/``Wallet`` out.

A :class:`TradingSession` runs inside a connector process next to the market-data
connector. It loads the venue's instruments, signs and sends order commands (several in
flight at once; never stopping on an exception, unlike ttxt2's loop), publishes exactly
one ``OrderAck`` per command, follows the venue's private stream and re-reads open orders
and balances over REST whenever that stream (re)connects, so a client's view is never
silently stale. Venue specifics live in a :class:`TradingVenue` subclass
(each venue package's ``trading.py``).

Command path between processes
-------------------------------
- Every trading client creates its own command ring
  ``command_ring_name(engine, connector, client)`` (``/dev/shm/ttxt-<engine>-<connector>-
  cmd_<client>``, policy ``block``) and is its only producer; its metadata carries a random
  ``ring_id``. The connector process lists ``/dev/shm`` every :data:`DISCOVERY_INTERVAL_S`
  (:class:`CommandRings`) and attaches to each new command ring as its consumer (start
  ``oldest``). Several clients therefore trade through one connector at once, each
  through its own single-producer/single-consumer ring: no lock anywhere on the path.
- Acks and updates go to the connector's private ring ``ring_name(engine, connector,
  "private")`` (block policy). Clients attach to it and keep what carries their own
  client order ids (prefixed with the client's name), plus wallets/positions/statuses.
- Commands are numbered by their ``local_ts``: the client stamps each one with a strictly
  increasing nanosecond time (:mod:`ttxt_mp.trading_client` does), which is its sequence
  number within its ring. A command with ``local_ts == 0`` is refused (it could not be
  told apart from a replay after a restart).

Exactly once
------------
:class:`CommandJournal` is an append-only file per connector under the engine's runtime
directory. For every batch of commands read from a ring, a ``D`` (dispatched) record per
command (ring id, number, the command itself) is written **and fsynced before any of
them is sent**; after a command's ack is published an ``A`` record follows. At start the
journal gives, per ring, the highest dispatched number ``P`` and the dispatched commands
without ``A`` (in flight when the process died). Then:

- a command numbered ``<= P`` is never sent again (it was sent, or is being resolved);
- a command numbered ``> P`` has no ``D`` record, so no request for it ever left this
  process (the ``D`` fsync precedes the send); it is read from the ring again and sent
  once;
- a command in flight at the crash is **not** re-sent: it is resolved by querying the
  venue by client order id. A request is only valid for ``recvWindow`` after its signed
  timestamp (both venues check it), so once ``restart time + recvWindow`` has passed, what
  the venue reports is final: the ack says what really happened (accepted, or not placed /
  not canceled / not amended), with the code ``RESOLVED``.
- a request whose outcome is unknown while running (timeout, connection lost, an
  unreadable response) is resolved the same way instead of being retried.

An ack published just before a crash whose ``A`` record was not yet written is resolved
and published again after the restart; :class:`ttxt_mp.trading_client.TradingClient`
drops such a duplicate (it keeps one outstanding entry per command). Nothing is lost in
the ring meanwhile: a client never has more than ``capacity / 2`` commands without an ack,
so the slots the connector has not processed are never overwritten. One narrow window
remains, reported to the lead: the ring layer has no "attach at sequence", so a ring
read whose cursor moved but whose ``D`` record was not yet written when the process was
killed relies on the ring still serving those commands from ``oldest``.

Modules
-------
- :mod:`~ttxt_mp.connectors.trading.protocol`: the order commands, ack codes and
  reconciliation status messages the modules and clients share;
- :mod:`~ttxt_mp.connectors.trading.venue`: :class:`TradingVenue` (the venue base class),
  :class:`UnknownOutcome`, :func:`venue_class` (reads the venue registry);
- :mod:`~ttxt_mp.connectors.trading.journal`: :class:`CommandJournal`,
  :class:`PendingCommand`;
- :mod:`~ttxt_mp.connectors.trading.session`: :class:`TradingSession`;
- :mod:`~ttxt_mp.connectors.trading.command_rings`: :class:`CommandRings`,
  :data:`DISCOVERY_INTERVAL_S`;
- :mod:`~ttxt_mp.connectors.trading.runner`: :class:`TradingRunner`,
  :func:`credentials_for`, :func:`open_private_publisher`.
"""

from ttxt_mp.connectors.trading.command_rings import DISCOVERY_INTERVAL_S, CommandRings
from ttxt_mp.connectors.trading.journal import CommandJournal, PendingCommand
from ttxt_mp.connectors.trading.runner import (
    TradingRunner,
    credentials_for,
    open_private_publisher,
)
from ttxt_mp.connectors.trading.session import TradingSession
from ttxt_mp.connectors.trading.venue import (
    CredentialsRejected,
    TradingVenue,
    UnknownOutcome,
    signed_json_post,
    venue_class,
)

__all__ = [
    "CommandJournal",
    "CommandRings",
    "CredentialsRejected",
    "DISCOVERY_INTERVAL_S",
    "PendingCommand",
    "TradingRunner",
    "TradingSession",
    "TradingVenue",
    "UnknownOutcome",
    "credentials_for",
    "open_private_publisher",
    "signed_json_post",
    "venue_class",
]
