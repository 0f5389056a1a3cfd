"""Recording and replay of market data (file format: :mod:`ttxt_mp.storage.format`)."""

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
from ttxt_mp.storage.recorder import MarketDataRecorder, RecorderStats, run_recorder
from ttxt_mp.storage.replayer import MarketDataReplayer, ReplayStats

__all__ = [
    "DEFAULT_CHUNK_EVENTS", "FORMAT_VERSION", "FileHeader", "FormatError", "MarketDataRecorder",
    "MarketDataReplayer", "Problem", "RecordBatch", "RecorderStats", "RecordingFile",
    "ReplayStats", "StorageError", "file_name", "file_stem", "run_recorder",
]  # fmt: skip
