"""Fixtures: a simulator thread, and a per-test engine whose processes and shared-memory
objects are always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import ConnectorProc, SimThread, cleanup_engine, engine_name


@pytest.fixture
def simt() -> Iterator[SimThread]:
    with SimThread() as s:
        yield s


class Engine:
    def __init__(self, tmp: Path, tag: str) -> None:
        self.tmp = tmp
        self.name = engine_name(tag)
        self.procs: list[ConnectorProc] = []
        self.closers: list = []

    def connector(self, venue: str, cfg: Path, env: dict[str, str]) -> ConnectorProc:
        p = ConnectorProc(self.tmp, self.name, venue, cfg, env)
        self.procs.append(p)
        return p

    def close(self) -> None:
        for c in self.closers:
            c()
        for p in self.procs:
            p.stop()
        cleanup_engine(self.name)


@pytest.fixture
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    e = Engine(tmp_path, request.node.name[5:9].replace("_", ""))
    try:
        yield e
    finally:
        e.close()
