"""Fixtures for whole-engine tests: a simulator process and engines launched from the demo
config pointed at it (see tests/engine_process.py)."""

from __future__ import annotations

import os

import pytest
from engine_process import CORE, EngineProcess, engine_factory, sim_process

from ttxt_mp.engine.demo import demo_config_text


@pytest.fixture(scope="module")
def sim():
    with sim_process(seed=11) as s:
        yield s


def _engine(tmp_path, sim, i: int, extra_toml: str = "", heartbeat: float = 10.0) -> EngineProcess:
    name = f"t{os.getpid()}_{i}"
    text = demo_config_text(sim.host_port, name, venues=CORE) + extra_toml
    text = text.replace("heartbeat_timeout = 10.0", f"heartbeat_timeout = {heartbeat}")
    text = text.replace('log_level = "WARNING"', 'log_level = "INFO"')
    return EngineProcess(tmp_path, name, text)


@pytest.fixture
def make_engine(tmp_path, sim):
    with engine_factory(lambda i, **kw: _engine(tmp_path, sim, i, **kw)) as make:
        yield make
