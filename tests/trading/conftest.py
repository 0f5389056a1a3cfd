"""Shared fixtures: documented venue messages (tests/fixtures/trading/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "trading"


def _load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def binance_doc() -> dict:
    return _load("binance")


@pytest.fixture(scope="session")
def bybit_doc() -> dict:
    return _load("bybit")

