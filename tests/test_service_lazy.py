"""service: layers served from the GeoPackage page by page (service.lazy) answer as the in-memory ones do.

Every layer of the test counties is served lazily (``LAZY_AT=0``) next to the same county held in memory
(``LAZY_AT=None``), and the answers compared request by request: pages, keyset cursors, bboxes, items,
other CRSs and datums, /locate, personal fields per role, a status change, a patrol plan. Then a file with
broken features: the service starts, names each in the log, and serves the rest.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from .access_county import make_people_county, serve_people

pytest_plugins = ("tests.service_county",)


def _same(a: Any, b: Any, path: str = "") -> None:
    """Deep equality of two JSON documents; numbers equal as numbers (3 == 3.0), extents to 1e-4 degree."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            if k != "timeStamp":  # the file's mtime: two copies of it differ
                _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, bool) or isinstance(b, bool):
        assert a == b and type(a) is type(b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, int | float) and isinstance(b, int | float):
        tol = 1e-4 if ".extent" in path else 0.0  # the R*tree keeps boxes in float32
        assert abs(a - b) <= tol, f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def pair(county_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from gridgeo.service import create_app

    d = tmp_path_factory.mktemp("lazy")
    mem, lazy = d / "mem.gpkg", d / "lazy.gpkg"
    shutil.copy(county_path, mem)
    shutil.copy(county_path, lazy)
    a = create_app({"COUNTY": str(mem), "TESTING": True, "LAZY_AT": None})
    b = create_app({"COUNTY": str(lazy), "TESTING": True, "LAZY_AT": 0})
    return a, b


def _requests(app) -> list[str]:  # type: ignore[no-untyped-def]
    """What a map, QGIS and a phone ask of every collection."""
    out = ["/collections", "/"]
    for name, coll in app.extensions["county"].collections.items():
        base = f"/collections/{name}"
        keys = [str(coll.key_at(i)) for i in (0, min(3, len(coll) - 1), len(coll) - 1)]
        w, s, e, n = coll.bbox
        mid = ((w + e) / 2, (s + n) / 2)
        dx, dy = (e - w) / 6, (n - s) / 6
        out += [base, f"{base}/items", f"{base}/items?limit=7", f"{base}/items?limit=7&after={keys[1]}",
                f"{base}/items?limit=7&before={keys[2]}", f"{base}/items?limit=5&after=zz",
                f"{base}/items?limit=50&bbox={mid[0] - dx},{mid[1] - dy},{mid[0] + dx},{mid[1] + dy}",
                f"{base}/items?limit=3&bbox={mid[0]},{mid[1]},{mid[0] + dx},{mid[1] + dy}&after={keys[0]}",
                f"{base}/items?limit=10000&bbox={w - 1},{s - 1},{e + 1},{n + 1}",
                f"{base}/items?limit=4&crs=http://www.opengis.net/def/crs/EPSG/0/4490",
                f"{base}/items?limit=4&coords=gcj02", f"{base}/items/{keys[1]}",
                f"{base}/items/{keys[0]}?coords=bd09", f"{base}/items/no-such-id"]
    return out


def test_lazy_answers_as_memory(pair) -> None:  # type: ignore[no-untyped-def]
    mem, lazy = pair
    kinds = {k: type(c).__name__ for k, c in lazy.extensions["county"].collections.items()}
    assert set(kinds.values()) == {"LazyCollection"}, kinds
    a, b = mem.test_client(), lazy.test_client()
    for url in _requests(mem):
        ra, rb = a.get(url), b.get(url)
        assert ra.status_code == rb.status_code, url
        if ra.mimetype.endswith("json"):
            _same(json.loads(ra.get_data()), json.loads(rb.get_data()), url)
    html = b.get("/collections/grids/items?f=html&limit=3")
    assert html.status_code == 200 and "<table" in html.get_data(as_text=True)


def test_lazy_locate_as_memory(pair) -> None:  # type: ignore[no-untyped-def]
    mem, lazy = pair
    w, s, e, n = mem.extensions["county"].collections["villages"].bbox
    rng = np.random.default_rng(4)
    body = {"points": np.column_stack([rng.uniform(w, e, 3000), rng.uniform(s, n, 3000)]).tolist()}
    ra = mem.test_client().post("/locate", json=body).get_json()
    rb = lazy.test_client().post("/locate", json=body).get_json()
    _same(ra, rb)
    assert ra["summary"]["inside"] > 1000


def test_locate_asks_stored_levels_as_memory(county_path: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Served from the file, the coarser levels keep only their boxes (service.locate_pieces): with the grid
    points of half the villages gone, places there are found in grids read from the file, through a cache
    of a few polygons, exactly as the county held in memory finds them."""
    from gridgeo.service import create_app, locate_pieces

    monkeypatch.setattr(locate_pieces, "CACHE_VERTICES", 500)  # evict all the time
    apps = {}
    for lazy_at in (None, 0):
        path = tmp_path / f"{lazy_at}.gpkg"
        shutil.copy(county_path, path)
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM points WHERE parent IN (SELECT code FROM grids WHERE parent IN "
                     "(SELECT code FROM villages WHERE fid % 2 = 0))")
        conn.commit()
        conn.close()
        apps[lazy_at] = create_app({"COUNTY": str(path), "TESTING": True, "LAZY_AT": lazy_at})
        assert apps[lazy_at].extensions["locator_ready"].wait(60)
    levels = apps[0].extensions["locator"].levels
    assert {k for k, lv in levels.items() if isinstance(lv.pieces, locate_pieces.StoredPieces)} == \
        {"grid", "exclusive", "village", "block", "township"}
    w, s, e, n = apps[None].extensions["county"].collections["villages"].bbox
    rng = np.random.default_rng(5)
    body = {"points": np.column_stack([rng.uniform(w, e, 4000), rng.uniform(s, n, 4000)]).tolist()}
    got = [a.test_client().post("/locate", json=body).get_json() for a in apps.values()]
    _same(got[0], got[1])
    props = [f["properties"] for f in got[1]["features"]]
    assert sum(p["grid"] is not None and p["point"] is None for p in props) > 300  # asked of the stored grids
    assert sum(p["point"] is not None for p in props) > 300


def test_lazy_personal_fields_and_status(tmp_path: Path) -> None:
    """Per role, the households pages of the lazy layer are the in-memory ones; a status shows at once."""
    people = make_people_county(tmp_path / "people.gpkg")
    served = {}
    for mode, lazy_at in (("mem", None), ("lazy", 0)):
        county = tmp_path / f"{mode}.gpkg"
        shutil.copy(people, county)
        served[mode] = serve_people(str(county), county, LAZY_AT=lazy_at)
    assert type(served["lazy"].client.application.extensions["county"].collections["households"]).__name__ \
        == "LazyCollection"
    roles = (None, "admin", "worker", "worker_out", "viewer")

    def pages() -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for mode, s in served.items():
            out[mode] = [s.client.get(u, headers=s.auth(who)).get_json()
                         for who in roles for u in ("/collections/households/items?limit=10000",
                                                    f"/collections/households/items/{s.hh_in}",
                                                    f"/collections/households/items/{s.hh_out}")]
        return out

    got = pages()
    _same(got["mem"], got["lazy"])
    admin_page = got["lazy"][3]
    assert any("name" in f["properties"] for f in admin_page["features"])  # personal: there for the admin
    assert not any("name" in f["properties"] for f in got["lazy"][0]["features"])  # and not for anonymous
    for s in served.values():
        r = s.client.post(f"/households/{s.hh_in}/status", json={"priority": "red"}, headers=s.auth("worker"))
        assert r.status_code == 201, r.get_data(as_text=True)
    got = pages()
    _same(got["mem"], got["lazy"])
    mine = served["lazy"].client.get(f"/collections/households/items/{served['lazy'].hh_in}",
                                     headers=served["lazy"].auth("worker")).get_json()
    assert mine["properties"]["priority"] == "red"
    plans = [s.client.get(f"/patrol/{s.grid_in}?date=2026-11-30", headers=s.auth("worker")) for s in served.values()]
    assert plans[0].status_code == plans[1].status_code == 200
    _same(plans[0].get_json(), plans[1].get_json())


def test_bad_features_are_named_and_skipped(county_path: Path, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """Garbage geometry bytes, an empty polygon and a bow tie, in a lazy layer and a /locate level: the
    service starts, logs each with its layer and id, and serves everything else."""
    from gridgeo.service import create_app

    path = tmp_path / "bad.gpkg"
    shutil.copy(county_path, path)
    conn = sqlite3.connect(path)
    # the R*tree triggers call SpatiaLite/GDAL functions Python's SQLite has not: off while breaking rows
    # (the tree keeps the old boxes of those rows, which the exact test then rejects)
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'rtree_%'"
                            ).fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    gcodes = [r[0] for r in conn.execute("SELECT code FROM grids ORDER BY code LIMIT 3")]
    hh_fids = [r[0] for r in conn.execute("SELECT fid FROM households ORDER BY fid LIMIT 2")]
    conn.execute("UPDATE grids SET geom = ? WHERE code = ?", (b"not a geometry", gcodes[0]))
    empty = b"GP\x00\x11\xba\x11\x00\x00" + bytes.fromhex("010300000000000000")  # flags: empty, no envelope
    conn.execute("UPDATE grids SET geom = ? WHERE code = ?", (empty, gcodes[1]))
    from gridgeo.service.lazy import gpkg_wkb

    blob = conn.execute("SELECT geom FROM grids WHERE code = ?", (gcodes[2],)).fetchone()[0]
    x0, y0, x1, y1 = shapely.bounds(shapely.from_wkb(gpkg_wkb(blob))).tolist()
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    conn.execute("UPDATE grids SET geom = ? WHERE code = ?",
                 (b"GP\x00\x01" + struct.pack("<i", 4490) + shapely.to_wkb(bowtie), gcodes[2]))
    conn.execute("UPDATE households SET geom = ? WHERE fid = ?", (b"GP\x00\x01\xba\x11\x00\x00\x01\x01", hh_fids[0]))
    for _, sql in triggers:
        conn.execute(sql)
    conn.commit()
    conn.close()
    for lazy_at in (0, None):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            app = create_app({"COUNTY": str(path), "TESTING": True, "LAZY_AT": lazy_at})
            assert app.extensions["locator_ready"].wait(60)  # lazy levels: built in the background
            c = app.test_client()
            page = c.get("/collections/households/items?limit=5")
            assert page.status_code == 200
            grids = c.get("/collections/grids/items?limit=10000").get_json()
        by_id = {f["id"]: f for f in grids["features"]}
        assert by_id[gcodes[0]]["geometry"] is None and by_id[gcodes[2]]["geometry"] is not None
        assert page.get_json()["features"][0]["geometry"] is None
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert f"grids: feature {gcodes[2]}: invalid polygon" in text, text  # repaired for /locate, served as is
        if lazy_at == 0:  # the lazy reader names each unreadable feature itself
            assert f"grids: feature {gcodes[0]}: unreadable geometry" in text, text
            assert f"households: feature {hh_fids[0]}: unreadable geometry" in text, text
        w, s, e, n = app.extensions["county"].collections["villages"].bbox
        doc = c.post("/locate", json={"points": [[(w + e) / 2, (s + n) / 2]]}).get_json()
        assert doc["numberReturned"] == 1


@pytest.mark.parametrize("lazy_at", [0, None], ids=["from-file", "in-memory"])
def test_locate_early_then_503_while_its_index_is_built(county_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                        lazy_at: int | None) -> None:
    """Pages answer at once; while the /locate index is built in a thread, a few places are answered from
    each level's own spatial index (the same answer the index gives), a bigger batch is 503 with Retry-After."""
    import threading

    from gridgeo.service import create_app
    from gridgeo.service import locate as locate_mod

    gate = threading.Event()
    real = locate_mod.Locator.__init__

    def slow(self, county, **kw):  # type: ignore[no-untyped-def]
        gate.wait(30)
        real(self, county, **kw)

    monkeypatch.setattr(locate_mod.Locator, "__init__", slow)
    monkeypatch.setattr(locate_mod, "LOCATE_WAIT", 0.05)
    app = create_app({"COUNTY": str(county_path), "TESTING": True, "LOCATE_BACKGROUND": True, "LAZY_AT": lazy_at})
    c = app.test_client()
    assert c.get("/collections/grids/items?limit=2").status_code == 200
    pts = [f["geometry"]["coordinates"] for f in
           c.get("/collections/households/items?limit=40").get_json()["features"]][:40]
    pts.append([0.0, 0.0])  # outside the county
    early = [c.get(f"/locate?lon={x}&lat={y}") for x, y in pts]
    assert all(r.status_code == 200 for r in early)
    assert early[0].get_json()["properties"]["point"] is not None
    batch = c.post("/locate", json={"points": pts})
    assert batch.status_code == 200
    r = c.post("/locate", json={"points": pts * 2})  # more than EARLY_MAX
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.mimetype == "application/problem+json" and "being built" in r.get_json()["detail"]
    gate.set()
    assert app.extensions["locator_ready"].wait(30)
    late = [c.get(f"/locate?lon={x}&lat={y}") for x, y in pts]
    assert [r.get_json() for r in late] == [r.get_json() for r in early]
    assert c.post("/locate", json={"points": pts}).get_json() == batch.get_json()
    assert c.post("/locate", json={"points": pts * 2}).status_code == 200


def test_patrol_reads_households_grid_by_grid(county_path: Path, tmp_path: Path) -> None:
    """A county whose households carry counts and no buildings layer (as a build writes): served from the
    file, the planner reads each grid's households when that grid is planned, never the layer whole, and
    plans what it plans from memory."""
    import pyogrio
    from gridgeo.service import create_app

    from gridgeo.patrol.county import ByGrid

    path = tmp_path / "built.gpkg"
    for i, (name, _) in enumerate(pyogrio.list_layers(county_path)):
        if name != "buildings":
            pyogrio.write_dataframe(pyogrio.read_dataframe(county_path, layer=name), path, layer=name,
                                    append=i > 0)
    apps = {lz: create_app({"COUNTY": str(path), "TESTING": True, "LAZY_AT": lz}) for lz in (None, 0)}
    grids = [str(k) for k in apps[None].extensions["county"].collections["grids"].keys[:4]]
    planned_ok = 0
    for g in grids:
        a, b = (apps[lz].test_client().get(f"/patrol/{g}?date=2026-11-30") for lz in (None, 0))
        assert a.status_code == b.status_code
        if a.status_code == 200:
            _same(a.get_json(), b.get_json(), g)
            planned_ok += 1
    assert planned_ok >= 2
    planner = apps[0].extensions["planner"]
    assert planner.regions is not None and planner._regional  # roads from the file: planned by township
    for planned in planner._regional.values():
        assert isinstance(planned.buildings, ByGrid) and planned.households is None
        assert len(planned.buildings._kept) <= len(grids)  # only the grids asked for were read
    assert sum(len(p.buildings._kept) for p in planner._regional.values()) > 0
    assert planner._county is None  # the whole county was never opened


def test_lazy_numbers_read_as_in_memory(tmp_path: Path) -> None:
    """A REAL cell is written as Python writes it (0.1, not 0.10000000000000001), and reads back the same."""
    import geopandas as gpd
    import pyogrio
    import shapely
    from gridgeo.service import create_app

    values = [0.1, 0.30000000000000004, 2.0, 1 / 3, 1e-7, 123456.789]
    gdf = gpd.GeoDataFrame({"code": [f"P{i}" for i in range(len(values))], "share": values},
                           geometry=shapely.points([[117.0 + i / 100, 28.0] for i in range(len(values))]),
                           crs="EPSG:4490")
    path = tmp_path / "numbers.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="pois", driver="GPKG")
    texts = {}
    for mode, lazy_at in (("mem", None), ("lazy", 0)):
        app = create_app({"COUNTY": str(path), "TESTING": True, "LAZY_AT": lazy_at})
        texts[mode] = app.test_client().get("/collections/pois/items?limit=100").get_data(as_text=True)
    for v in values[:4] + values[5:]:  # 1e-7: SQLite writes 1.0e-07, the same number
        assert f'"share":{v!r}' in texts["lazy"] and f'"share":{v!r}' in texts["mem"], v
    got = [f["properties"]["share"] for f in json.loads(texts["lazy"])["features"]]
    assert got == values


def test_region_of_layers_in_memory_is_their_part(tmp_path: Path) -> None:
    """County.region on layers held in memory: the features whose box meets the bounds, every column."""
    import shapely
    from gridgeo.service.store import load_county

    county = load_county(make_people_county(tmp_path / "people.gpkg"), lazy_at=None)
    hh = county.collections["households"]
    w, s, e, n = hh.bbox
    box = (w, s, (w + e) / 2, (s + n) / 2)
    part = county.region(box)["households"]
    whole = county.frames()["households"]
    inside = whole[shapely.intersects(whole.geometry.values, shapely.box(*box))].reset_index(drop=True)
    assert 0 < len(part) < len(whole) and list(part.columns) == list(whole.columns)
    assert part.drop(columns="geometry").equals(inside.drop(columns="geometry"))
