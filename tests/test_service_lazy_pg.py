"""service: a county in PostGIS served page by page (service.lazy_pg) answers as memory and the file do.

The test county is loaded into a database of the session's throwaway cluster and served four ways: from
PostGIS lazily (``LAZY_AT=0``) and whole (``LAZY_AT=None``), from its GeoPackage lazily and whole. Pages,
keyset cursors, bboxes (one cutting through polygons), items and numberMatched are compared: byte for
byte with the same database held in memory, as JSON with the file. Then personal fields per role and a
status change, /locate and /patrol, a table with a curve and an empty geometry in it, and how the
service picks which tables to read page by page.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely

from gridgeo.store.postgis import load_geopackage

from .access_county import make_people_county, serve_people
from .pg_cluster import Cluster
from .test_service_lazy import _requests, _same

pytest_plugins = ("tests.service_county",)


@pytest.fixture(scope="module")
def loaded(pg_cluster: Cluster, county_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The test county (a copy) and the database it was loaded into."""
    path = tmp_path_factory.mktemp("lazy_pg") / "county.gpkg"
    shutil.copy(county_path, path)
    url = pg_cluster.create_database("gg_lazy_pg")
    load_geopackage(path, url)
    yield path, url
    pg_cluster.drop_database("gg_lazy_pg")


