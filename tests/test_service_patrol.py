"""service: /patrol/{grid_id} — a day's route as GeoJSON or GPX; unknown grid 404; bad date 400."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import shapely

pytest.register_assert_rewrite("tests.service_county")
from tests.service_county import assert_rfc7946  # noqa: E402

pytest_plugins = ("tests.service_county",)

DATE = "2025-03-03"


@pytest.fixture(scope="module")
def grid(app) -> str:
    return app.test_client().get("/collections/grids/items?limit=1").get_json()["features"][0]["id"]


def test_route_geojson(client, grid: str) -> None:
    resp = client.get(f"/patrol/{grid}?date={DATE}")
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == "application/geo+json"
    doc = resp.get_json()
    assert_rfc7946(doc)
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds[0] == "route" and "station" in kinds
    assert doc["properties"]["grid"] == grid and doc["properties"]["date"] == DATE
    assert doc["properties"]["duration_min"] <= 240.0 + 1e-6
    # the route stays near its grid
    g = client.get(f"/collections/grids/items/{grid}").get_json()
    poly = shapely.geometry.shape(g["geometry"])
    line = shapely.geometry.shape(doc["features"][0]["geometry"])
    assert line.distance(poly) < 0.01


def test_route_gpx(client, grid: str) -> None:
    resp = client.get(f"/patrol/{grid}?date={DATE}&f=gpx")
    assert resp.status_code == 200 and resp.mimetype == "application/gpx+xml"
    root = ET.fromstring(resp.data)
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert root.tag.endswith("gpx") and root.findall(".//g:trkpt", ns)


def test_route_gcj02(client, grid: str) -> None:
    plain = client.get(f"/patrol/{grid}?date={DATE}").get_json()
    shifted = client.get(f"/patrol/{grid}?date={DATE}&coords=gcj02").get_json()
    assert shifted["coords"] == "gcj02"
    a = np.asarray(plain["features"][0]["geometry"]["coordinates"])
    b = np.asarray(shifted["features"][0]["geometry"]["coordinates"])
    d = np.hypot((a[:, 0] - b[:, 0]) * 98_000, (a[:, 1] - b[:, 1]) * 111_000)
    assert d.min() > 100 and d.max() < 1000


@pytest.mark.parametrize(
    ("url", "status"),
    [("/patrol/nosuchgrid?date=2025-03-03", 404), ("/patrol/{grid}?date=2025-13-01", 400),
     ("/patrol/{grid}?date=tomorrow", 400), ("/patrol/{grid}?date=2025-03-03&foo=1", 400),
     ("/patrol/{grid}?date=2025-03-03&f=kml", 400), ("/patrol/{grid}?date=2025-03-03&budget=abc", 400),
     ("/patrol/{grid}?date=2025-03-03&budget=1min", 409)],
)
def test_patrol_errors(client, grid: str, url: str, status: int) -> None:
    resp = client.get(url.format(grid=grid))
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01"])
def test_date_outside_the_range_is_400(client, grid: str, date: str) -> None:
    resp = client.get(f"/patrol/{grid}?date={date}")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["detail"] == f"date {date} + 1 day is outside the supported range 1900-01-01..2999-12-31"


@pytest.mark.parametrize("date", ["1900-01-01", "2999-12-31"])
def test_dates_at_the_ends_of_the_range_plan(client, grid: str, date: str) -> None:
    assert client.get(f"/patrol/{grid}?date={date}").status_code == 200


def test_check_plan_dates() -> None:
    import datetime as dt

    from gridgeo.errors import UsageError
    from gridgeo.patrol.options import check_plan_dates

    check_plan_dates(dt.date(2999, 12, 25), 7)
    with pytest.raises(UsageError, match=r"^date 2999-12-26 \+ 7 days is outside the supported range"):
        check_plan_dates(dt.date(2999, 12, 26), 7)
    with pytest.raises(UsageError, match="days must be >= 1"):
        check_plan_dates(dt.date(2025, 1, 1), 0)


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_county_file_gone_under_the_server_is_503(county_path, tmp_path, damage: str) -> None:
    """Deleted or overwritten after start-up: the server's problem (503), not the request's (422)."""
    import shutil

    from gridgeo.service import create_app

    path = tmp_path / "county.gpkg"
    shutil.copy(county_path, path)
    client = create_app({"COUNTY": str(path), "TESTING": True}).test_client()
    grid = client.get("/collections/grids/items?limit=1").get_json()["features"][0]["id"]
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b"not a geopackage")
    resp = client.get(f"/patrol/{grid}?date={DATE}")
    assert resp.status_code == 503 and resp.mimetype == "application/problem+json", resp.get_json()
    doc = resp.get_json()
    assert doc["title"] == "ServiceUnavailableError"
    assert doc["detail"] == f"the county file {path} is no longer readable; restart the service once it is back"
    # the data endpoints serve what was read at start-up
    assert client.get(f"/collections/grids/items/{grid}").status_code == 200


def test_no_street_network_is_503(tmp_path) -> None:
    """A county without roads and no NETWORK set is the set-up's problem, not the request's."""
    import geopandas as gpd
    import pyogrio
    from gridgeo.service import create_app

    path = tmp_path / "noroads.gpkg"
    grids = gpd.GeoDataFrame({"code": ["g1"]}, geometry=[shapely.box(117.0, 28.0, 117.01, 28.01)], crs="EPSG:4490")
    pyogrio.write_dataframe(grids, path, layer="grids")
    resp = create_app({"COUNTY": str(path), "TESTING": True}).test_client().get(f"/patrol/g1?date={DATE}")
    assert resp.status_code == 503 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["detail"] == (f"patrol planning is unavailable: {path}: no 'roads' layer and no --network "
                                         "given; fix the county file or the NETWORK setting and restart the service")
