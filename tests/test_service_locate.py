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


def test_outside_is_null_with_a_note(client) -> None:
    props = client.get("/locate?lon=100&lat=40").get_json()["properties"]
    assert set(props) == {*LEVELS, "note"} and all(props[k] is None for k in LEVELS)
    assert props["note"] == "outside the county (no township contains it)"


def test_inside_has_no_note(client, layers) -> None:
    p = layers["grid"].geometry.iloc[0].representative_point()
    assert set(client.get(f"/locate?lon={p.x}&lat={p.y}").get_json()["properties"]) == set(LEVELS)


@pytest.mark.parametrize(("query", "named"), [
    ("lon=117.2&lat=117", "lat=117.0 is outside [-90, 90]"), ("lon=-181&lat=28", "lon=-181.0 is outside [-180, 180]"),
    ("lon=117.2&lat=91&coords=gcj02", "lat=91.0"), ("lon=117.2&lat=-90.5&crs=EPSG:4490", "lat=-90.5"),
    ("lon=1e308&lat=1e308&crs=EPSG:4548", "outside the area of http://www.opengis.net/def/crs/EPSG/0/4548"),
])
def test_get_off_the_globe_is_400(client, query: str, named: str) -> None:
    resp = client.get(f"/locate?{query}")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert named in resp.get_json()["detail"]


def _inside(layers, k: int) -> list[float]:
    p = layers["point"].sort_values("code").geometry.iloc[k].representative_point()
    return [p.x, p.y]


def test_post_bad_pairs_among_good_ones(client, layers) -> None:
    """One bad pair must not sink a batch: each bad one gets its error, every good one is located."""
    a, b = _inside(layers, 0), _inside(layers, 1)
    pts = [a, ["x", 1], [117.21, 28.26, 5, 6], [117.22], b, [100.0, 40.0], [28.25, 117.2], None, [True, False]]
    resp = client.post("/locate", json={"points": pts})
    assert resp.status_code == 200
    doc = resp.get_json()
    assert_rfc7946(doc)
    assert doc["numberReturned"] == len(pts) == len(doc["features"])
    assert doc["summary"] == {"inside": 2, "outside": 1, "errors": 6}
    f = doc["features"]
    assert f[0]["properties"]["point"] and f[4]["properties"]["point"]
    assert f[0]["geometry"]["coordinates"] == a and "error" not in f[0]["properties"]
    assert f[5]["properties"]["note"].startswith("outside the county")
    errors = {i: x["properties"].get("error") for i, x in enumerate(f)}
    for i in (1, 2, 3, 7, 8):
        assert errors[i].startswith(f"point {i}: expected [lon, lat] or [lon, lat, height] numbers"), errors[i]
        assert f[i]["geometry"] is None and all(f[i]["properties"][k] is None for k in LEVELS)
    assert errors[6] == "point 6: latitude 117.2 is outside [-90, 90] (the order is lon, lat: swapped?)"


def test_post_feature_collection_with_bad_features(client, layers) -> None:
    a = _inside(layers, 2)
    feats = [{"type": "Feature", "id": "ok", "properties": {}, "geometry": {"type": "Point", "coordinates": a}},
             {"type": "Feature", "id": "nogeom", "properties": {}},
             {"type": "Feature", "id": 7, "geometry": {"type": "LineString", "coordinates": [a, a]}},
             {"type": "Feature", "id": {"x": 1}, "geometry": {"type": "Point", "coordinates": a}},
             {"type": "Feature", "id": "far", "geometry": {"type": "Point", "coordinates": [500, 28]}},
             "nonsense"]
    doc = client.post("/locate", json={"type": "FeatureCollection", "features": feats}).get_json()
    f = doc["features"]
    assert [x.get("id") for x in f] == ["ok", "nogeom", 7, None, "far", None]
    assert f[0]["properties"]["grid"] or f[0]["properties"]["exclusive"]
    assert [x["properties"].get("error") for x in f] == [
        None, "feature 1: has no geometry", "feature 2: only Point geometries can be located, got LineString",
        'feature 3: id must be a string or a number, got {"x": 1}',
        "feature 4: longitude 500.0 is outside [-180, 180]", 'feature 5: not a GeoJSON Feature object, got "nonsense"']
    assert doc["summary"] == {"inside": 1, "outside": 0, "errors": 5}


