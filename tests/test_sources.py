"""gridgeo.county.sources: the items (buildings or household points) as the build holds them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgeo.county import sources
from gridgeo.county.rules import CountyRules
from gridgeo.county.units import estimate_households
from gridgeo.data.crs import metric_crs


def _buildings(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` small footprints near Guixi (EPSG:4490), some with a household count, one empty."""
    rng = np.random.default_rng(seed)
    x = 117.2 + rng.uniform(0, 0.05, n)
    y = 28.28 + rng.uniform(0, 0.05, n)
    size = rng.uniform(4e-5, 2e-4, n)
    geoms = shapely.box(x, y, x + size, y + size * 0.8)
    geoms[3] = shapely.Polygon()
    hh = np.where(rng.uniform(size=n) < 0.3, rng.integers(1, 9, n), np.nan)
    return gpd.GeoDataFrame({"id": [f"b{i}" for i in range(n)], "households": hh, "building": "house"},
                            geometry=geoms, crs="EPSG:4490")


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_buildings_converted_in_chunks_equal_one_conversion(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the chunk size, the items are the layer's metric geometries and weights, and the layer is taken."""
    b = _buildings(53)
    metric = metric_crs(b)
    want = b.to_crs(metric)
    w_want, est_want = estimate_households(want, dwelling_m2=90.0, default_levels=1.0, min_area_m2=20.0)
    monkeypatch.setattr(sources, "METRIC_CHUNK", chunk)
    layers = {"buildings": b.copy(), "roads": b.iloc[:0]}
    got = sources.items(layers, CountyRules(dwelling_m2=90.0, default_levels=1.0, min_building_m2=20.0), metric)
    assert set(layers) == {"roads"}  # the items hold the footprints from now on
    assert got.source == "building" and got.ids == list(b["id"])
    assert shapely.equals_exact(got.geoms, np.asarray(want.geometry.values), 0.0).all()
    assert got.weights.tolist() == np.asarray(w_want).tolist() and got.estimated.tolist() == list(est_want)


def test_household_points_preferred_and_both_layers_taken() -> None:
    b = _buildings(9)
    pts = gpd.GeoDataFrame({"id": ["h1", "h2"], "households": [2, 3]},
                           geometry=shapely.points([[117.21, 28.29], [117.22, 28.30]]), crs="EPSG:4490")
    metric = metric_crs(b)
    layers = {"buildings": b, "households": pts.copy()}
    got = sources.items(layers, CountyRules(), metric)
    assert layers == {}
    assert got.source == "household" and got.weights.tolist() == [2, 3] and got.ids == ["h1", "h2"]
    assert shapely.equals_exact(got.geoms, np.asarray(pts.to_crs(metric).geometry.values), 0.0).all()


def test_no_items() -> None:
    got = sources.items({}, CountyRules(), metric_crs(_buildings(5)))
    assert got.source is None and len(got.geoms) == 0
