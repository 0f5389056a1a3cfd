"""Fixtures for recording a real engine: a simulator process, an engine launched with the
recorder enabled, and cleanup of every process and shared-memory object even on failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_process import CORE, EngineProcess, engine_factory, sim_process

from ttxt_mp.engine.demo import SimProcess, demo_config_text

RECORDER_TOML = """
[recorder]
enabled = true
dir = "rec"
chunk_events = {chunk}
fsync_interval = 0.5
"""


@pytest.fixture(scope="module")
def sim():
    with sim_process(seed=5) as s:
        yield s


class RecordingEngine(EngineProcess):
    """``ttxt-mp launch`` of the demo config with ``[recorder]`` enabled; the recording
    goes to ``<tmp>/rec`` (a relative ``dir``: resolved against the config's folder).
    Launched from another directory, so a cwd-relative ``dir`` would be caught."""

    def __init__(self, tmp: Path, sim: SimProcess, name: str, chunk: int = 50) -> None:
        text = demo_config_text(sim.host_port, name, venues=CORE) + RECORDER_TOML.format(chunk=chunk)
        super().__init__(tmp, name, text, cwd="/", env=dict(os.environ, PYTHONPATH=os.getcwd()),
                         stop_grace=15.0)  # fmt: skip
        self.rec_dir = tmp / "rec"


@pytest.fixture
def make_engine(tmp_path, sim):
    with engine_factory(
        lambda i, **kw: RecordingEngine(tmp_path, sim, f"se{os.getpid()}_{i}", **kw)
    ) as make:
        yield make
