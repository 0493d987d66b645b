"""The store backends every store and API test runs on: a fixture parametrised by backend.

``sqlite``: a fresh GeoPackage (a copy of the bundled sample county's file). ``postgresql``: a fresh
database (a copy of a PostGIS template) in a throwaway cluster the session starts once
(:mod:`tests.pg_cluster`) and stops at its end, however it ends. Without PostgreSQL or PostGIS the
``postgresql`` tests skip on a developer machine, saying what to install, and FAIL under ``CI=true``:
a skipped test is not a passing test.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg_cluster import Cluster, ClusterUnavailableError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
BACKENDS = ("sqlite", "postgresql")
_numbers = itertools.count(1)


def unavailable(msg: str) -> None:
    """Skip (a developer machine) or fail (``CI=true``) for a missing PostgreSQL/PostGIS."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's throwaway PostgreSQL + PostGIS cluster (started on first use, stopped at the end)."""
    cluster = Cluster()
    try:
        cluster.start()
    except ClusterUnavailableError as exc:
        unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh database with PostGIS, dropped after the test: its URL."""
    name = f"gg_test_{os.getpid()}_{next(_numbers)}"
    url = pg_cluster.create_database(name)
    try:
        yield url
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each backend: its target (a path or a URL)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    p = tmp_path / "county.gpkg"
    shutil.copy(SAMPLE, p)
    return str(p)
