"""Errors of the shared-memory transport; each message names the ring and the cause."""

from __future__ import annotations

from ttxt_mp.trust import UntrustedObject


class RingError(Exception):
    """Base class of every shared-memory ring error."""


class RingNotFound(RingError, FileNotFoundError):
    """No ring of that name exists (no producer created it, or it was unlinked)."""


class RingExists(RingError, FileExistsError):
    """``create`` found a ring of that name whose producer is still alive."""


class RingLayoutError(RingError):
    """The ring was written by another layout (magic, layout version or event layouts)."""


class RingPermissionError(RingError, UntrustedObject):
    """The ring (or one of its FIFOs) belongs to another user, is open to others or is a
    symbolic link: it is neither used nor removed (objects are created 0600)."""


class RingForeign(RingPermissionError):
    """The ring was created by another engine instance than the one attached to (its
    header's ``instance_id`` differs): e.g. a same-named engine of another runtime dir."""


class RingTooLarge(RingError, ValueError):
    """capacity x slot_size exceeds the ring size limit or the free shared memory;
    nothing was created."""


class EventTooLarge(RingError, ValueError):
    """An event needs more slots than the whole ring (or than 65535 fragments)."""


class ProducerDied(RingError):
    """The producer process died without closing the ring; everything it published was
    delivered."""
