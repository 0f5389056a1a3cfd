"""``ttxt-mp``: launch, demo, status, tail, record, replay, inspect, sim.

Each subcommand imports its machinery lazily so ``ttxt-mp status`` starts fast.
User mistakes end with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence


def _launch(args: argparse.Namespace) -> int:
    from ttxt_mp.config import load_config
    from ttxt_mp.engine.supervisor import launch

    cfg = load_config(args.config)
    _logging(cfg.engine.log_level if args.log_level is None else args.log_level)
    return launch(cfg, args.config)


def _demo(args: argparse.Namespace) -> int:
    from ttxt_mp.engine.demo import run_demo

    _logging(args.log_level or "WARNING")
    return run_demo(duration=args.duration, engine=args.engine, symbols=args.symbols)


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ttxt_mp.engine import control
    from ttxt_mp.engine.status import render_status

    st = control.request(args.engine, "status")
    if args.json:
        import msgspec

        print(msgspec.json.encode(st).decode())
    else:
        Console(width=None if sys.stdout.isatty() else 200).print(render_status(st))
    return 0


def _tail(args: argparse.Namespace) -> int:
    from ttxt_mp.client import tail

    return tail(args.engine, symbols=args.symbol, kinds=args.kind, count=args.count,
                timeout=args.timeout)  # fmt: skip


def _delegate(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args) or 0

    return run


def _logging(level: str) -> None:
    from ttxt_mp.logs import setup_logging

    setup_logging(level)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ttxt-mp", description=__doc__.splitlines()[0])
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("launch", help="start an engine from a TOML config")
    s.add_argument("config")
    s.set_defaults(func=_launch)

    s = sub.add_parser("demo", help="offline demo: simulator + Binance and Bybit connectors")
    s.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    s.add_argument("--engine", default="demo")
    s.add_argument("--symbols", nargs="+", default=["BTC/USDT", "ETH/USDT"])
    s.set_defaults(func=_demo)

    s = sub.add_parser("status", help="state of a running engine")
    s.add_argument("engine", nargs="?", default="demo")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_status)

    s = sub.add_parser("tail", help="print an engine's events as they arrive")
    s.add_argument("engine", nargs="?", default="demo")
    s.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    s.add_argument("--kind", action="append", help="only this event kind, e.g. Orderbook")
    s.add_argument("--count", type=int, default=None, help="stop after N events")
    s.add_argument("--timeout", type=float, default=None, help="stop after N idle seconds")
    s.set_defaults(func=_tail)

    for name, module, helptext in (
        ("record", "ttxt_mp.storage.recorder", "record an engine's market data to files"),
        ("replay", "ttxt_mp.storage.replayer", "replay recorded files as an attachable feed"),
        ("inspect", "ttxt_mp.storage.inspect", "summarize recorded files"),
    ):
        s = sub.add_parser(name, help=helptext)
        mod = __import__(module, fromlist=["x"])
        getattr(mod, f"add_{name}_arguments")(s)
        s.set_defaults(func=_delegate(module, f"{name}_main"))

    sub.add_parser("sim", help="run the exchange simulator alone (ttxt-mp sim --help)",
                   add_help=False)  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ttxt_mp.config import ConfigError
    from ttxt_mp.engine.control import EngineNotRunning
    from ttxt_mp.engine.supervisor import EngineAlreadyRunning

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:  # the simulator owns its options
        from ttxt_mp.sim.__main__ import main as sim_main

        sim_main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    if args.log_level:
        _logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, EngineNotRunning, EngineAlreadyRunning) as e:
        print(f"ttxt-mp: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        logging.shutdown()


if __name__ == "__main__":
    sys.exit(main())
