"""service: the first collections endpoints serve RFC 7946 GeoJSON; errors are problem+json."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest
import shapely
from shapely.geometry import Polygon

from service import create_app
from tests.catalogue import clean


@pytest.fixture
def client(tmp_path: Path):
    path = tmp_path / "county.gpkg"
    gdf = clean().gdf.to_crs("EPSG:4548")
    # store clockwise exteriors in a projected CRS: the service must turn them around
    gdf.geometry = [Polygon(list(g.exterior.coords)[::-1]) for g in gdf.geometry]
    pyogrio.write_dataframe(gdf, path, layer="villages")
    return create_app({"COUNTY": str(path), "TESTING": True}).test_client()


def test_collections(client) -> None:
    doc = client.get("/collections").get_json()
    assert [c["id"] for c in doc["collections"]] == ["villages"]
    assert doc["collections"][0]["itemCount"] == 5


def test_items_rfc7946(client) -> None:
    resp = client.get("/collections/villages/items?limit=3")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    fc = resp.get_json()
    assert "crs" not in fc
    assert fc["numberMatched"] == 5 and fc["numberReturned"] == 3
    for f in fc["features"]:
        ring = f["geometry"]["coordinates"][0]
        assert shapely.LinearRing(ring).is_ccw
        assert all(117 < x < 118 and 28 < y < 29 for x, y in ring)


@pytest.mark.parametrize(
    ("url", "status"),
    [("/collections/grids/items", 404), ("/collections/villages/items?limit=abc", 400),
     ("/collections/villages/items?limit=100000", 400), ("/collections/villages/items?bbox=1,2", 400)],
)
def test_errors_are_problem_json(client, url: str, status: int) -> None:
    resp = client.get(url)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["status"] == status
