"""Recording and replay of market data (file format: :mod:`ttxt_mp.storage.format`).

The recorder and replayer are imported on first use, so ``python -m
ttxt_mp.storage.recorder`` (the engine's recorder child) runs its module only once.
"""

from typing import Any

from ttxt_mp.storage.batch import RecordBatch
from ttxt_mp.storage.format import (
    DEFAULT_CHUNK_EVENTS,
    FORMAT_VERSION,
    FileHeader,
    FormatError,
    Problem,
    StorageError,
    file_name,
    file_stem,
)
from ttxt_mp.storage.reader import RecordingFile

_LAZY = {
    "MarketDataRecorder": "ttxt_mp.storage.recorder",
    "RecorderStats": "ttxt_mp.storage.recorder",
    "run_recorder": "ttxt_mp.storage.recorder",
    "MarketDataReplayer": "ttxt_mp.storage.replayer",
    "ReplayStats": "ttxt_mp.storage.replayer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_CHUNK_EVENTS", "FORMAT_VERSION", "FileHeader", "FormatError", "MarketDataRecorder",
    "MarketDataReplayer", "Problem", "RecordBatch", "RecorderStats", "RecordingFile",
    "ReplayStats", "StorageError", "file_name", "file_stem", "run_recorder",
]  # fmt: skip
