"""The store backends every store and API test runs on: a fixture parametrised by backend.

``sqlite``: a fresh GeoPackage (a copy of the bundled sample county's file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
BACKENDS = ("sqlite",)


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each backend: its target (a path or a URL)."""
    p = tmp_path / "county.gpkg"
    shutil.copy(SAMPLE, p)
    return str(p)
