"""``ttxt-mp``: launch, demo, status, tail, record, replay, inspect, backtest, sim.

Each subcommand imports its machinery lazily so ``ttxt-mp status`` starts fast.
User mistakes end with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from ttxt_mp import argtypes


def _launch(args: argparse.Namespace) -> int:
    from ttxt_mp.config import load_config
    from ttxt_mp.engine.supervisor import launch

    cfg = load_config(args.config)
    _logging(cfg.engine.log_level if args.log_level is None else args.log_level)
    return launch(cfg, args.config)


def _demo(args: argparse.Namespace) -> int:
    from ttxt_mp.engine.demo import run_demo

    _logging(args.log_level or "WARNING")
    return run_demo(duration=args.duration, engine=args.engine, symbols=args.symbols,
                    venues=args.venues)  # fmt: skip


def _status(args: argparse.Namespace) -> int:
    import msgspec
    from rich.console import Console

    from ttxt_mp.bus.remote_url import is_bus_url
    from ttxt_mp.engine import control
    from ttxt_mp.engine.status import render_status

    if is_bus_url(args.engine):  # an engine seen through its bus, from any host
        from ttxt_mp.bus.remote_status import remote_status, render_remote_status
        from ttxt_mp.bus.remote_url import refuse_password_in_argv

        refuse_password_in_argv(args.engine)
        st = remote_status(args.engine)
        if args.json:
            print(msgspec.json.encode(st).decode())
        else:
            Console(width=None if sys.stdout.isatty() else 200).print(render_remote_status(st))
        return 0
    try:
        st = control.request(args.engine, "status")
    except msgspec.DecodeError:
        raise ControlError(f"engine {args.engine!r}: the control socket closed without a "
                           "valid reply (is the supervisor shutting down? try again)") from None
    except TimeoutError:
        raise ControlError(f"engine {args.engine!r}: no reply on the control socket "
                           "within 3 s (supervisor busy or stopped)") from None
    if not isinstance(st, dict) or ("error" in st and not st.get("ok", True)):
        raise ControlError(f"engine {args.engine!r} refused the status request: "
                           f"{st.get('error') if isinstance(st, dict) else st!r}")
    if args.json:
        print(msgspec.json.encode(st).decode())
    else:
        Console(width=None if sys.stdout.isatty() else 200).print(render_status(st))
    return 0


def _tail(args: argparse.Namespace) -> int:
    from ttxt_mp.bus.remote_url import refuse_password_in_argv
    from ttxt_mp.client import tail
    from ttxt_mp.config import import_event_modules

    refuse_password_in_argv(args.engine)
    import_event_modules(args.events or [])  # custom kinds are known from here on
    kinds = [_event_kind(k) for k in args.kind] if args.kind else None
    return tail(args.engine, symbols=args.symbol, kinds=kinds, count=args.count,
                timeout=args.timeout, start=args.start)  # fmt: skip


class ControlError(ConnectionError):
    """The engine's control socket misbehaved (closed early, no reply, an error reply)."""


def _event_kind(text: str) -> str:
    """An event kind name (``Orderbook``, ``MarketTrades``, ... or a registered custom
    kind), checked once ``--events`` modules are imported."""
    from ttxt_mp import codec
    from ttxt_mp.client import KINDS

    custom = [codec.event_class(k).__name__ for k in codec.kinds(user=True)]
    try:
        return argtypes.one_of([*KINDS, *custom], "event kind")(text)
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None


def _demo_symbol(text: str) -> str:
    from ttxt_mp.sim.specs import known_symbols

    return argtypes.one_of(known_symbols(), "demo symbol")(text)


def _demo_venues(text: str) -> list[str] | None:
    """``all`` (every simulated venue market) or comma-separated simulator ids."""
    from ttxt_mp.engine.demo import demo_venues

    if text == "all":
        return None
    chosen = [v.strip() for v in text.split(",") if v.strip()]
    if not chosen:
        raise ValueError("--venues needs 'all' or comma-separated simulator ids (ttxt-mp sim "
                         "--help lists them)")  # fmt: skip
    demo_venues(chosen)  # a ValueError names the simulated venues
    return chosen


def _delegate(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args) or 0

    return run


def _logging(level: str) -> None:
    from ttxt_mp.logs import setup_logging

    setup_logging(level)


