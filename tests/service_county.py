"""A small built county for the service tests, made from three villages of the bundled sample.

It has the six levels a ``gridgeo build`` writes (townships, blocks, villages,
grids, points, exclusive) with codes, parents and leader fields, a
``households`` point layer, and the roads and buildings patrol planning
needs, stored in CGCS2000 (EPSG:4490) like real Chinese data:

- villages 369900001008-010 of township 369900001, in one block;
- grids: the villages' villager groups, with a 150 m school buffer carved out;
- exclusive: that school buffer (``Z01``), inside its village;
- points: each grid cut by a 2 x 2 split of its bounds, plus the exclusive grid as one point.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
VILLAGES = ("369900001008", "369900001009", "369900001010")
TOWNSHIP = "369900001"


def make_county(path: Path) -> Path:
    """Write the test county to ``path`` and return it."""
    def read(layer: str) -> gpd.GeoDataFrame:
        return pyogrio.read_dataframe(SAMPLE, layer=layer)

    villages = read("villages")
    villages = villages[villages["code"].isin(VILLAGES)].reset_index(drop=True)
    crs = villages.crs
    metric = "EPSG:4548"  # CGCS2000 GK CM 117E
    area = shapely.union_all(villages.geometry.values)
    town = read("townships")
    town = town[town["code"] == TOWNSHIP].reset_index(drop=True)
    town["parent"] = None
    town["leader"] = "王镇长"
    town["leader_phone"] = "13800000001"
    block_code = TOWNSHIP + "B01"
    blocks = gpd.GeoDataFrame({"code": [block_code], "name": ["城关第一块"], "parent": [TOWNSHIP],
                               "kind": ["block"], "households": [int(villages["households"].sum())],
                               "leader": ["李块长"]}, geometry=[area], crs=crs)
    v = villages.rename(columns={"township": "parent"})
    v["block"] = block_code
    v["leader"] = ["张书记", "赵书记", "钱书记"]
    v["leader_phone"] = ["13900000008", "13900000009", "13900000010"]

    pois = read("pois")
    school = pois[(pois["category"] == "school") & pois["village"].isin(VILLAGES)].iloc[:1]
    vm = villages.to_crs(metric)
    school_m = school.to_crs(metric)
    host = vm[vm["code"] == school["village"].iloc[0]]
    excl_geom = shapely.intersection(school_m.geometry.iloc[0].buffer(150.0), host.geometry.iloc[0])
    excl_code = str(host["code"].iloc[0]) + "Z01"
    exclusive = gpd.GeoDataFrame({"code": [excl_code], "name": [str(school["name"].iloc[0])],
                                  "parent": [str(host["code"].iloc[0])], "kind": ["school"],
                                  "leader": ["孙校长"], "leader_phone": ["13700000000"]},
                                 geometry=[excl_geom], crs=metric)

    groups = read("villager_groups")
    groups = groups[groups["village"].isin(VILLAGES)].to_crs(metric).reset_index(drop=True)
    grids = gpd.GeoDataFrame({
        "code": groups["code"].astype(str), "name": groups["name"], "parent": groups["village"].astype(str),
        "kind": "rural", "households": groups["households"],
        "leader": [f"格长{i + 1}" for i in range(len(groups))],
        "leader_phone": [f"1360000{i:04d}" for i in range(len(groups))],
    }, geometry=shapely.make_valid(shapely.difference(groups.geometry.values, excl_geom)), crs=metric)
    grids = grids[~grids.geometry.is_empty].reset_index(drop=True)

    rows = []
    for code, geom in zip(grids["code"], grids.geometry, strict=True):
        x0, y0, x1, y1 = geom.bounds
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        cells = [shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym),
                 shapely.box(x0, ym, xm, y1), shapely.box(xm, ym, x1, y1)]
        n = 0
        for cell in cells:
            part = shapely.intersection(geom, cell)
            if part.is_empty or part.area < 1.0:
                continue
            n += 1
            rows.append({"code": f"{code}{n:03d}", "name": f"网格点{n}", "parent": code, "kind": "point",
                         "leader": f"点长{code[-2:]}{n}", "geometry": part})
    rows.append({"code": excl_code + "001", "name": "校园点", "parent": excl_code, "kind": "point",
                 "leader": "保安队长", "geometry": excl_geom})
    points = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=metric)
    points.geometry = shapely.make_valid(points.geometry.values)
    points = points[points.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)

    buildings = read("buildings")
    buildings = buildings[buildings["village"].isin(VILLAGES)].reset_index(drop=True)
    hh = buildings[buildings["households"].fillna(0) > 0].copy()
    households = gpd.GeoDataFrame({"households": hh["households"].astype(int), "village": hh["village"]},
                                  geometry=shapely.point_on_surface(hh.geometry.values), crs=crs)
    roads = read("roads")
    roads = roads[roads.intersects(area.buffer(0.005))].reset_index(drop=True)

    layers = {
        "townships": town, "blocks": blocks, "villages": v, "grids": grids.to_crs(crs),
        "points": points.to_crs(crs), "exclusive": exclusive.to_crs(crs), "households": households,
        "buildings": buildings, "roads": roads,
    }
    for name, gdf in layers.items():
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", append=path.exists())
    return path


# ------------------------------------------------------------------ fixtures and checks shared by the service tests
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def county_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test county, written once per session."""
    return make_county(tmp_path_factory.mktemp("service") / "county.gpkg")


@pytest.fixture(scope="session")
def app(county_path: Path):  # type: ignore[no-untyped-def]
    from gridgeo.service import create_app

    return create_app({"COUNTY": str(county_path), "TESTING": True})


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def assert_rfc7946(doc: dict) -> None:
    """RFC 7946: no ``crs`` member, lon in [-180, 180], lat in [-90, 90], CCW exteriors, CW holes."""
    assert "crs" not in doc
    feats = doc["features"] if doc.get("type") == "FeatureCollection" else [doc]
    for f in feats:
        assert f["type"] == "Feature" and "crs" not in f
        g = f["geometry"]
        if g is None:
            continue
        shape = shapely.geometry.shape(g)
        xy = shapely.get_coordinates(shape)
        assert ((xy[:, 0] >= -180) & (xy[:, 0] <= 180)).all(), "longitude out of range"
        assert ((xy[:, 1] >= -90) & (xy[:, 1] <= 90)).all(), "latitude out of range"
        for poly in getattr(shape, "geoms", [shape]):
            if poly.geom_type != "Polygon":
                continue
            assert poly.exterior.is_ccw, "exterior ring not counter-clockwise"
            assert all(not r.is_ccw for r in poly.interiors), "hole not clockwise"


def start_live(app: object, threads: int = 4) -> tuple[str, object]:
    """``app`` on a waitress server on a free loopback port, in a thread, once it answers ``/health``:
    its base URL and the server (``close()`` it)."""
    import socket
    import threading
    import time
    import urllib.request

    from waitress.server import create_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    srv = create_server(app, host="127.0.0.1", port=port, threads=threads)
    threading.Thread(target=srv.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    return url, srv