def test_post_lat_first_crs_names_its_order(client, layers) -> None:
    lon, lat = _inside(layers, 0)
    doc = client.post("/locate?crs=EPSG:4490", json={"points": [[lat, lon], [lon, lat]]}).get_json()
    assert doc["features"][0]["properties"]["point"]
    assert doc["features"][1]["properties"]["error"] == (
        f"point 1: latitude {lon!r} is outside [-90, 90] (the order is lat, lon: swapped?)")


def test_post_projected_off_its_area(client, layers) -> None:
    doc = client.post("/locate?crs=EPSG:4548", json={"points": [[1e308, 1e308], [0.0, 0.0]]}).get_json()
    assert doc["features"][0]["properties"]["error"] == (
        "point 0: has no lon/lat (outside the area of http://www.opengis.net/def/crs/EPSG/0/4548)")
    assert doc["summary"]["errors"] == 1


def test_post_every_place_bad_is_400(client) -> None:
    resp = client.post("/locate", json={"points": [["x", 1], [200, 1]]})
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["detail"].startswith('no place of the 2 can be located; point 0: expected')


@pytest.mark.parametrize(("body", "detail"), [
    ("[" * 5000 + "]" * 5000, "request body nested too deep to be a batch of places"),
    ('{"points": ' + "[" * 5000 + "]" * 5000 + "}", "request body nested too deep to be a batch of places"),
    ('{"points": [[1, 2]', "request body is not JSON: Expecting ',' delimiter: line 1 column 19 (char 18)"),
    ('{"points": [[' + "9" * 5000 + ", 1]]}", "request body is not JSON: Exceeds the limit (4300 digits)"),
    (b'{"points": [[\xff, 1]]}', "request body is not UTF-8 JSON: invalid start byte at byte 13"),
])
def test_post_unreadable_body_is_400(client, body: str | bytes, detail: str) -> None:
    if isinstance(body, bytes):
        body = body.decode("unicode_escape").encode("latin-1")
    resp = client.post("/locate", data=body, content_type="application/json")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["detail"].startswith(detail)


@pytest.mark.parametrize("raw", ["[[NaN, 1]]", "[[Infinity, 1]]", "[[1e400, 1]]", "[[" + "9" * 400 + ", 1]]"])
def test_post_non_finite_is_a_point_error(client, raw: str) -> None:
    body = '{"points": [[117.2, 28.25], ' + raw[1:-1] + "]}"
    doc = client.post("/locate", data=body, content_type="application/json").get_json()
    assert doc["summary"]["errors"] == 1 and "point 1:" in doc["features"][1]["properties"]["error"]


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
    assert doc["summary"] == {"inside": 0, "outside": 0, "errors": 0}


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


def test_api_documents_per_place_errors(client) -> None:
    doc = client.get("/api").get_json()
    post = doc["paths"]["/locate"]["post"]["responses"]
    assert post["200"]["content"]["application/geo+json"]["schema"]["$ref"].endswith("/locateFeatureCollection")
    assert "properties.error" in post["200"]["description"] and "400" in post
    schemas = doc["components"]["schemas"]
    assert set(schemas["locateFeatureCollection"]["properties"]["summary"]["required"]) == {"inside", "outside",
                                                                                            "errors"}
    props = schemas["locateFeature"]["allOf"][1]["properties"]["properties"]["properties"]
    assert {"note", "error", "township", "exclusive"} <= set(props)
    patrol = doc["paths"]["/patrol/{gridId}"]["get"]
    assert "503" in patrol["responses"]
    assert "2999-12-31" in next(p for p in patrol["parameters"] if p["name"] == "date")["description"]


