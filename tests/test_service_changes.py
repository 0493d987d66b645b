"""service: a changed feature through the live indexes (issue 15 item 6): Locator and Collection replace/delete.

Each change is checked against brute force with shapely on the changed layer, on a fresh app per test
(the changes stay in memory; the file is never written).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import shapely

pytest_plugins = ("tests.service_county",)


@pytest.fixture
def fresh(county_path):  # type: ignore[no-untyped-def]
    from gridgeo.service import create_app

    return create_app({"COUNTY": str(county_path), "TESTING": True})


def _grid_codes(app, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The grid point (the finest level, located spatially: no finer level fills it) of each place."""
    loc = app.extensions["locator"]
    grids = app.extensions["county"].collections["points"]
    rows = loc.locate(lon, lat)["point"]
    return [None if r < 0 else str(grids.keys[r]) for r in rows.tolist()]


def _truth(geoms: dict[str, object], lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
    """The first code (in id order) whose polygon covers each place, by brute force."""
    out: list[str | None] = []
    for p in shapely.points(lon, lat):
        hit = [c for c, g in sorted(geoms.items()) if g is not None and shapely.intersects(g, p)]
        out.append(hit[0] if hit else None)
    return out


def _places(coll, n: int, seed: int):  # type: ignore[no-untyped-def]
    w, s, e, nn = coll.bbox
    rng = np.random.default_rng(seed)
    return rng.uniform(w, e, n), rng.uniform(s, nn, n)


def test_locator_replace_moves_a_grid(fresh) -> None:  # type: ignore[no-untyped-def]
    """A grid redrawn onto its neighbour's ground: places there now answer the smaller code of the two."""
    grids = fresh.extensions["county"].collections["points"]
    codes = [str(k) for k in grids.keys]
    a, b = codes[0], codes[1]
    geoms = dict(zip(codes, grids.geoms.tolist(), strict=True))
    moved = shapely.buffer(geoms[b], 0.0005)  # b's ground and a margin around it
    assert fresh.extensions["locator"].replace("points", a, moved) is True
    geoms[a] = moved
    lon, lat = _places(grids, 3000, 1)
    truth = _truth(geoms, lon, lat)
    assert _grid_codes(fresh, lon, lat) == truth  # a big batch: the places' own tree
    assert _grid_codes(fresh, lon[:500], lat[:500]) == truth[:500]  # a small one: the pieces' tree
    # and the old ground of a is now someone else's or nobody's
    inside = shapely.point_on_surface(grids.geoms[0])
    assert _grid_codes(fresh, np.array([inside.x]), np.array([inside.y])) == _truth(
        geoms, np.array([inside.x]), np.array([inside.y]))


def test_locator_delete_and_bad_replacements(fresh, caplog) -> None:  # type: ignore[no-untyped-def]
    """Deleted: found nowhere. A bow tie: repaired and found. An empty polygon: False, found nowhere."""
    import logging

    from gridgeo.errors import NotFoundError

    loc = fresh.extensions["locator"]
    grids = fresh.extensions["county"].collections["points"]
    codes = [str(k) for k in grids.keys]
    geoms = dict(zip(codes, grids.geoms.tolist(), strict=True))
    loc.delete("points", codes[2])
    geoms[codes[2]] = None
    x0, y0, x1, y1 = shapely.bounds(geoms[codes[3]]).tolist()
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    with caplog.at_level(logging.WARNING, logger="gridgeo.service.locate"):
        assert loc.replace("points", codes[3], bowtie) is True
    assert any(codes[3] in r.getMessage() and "invalid" in r.getMessage() for r in caplog.records)
    geoms[codes[3]] = shapely.make_valid(bowtie)
    assert loc.replace("points", codes[4], shapely.Polygon()) is False
    geoms[codes[4]] = None
    lon, lat = _places(grids, 3000, 2)
    assert _grid_codes(fresh, lon, lat) == _truth(geoms, lon, lat)
    with pytest.raises(NotFoundError):
        loc.replace("points", "no-such-grid", bowtie)
    with pytest.raises(NotFoundError):
        loc.delete("no-such-layer", codes[0])


def test_locator_reads_while_a_grid_changes(fresh) -> None:  # type: ignore[no-untyped-def]
    """Batches located in threads while one grid is flipped between two shapes: every answer is one of the
    two states' answers for that place, never an error or a third value."""
    loc = fresh.extensions["locator"]
    grids = fresh.extensions["county"].collections["points"]
    codes = [str(k) for k in grids.keys]
    geoms = dict(zip(codes, grids.geoms.tolist(), strict=True))
    original, moved = geoms[codes[0]], shapely.buffer(geoms[codes[1]], 0.0005)
    lon, lat = _places(grids, 4000, 3)
    before = _truth(geoms, lon, lat)
    after = _truth({**geoms, codes[0]: moved}, lon, lat)
    bad: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            got = _grid_codes(fresh, lon, lat)
            bad.extend(f"{i}: {g}" for i, g in enumerate(got) if g not in (before[i], after[i]))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for k in range(20):
        loc.replace("points", codes[0], moved if k % 2 == 0 else original)
    stop.set()
    for t in threads:
        t.join()
    assert not bad, bad[:5]


def test_households_bbox_runs_on_the_live_index(fresh, client_for) -> None:  # type: ignore[no-untyped-def]
    """households answers bboxes from its LiveIndex; a household moved or deleted is found (or not) at once,
    in the same answer an STRtree over the changed layer gives."""
    coll = fresh.extensions["county"].collections["households"]
    assert coll.live is not None and coll.tree is None
    client = client_for(fresh)
    key = coll.keys[5]
    old = coll.geoms[5]
    new = shapely.Point(old.x + 0.01, old.y + 0.01)
    assert coll.replace(key, new) is True
    box = (new.x - 1e-4, new.y - 1e-4, new.x + 1e-4, new.y + 1e-4)
    doc = client.get("/collections/households/items?limit=1000&bbox=" + ",".join(map(str, box))).get_json()
    truth = shapely.STRtree(coll.geoms).query(shapely.box(*box), predicate="intersects")
    assert sorted(f["id"] for f in doc["features"]) == sorted(int(coll.keys[i]) for i in truth)
    assert int(key) in [f["id"] for f in doc["features"]]
    item = client.get(f"/collections/households/items/{key}").get_json()
    assert item["geometry"]["coordinates"] == [round(new.x, 7), round(new.y, 7)]
    n = len(coll)
    coll.delete(key)
    assert len(coll) == n - 1
    assert client.get(f"/collections/households/items/{key}").status_code == 404
    doc = client.get("/collections/households/items?limit=1000&bbox=" + ",".join(map(str, box))).get_json()
    assert int(key) not in [f["id"] for f in doc["features"]]
    assert client.get("/collections/households/items?limit=1").get_json()["numberMatched"] == n - 1
    # a layer without a live index changes too (its STRtree rebuilt)
    grids = fresh.extensions["county"].collections["grids"]
    g0 = str(grids.keys[0])
    far = shapely.box(150.0, 10.0, 150.1, 10.1)
    grids.replace(g0, far)
    doc = client.get("/collections/grids/items?bbox=150.01,10.01,150.02,10.02").get_json()
    assert [f["id"] for f in doc["features"]] == [g0]


@pytest.fixture
def client_for():  # type: ignore[no-untyped-def]
    return lambda app: app.test_client()
