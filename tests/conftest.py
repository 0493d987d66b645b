"""Shared fixtures.

Tests that read ``../shared/data`` use the ``shared_data`` fixture: when the
data is missing they skip on a developer machine but FAIL under ``CI=true``,
because a skipped test is not a passing test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .store_backends import pg_cluster, pg_url, store_target  # noqa: F401  (every store backend, for the store and API tests)

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


def synth_rules(d: Path, **synth: int) -> Path:
    """``synth_county(**synth)`` written to ``d/county.gpkg`` and a rules file reading it (seed 0): its path.

    Why one helper: the build, interrupt, Dask and ladder tests each need a small generated county and
    the rules that point at it.
    """
    from gridgeo.synth import synth_county, write_county

    county = d / "county.gpkg"
    write_county(synth_county(**synth), county)
    p = d / "rules.toml"
    p.write_text(f'[county]\nseed = 0\n[inputs]\ncounty = "{county.as_posix()}"\n', encoding="utf-8")
    return p


def garray(*geoms: Any) -> np.ndarray:
    """A 1-D object array of the geometries (or None) given, as the build's geometry arrays are."""
    out = np.empty(len(geoms), dtype=object)
    out[:] = list(geoms)
    return out


def built_synth(d: Path, *, name: str = "built.gpkg", **synth: int) -> Path:
    """``synth_rules(d, **synth)`` built with ``gridgeo build`` (one worker, quiet) into ``d/name``."""
    from gridgeo.cli.main import main

    out = d / name
    assert main(["build", str(synth_rules(d, **synth)), "-o", str(out), "--workers", "1", "--no-progress",
                 "-q"]) == 0
    return out


def write_workbook(path: Path, header: list[str], rows: list[list[Any]], *, title: str | None = None,
                   sheet: str | None = None) -> Path:
    """An XLSX as counties keep one: an optional title row merged across the sheet, one header row, the rows."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    if sheet is not None:
        ws.title = sheet
    if title is not None:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path

