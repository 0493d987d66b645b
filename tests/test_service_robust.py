"""service: no request reaches a 5xx — odd values for every parameter of every route, odd ids, odd bodies.

Each 4xx is an ``application/problem+json`` document. The values are those a
typo, a broken client or a scanner sends: empty, NUL, NaN/inf, huge numbers,
more digits than ``int()`` reads, wrong arity, path tricks, unknown CRSs.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytest_plugins = ("tests.service_county",)

WEIRD = ["", " ", "\x00", "nan", "inf", "-inf", "1e309", "-1", "0", "9" * 400, "9" * 5000, "a,b,c,d", ",,,",
         "1,2,3,4,5", "180,90,-180,-90", "-1e308,-1e308,1e308,1e308", "1e300,1e300,1e301,1e301", "💩", "../../etc",
         "%", "<script>", "EPSG:99999", "EPSG:0", "EPSG:4548", "EPSG:" + "9" * 30, "[EPSG:4490]", "0001-01-01",
         "9999-12-31", "..", "/", "1,2,3,4,5,6", "1e-300"]
GRID = "36990000100801"
ROUTES = {
    "/": ["f"], "/conformance": ["f"], "/api": ["f"], "/collections": ["f"], "/collections/grids": ["f"],
    "/collections/grids/items": ["f", "limit", "bbox", "bbox-crs", "crs", "coords", "datetime", "after", "before"],
    "/collections/households/items": ["limit", "bbox", "after", "before", "crs"],
    f"/collections/grids/items/{GRID}": ["f", "crs", "coords"],
    "/collections/households/items/1": ["crs", "coords"],
    "/locate?lon=117.2&lat=28.25": ["crs", "coords"], "/locate?lat=28.25": ["lon"], "/locate?lon=117.2": ["lat"],
    "/health": ["x"], "/map": [],
}


def _ok(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code < 500, resp.data[:300]
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json", resp.data[:300]
        assert resp.get_json()["status"] == resp.status_code


@pytest.mark.parametrize(("route", "param"), [(r, p) for r, ps in ROUTES.items() for p in ps])
def test_weird_parameter_values(client, route: str, param: str) -> None:
    sep = "&" if "?" in route else "?"
    for value in WEIRD:
        _ok(client.get(f"{route}{sep}{param}={quote(value)}"))


@pytest.mark.parametrize("bbox_crs", ["EPSG:4548", "EPSG:4490", "EPSG:4326"])
@pytest.mark.parametrize("bbox", ["1,2,3,4", "-1e308,-1e308,1e308,1e308", "1e300,1e300,1e301,1e301", "0,0,1e10,1e10",
                                  "4,3,2,1", "-90,-180,90,180"])
def test_bbox_in_other_crs(client, bbox: str, bbox_crs: str) -> None:
    _ok(client.get(f"/collections/grids/items?bbox={quote(bbox)}&bbox-crs={bbox_crs}"))


@pytest.mark.parametrize("query", [f"lon={x}&lat={y}&{extra}" for x, y in
                                   [("1e308", "1e308"), ("1e20", "0"), ("0", "0"), ("-1e308", "5"), ("500", "500")]
                                   for extra in ("crs=EPSG:4548", "crs=EPSG:4490", "crs=EPSG:4534", "coords=gcj02",
                                                 "coords=bd09")])
def test_locate_far_away(client, query: str) -> None:
    _ok(client.get(f"/locate?{query}"))


@pytest.mark.parametrize("fid", ["%00", "..%2F..", "a" * 5000, "💩", "9" * 400, "9" * 5000, "-1", "0", " 1", "%20",
                                 "1_0", "١"])
@pytest.mark.parametrize("collection", ["grids", "households", "nosuch"])
def test_odd_feature_ids_are_404(client, collection: str, fid: str) -> None:
    resp = client.get(f"/collections/{collection}/items/{fid}")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("cursor", ["9" * 5000, "1_0", " 1", "💩", "-9" * 30])
def test_odd_cursors_on_row_numbered_layers_are_400(client, cursor: str) -> None:
    for key in ("after", "before"):
        resp = client.get(f"/collections/households/items?{key}={quote(cursor)}")
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("grid", ["%00", "..%2F..", "a" * 5000, "💩", GRID])
@pytest.mark.parametrize("query", ["date=2025-3-3", "date=\x00", "date=", "budget=1e-300", "budget=inf",
                                   "budget=nan", "budget=1e309m", "budget=", "budget=0", "coords=mars", "f=",
                                   "f=gpx&coords=gcj02", "date=0001-01-01", "date=9999-12-31"])
def test_patrol_odd_values(client, grid: str, query: str) -> None:
    _ok(client.get(f"/patrol/{grid}?{quote(query, safe='=&')}"))


BODIES = [b"", b"\xff\xfe", b"null", b"1", b'"x"', b"[]", b"{}", b'{"points": null}', b'{"points": [[1e400, 1]]}',
          b'{"points": [[' + b"9" * 5000 + b", 1]]}", b'{"points": [[NaN, 1]]}', b'{"points": [[Infinity, 1]]}',
          b'{"points": [[' + b"9" * 400 + b", 1]]}", b'{"points": [[true, false]]}', b'{"points": [{"a": 1}]}',
          b'{"points": [[[1, 2], [3, 4]]]}', b'{"type": "FeatureCollection", "features": [null]}',
          b'{"type": "FeatureCollection", "features": [{"geometry": {"type": "Point", "coordinates": [1, 2]}, "id": '
          + b"[" * 900 + b"]" * 900 + b"}]}",
          b'{"type": "FeatureCollection", "features": {}}', b'{"points": "' + b"a" * 100 + b'"}',
          b"[" * 100_000 + b"]" * 100_000, b'{"points": [[117.2, 28.25]], "type": "FeatureCollection", "features": 1}',
          b'{"points": [[117.2, 28.25], [1e308, 1e308]]}']


@pytest.mark.parametrize("query", ["", "?crs=EPSG:4548", "?crs=EPSG:4490", "?coords=gcj02", "?coords=bd09"])
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_locate_odd_bodies(client, body: bytes, query: str) -> None:
    _ok(client.post(f"/locate{query}", data=body, content_type="application/json"))


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json"])
def test_locate_wrong_content_type(client, content_type: str) -> None:
    resp = client.post("/locate", data=b"lon=1&lat=2", content_type=content_type)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
