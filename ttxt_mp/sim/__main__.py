"""`python -m ttxt_mp.sim --port 0 --seed 1 ...`: run the simulator as its own process.

Every installed venue with a simulator adapter is simulated: `--<venue> SYMBOLS` picks its
symbols ('' = off) and `--<venue>-<timing>` sets its protocol timings. Prints one JSON line
on stdout once listening:
{"pid":..,"host":"127.0.0.1","port":..,"control":"http://../_sim",
 "<venue>":{"rest":"http://../<venue>","ws":"ws://../<venue>"}, ...}
and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import sys

import msgspec

from ttxt_mp import argtypes as at
from ttxt_mp.sim.simulator import DEFAULT_SYMBOLS, Simulator
from ttxt_mp.sim.specs import Rates, VenueTimings
from ttxt_mp.sim.trading import parse_account
from ttxt_mp.sim.venue import sim_venues


def parse_args(argv: list[str] | None = None, prog: str = "python -m ttxt_mp.sim") -> argparse.Namespace:
    """Every option checked here: a bad value is one line naming it, before anything runs."""
    R = Rates()  # defaults
    adapters = sim_venues()
    p = at.OneLineParser(prog=prog, description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=at.port_or_zero, default=0, help="1..65535, 0 = any free port")
    p.add_argument("--seed", type=int, default=1)
    for vid in adapters:
        p.add_argument(f"--{vid}", default=",".join(DEFAULT_SYMBOLS), metavar="SYMBOLS",
                       help=f"{vid}: comma-separated symbols ('' = off)")  # fmt: skip
    p.add_argument("--updates-per-sec", type=at.positive(), default=R.updates_per_sec)
    p.add_argument("--trades-per-sec", type=at.non_negative(), default=R.trades_per_sec)
    p.add_argument("--levels", type=at.positive(int), default=R.levels)
    p.add_argument("--max-levels", type=at.positive(int), default=R.max_levels)
    p.add_argument("--volatility", type=at.non_negative(), default=R.volatility)
    p.add_argument("--tick-ms", type=at.positive(), default=10.0)
    p.add_argument("--paused", action="store_true", help="start with the generator paused")
    for vid, cls in adapters.items():
        for k in cls.knobs:
            if k.flag:
                p.add_argument(f"--{vid}-{k.flag}", type=k.type, default=k.default,
                               dest=f"{vid}_{k.name}", metavar="N", help=f"{vid}: {k.help}")  # fmt: skip
    p.add_argument("--account", action="append", default=[], metavar="KEY:SECRET:USDT=10000,BTC=1[:PASSPHRASE]",
                   help="an API key with its secret, opening balances and passphrase (venues "
                        "whose keys have one; repeatable; same on each venue)")
    p.add_argument("--blast-trades", type=at.non_negative(), default=0.0, metavar="N",
                   help="blast mode: N trade frames/s per subscribed (connection, symbol), "
                        "pre-encoded and written in bulk, replacing the market's trades on the "
                        "trade streams (0 = off; see ttxt_mp/sim/blast.py)")
    p.add_argument("--maker-fee", type=_fee, default="0.001",
                   help="maker fee rate of simulated trading")  # fmt: skip
    p.add_argument("--taker-fee", type=_fee, default="0.001",
                   help="taker fee rate of simulated trading")  # fmt: skip
    return p.parse_args(argv)


def _fee(text: str) -> str:
    """A fee rate 0 <= r < 1 as decimal text (kept as text: the venues echo it)."""
    from decimal import Decimal, InvalidOperation

    try:
        ok = 0 <= Decimal(text) < 1
    except InvalidOperation:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"expected a fee rate 0 <= r < 1 like 0.001, got {text!r}")
    return text


def build(ns: argparse.Namespace) -> Simulator:
    adapters = sim_venues()
    symbols = {v: [s for s in getattr(ns, v).split(",") if s] for v in adapters}
    symbols = {v: s for v, s in symbols.items() if s}
    if not symbols:
        raise ValueError(f"no symbols: give {' and/or '.join(f'--{v}' for v in adapters)}")
    rates = Rates(updates_per_sec=ns.updates_per_sec, trades_per_sec=ns.trades_per_sec,
                  levels=ns.levels, max_levels=ns.max_levels, volatility=ns.volatility)
    timings = VenueTimings(**{f"{v}_{k.name}": getattr(ns, f"{v}_{k.name}")
                              for v, cls in adapters.items() for k in cls.knobs if k.flag})
    try:
        accounts = [parse_account(a) for a in ns.account]
    except ValueError as e:
        raise ValueError(f"--account: {e}") from None
    return Simulator(symbols, seed=ns.seed, rates=rates, timings=timings, host=ns.host,
                     port=ns.port, tick_ms=ns.tick_ms, paused=ns.paused, accounts=accounts,
                     fees=(ns.maker_fee, ns.taker_fee), blast_trades=ns.blast_trades)


async def run(ns: argparse.Namespace) -> None:
    sim = build(ns)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        urls = await sim.start()
    except OSError as e:  # aiohttp words it "error while attempting to bind on address ..."
        await sim.stop()
        code = e.errno or errno.EADDRINUSE
        why = "the port is in use" if code == errno.EADDRINUSE else os.strerror(code)
        raise OSError(code, f"cannot listen on {ns.host}:{ns.port}: {why}") from None
    line = msgspec.json.encode({"pid": os.getpid(), **urls.flat()})
    sys.stdout.write(line.decode() + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None, prog: str = "ttxt-mp sim") -> None:
    ns = parse_args(argv, prog)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(ns))
    else:
        uvloop.run(run(ns))


if __name__ == "__main__":
    from ttxt_mp.cli import guarded

    sys.exit(guarded(lambda: main(prog="python -m ttxt_mp.sim") or 0))
