"""A county in PostGIS (gridgeo.store.postgis, ``gridgeo load``): written whole or not at all, served the same.

The county is the service tests' small built county (tests/service_county.py) with a ``people`` table and a
store (users, visits, status, audit) added; it is loaded into a fresh database of the session's throwaway
cluster and served from there beside the GeoPackage it came from.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely

from gridgeo.cli.main import main
from gridgeo.errors import ConflictError, FileFormatError, InputError, StoreError
from gridgeo.store import Placed, Versions, open_store
from gridgeo.store.postgis import CATALOGUE, load_geopackage, read_layers
from gridgeo.store.records import parse_visits

from .pg_cluster import Cluster
from .service_county import make_county
from .store_backends import unavailable

#: the tokens of the users the county's store is given (its routes need them once it has users)
TOKENS: dict[str, str] = {}


def _sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query, params or None)  # type: ignore[arg-type]
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small built county with a people table and a store that has history."""
    path = make_county(tmp_path_factory.mktemp("postgis") / "county.gpkg")
    grids = pyogrio.read_dataframe(path, layer="grids", columns=["code", "parent"], read_geometry=False)
    people = pd.DataFrame({"person_id": ["P1", "P2", "P3"], "name": ["甲", "乙", "丙"],
                           "role": ["专职网格员", "网格长", "村书记"], "phone": ["13600000001", None, "13900000008"],
                           "level": ["grids", "grids", "villages"],
                           "unit": [grids["code"][0], grids["code"][0], grids["parent"][0]]})
    pyogrio.write_dataframe(people, path, layer="people", driver="GPKG", append=True)
    store = open_store(path)
    TOKENS["wang"] = store.add_user("wang", role="worker", scope=str(grids["code"][0]))[1]
    place = Placed("1", {"grid": str(grids["code"][0])}, (str(grids["code"][0]),))
    store.add_visits(parse_visits([{"household": 1, "time": "2025-03-03T09:00:00", "outcome": "visited"}],
                                  lambda h, w: place), actor="wang")
    store.set_status(place, {"priority": "red"}, actor="wang")
    store.close()
    return path


@pytest.fixture(scope="module")
def served_url(pg_cluster: Cluster, county: Path) -> Any:
    """The county loaded into a database of its own for this module's serving tests."""
    url = pg_cluster.create_database("gg_served")
    load_geopackage(county, url)
    yield url
    pg_cluster.drop_database("gg_served")


@pytest.fixture(scope="module")
def clients(county: Path, served_url: str) -> tuple[Any, Any]:
    from gridgeo.service import create_app

    return (create_app({"COUNTY": str(county), "TESTING": True}).test_client(),
            create_app({"COUNTY": served_url, "TESTING": True}).test_client())


# ------------------------------------------------------------------------------------------- served the same
def _all(client: Any, coll: str) -> dict[str, Any]:
    resp = client.get(f"/collections/{coll}/items?limit=10000")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def test_every_layer_served_the_same(clients: tuple[Any, Any]) -> None:
    gpkg, pg = clients
    names = [c["id"] for c in gpkg.get("/collections").get_json()["collections"]]
    assert names == [c["id"] for c in pg.get("/collections").get_json()["collections"]]
    assert {"townships", "villages", "grids", "points", "exclusive", "households", "roads"} <= set(names)
    for name in names:
        a, b = _all(gpkg, name), _all(pg, name)
        assert a["numberMatched"] == b["numberMatched"] == len(a["features"]) > 0, name
        assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]], name
        assert [f["properties"] for f in a["features"]] == [f["properties"] for f in b["features"]], name
        for fa, fb in zip(a["features"], b["features"], strict=True):
            ga, gb = shapely.geometry.shape(fa["geometry"]), shapely.geometry.shape(fb["geometry"])
            assert ga.geom_type == gb.geom_type and shapely.equals_exact(ga, gb, tolerance=1e-7), (name, fa["id"])


