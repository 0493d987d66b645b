"""service: /locate answers like shapely on random places; GET and POST; datums; errors."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import shapely

from gridgeo.data.crs import wgs84_to_gcj02

pytest.register_assert_rewrite("tests.service_county")
from tests.service_county import assert_rfc7946  # noqa: E402

pytest_plugins = ("tests.service_county",)

LEVELS = {"township": "townships", "block": "blocks", "village": "villages", "grid": "grids",
          "point": "points", "exclusive": "exclusive"}


@pytest.fixture(scope="module")
def layers(county_path):
    return {k: pyogrio.read_dataframe(county_path, layer=v).to_crs("OGC:CRS84") for k, v in LEVELS.items()}


def _truth(layers, lon: np.ndarray, lat: np.ndarray) -> dict[str, list[str | None]]:
    """Brute force with shapely: for each level, the code of the first (by code) feature containing the place."""
    pts = shapely.points(lon, lat)
    out: dict[str, list[str | None]] = {}
    for k, gdf in layers.items():
        gdf = gdf.sort_values("code").reset_index(drop=True)
        hits: list[str | None] = []
        for p in pts:
            inside = gdf[gdf.intersects(p)]
            hits.append(str(inside["code"].iloc[0]) if len(inside) else None)
        out[k] = hits
    return out


def test_post_matches_shapely_on_random_points(client, layers) -> None:
    w, s, e, n = layers["village"].total_bounds
    rng = np.random.default_rng(42)
    m = 400
    lon = rng.uniform(w - 0.002, e + 0.002, m)
    lat = rng.uniform(s - 0.002, n + 0.002, m)
    resp = client.post("/locate", json={"points": np.c_[lon, lat].tolist()})
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    doc = resp.get_json()
    assert_rfc7946(doc)
    assert doc["numberReturned"] == m
    truth = _truth(layers, lon, lat)
    for k in LEVELS:
        got = [(f["properties"][k] or {}).get("code") for f in doc["features"]]
        assert got == truth[k], k
    # hierarchy is consistent: a place in a grid is in that grid's village
    inside = [f["properties"] for f in doc["features"] if f["properties"]["grid"]]
    assert inside and all(p["village"]["code"] == p["grid"]["code"][:12] for p in inside)
    assert all(p["township"]["code"] == "369900001" for p in inside)
    # a place in the exclusive grid has no base grid (exclusive grids are carved out)
    excl = [f["properties"] for f in doc["features"] if f["properties"]["exclusive"]]
    assert all(p["grid"] is None and p["village"] for p in excl)


def test_get_one_point_with_leaders(client, layers) -> None:
    grid = layers["grid"].sort_values("code").iloc[0]
    p = grid.geometry.representative_point()
    resp = client.get(f"/locate?lon={p.x}&lat={p.y}")
    assert resp.status_code == 200
    feat = resp.get_json()
    assert_rfc7946(feat)
    props = feat["properties"]
    assert props["grid"]["code"] == grid["code"] and props["grid"]["leader"] == grid["leader"]
    assert props["grid"]["leader_phone"] == grid["leader_phone"]
    assert props["village"]["leader"] and props["block"]["code"].endswith("B01")
    assert props["point"]["code"].startswith(grid["code"])
    assert feat["geometry"]["coordinates"] == [p.x, p.y]


def test_exclusive_grid_found(client, layers) -> None:
    ex = layers["exclusive"].iloc[0]
    p = ex.geometry.representative_point()
    props = client.get(f"/locate?lon={p.x}&lat={p.y}").get_json()["properties"]
    assert props["exclusive"]["code"] == ex["code"] and props["exclusive"]["leader"] == ex["leader"]
    assert props["village"]["code"] == ex["parent"]


def test_outside_is_null(client) -> None:
    props = client.get("/locate?lon=100&lat=40").get_json()["properties"]
    assert set(props) == set(LEVELS) and all(v is None for v in props.values())


def test_gcj02_input(client, layers) -> None:
    grid = layers["grid"].sort_values("code").iloc[3]
    p = grid.geometry.representative_point()
    gx, gy = wgs84_to_gcj02(p.x, p.y)
    resp = client.get(f"/locate?lon={float(gx)}&lat={float(gy)}&coords=gcj02")
    feat = resp.get_json()
    assert feat["properties"]["grid"]["code"] == grid["code"]
    assert feat["geometry"]["coordinates"] == [float(gx), float(gy)]  # the place as given, GCJ-02
    assert "Content-Crs" not in resp.headers
    # without coords the shifted place would be hundreds of metres off
    wrong = client.get(f"/locate?lon={float(gx)}&lat={float(gy)}").get_json()
    assert wrong["properties"]["point"] != feat["properties"]["point"]


def test_crs_input(client, layers) -> None:
    import pyproj

    grid = layers["grid"].sort_values("code").iloc[2]
    p = grid.geometry.representative_point()
    east, north = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:4548", always_xy=True).transform(p.x, p.y)
    resp = client.get(f"/locate?lon={east}&lat={north}&crs=http://www.opengis.net/def/crs/EPSG/0/4548")
    assert resp.get_json()["properties"]["grid"]["code"] == grid["code"]
    # POST positions follow the CRS's axis order (EPSG:4548: northing, easting)
    doc = client.post("/locate?crs=EPSG:4548", json={"points": [[north, east]]}).get_json()
    assert doc["features"][0]["properties"]["grid"]["code"] == grid["code"]


def test_post_feature_collection_keeps_ids(client, layers) -> None:
    pts = layers["point"].sort_values("code").geometry.representative_point().iloc[:5]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": f"r{i}", "properties": {}, "geometry": {"type": "Point", "coordinates": [q.x, q.y]}}
        for i, q in enumerate(pts)]}
    doc = client.post("/locate", data=json.dumps(fc), content_type="application/json").get_json()
    assert [f["id"] for f in doc["features"]] == [f"r{i}" for i in range(5)]
    assert all(f["properties"]["point"] for f in doc["features"])


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [({"data": "not json", "content_type": "application/json"}, 400),
     ({"json": {"points": [[1]]}}, 400), ({"json": {"points": "x"}}, 400), ({"json": [1, 2]}, 400),
     ({"json": {"type": "FeatureCollection", "features": [{"geometry": {"type": "LineString"}}]}}, 400),
     ({"json": {"nothing": 1}}, 400)],
)
def test_post_errors(client, kwargs, status) -> None:
    resp = client.post("/locate", **kwargs)
    assert resp.status_code == status and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("query", ["", "lon=1", "lon=a&lat=2", "lon=1&lat=2&foo=3", "lon=1&lat=2&crs=EPSG:3857",
                                   "lon=1&lat=2&coords=mars", "lon=nan&lat=1"])
def test_get_errors(client, query: str) -> None:
    resp = client.get(f"/locate?{query}")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"


def test_empty_batch(client) -> None:
    doc = client.post("/locate", json={"points": []}).get_json()
    assert doc["numberReturned"] == 0 and doc["features"] == []


def test_batch_throughput(app, layers) -> None:
    """The index alone handles well over 100,000 places a second (the figure in the report is end to end)."""
    import time

    w, s, e, n = layers["village"].total_bounds
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(w, e, 100_000), rng.uniform(s, n, 100_000)
    loc = app.extensions["locator"]
    loc.locate(lon[:1000], lat[:1000])
    t = time.perf_counter()
    loc.locate(lon, lat)
    assert 100_000 / (time.perf_counter() - t) > 100_000


def test_big_batch_path_agrees_with_small(app, layers) -> None:
    """A batch of >= 2048 places indexes the places instead of the polygons: same answers."""
    w, s, e, n = layers["village"].total_bounds
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(w, e, 6000), rng.uniform(s, n, 6000)
    loc = app.extensions["locator"]
    big = loc.locate(lon, lat)
    for k in big:
        small = np.concatenate([loc.locate(lon[i:i + 1000], lat[i:i + 1000])[k] for i in range(0, 6000, 1000)])
        assert (big[k] == small).all(), k
    assert (big["point"] >= 0).sum() > 1000
