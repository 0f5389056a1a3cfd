"""argparse building blocks shared by ``ttxt-mp`` and ``python -m ttxt_mp.sim``.

Why: a bad option must end in one line naming the option and what it accepts, before
anything starts (``sim --port 99999`` used to listen on a random port, ``--tick-ms 0``
and ``demo --duration -1`` gave tracebacks or were accepted).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import NoReturn

PROG = "ttxt-mp"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one stderr line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        where = self.prog if self.prog.startswith(PROG) else f"{PROG}: {self.prog}"
        sys.stderr.write(f"{where}: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _number(kind: type, text: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None


def port(text: str) -> int:
    """A TCP port 1..65535 (0 is accepted by :func:`port_or_zero` only)."""
    n = int(_number(int, text))
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 1..65535, got {n}")
    return n


def port_or_zero(text: str) -> int:
    """A TCP port 1..65535, or 0 for "any free port"."""
    n = int(_number(int, text))
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 1..65535 (0 = any free port), got {n}")
    return n


def positive(kind: type = float) -> Callable[[str], float]:
    """A number > 0 (a rate, an interval)."""

    def parse(text: str) -> float:
        x = _number(kind, text)
        if not x > 0:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
        return x

    parse.__name__ = "positive number"
    return parse


def non_negative(kind: type = float) -> Callable[[str], float]:
    """A number >= 0 (a duration, a count where 0 means off)."""

    def parse(text: str) -> float:
        x = _number(kind, text)
        if not x >= 0:
            raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
        return x

    parse.__name__ = "non-negative number"
    return parse


def one_of(choices: Iterable[str], what: str) -> Callable[[str], str]:
    """One of ``choices``; the error lists them all (argparse ``choices`` prints them
    quoted and wrapped; this keeps one readable line)."""
    valid = tuple(choices)

    def parse(text: str) -> str:
        if text not in valid:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r}; expected one of {', '.join(valid)}"
            )
        return text

    parse.__name__ = what
    return parse


def checked(fn: Callable[[str], object], name: str) -> Callable[[str], object]:
    """Wrap a validating function that raises ValueError into an argparse type."""

    def parse(text: str) -> object:
        try:
            return fn(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = name
    return parse


class NothingFound(LookupError):
    """The command worked but found nothing to act on (no engine of that name, no
    recording in a directory): exit code 1, unlike a user mistake (2)."""