def build_parser() -> argparse.ArgumentParser:
    p = argtypes.OneLineParser(prog="ttxt-mp", description=__doc__.splitlines()[0])
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None)
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error instead of one line")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("launch", help="start an engine from a TOML config")
    s.add_argument("config")
    s.set_defaults(func=_launch)

    s = sub.add_parser("demo", help="offline demo: simulator + a connector per simulated venue")
    s.add_argument("--duration", type=argtypes.non_negative(), default=None,
                   help="stop after N seconds")  # fmt: skip
    s.add_argument("--engine", type=argtypes.checked(_engine_name, "engine name"), default="demo")
    s.add_argument("--symbols", nargs="+", type=_demo_symbol, default=["BTC/USDT", "ETH/USDT"])
    s.add_argument("--venues", type=argtypes.checked(_demo_venues, "demo venues"), default=None,
                   help="'all' (default) or comma-separated simulator ids (see ttxt-mp sim "
                   "--help)")  # fmt: skip
    s.set_defaults(func=_demo)

    s = sub.add_parser("status", help="state of a running engine")
    s.add_argument("engine", nargs="?", default="demo",
                   help="engine name, or redis://HOST:PORT/DB/ENGINE: its bridge and ring "
                        "streams as seen in Redis (from any host)")  # fmt: skip
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_status)

    s = sub.add_parser("tail", help="print an engine's events as they arrive")
    s.add_argument("engine", nargs="?", default="demo",
                   help="engine name, or redis://HOST:PORT/DB/ENGINE for an engine published by "
                        "a bridge (the Redis password from $TTXT_MP_REDIS_PASSWORD)")  # fmt: skip
    s.add_argument("--start", default="latest",
                   help="latest (default: the current state, then new events), oldest, or "
                        "for a redis:// feed a stream id to resume after")  # fmt: skip
    s.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    s.add_argument("--kind", action="append",
                   help="only this event kind, e.g. Orderbook")  # fmt: skip
    s.add_argument("--events", action="append", metavar="MODULE",
                   help="import MODULE first: it registers the engine's custom event kinds "
                        "(its [events] modules; repeatable)")  # fmt: skip
    s.add_argument("--count", type=argtypes.positive(int), default=None,
                   help="stop after N events")  # fmt: skip
    s.add_argument("--timeout", type=argtypes.positive(), default=None,
                   help="stop after N idle seconds")  # fmt: skip
    s.set_defaults(func=_tail)

    for name, module, helptext in (
        ("record", "ttxt_mp.storage.recorder", "record an engine's market data to files"),
        ("replay", "ttxt_mp.storage.replay_cli", "replay recorded files as an attachable feed"),
        ("inspect", "ttxt_mp.storage.inspect", "summarize recorded files"),
        ("backtest", "ttxt_mp.backtest.cli", "run a strategy on recorded data"),
    ):
        s = sub.add_parser(name, help=helptext)
        mod = __import__(module, fromlist=["x"])
        getattr(mod, f"add_{name}_arguments")(s)
        s.set_defaults(func=_delegate(module, f"{name}_main"))

    sub.add_parser("sim", help="run the exchange simulator alone (ttxt-mp sim --help)",
                   add_help=False)  # fmt: skip
    return p


def _engine_name(text: str) -> str:
    from ttxt_mp.config import ENGINE_NAME

    if not ENGINE_NAME.match(text):
        raise ValueError(f"invalid engine name {text!r}: expected 1-24 letters, digits or '_'")
    return text


def _expected_errors() -> tuple[type[BaseException], ...]:
    """The failures a user can cause (bad input, missing or foreign things, a stopped
    engine): reported in one line. Anything else is a bug and keeps its traceback."""
    from ttxt_mp.config import ConfigError
    from ttxt_mp.engine.control import EngineNotRunning
    from ttxt_mp.engine.supervisor import EngineAlreadyRunning
    from ttxt_mp.shm.errors import RingError

    found: list[type[BaseException]] = [ConfigError, EngineNotRunning, EngineAlreadyRunning,
                                        RingError, ControlError, OSError, ValueError]  # fmt: skip
    try:
        from ttxt_mp.trust import UntrustedObject
    except ImportError:  # older trees: it is a PermissionError (OSError) anyway
        pass
    else:
        found.append(UntrustedObject)
    return tuple(found)


def _nothing_found() -> tuple[type[BaseException], ...]:
    from ttxt_mp.client import FeedNotFound
    from ttxt_mp.engine.control import EngineNotRunning

    return (argtypes.NothingFound, FeedNotFound, EngineNotRunning)


def error_line(e: BaseException) -> str:
    """One line for the user: the message without Python's decoration."""
    if isinstance(e, OSError) and e.strerror and type(e).__str__ is OSError.__str__:
        msg = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
        if e.filename2:
            msg += f" (-> {e.filename2})"
    else:
        msg = str(e) or type(e).__name__
    if isinstance(e, KeyError) and e.args:  # str(KeyError) adds quotes
        msg = str(e.args[0])
    return " ".join(msg.split()) if "\n" in msg or "\r" in msg else msg


def _hint(e: BaseException) -> str:
    """What the user can do about a transport limit, in their terms (the config file)."""
    msg = str(e)
    if "max_consumers" in msg and "config" not in msg:
        return ("; raise it with max_consumers under [rings.market] (or [rings.private]) "
                "in the engine's config and restart the engine")
    return ""


def guarded(run: Callable[[], int], debug: bool = False) -> int:
    """Run a command inside the CLI's one error boundary: expected failures become one
    ``ttxt-mp: <message>`` line on stderr and exit code 2 (1 when nothing was found);
    ``debug`` re-raises them so the traceback shows."""
    try:
        return int(run() or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ttxt-mp tail | head`: the reader left, not an error
        _quiet_stdout()
        return 0
    except BaseException as e:
        if isinstance(e, SystemExit) or debug or not isinstance(e, _expected_errors()
                                                                   + _nothing_found()):  # fmt: skip
            raise
        print(f"ttxt-mp: {error_line(e)}{_hint(e)}", file=sys.stderr)
        return 1 if isinstance(e, _nothing_found()) else 2


def _quiet_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _split_global(argv: list[str]) -> tuple[list[str], list[str]]:
    """(global options, the rest): ``ttxt-mp --debug sim ...`` hands ``...`` to the
    simulator's own parser."""
    i = 0
    while i < len(argv):
        if argv[i] == "--debug":
            i += 1
        elif argv[i] == "--log-level":
            i += 2
        elif argv[i].startswith("--log-level="):
            i += 1
        else:
            break
    return argv[:i], argv[i:]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    head, rest = _split_global(argv)
    debug = "--debug" in head
    try:
        if rest[:1] == ["sim"]:  # the simulator owns its options
            from ttxt_mp.sim.__main__ import main as sim_main

            return guarded(lambda: sim_main(rest[1:]) or 0, debug)
        args = build_parser().parse_args(argv)
        if args.log_level:
            _logging(args.log_level)
        return guarded(lambda: args.func(args), args.debug)
    finally:
        logging.shutdown()


if __name__ == "__main__":
    sys.exit(main())
