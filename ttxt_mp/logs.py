"""Logging set-up shared by every ttxt-mp process: one format, secrets redacted."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)-7s %(processName)s[%(process)d] %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger (stderr). ``TTXT_LOG_LEVEL`` is the default level, so
    child processes inherit the supervisor's choice."""
    from ttxt_mp.secrets import install_redaction

    level = level or os.environ.get("TTXT_LOG_LEVEL", "WARNING")
    os.environ["TTXT_LOG_LEVEL"] = level
    logging.basicConfig(level=level, format=FORMAT, force=True)
    install_redaction()