def test_invalid_polygon_reported_and_located(county_path, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """One self-intersecting grid in the file: the service starts, names it in the log, and still locates
    places in it (its repaired form), as it does every other grid."""
    import logging
    import shutil

    import pyogrio
    from gridgeo.service import create_app

    path = tmp_path / "bad.gpkg"
    shutil.copy(county_path, path)
    grids = pyogrio.read_dataframe(path, layer="grids")
    code = str(grids["code"].iloc[0])
    x0, y0, x1, y1 = grids.geometry.iloc[0].bounds
    grids.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow tie
    assert not grids.geometry.iloc[0].is_valid
    pyogrio.write_dataframe(grids, path, layer="grids", driver="GPKG")
    with caplog.at_level(logging.WARNING, logger="gridgeo.service.locate"):
        client = create_app({"COUNTY": str(path), "TESTING": True}).test_client()
    assert any(code in r.getMessage() and "invalid" in r.getMessage() for r in caplog.records)
    wing = shapely.Point(x0 + (x1 - x0) * 0.9, y0 + (y1 - y0) * 0.5)  # inside the bow tie's right wing
    doc = client.get(f"/locate?lon={wing.x}&lat={wing.y}").get_json()
    others = grids.geometry.iloc[1:]
    expected = code if not others.contains(wing).any() else str(grids["code"].iloc[1:][others.contains(wing)].iloc[0])
    got = doc["properties"]["grid"]
    assert got is not None and (got["code"] == expected or others.contains(wing).any())


@pytest.mark.parametrize("layout", ["compact", "spaced", "indented", "ints", "heights", "with_features"])
def test_post_echo_is_the_places_sent(client, layers, layout: str) -> None:
    """However the body writes its places, each answer's coordinates are the numbers sent (the fast echo of
    the body's own text, or the parsed numbers when the body is laid out otherwise) and the codes agree."""
    w, s, e, n = layers["village"].total_bounds
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(w, e, 50), rng.uniform(s, n, 50)
    pairs: list[list[float]] = np.c_[lon, lat].tolist()
    if layout == "ints":
        pairs[0] = [int(w), int(s)]  # outside, but a place all the same
    if layout == "heights":
        pairs = [[x, y, 12.5] for x, y in pairs]
    doc: dict[str, object] = {"points": pairs}
    if layout == "with_features":
        doc["type"] = "FeatureCollection"
        doc["features"] = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": pairs[1]},
                            "properties": {}}]
    text = {"compact": json.dumps(doc, separators=(",", ":")), "indented": json.dumps(doc, indent=2)}.get(
        layout, json.dumps(doc))
    resp = client.post("/locate", data=text, content_type="application/json")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    raw = resp.get_data(as_text=True)
    assert "\n" not in raw
    got = resp.get_json()
    assert_rfc7946(got)
    sent = [p[:2] for p in pairs] + ([pairs[1][:2]] if layout == "with_features" else [])
    assert [f["geometry"]["coordinates"] for f in got["features"]] == sent
    truth = _truth(layers, np.array([p[0] for p in sent], float), np.array([p[1] for p in sent], float))
    for k in LEVELS:
        assert [(f["properties"][k] or {}).get("code") for f in got["features"]] == truth[k], k


@pytest.mark.parametrize(("body", "echoed"), [
    (b'{"points":[[1.5,2],[3,4e1]]}', [b"1.5,2", b"3,4e1"]),
    (b'{"points": [ [1.5 , 2] ,[3, 4] ]}', [b"1.5,2", b"3,4"]),
    (b'{"points":[[1,2]]}', [b"1,2"]),
    (b'{"points":[[-1.5E+2,2e-3]]} ', [b"-1.5E+2,2e-3"]),
    (b'{"points":[[1,\t2],[3,4]]}', None),  # a tab
    (rb'{"\u0070oints":[[1,2]]}', [b"1,2"]),  # the key escaped
    (b'{"points":[[1,\n2],[3,4]]}', None),  # broken over lines
    (b'{"points":[[1,2,3],[3,4]]}', None),  # a height
    (b'{"points":[[1,2]],"type":"FeatureCollection","features":[]}', None),  # another member
    (b'{"points":"[9,9]","points":[[1,2]]}', None),  # a duplicate member: brackets that are not places
    (b'{"points":[[1,2],[3,"4"]]}', None),  # a bad pair
])
def test_pair_texts_only_when_exactly_the_places(body: bytes, echoed: list[bytes] | None) -> None:
    from gridgeo.service.positions import parse_positions

    pos = parse_positions(json.loads(body), body)
    assert pos.texts == echoed
