"""Fixtures for the storage tests (helpers live in storage_helpers.py: a module
named ``conftest`` is ambiguous across test folders)."""

from __future__ import annotations

import pytest


@pytest.fixture
def rec_dir(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    return d
