"""Exchange simulator: Binance Spot and Bybit v5 public market data over loopback, written from
the venues' public documentation, with synthetic markets and fault knobs."""

from ttxt_mp.sim.faults import FaultSpec
from ttxt_mp.sim.simulator import Simulator, SimUrls, TrueBook, VenueUrls
from ttxt_mp.sim.specs import Rates, SymbolSpec, VenueTimings

__all__ = ["FaultSpec", "Rates", "SimUrls", "Simulator", "SymbolSpec", "TrueBook",
           "VenueTimings", "VenueUrls"]
