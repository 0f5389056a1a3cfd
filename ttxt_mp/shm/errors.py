"""Errors of the shared-memory transport; each message names the ring and the cause."""

from __future__ import annotations


class RingError(Exception):
    """Base class of every shared-memory ring error."""


class RingNotFound(RingError, FileNotFoundError):
    """No ring of that name exists (no producer created it, or it was unlinked)."""


class RingExists(RingError, FileExistsError):
    """``create`` found a ring of that name whose producer is still alive."""


class RingLayoutError(RingError):
    """The ring was written by another layout (magic, layout version or event layouts)."""


class RingPermissionError(RingError, PermissionError):
    """The ring belongs to another user (objects are created with mode 0600)."""


class EventTooLarge(RingError, ValueError):
    """An event needs more slots than the whole ring (or than 65535 fragments)."""


class ProducerDied(RingError):
    """The producer process died without closing the ring; everything it published was
    delivered."""
