"""Shared fixtures.

Tests that read ``../shared/data`` use the ``shared_data`` fixture: when the
data is missing they skip on a developer machine but FAIL under ``CI=true``,
because a skipped test is not a passing test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GRIDGEO_SHARED", ROOT.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        msg = f"shared data missing: {path} (expected ../shared beside the repository)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; fails under CI when missing."""
    return _need(SHARED / "data")


@pytest.fixture(scope="session")
def taipei(shared_data: Path) -> Path:
    return _need(shared_data / "villages" / "taipei_village.geojson")


@pytest.fixture(scope="session")
def osm_dir(shared_data: Path) -> Path:
    return _need(shared_data / "osm")