def test_grids_page_and_locate_are_equal(clients: tuple[Any, Any]) -> None:
    gpkg, pg = clients
    a, b = (c.get("/collections/grids/items?limit=50").get_json() for c in clients)
    a.pop("timeStamp"), b.pop("timeStamp")  # the file's time vs the load's
    assert a == b
    feats = _all(gpkg, "grids")["features"]
    pts = [list(shapely.point_on_surface(shapely.geometry.shape(f["geometry"])).coords[0]) for f in feats[:20]]
    pts.append([100.0, 10.0])  # outside the county
    body = {"points": pts}
    la, lb = (c.post("/locate", json=body) for c in clients)
    assert la.status_code == lb.status_code == 200
    assert la.get_json() == lb.get_json()
    one = pg.get(f"/locate?lon={pts[0][0]}&lat={pts[0][1]}").get_json()
    assert one == gpkg.get(f"/locate?lon={pts[0][0]}&lat={pts[0][1]}").get_json()
    assert "people" in str(one) and "甲" in str(one)  # the people table came along


def test_patrol_from_postgis_plans_the_same(clients: tuple[Any, Any]) -> None:
    grid = _all(clients[0], "grids")["features"][0]["id"]
    auth = {"Authorization": f"Bearer {TOKENS['wang']}"}  # a route names households: its worker's
    a, b = (c.get(f"/patrol/{grid}?date=2025-03-03", headers=auth) for c in clients)
    assert a.status_code == b.status_code == 200, b.get_json()
    assert a.get_json() == b.get_json()


