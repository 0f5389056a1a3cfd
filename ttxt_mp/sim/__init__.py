"""Exchange simulator: every installed venue that has a simulator adapter (its ``VENUE.sim``, a
:class:`~ttxt_mp.sim.venue.VenueBase` in the venue's package, written from the venue's public
documentation), public market data and trading over loopback, with synthetic markets and fault
knobs."""

from ttxt_mp.sim.faults import FaultSpec
from ttxt_mp.sim.simulator import Simulator, SimUrls, TrueBook, VenueUrls
from ttxt_mp.sim.specs import Rates, SymbolSpec, VenueTimings

__all__ = ["FaultSpec", "Rates", "SimUrls", "Simulator", "SymbolSpec", "TrueBook",
           "VenueTimings", "VenueUrls"]
