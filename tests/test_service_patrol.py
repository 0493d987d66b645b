"""service: /patrol/{grid_id} — a day's route as GeoJSON or GPX; unknown grid 404; bad date 400."""

from __future__ import annotations

import datetime as dt
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
def test_county_file_gone_under_the_server(county_path, tmp_path, damage: str) -> None:
    """Deleted or overwritten after start-up: patrol plans from what was read at start-up, as the data
    endpoints serve it; a file overwritten under the store is the server's problem (503), never a 4xx."""
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
    if damage == "delete":
        assert resp.status_code == 200 and resp.get_json()["properties"]["grid"] == grid
    else:
        assert resp.status_code == 503 and resp.mimetype == "application/problem+json", resp.get_json()
        assert resp.get_json()["title"] == "StoreError"
        assert str(path.parent) not in resp.get_json()["detail"]  # no server path in a client's answer
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
    assert resp.get_json()["detail"] == ("patrol planning is unavailable: noroads.gpkg: no 'roads' layer and no "
                                         "--network given; fix the county file or the NETWORK setting and restart "
                                         "the service")


def _metres(doc_line: list[list[float]]) -> float:
    """Length of a lon/lat line in the metric CRS of its place."""
    import geopandas as gpd

    from gridgeo.data.crs import metric_crs_for

    crs = metric_crs_for(*doc_line[0])
    return float(gpd.GeoSeries([shapely.LineString(doc_line)], crs=4326).to_crs(crs).length.iloc[0])


def test_route_lists_its_stops_door_to_door(client, grid: str) -> None:
    doc = client.get(f"/patrol/{grid}?date={DATE}").get_json()
    route = doc["features"][0]
    entries = route["properties"]["stops"]
    points = [f for f in doc["features"] if f["properties"]["kind"] == "stop"]
    assert entries and len(entries) == len(points) == route["properties"]["visits_made"]
    assert [e["order"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["arrival"] for e in entries] == sorted(e["arrival"] for e in entries)
    for e, f in zip(entries, points, strict=True):
        assert {"name", "address", "priority", "label", "arrival", "time", "due", "minutes", "location",
                "street"} <= set(e)
        assert e["address"] is None and e["special"] is None  # the service hands out no addresses
        assert f["geometry"]["coordinates"] == e["location"]  # the stop's Point is at its door
        assert e["arrival"].endswith("+08:00") and e["time"] == e["arrival"][11:16]
    # the drawn line is the distance walked (street, and to each door and back)
    assert _metres(route["geometry"]["coordinates"]) == pytest.approx(route["properties"]["distance_m"], rel=0.01)
    # GPX: one waypoint per stop, at the door, named in walking order
    root = ET.fromstring(client.get(f"/patrol/{grid}?date={DATE}&f=gpx").data)
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    wpts = root.findall("g:wpt", ns)
    assert [w.findtext("g:name", namespaces=ns) for w in wpts] == [
        f"{e['order']:02d} {e['time']} {e['label']} {e['name']}" for e in entries]
    assert [[float(w.get("lon")), float(w.get("lat"))] for w in wpts] == [e["location"] for e in entries]


def test_shifted_route_keeps_stops_at_their_doors(client, grid: str) -> None:
    doc = client.get(f"/patrol/{grid}?date={DATE}&coords=gcj02").get_json()
    plain = client.get(f"/patrol/{grid}?date={DATE}").get_json()
    entries = doc["features"][0]["properties"]["stops"]
    points = [f for f in doc["features"] if f["properties"]["kind"] == "stop"]
    for e, f, p in zip(entries, points, plain["features"][0]["properties"]["stops"], strict=True):
        assert f["geometry"]["coordinates"] == pytest.approx(e["location"], abs=1e-7)
        assert e["location"] == f["properties"]["location"]
        assert f["properties"]["street"] == e["street"] != p["street"]  # shifted like the geometry


def test_register_names_and_addresses_are_withheld(county_path, tmp_path) -> None:
    """A county whose households come from a register: the service names stops by household id only."""
    import shutil

    import pyogrio
    from gridgeo.service import create_app

    path = tmp_path / "county.gpkg"
    shutil.copy(county_path, path)
    hh = pyogrio.read_dataframe(path, layer="households")
    n = len(hh)
    hh["source_id"] = [f"H{i:05d}" for i in range(n)]
    hh["name"] = [f"户主{i}" for i in range(n)]
    hh["address"] = [f"幸福路{i}号" for i in range(n)]
    hh["special"] = ["独居老人"] * n
    hh["priority"] = [["红", "橙", "黄"][i % 3] for i in range(n)]
    pyogrio.write_dataframe(hh, path, layer="households", driver="GPKG")
    client = create_app({"COUNTY": str(path), "TESTING": True}).test_client()
    grid = client.get("/collections/grids/items?limit=1").get_json()["features"][0]["id"]
    resp = client.get(f"/patrol/{grid}?date={DATE}")
    assert resp.status_code == 200, resp.get_json()
    gpx = client.get(f"/patrol/{grid}?date={DATE}&f=gpx").data.decode("utf-8")
    text = resp.data.decode("utf-8") + gpx
    assert "户主" not in text and "幸福路" not in text and "独居老人" not in text
    homes = [e for e in resp.get_json()["features"][0]["properties"]["stops"] if e["stop_kind"] == "household"]
    assert homes and all(e["name"] == e["stop"] and e["stop"].startswith("H") for e in homes)
    assert all(e["address"] is None and e["special"] is None for e in homes)


def test_exclusive_grid_is_patrolled(client, county_path) -> None:
    """An exclusive grid (the school's) plans like a grid: its own households and points are its stops."""
    import pyogrio

    from gridgeo.patrol import County

    code = str(pyogrio.read_dataframe(county_path, layer="exclusive")["code"].iloc[0])
    county = County(county_path)
    assert code in county.codes and county.codes.index(code) >= len(county.codes) - 1
    stops = county.grid_stops(code, dt.date(2026, 12, 2))
    assert stops.stops and all(s.kind in ("household", "grid_point", "risk_point") for s in stops.stops)
    resp = client.get(f"/patrol/{code}?date=2026-12-02")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["properties"]["grid"] == code