def test_health_and_logs_never_show_a_password(pg_cluster: Cluster, served_url: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from gridgeo.service import create_app

    db = served_url.split("/")[3].split("?")[0]
    pg_cluster.sql("CREATE ROLE gg_reader LOGIN PASSWORD 'pa55-word'")
    try:
        pg_cluster.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO gg_reader", db)
        with caplog.at_level("INFO"):
            app = create_app({"COUNTY": pg_cluster.url(db, user="gg_reader", password="pa55-word"), "TESTING": True})
        assert app.extensions["county"].path.startswith("postgresql://gg_reader@/")
        assert app.test_client().get("/health").get_json()["layers"][0] == "townships"
        assert "pa55-word" not in caplog.text and "gg_reader@" in caplog.text
    finally:
        pg_cluster.sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM gg_reader", db)
        pg_cluster.sql("DROP ROLE gg_reader")


# ------------------------------------------------------------------------------------------- what PostGIS holds
def test_layers_are_typed_indexed_postgis_tables(county: Path, served_url: str) -> None:
    order = [r[0] for r in _sql(served_url, f"SELECT name FROM {CATALOGUE} ORDER BY position")]
    assert order == [str(n) for n, _ in pyogrio.list_layers(county) if not str(n).startswith("gg_")]
    geo = dict((r[0], (r[1], r[2], r[3])) for r in _sql(
        served_url, "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns"))
    assert geo["grids"][1] == 4490 and geo["households"] == ("geom", 4490, "POINT")
    assert "people" not in geo  # a plain table
    gist = {r[0] for r in _sql(served_url, "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")}
    assert gist == set(geo)
    types = dict(_sql(served_url, "SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'grids'"))
    assert types["fid"] == "bigint" and types["households"] == "bigint" and types["code"] == "text"
    n_grids = _sql(served_url, "SELECT COUNT(*), COUNT(DISTINCT code) FROM grids WHERE ST_IsValid(geom)")[0]
    assert n_grids[0] == n_grids[1] == pyogrio.read_info(county, layer="grids")["features"]


def test_store_moves_with_the_county(county: Path, served_url: str) -> None:
    pg = open_store(served_url)
    src = open_store(county)
    try:
        assert [u.as_dict() for u in pg.users()] == [u.as_dict() for u in src.users()]
        assert pg.visits() == src.visits() and pg.statuses() == src.statuses()
        trail = pg.audit_rows(kind="write")  # the file's reads since the load (other tests') stay in the file
        assert trail[:-2] == src.audit_rows(kind="write")
        assert [r["action"] for r in trail[-2:]] == ["county.load", "version.add"]
        assert trail[-2]["after"]["layers"]["grids"] > 0 and trail[-2]["after"]["store_rows"]["gg_users"] == 1
        (loaded,) = Versions(pg).list()  # the load is a version of its own
        assert (loaded["kind"], loaded["message"], loaded["previous"]) == ("load", "gridgeo load county.gpkg", None)
        place = Placed("2", {"grid": "G"}, ("G",))
        vid = pg.add_visits(parse_visits([{"household": 2, "time": "2025-03-03T10:00:00", "outcome": "absent"}],
                                         lambda h, w: place), actor="wang")
        assert vid[0] > max(v["id"] for v in src.visits())  # the ids go on after the copied ones
    finally:
        pg.close()
        src.close()


def test_users_add_checks_the_scope_in_the_database(county: Path, served_url: str, pg_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A scope must name a unit of the loaded county; a store-only database cannot be checked (a warning)."""
    from gridgeo.cli.main import main

    grid = str(pyogrio.read_dataframe(county, layer="grids", columns=["code"], read_geometry=False)["code"][0])
    assert main(["users", "add", served_url, "li_scoped", "--role", "worker", "--scope", grid]) == 0
    capsys.readouterr()
    assert main(["users", "add", served_url, "li_bad", "--role", "worker", "--scope", "NO-SUCH-UNIT"]) == 2
    assert "'NO-SUCH-UNIT' is not the code of any unit" in capsys.readouterr().err
    assert "li_bad" not in {u.name for u in open_store(served_url, create=False).users()}
    assert main(["users", "add", pg_url, "li_store_only", "--role", "worker", "--scope", "ANY"]) == 0


def test_ogrinfo_reads_the_tables(county: Path, served_url: str, pg_cluster: Cluster) -> None:
    """GDAL's PostgreSQL driver (QGIS reads PostGIS the same way) sees the layers, their SRS and counts."""
    if shutil.which("ogrinfo") is None:
        unavailable("ogrinfo missing (Debian gdal-bin, in APT_TEST_PACKAGES)")
    db = served_url.split("/")[3].split("?")[0]
    out = subprocess.run(["ogrinfo", "-ro", "-so", f"PG:dbname={db} host={pg_cluster.socket_dir} user=postgres",
                          "grids"], capture_output=True, text=True, check=True).stdout
    n = pyogrio.read_info(county, layer="grids")["features"]
    assert f"Feature Count: {n}" in out and "4490" in out


# ------------------------------------------------------------------------------------------- types round trip
@pytest.mark.parametrize("read_rows", [None, 1], ids=["one-read", "a-read-per-row"])
def test_odd_types_read_back_as_the_geopackage_gives_them(tmp_path: Path, pg_url: str, read_rows: int | None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Every odd column and geometry type back as GDAL reads the file; also loaded a row at a time (the
    load reads a layer in chunks: a null integer, a missing geometry, another type in one chunk only)."""
    if read_rows is not None:
        import gridgeo.store.postgis as postgis

        monkeypatch.setattr(postgis, "READ_ROWS", read_rows)
    p = tmp_path / "odd.gpkg"
    n = 4
    odd = gpd.GeoDataFrame({
        "整数": pd.array([1, None, 3, 4], dtype="Int64"), "small": np.array([1, 2, 3, 4], dtype="int32"),
        "x": [1.5, np.nan, 2.5, 1e300], "flag": [True, False, True, False], "名": ["甲", None, "c", "d"],
        "when": pd.to_datetime(["2025-01-01 08:00:00", "2025-06-01 12:30:15", None, "2026-12-31 23:59:59"]),
    }, geometry=[shapely.box(0, 0, 1, 1), shapely.MultiPolygon([shapely.box(2, 2, 3, 3)]), None,
                 shapely.box(5, 5, 6, 6)], crs="EPSG:4548")
    pyogrio.write_dataframe(odd, p, layer="奇怪的层", driver="GPKG")
    pts = gpd.GeoDataFrame({"z": range(n)}, geometry=shapely.points(np.arange(n), np.arange(n), np.arange(n)),
                           crs="EPSG:4490")
    pyogrio.write_dataframe(pts, p, layer="pts3d", driver="GPKG", append=True)
    pyogrio.write_dataframe(pts.iloc[:0], p, layer="empty", driver="GPKG", append=True)
    mixed = gpd.GeoDataFrame({"k": ["p", "l"]}, geometry=[shapely.Point(1, 1), shapely.LineString([(0, 0), (1, 1)])],
                             crs="EPSG:4490")
    pyogrio.write_dataframe(mixed, p, layer="mixed", driver="GPKG", append=True)
    load_geopackage(p, pg_url)
    got = read_layers(pg_url)
    assert list(got) == ["奇怪的层", "pts3d", "empty", "mixed"]
    for name, frame in got.items():
        want = pyogrio.read_dataframe(p, layer=name)
        pd.testing.assert_frame_equal(pd.DataFrame(frame.drop(columns="geometry")),
                                      pd.DataFrame(want.drop(columns="geometry")))
        assert frame.crs == want.crs and list(frame.columns) == list(want.columns)
        assert shapely.equals_exact(np.asarray(frame.geometry.values), np.asarray(want.geometry.values), 0).all() \
            or name == "奇怪的层"  # its missing geometry: None == None is not equals_exact
        assert list(frame.geometry.isna()) == list(want.geometry.isna())
    types = dict(_sql(pg_url, "SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = '奇怪的层'"))
    assert types == {"fid": "bigint", "整数": "bigint", "small": "integer", "x": "double precision",
                     "flag": "boolean", "名": "text", "when": "timestamp without time zone", "geom": "USER-DEFINED"}
    assert _sql(pg_url, "SELECT f_table_name, type, coord_dimension, srid FROM geometry_columns "
                        "ORDER BY f_table_name") == [("empty", "GEOMETRY", 2, 4490), ("mixed", "GEOMETRY", 2, 4490),
                                                     ("pts3d", "POINT", 3, 4490), ("奇怪的层", "MULTIPOLYGON", 2, 4548)]


# ------------------------------------------------------------------------------------------- replace, refuse
def _load(*args: str) -> int:
    return main(["load", *map(str, args)])


def test_reload_needs_replace_and_replaces(tmp_path: Path, county: Path, pg_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _load(county, pg_url, "--no-store") == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("loaded 9 layers (") and "features) and 1 tables from" in line and " s" in line
    assert "@/" in line and "store rows" not in line
    _sql(pg_url, "UPDATE grids SET name = 'marker' WHERE fid = 1")
    assert _load(county, pg_url) == 1
    assert "already holds a loaded county" in capsys.readouterr().err
    assert _sql(pg_url, "SELECT name FROM grids WHERE fid = 1") == [("marker",)]  # refused: unchanged
    with psycopg.connect(pg_url) as conn:  # a view on a layer blocks its drop
        conn.execute("CREATE VIEW v AS SELECT * FROM roads")
    with pytest.raises(StoreError, match="depend"):
        load_geopackage(county, pg_url, replace=True, store=False)
    assert _sql(pg_url, "SELECT name FROM grids WHERE fid = 1") == [("marker",)]  # rolled back whole
    _sql(pg_url, "DROP VIEW v")
    smaller = tmp_path / "smaller.gpkg"  # the county without its roads layer any more
    for name, _ in pyogrio.list_layers(county):
        if name != "roads" and not str(name).startswith("gg_"):
            pyogrio.write_dataframe(pyogrio.read_dataframe(county, layer=name), smaller, layer=name, driver="GPKG",
                                    append=smaller.exists())
    assert _load(smaller, pg_url, "--replace", "--no-store") == 0
    assert "replacing 10 tables" in capsys.readouterr().out
    assert _sql(pg_url, "SELECT to_regclass('roads') IS NULL, (SELECT name FROM grids WHERE fid = 1) != 'marker'") \
        == [(True, True)]


def test_a_store_on_both_sides_is_not_merged(county: Path, pg_url: str) -> None:
    load_geopackage(county, pg_url)
    _sql(pg_url, "UPDATE grids SET name = 'marker' WHERE fid = 1")
    with pytest.raises(ConflictError, match="already has a store.*--no-store"):
        load_geopackage(county, pg_url, replace=True)
    assert _sql(pg_url, "SELECT name FROM grids WHERE fid = 1") == [("marker",)]  # layers untouched too
    before = _sql(pg_url, "SELECT COUNT(*) FROM gg_audit")[0][0]
    s = load_geopackage(county, pg_url, replace=True, store=False)
    # two rows: the load's and its version's (the database's own store kept, its versions going on)
    assert s.store_rows == {} and _sql(pg_url, "SELECT COUNT(*) FROM gg_audit")[0][0] == before + 2
    assert _sql(pg_url, "SELECT id, kind, previous FROM gg_versions ORDER BY id") == [(1, "load", None), (2, "load", 1)]


def test_other_tables_in_the_way_are_refused(county: Path, pg_url: str) -> None:
    _sql(pg_url, "CREATE TABLE grids (x int)")
    with pytest.raises(ConflictError, match="tables named grids; pass --replace"):
        load_geopackage(county, pg_url)
    assert _sql(pg_url, "SELECT to_regclass(%s) IS NULL", (CATALOGUE,)) == [(True,)]


# ------------------------------------------------------------------------------------------- bad input
def _untouched(url: str) -> None:
    tables = {r[0] for r in _sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables <= {"spatial_ref_sys"}, tables


@pytest.mark.parametrize("kind", ["text", "geojson", "missing", "tables-only", "no-epsg"])
def test_bad_input_names_the_file_and_writes_nothing(tmp_path: Path, pg_url: str, kind: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / f"{kind}.gpkg"
    if kind == "text":
        p.write_text("not a geopackage\n" * 20, encoding="utf-8")
    elif kind == "geojson":
        p.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    elif kind == "tables-only":
        pyogrio.write_dataframe(pd.DataFrame({"a": [1]}), p, layer="t", driver="GPKG")
    elif kind == "no-epsg":
        crs = "+proj=tmerc +lat_0=0 +lon_0=116.3 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
        pyogrio.write_dataframe(gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(1, 2)], crs=crs), p,
                                layer="l", driver="GPKG")
    expected = {"text": (FileFormatError, "not a GeoPackage"), "geojson": (FileFormatError, "not a GeoPackage"),
                "missing": (FileFormatError, "no such file"), "tables-only": (InputError, "no layer with features"),
                "no-epsg": (InputError, "no EPSG code")}[kind]
    with pytest.raises(expected[0], match=expected[1]) as err:
        load_geopackage(p, pg_url)
    assert str(p) in str(err.value)
    assert _load(p, pg_url) == 1 and str(p) in capsys.readouterr().err
    _untouched(pg_url)


def test_serving_a_database_without_a_county_says_so(pg_url: str) -> None:
    from gridgeo.service import create_app

    with pytest.raises(InputError, match="holds no county.*gridgeo load"):
        create_app({"COUNTY": pg_url, "TESTING": True})
    assert _load("x.gpkg", "notaurl") == 2


def test_load_summary_reports_time(county: Path, pg_url: str) -> None:
    s = load_geopackage(county, pg_url)
    assert s.layers["grids"] == pyogrio.read_info(county, layer="grids")["features"] and s.tables == {"people": 3}
    assert s.store_rows["gg_visits"] == 1 and s.seconds > 0 and s.replaced == []
    loaded = {r[0] for r in _sql(pg_url, f"SELECT loaded FROM {CATALOGUE}")}
    assert len(loaded) == 1 and dt.datetime.fromisoformat(loaded.pop().replace("Z", "+00:00")).tzinfo is not None
