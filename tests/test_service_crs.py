"""service: OGC API – Features Part 2 (crs, bbox-crs, Content-Crs, EPSG axis order) and coords=gcj02|bd09."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

pytest.register_assert_rewrite("tests.service_county")
from tests.service_county import assert_rfc7946  # noqa: E402

pytest_plugins = ("tests.service_county",)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


def _coords(doc: dict) -> np.ndarray:
    feats = doc.get("features", [doc])
    return np.vstack([shapely.get_coordinates(shapely.geometry.shape(f["geometry"])) for f in feats])


def test_collection_crs_lists(client) -> None:
    c = client.get("/collections/grids").get_json()
    assert c["crs"][0] == CRS84
    for code in (4490, 4326, 4534, 4548, 4554):
        assert EPSG.format(code) in c["crs"]
    assert c["storageCrs"] == EPSG.format(4490)


@pytest.mark.parametrize("code", [4490, 4326, 4548, 4534])
def test_crs_axis_order_and_round_trip(client, code: int) -> None:
    base = client.get("/collections/grids/items?limit=5").get_json()
    resp = client.get(f"/collections/grids/items?limit=5&crs={EPSG.format(code)}")
    assert resp.status_code == 200
    assert resp.headers["Content-Crs"] == f"<{EPSG.format(code)}>"
    got = _coords(resp.get_json())
    lonlat = _coords(base)
    crs = pyproj.CRS.from_epsg(code)
    # what EPSG says the first axis is, not a hard-coded rule
    first_north = crs.axis_info[0].direction == "north"
    tr = pyproj.Transformer.from_crs("OGC:CRS84", crs)  # authority order out
    a, b = tr.transform(lonlat[:, 0], lonlat[:, 1])
    tol = 1e-6 if crs.is_geographic else 0.01
    assert np.allclose(got[:, 0], a, atol=tol) and np.allclose(got[:, 1], b, atol=tol)
    if crs.is_geographic:
        assert first_north and np.allclose(got[:, 0], lonlat[:, 1], atol=1e-5)  # latitude first
    else:
        assert first_north and (got[:, 0] > 3_000_000).all()  # northing (~3.1e6 m at 28N) first
        if code == 4548:  # the data's own zone (CM 117E): easting near the 500 km false easting
            assert (abs(got[:, 1] - 500_000) < 50_000).all()
    # and back: the transformed coordinates return to CRS84 within rounding
    back = pyproj.Transformer.from_crs(crs, "OGC:CRS84")
    lon, lat = back.transform(got[:, 0], got[:, 1])
    assert np.allclose(lon, lonlat[:, 0], atol=1e-6) and np.allclose(lat, lonlat[:, 1], atol=1e-6)


def test_item_crs(client) -> None:
    fid = client.get("/collections/villages/items?limit=1").get_json()["features"][0]["id"]
    resp = client.get(f"/collections/villages/items/{fid}?crs=EPSG:4548")
    assert resp.headers["Content-Crs"] == f"<{EPSG.format(4548)}>"
    xy = _coords(resp.get_json())
    assert (xy[:, 0] > 3_000_000).all()


@pytest.mark.parametrize("code", [4326, 4490, 4548])
def test_bbox_crs_same_features(client, code: int) -> None:
    box = (117.165, 28.215, 117.175, 28.232)
    ref = client.get("/collections/points/items?limit=1000&bbox=" + ",".join(map(str, box))).get_json()
    crs = pyproj.CRS.from_epsg(code)
    tr = pyproj.Transformer.from_crs("OGC:CRS84", crs)
    # the box in the target CRS, in its own axis order: lower corner axis 1, axis 2, upper corner axis 1, axis 2
    a0, b0, a1, b1 = tr.transform_bounds(*box)
    q = f"{a0},{b0},{a1},{b1}"
    got = client.get(f"/collections/points/items?limit=1000&bbox={q}&bbox-crs={EPSG.format(code)}").get_json()
    ids_ref = {f["id"] for f in ref["features"]}
    ids_got = {f["id"] for f in got["features"]}
    if crs.is_geographic:
        assert ids_got == ids_ref
    else:  # a projected box is a little larger than the lon/lat one it was made from
        assert ids_ref <= ids_got and len(ids_got) <= len(ids_ref) + 6
    # the next link keeps bbox-crs
    small = client.get(f"/collections/points/items?limit=2&bbox={q}&bbox-crs={EPSG.format(code)}").get_json()
    nxt = [link["href"] for link in small["links"] if link["rel"] == "next"]
    assert nxt and "bbox-crs=" in nxt[0]


@pytest.mark.parametrize("bad", ["EPSG:3857", "http://www.opengis.net/def/crs/EPSG/0/9999999", "nonsense",
                                 "http://www.opengis.net/def/crs/EPSG/0/4555"])
def test_unsupported_crs_400(client, bad: str) -> None:
    for param in ("crs", "bbox-crs"):
        extra = "&bbox=0,0,1,1" if param == "bbox-crs" else ""
        resp = client.get(f"/collections/grids/items?{param}={bad}{extra}")
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json"


def _metres(lon0, lat0, lon1, lat1) -> np.ndarray:
    g = pyproj.Geod(ellps="WGS84")
    return np.asarray(g.inv(lon0, lat0, lon1, lat1)[2])


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_coords_offset_plausible(client, datum: str) -> None:
    base = client.get("/collections/grids/items?limit=3").get_json()
    resp = client.get(f"/collections/grids/items?limit=3&coords={datum}")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    assert "Content-Crs" not in resp.headers  # no CRS URI describes GCJ-02/BD-09
    doc = resp.get_json()
    assert_rfc7946(doc)
    assert doc["coords"] == datum
    a, b = _coords(base), _coords(doc)
    d = _metres(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    # GCJ-02 moves points in Jiangxi by a few hundred metres; BD-09 adds roughly another kilometre
    lo, hi = (100, 1000) if datum == "gcj02" else (300, 2000)
    assert lo < d.min() and d.max() < hi
    # every GeoJSON response takes coords
    fid = base["features"][0]["id"]
    one = client.get(f"/collections/grids/items/{fid}?coords={datum}").get_json()
    assert np.allclose(_coords(one), _coords({"features": [doc["features"][0]]}))


def test_coords_with_projected_crs_400(client) -> None:
    resp = client.get("/collections/grids/items?coords=gcj02&crs=EPSG:4548")
    assert resp.status_code == 400


def test_coords_paging_keeps_datum(client) -> None:
    doc = client.get("/collections/points/items?limit=5&coords=gcj02").get_json()
    nxt = next(link["href"] for link in doc["links"] if link["rel"] == "next")
    assert "coords=gcj02" in nxt
