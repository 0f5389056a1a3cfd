"""The connection's ``sequence_num``: one counter for every message of a WebSocket connection.

Advanced Trade WebSocket Overview ("Sequence Numbers"): messages carry ``sequence_num``,
one more than the previous message on the connection; a skipped number means messages
were lost, a smaller one is an old or out-of-order message that can be ignored. Which
product a lost message was about cannot be known, so the connector resyncs every book of
the connection (and nothing else: the other channels keep running).
"""

from __future__ import annotations

__all__ = ["ConnectionSequence"]


class ConnectionSequence:
    """Checks ``sequence_num`` of each message of one connection; :meth:`reset` per connection."""

    __slots__ = ("expected", "gaps", "lost", "stale", "last_gap")

    def __init__(self) -> None:
        self.expected = -1  # the next sequence_num; -1: none seen on this connection yet
        self.gaps = 0
        self.lost = 0
        self.stale = 0
        self.last_gap = ""

    def reset(self) -> None:
        """A new connection: its numbers start over."""
        self.expected = -1

    def see(self, seq: int) -> bool:
        """Record ``seq``; False for an old or repeated message (to be ignored)."""
        exp = self.expected
        if seq != exp and exp >= 0:
            if seq < exp:
                self.stale += 1
                return False
            self.gaps += 1
            self.lost += seq - exp
            self.last_gap = (f"sequence_num {seq} after {exp - 1}: "
                             f"{seq - exp} message(s) lost on the connection")  # fmt: skip
        self.expected = seq + 1
        return True
