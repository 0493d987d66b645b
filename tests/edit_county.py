"""Fixtures of the edit tests (``pytest_plugins = ("tests.edit_county",)``): the people county served with
layers that can be edited with a trail, on each backend, the layers in memory and read page by page."""

from __future__ import annotations

from pathlib import Path

import pytest

from .access_county import Served, make_people_county, serve_editable


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("edits") / "county.gpkg")


@pytest.fixture
def served(people_county: Path, store_target: str, tmp_path: Path) -> Served:
    """The layers held in memory."""
    return serve_editable(people_county, store_target, tmp_path)


@pytest.fixture(params=[{}, {"LAZY_AT": 0}], ids=["memory", "lazy"])
def either(request: pytest.FixtureRequest, people_county: Path, store_target: str, tmp_path: Path) -> Served:
    """The layers held in memory, and read from the file or the database page by page."""
    return serve_editable(people_county, store_target, tmp_path, **request.param)