@pytest.fixture(scope="module")
def apps(loaded: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The county served from PostGIS lazily and in memory, and from a copy of its file both ways."""
    from gridgeo.service import create_app

    path, url = loaded
    d = tmp_path_factory.mktemp("lazy_pg_files")
    out = {}
    for name, source, lazy_at in (("pg_lazy", url, 0), ("pg_mem", url, None), ("file_lazy", "lazy.gpkg", 0),
                                  ("file_mem", "mem.gpkg", None)):
        if not source.startswith("postgresql"):
            shutil.copy(path, d / source)
            source = str(d / source)
        out[name] = create_app({"COUNTY": source, "TESTING": True, "LAZY_AT": lazy_at})
    return out


def _get(app: Any, url: str) -> Any:
    return app.test_client().get(url)


def test_every_layer_is_read_page_by_page(apps: dict[str, Any]) -> None:
    county = apps["pg_lazy"].extensions["county"]
    kinds = {k: type(c).__name__ for k, c in county.collections.items()}
    assert set(kinds.values()) == {"PgLazyCollection"}, kinds
    assert {"grids", "households", "roads"} <= set(kinds)
    assert list(county.collections) == list(apps["pg_mem"].extensions["county"].collections)


def test_answers_are_memory_bytes_and_the_file_json(apps: dict[str, Any]) -> None:
    """Every request of a map, QGIS and a phone: the same bytes as the database held in memory (pages,
    ``after``/``before`` cursors, bboxes, items, other CRSs and datums, 404s), the same JSON as the file
    (and as memory for the collection documents, whose extent is the GiST index's)."""
    for url in _requests(apps["pg_mem"]):
        got = {k: _get(a, url) for k, a in apps.items()}
        assert len({r.status_code for r in got.values()}) == 1, (url, {k: r.status_code for k, r in got.items()})
        if "/items" in url:  # a collection's extent is the index's, float-rounded outwards: equal to 1e-4
            assert got["pg_lazy"].get_data() == got["pg_mem"].get_data(), url
        else:
            _same(json.loads(got["pg_mem"].get_data()), json.loads(got["pg_lazy"].get_data()), url)
        if got["pg_lazy"].mimetype.endswith("json"):
            _same(json.loads(got["file_lazy"].get_data()), json.loads(got["pg_lazy"].get_data()), url)
            _same(json.loads(got["file_mem"].get_data()), json.loads(got["pg_lazy"].get_data()), url)


def test_keyset_pages_walk_the_whole_layer(apps: dict[str, Any]) -> None:
    """``next`` links from the first page to the last give every feature once, in order, as one big page."""
    whole = _get(apps["pg_lazy"], "/collections/households/items?limit=10000").get_json()
    ids: list[Any] = []
    url: str | None = "/collections/households/items?limit=13"
    while url:
        page = _get(apps["pg_lazy"], url).get_json()
        assert page["numberMatched"] == whole["numberMatched"]
        ids += [f["id"] for f in page["features"]]
        url = next((lk["href"].split("localhost", 1)[1] for lk in page["links"] if lk["rel"] == "next"), None)
    assert ids == [f["id"] for f in whole["features"]] and len(ids) == whole["numberMatched"] > 100


def test_bbox_through_polygons_and_single_items(apps: dict[str, Any]) -> None:
    """A box inside one grid and nowhere near its vertices finds it (the exact test, not the index's box);
    numberMatched and every item are those of memory."""
    grids = _get(apps["pg_mem"], "/collections/grids/items?limit=10000").get_json()["features"]
    checked = 0
    for f in grids[:40]:
        g = shapely.geometry.shape(f["geometry"])
        p = shapely.point_on_surface(g)
        box = (p.x - 1e-5, p.y - 1e-5, p.x + 1e-5, p.y + 1e-5)
        if not shapely.box(*box).within(g):
            continue
        url = f"/collections/grids/items?bbox={','.join(map(str, box))}"
        a, b = _get(apps["pg_lazy"], url), _get(apps["pg_mem"], url)
        assert a.get_data() == b.get_data()
        assert f["id"] in [x["id"] for x in a.get_json()["features"]]
        checked += 1
    assert checked >= 10
    w, s, e, n = apps["pg_mem"].extensions["county"].collections["grids"].bbox
    url = f"/collections/grids/items?limit=10000&bbox={w + (e - w) / 3},{s + (n - s) / 3},{e - (e - w) / 4},{n}"
    a, b = _get(apps["pg_lazy"], url).get_json(), _get(apps["pg_mem"], url).get_json()
    assert a == b and 0 < a["numberMatched"] < len(grids)
    edge = [x for x in a["features"] if not shapely.box(*map(float, url.split("bbox=")[1].split(","))).contains(
        shapely.geometry.shape(x["geometry"]))]
    assert edge  # some of them cross the box's edges
    for f in grids[::25]:
        item = f"/collections/grids/items/{f['id']}"
        assert _get(apps["pg_lazy"], item).get_data() == _get(apps["pg_mem"], item).get_data()


def test_locate_and_patrol_on_a_lazy_county(apps: dict[str, Any]) -> None:
    lazy, mem = apps["pg_lazy"], apps["file_mem"]
    assert lazy.extensions["locator_ready"].wait(60)
    w, s, e, n = mem.extensions["county"].collections["villages"].bbox
    rng = np.random.default_rng(7)
    body = {"points": np.column_stack([rng.uniform(w, e, 2000), rng.uniform(s, n, 2000)]).tolist()}
    ra, rb = (a.test_client().post("/locate", json=body).get_json() for a in (mem, lazy))
    _same(ra, rb)
    assert ra["summary"]["inside"] > 500
    grids = [str(k) for k in mem.extensions["county"].collections["grids"].keys[:4]]
    planned = 0
    for g in grids:
        a, b = (x.test_client().get(f"/patrol/{g}?date=2026-11-30") for x in (mem, lazy))
        assert a.status_code == b.status_code, (g, b.get_json())
        if a.status_code == 200:
            _same(a.get_json(), b.get_json(), g)
            planned += 1
    assert planned >= 2


def test_personal_fields_per_role_and_status(tmp_path: Path, pg_cluster: Cluster) -> None:
    """Households' personal columns only to the admin and the worker in scope, as memory serves them; a
    status shows at once in the worker's view."""
    people = make_people_county(tmp_path / "people.gpkg")
    url = pg_cluster.create_database("gg_lazy_pg_people")
    try:
        load_geopackage(people, url)
        lazy = serve_people(url, people, serve=url, LAZY_AT=0)
        shutil.copy(people, tmp_path / "mem.gpkg")
        mem = serve_people(str(tmp_path / "mem.gpkg"), tmp_path / "mem.gpkg", LAZY_AT=None)
        hh = lazy.client.application.extensions["county"].collections["households"]
        assert type(hh).__name__ == "PgLazyCollection" and hh.has_private
        roles = (None, "admin", "worker", "worker_out", "secretary", "viewer", "gis")

        def pages(s: Any) -> list[Any]:
            return [s.client.get(u, headers=s.auth(who)).get_json() for who in roles
                    for u in ("/collections/households/items?limit=10000", f"/collections/households/items/{s.hh_in}",
                              f"/collections/households/items/{s.hh_out}")]

        got = pages(lazy)
        _same(pages(mem), got)
        assert any("name" in f["properties"] for f in got[3]["features"])  # the admin's page
        assert not any("name" in f["properties"] for f in got[0]["features"])  # anonymous
        assert "name" in got[7]["properties"] and "name" not in got[8]["properties"]  # the worker: in scope only
        for s in (lazy, mem):
            r = s.client.post(f"/households/{s.hh_in}/status", json={"priority": "red"}, headers=s.auth("worker"))
            assert r.status_code == 201, r.get_data(as_text=True)
        got = pages(lazy)
        _same(pages(mem), got)
        assert got[7]["properties"]["priority"] == "red"
        lazy.store.close()
        mem.store.close()
    finally:
        pg_cluster.drop_database("gg_lazy_pg_people")


def test_a_bad_geometry_row_is_named_and_served_null(loaded: tuple[Path, str], pg_cluster: Cluster,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A curve (a GIS wrote it into a generic geometry column), an empty polygon and a bow tie: the service
    starts, logs each unreadable one with its layer and id, serves it as null and the rest as they are."""
    from gridgeo.service import create_app

    url = pg_cluster.create_database("gg_lazy_pg_bad")
    try:
        load_geopackage(loaded[0], url)
        with psycopg.connect(url, autocommit=True) as conn:
            codes = [r[0] for r in conn.execute("SELECT code FROM grids ORDER BY code LIMIT 3")]
            conn.execute("ALTER TABLE grids ALTER COLUMN geom TYPE geometry(Geometry, 4490)")
            conn.execute("UPDATE grids SET geom = ST_SetSRID(ST_GeomFromText('CURVEPOLYGON(CIRCULARSTRING(117 28, "
                         "117.01 28.01, 117 28))'), 4490) WHERE code = %s", (codes[0],))
            conn.execute("UPDATE grids SET geom = ST_SetSRID('MULTIPOLYGON EMPTY'::geometry, 4490) WHERE code = %s",
                         (codes[1],))
            corners = ", ".join(f"ST_Point(ST_X{a}(geom), ST_Y{b}(geom))" for a, b in (
                ("Min", "Min"), ("Max", "Max"), ("Max", "Min"), ("Min", "Max"), ("Min", "Min")))
            conn.execute(f"UPDATE grids SET geom = ST_SetSRID(ST_MakePolygon(ST_MakeLine(ARRAY[{corners}])), 4490) "
                         "WHERE code = %s", (codes[2],))
        with caplog.at_level(logging.WARNING):
            app = create_app({"COUNTY": url, "TESTING": True, "LAZY_AT": 0})
            assert app.extensions["locator_ready"].wait(60)
            c = app.test_client()
            page = c.get("/collections/grids/items?limit=10000")
            one = c.get(f"/collections/grids/items/{codes[0]}")
            w, s, e, n = app.extensions["county"].collections["grids"].bbox
            located = c.post("/locate", json={"points": [[(w + e) / 2, (s + n) / 2]]})
        assert page.status_code == one.status_code == located.status_code == 200
        by_id = {f["id"]: f for f in page.get_json()["features"]}
        assert by_id[codes[0]]["geometry"] is None and by_id[codes[1]]["geometry"] is None
        assert by_id[codes[2]]["geometry"]["type"] == "Polygon" and one.get_json()["geometry"] is None
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert f"grids: feature {codes[0]}: unreadable geometry" in text, text
        assert f"grids: feature {codes[1]}: empty geometry" in text, text
        assert len(by_id) == len(app.extensions["county"].collections["grids"])
    finally:
        pg_cluster.drop_database("gg_lazy_pg_bad")


def test_which_tables_are_read_page_by_page(loaded: tuple[Path, str]) -> None:
    """As the file's rule: more rows than ``lazy_at`` or more geometry than LAZY_BYTES; None: none."""
    from gridgeo.service import store as store_mod
    from gridgeo.service.lazy_pg import PgLazyCollection

    _, url = loaded
    mem = store_mod.load_county(url, lazy_at=None)
    n_grids = len(mem.collections["grids"])
    county = store_mod.load_county(url, lazy_at=n_grids)
    lazy = {k for k, c in county.collections.items() if isinstance(c, PgLazyCollection)}
    want = {k for k, c in mem.collections.items() if len(c) > n_grids}
    assert "grids" not in lazy and want <= lazy and "households" in lazy
    assert store_mod._load_postgis(url, None).collections.keys() == mem.collections.keys()
    assert not any(isinstance(c, PgLazyCollection) for c in mem.collections.values())
