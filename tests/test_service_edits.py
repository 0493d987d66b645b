"""Part 4 PATCH of a unit's attributes: If-Match, roles and scopes, one transaction with its audit row and
version, the served feature and /locate following; OPTIONS per role. Both backends (the county's own file,
and the county loaded into PostGIS and served from there)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import shapely
import shapely.geometry

from gridgeo.store import Versions

from .access_county import Served, serve_editable
from .service_county import start_live

pytest_plugins = ("tests.edit_county",)


def _edits(s: Served) -> list[dict]:
    return [v for v in Versions(s.store).list() if v["kind"] == "edit"]  # type: ignore[arg-type]


def _grid(s: Served, who: str = "gis") -> tuple[dict, str]:
    resp = s.client.get(f"/collections/grids/items/{s.grid_in}", headers=s.auth(who))
    assert resp.status_code == 200
    return resp.get_json(), resp.headers["ETag"].strip('"')


def _patch(s: Served, body: object, etag: str | None, who: str | None = "gis", code: str | None = None):  # type: ignore[no-untyped-def]
    h = {**s.auth(who), **({"If-Match": etag if etag == "*" else f'"{etag}"'} if etag else {})}
    return s.client.patch(f"/collections/grids/items/{code or s.grid_in}", json=body, headers=h)


def test_edit_a_grid_name_and_leader(either: Served) -> None:
    s = either
    before, etag = _grid(s)
    resp = _patch(s, {"type": "Feature", "properties": {"name": "东坑组网格", "leader": "李新"}}, etag)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert (doc["properties"]["name"], doc["properties"]["leader"]) == ("东坑组网格", "李新")
    assert doc["geometry"] == before["geometry"] and doc["properties"]["code"] == s.grid_in
    after, new_tag = _grid(s, "viewer")
    assert after["properties"]["name"] == "东坑组网格" and new_tag == resp.headers["ETag"].strip('"') != etag
    page = s.client.get("/collections/grids/items?limit=1000").get_json()
    assert [f["properties"]["name"] for f in page["features"] if f["id"] == s.grid_in] == ["东坑组网格"]
    lon, lat = s.pt_in
    here = s.client.get(f"/locate?lon={lon}&lat={lat}").get_json()["properties"]["grid"]
    assert (here["name"], here["leader"]) == ("东坑组网格", "李新")
    (row,) = s.store.audit_rows(action="unit.edit")  # type: ignore[attr-defined]
    assert (row["actor"], row["target"], row["after"]) == ("gis", f"grids/{s.grid_in}",
                                                           {"name": "东坑组网格", "leader": "李新"})
    assert row["before"]["name"] == before["properties"]["name"]
    (version,) = _edits(s)  # (a county loaded into PostGIS has its load's version before)
    assert (version["kind"], version["author"], version["summary"]["levels"]["grids"]["retired"]) == ("edit", "gis", 0)
    edited = Versions(s.store).get(version["id"])["changes"]["levels"]["grids"]["edited"]  # type: ignore[arg-type]
    assert edited == [{"code": s.grid_in, "before": {"name": before["properties"]["name"],
                                                     "leader": before["properties"].get("leader")},
                       "after": {"name": "东坑组网格", "leader": "李新"}}]
    # the same edit again changes nothing: no second version
    assert _patch(s, {"properties": {"name": "东坑组网格"}}, new_tag).status_code == 200
    assert len(_edits(s)) == 1


def test_stale_or_missing_if_match(served: Served) -> None:
    s = served
    _, etag = _grid(s)
    assert _patch(s, {"properties": {"name": "甲"}}, etag).status_code == 200
    stale = _patch(s, {"properties": {"name": "乙"}}, etag)
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    missing = _patch(s, {"properties": {"name": "乙"}}, None)
    assert missing.status_code == 428 and "If-Match" in missing.get_json()["detail"]
    assert _grid(s)[0]["properties"]["name"] == "甲"
    assert _patch(s, {"properties": {"name": "丙"}}, "*").status_code == 200  # any current state


def test_who_may_edit(served: Served) -> None:
    for who, status in ((None, 401), ("viewer", 403), ("worker", 403), ("secretary", 403), ("admin", 200)):
        _, etag = _grid(served)
        resp = _patch(served, {"properties": {"name": f"改名{who}"}}, etag, who)
        assert resp.status_code == status, (who, resp.get_data(as_text=True))
        if status >= 400:
            assert resp.mimetype == "application/problem+json"
            assert _grid(served)[0]["properties"]["name"] != f"改名{who}"


def test_a_gis_user_edits_inside_its_scope_only(served: Served) -> None:
    s = served
    s.tokens["gis_out"] = s.store.add_user("gis_out", role="gis", scope=s.grid_out)[1]  # type: ignore[attr-defined]
    _, etag = _grid(s)
    assert _patch(s, {"properties": {"name": "越界"}}, etag, "gis_out").status_code == 403


_BAD = [
    ({"geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {}}, "Polygon or MultiPolygon"),
    ({"geometry": {"type": "Polygon"}, "properties": {}}, "not GeoJSON"),
    ({"properties": {"code": "X"}}, "code: set by the build"),
    ({"properties": {"households": 3}}, "not editable"),
    ({"properties": {"colour": "red"}}, "no such property"),
    ({"properties": {"name": ["a"]}}, "a text or null"),
    ({"properties": {"name": "x" * 201}}, "at most 200"),
    ({"id": "other", "properties": {"name": "x"}}, "another feature"),
]


def test_bad_edits_are_named_and_change_nothing(served: Served) -> None:
    before, etag = _grid(served)
    for body, words in _BAD:
        resp = _patch(served, body, etag)
        assert resp.status_code == 422, resp.get_data(as_text=True)
        assert words in resp.get_json()["detail"], (body, resp.get_json())
    assert _grid(served)[0] == before and not _edits(served)


def test_restore_rolls_edits_back_as_a_version(served: Served) -> None:
    """Three edits of two grids, then POST /versions/{v}/restore: to before the first (every value back,
    one version of kind restore, an audit row per unit), to after the first (the restore undone where it
    should be); refused to a caller out of scope, for the current version, across a rebuild."""
    s, admin = served, served.auth("admin")
    grid = lambda code: s.client.get(f"/collections/grids/items/{code}").get_json()["properties"]  # noqa: E731
    orig_in, orig_out = grid(s.grid_in), grid(s.grid_out)
    assert _patch(s, {"properties": {"name": "一"}}, "*", "admin").status_code == 200
    first = _edits(s)[0]
    assert _patch(s, {"properties": {"leader": "王"}}, "*", "admin").status_code == 200
    assert _patch(s, {"properties": {"name": "三"}}, "*", "admin", code=s.grid_out).status_code == 200
    base = first["previous"]
    assert base is not None  # the county before its first edit is a version (the load's, or recorded then)
    third = _edits(s)[-1]["id"]
    diff = s.client.get(f"/versions/{base}/diff/{third}", headers=admin)  # three edits composed
    assert diff.status_code == 200, diff.get_data(as_text=True)
    composed = {e["code"]: e for e in diff.get_json()["changes"]["levels"]["grids"]["edited"]}
    assert composed == {
        s.grid_in: {"code": s.grid_in, "before": {"name": orig_in["name"], "leader": orig_in.get("leader")},
                    "after": {"name": "一", "leader": "王"}},
        s.grid_out: {"code": s.grid_out, "before": {"name": orig_out["name"]}, "after": {"name": "三"}}}
    s.tokens["gis_out"] = s.store.add_user("gis_out", role="gis", scope=s.grid_out)[1]  # type: ignore[attr-defined]
    for who, status in (("gis_out", 403), ("worker", 403), (None, 401)):
        assert s.client.post(f"/versions/{base}/restore", headers=s.auth(who)).status_code == status, who
    assert grid(s.grid_in)["name"] == "一"  # refused: nothing changed
    audits = len(s.store.audit_rows(action="unit.edit"))  # type: ignore[attr-defined]
    resp = s.client.post(f"/versions/{base}/restore", json={"message": "撤销试改"}, headers=admin)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert (doc["version"]["kind"], doc["version"]["message"]) == ("restore", f"restore version {base}: 撤销试改")
    assert resp.headers["Location"].endswith(f"/versions/{doc['version']['id']}")
    edited = {e["code"]: e for e in doc["changes"]["levels"]["grids"]["edited"]}
    assert edited[s.grid_in]["after"] == {"name": orig_in["name"], "leader": orig_in.get("leader")}
    assert edited[s.grid_out]["before"] == {"name": "三"}
    got_in, got_out = grid(s.grid_in), grid(s.grid_out)
    assert (got_in["name"], got_in.get("leader"), got_out["name"]) == (orig_in["name"], orig_in.get("leader"),
                                                                       orig_out["name"])
    lon, lat = s.pt_in
    assert s.client.get(f"/locate?lon={lon}&lat={lat}").get_json()["properties"]["grid"]["name"] == orig_in["name"]
    assert len(s.store.audit_rows(action="unit.edit")) == audits + 2  # type: ignore[attr-defined]
    again = s.client.post(f"/versions/{first['id']}/restore", headers=admin)  # to after the first edit
    assert again.status_code == 201
    assert (grid(s.grid_in)["name"], grid(s.grid_in).get("leader"), grid(s.grid_out)["name"]) == (
        "一", orig_in.get("leader"), orig_out["name"])
    latest = Versions(s.store).list()[-1]["id"]  # type: ignore[arg-type]
    current = s.client.post(f"/versions/{latest}/restore", headers=admin)
    assert current.status_code == 409 and "current one" in current.get_json()["detail"]
    assert s.client.post("/versions/999999/restore", headers=admin).status_code == 404
    rebuilt = Versions(s.store).add(kind="build", author="cli", message="gridgeo build",  # type: ignore[arg-type]
                                    changes={"levels": {"grids": {"retired": [s.grid_out], "created": [],
                                                                  "reshaped": [], "kept": 1}}})
    across = s.client.post(f"/versions/{base}/restore", headers=admin)
    assert across.status_code == 409 and f"{rebuilt['id']} (build" in across.get_json()["detail"]
    assert s.client.get(f"/versions/{base}/diff/{rebuilt['id']}", headers=admin).status_code == 409


def _grids_and_points(s: Served) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    grids = {f["id"]: f for f in s.client.get("/collections/grids/items?limit=10000").get_json()["features"]}
    points = s.client.get("/collections/points/items?limit=10000").get_json()["features"]
    return grids, points


def _points_of(s: Served, grid: str) -> set[str]:
    return {str(f["id"]) for f in _grids_and_points(s)[1] if f["properties"]["parent"] == grid}


def _neighbour_point(s: Served, *, within_rules: bool = True) -> tuple[str, str, str, Any]:
    """A grid, and a grid point with households of another grid of its village sharing a border with it
    (that grid having more than one point) whose move breaks no rule (the bounds among them; a preview
    says; ``within_rules=False``: one that breaks the bounds): (the grid, the point's code, its grid, its
    geometry)."""
    grids, points = _grids_and_points(s)
    homes = {f["properties"].get("point") for f in s.client.get("/collections/households/items?limit=10000",
                                                                 headers=s.auth("admin")).get_json()["features"]}
    count: dict[str, int] = {}
    for f in points:
        count[f["properties"]["parent"]] = count.get(f["properties"]["parent"], 0) + 1
    for grid in sorted(grids):
        mine = shapely.geometry.shape(grids[grid]["geometry"])
        for f in points:
            g = f["properties"]["parent"]
            if g == grid or g not in grids or str(f["id"]) not in homes or count[g] < 2 or \
                    grids[g]["properties"]["parent"] != grids[grid]["properties"]["parent"]:
                continue
            geom = shapely.geometry.shape(f["geometry"])
            if shapely.intersection(mine, geom).length > 1e-5:
                outline = shapely.geometry.mapping(shapely.union(mine, geom))
                rules = s.client.patch(f"/collections/grids/items/{grid}?preview=true", headers=s.auth("admin"),
                                       json={"geometry": outline}).get_json()["rules"]
                if rules["ok"] == within_rules and (within_rules or all(
                        b.startswith("bounds:") for b in rules["broken"])):
                    return grid, str(f["id"]), g, geom
    raise AssertionError("no grid with a neighbouring grid point")


def test_a_grid_redrawn_moves_whole_grid_points(either: Served) -> None:
    """PATCH of a grid's geometry taking a neighbour's grid point: the point and its households move, both
    grids are again the unions of their points (their union unchanged), one version with its change list;
    an outline reaching into another village, or one that would cut a grid in two, is 409 naming the rule."""
    s = either
    grids, points = _grids_and_points(s)
    grid, point, was, geom = _neighbour_point(s)
    before_union = shapely.union(shapely.geometry.shape(grids[grid]["geometry"]),
                                 shapely.geometry.shape(grids[was]["geometry"]))
    outline = shapely.union(shapely.geometry.shape(grids[grid]["geometry"]), geom)
    hh = [f for f in s.client.get("/collections/households/items?limit=10000", headers=s.auth("admin")).get_json()[
        "features"] if f["properties"].get("point") == point]
    shown = s.client.patch(f"/collections/grids/items/{grid}?preview=true", headers=s.auth("admin"),
                           json={"geometry": shapely.geometry.mapping(outline)})  # not applied
    assert shown.status_code == 200 and shown.get_json()["applied"] is False, shown.get_data(as_text=True)
    assert shown.get_json()["moves"] == [{"code": point, "from": was, "to": grid}] and shown.get_json()["rules"]["ok"]
    assert point in _points_of(s, was)
    resp = _patch(s, {"geometry": shapely.geometry.mapping(outline)}, "*", "admin", code=grid)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    moved = resp.get_json()["changes"]["levels"]["points"]["moved"]
    assert [(m["code"], m["from"], m["to"]) for m in moved] == [(point, was, grid)]
    grids2, points2 = _grids_and_points(s)
    for g in (grid, was):
        mine = [shapely.geometry.shape(f["geometry"]) for f in points2 if f["properties"]["parent"] == g]
        shape = shapely.geometry.shape(grids2[g]["geometry"])  # the grid is the union of its points (to the
        assert shapely.symmetric_difference(shapely.union_all(mine), shape).area < 1e-6 * shape.area, g  # 1e-7° served)
        assert shapely.geometry.shape(grids2[g]["geometry"]).is_valid
    after_union = shapely.union(shapely.geometry.shape(grids2[grid]["geometry"]),
                                shapely.geometry.shape(grids2[was]["geometry"]))
    # the pair still covers what its points covered (the stored grids were their points' union to ~2 m²)
    theirs = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in points
                                if f["properties"]["parent"] in (grid, was)])
    assert shapely.symmetric_difference(theirs, after_union).area < 1e-6 * theirs.area
    assert shapely.symmetric_difference(before_union, after_union).area < 1e-4 * before_union.area
    now = {f["id"]: f for f in s.client.get("/collections/households/items?limit=10000",
                                            headers=s.auth("admin")).get_json()["features"]}
    on = {str(f["id"]): f["properties"]["parent"] for f in points2}  # the households on each grid's points
    counts = {g: sum(int(f["properties"].get("households") or 1) for f in now.values()
                     if on.get(str(f["properties"].get("point"))) == g) for g in (grid, was)}
    for g in (grid, was):  # the counts the build wrote follow (where the layer has them)
        if "households" in grids2[g]["properties"]:
            assert grids2[g]["properties"]["households"] == counts[g], g
    assert hh and all(now[f["id"]]["properties"]["grid"] == grid for f in hh)
    lon, lat = shapely.point_on_surface(geom).coords[0]
    assert s.client.get(f"/locate?lon={lon}&lat={lat}").get_json()["properties"]["grid"]["code"] == grid
    version = Versions(s.store).list()[-1]  # type: ignore[arg-type]
    assert version["kind"] == "edit" and version["summary"]["levels"]["grids"]["reshaped"] == 2
    # rolled back: the point and its households back in their grid, as a version of its own
    back = s.client.post(f"/versions/{version['previous']}/restore", headers=s.auth("admin"))
    assert back.status_code == 201, back.get_data(as_text=True)
    assert [(m["code"], m["from"], m["to"]) for m in back.get_json()["changes"]["levels"]["points"]["moved"]] == [
        (point, grid, was)]
    assert point in _points_of(s, was) and point not in _points_of(s, grid)
    now = {f["id"]: f for f in s.client.get("/collections/households/items?limit=10000",
                                            headers=s.auth("admin")).get_json()["features"]}
    assert all(now[f["id"]]["properties"]["grid"] == was for f in hh)
    assert s.client.get(f"/locate?lon={lon}&lat={lat}").get_json()["properties"]["grid"]["code"] == was
    assert s.client.post(f"/versions/{version['id']}/restore", headers=s.auth("admin")).status_code == 201  # again
    assert point in _points_of(s, grid)
    grids2, points2 = _grids_and_points(s)
    # into another village: refused, nothing changed
    other = next(f for f in points if grids.get(f["properties"]["parent"], {}).get("properties", {}).get(
        "parent") not in (None, grids[grid]["properties"]["parent"]))
    far = shapely.union(shapely.geometry.shape(grids2[grid]["geometry"]),
                        shapely.geometry.shape(other["geometry"]))
    bad = _patch(s, {"geometry": shapely.geometry.mapping(far)}, "*", "admin", code=grid)
    assert bad.status_code == 409 and "village border" in bad.get_json()["detail"], bad.get_data(as_text=True)
    assert _grids_and_points(s) == (grids2, points2)  # nothing changed
    shown = s.client.patch(f"/collections/grids/items/{grid}?preview=true", headers=s.auth("admin"),
                           json={"geometry": shapely.geometry.mapping(far)}).get_json()
    assert not shown["rules"]["ok"] and any("village border" in b for b in shown["rules"]["broken"])
    # all but one of its points given away to the neighbours except one in the middle: cut or emptied
    tiny = shapely.geometry.shape(grids2[grid]["geometry"]).representative_point().buffer(1e-7)
    cut = _patch(s, {"geometry": shapely.geometry.mapping(tiny)}, "*", "admin", code=grid)
    assert cut.status_code in (200, 409)
    if cut.status_code == 409:
        assert any(w in cut.get_json()["detail"] for w in ("empty", "contiguity", "orphan"))
    assert _grids_and_points(s)[0][was]["geometry"] == grids2[was]["geometry"] or cut.status_code == 200


def test_edits_survive_a_restart(either: Served) -> None:
    import time

    from gridgeo.service import create_app
    from gridgeo.service.locate import Locator

    s = either
    _, etag = _grid(s)
    assert _patch(s, {"properties": {"name": "重启后仍在"}}, etag).status_code == 200
    app = s.client.application  # type: ignore[attr-defined]
    # the first server stopped as a real restart stops it: its /locate index built (its thread reads the
    # file) and its store closed, before the second one opens the file with GDAL, whose own SQLite would
    # delete the WAL and its shared memory under another connection of this process (a bus error)
    for _ in range(600):
        if isinstance(app.extensions.get("locator"), Locator):
            break
        time.sleep(0.05)
    app.extensions["store"].close()
    s.store.close()  # type: ignore[attr-defined]
    again = create_app({k: app.config[k] for k in ("COUNTY", "STORE", "TESTING", "LAZY_AT")}).test_client()
    assert again.get(f"/collections/grids/items/{s.grid_in}").get_json()["properties"]["name"] == "重启后仍在"


def test_options_say_what_the_caller_may_do(served: Served) -> None:
    edit, read = "GET, HEAD, OPTIONS, PATCH, PUT", "GET, HEAD, OPTIONS"
    for who, allow in (("gis", edit), ("admin", edit), ("viewer", read), (None, read), ("worker", read)):
        resp = served.client.options(f"/collections/grids/items/{served.grid_in}", headers=served.auth(who))
        assert resp.status_code == 204 and resp.headers["Allow"] == allow, who
        hh = served.client.options(f"/collections/households/items/{served.hh_in}", headers=served.auth(who))
        assert hh.headers["Allow"] == read
    assert served.client.options("/collections/grids/items/nope").status_code == 404


def test_not_editable_here_is_405(served: Served, people_county: Path, store_target: str, tmp_path: Path) -> None:
    hh = served.client.patch(f"/collections/households/items/{served.hh_in}", json={"properties": {"name": "x"}},
                             headers={**served.auth("admin"), "If-Match": "*"})
    assert hh.status_code == 405 and hh.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert hh.mimetype == "application/problem+json"
    if not store_target.startswith("postgres"):
        return
    # the layers from the file, the store in PostgreSQL: an edit could not be one transaction with its trail
    from gridgeo.service import create_app

    county = tmp_path / "split.gpkg"
    shutil.copy(people_county, county)
    split = create_app({"COUNTY": str(county), "STORE": store_target, "TESTING": True}).test_client()
    gis = served.auth("gis")  # the same store: its users
    resp = split.patch(f"/collections/grids/items/{served.grid_in}", json={"properties": {"name": "x"}},
                       headers={**gis, "If-Match": "*"})
    assert resp.status_code == 405 and "not in a writable store's database" in resp.get_json()["detail"]
    assert split.options(f"/collections/grids/items/{served.grid_in}", headers=gis).headers["Allow"] == (
        "GET, HEAD, OPTIONS")


def test_owslib_updates_a_grid_with_put(people_county: Path, tmp_path: Path) -> None:
    """OWSLib's Part 4 client (``collection_item_update``: PUT of the whole feature) against a live server;
    the feature's geometry sent back as it is, its name changed; a moved geometry is refused."""
    import json
    import urllib.request

    from owslib.ogcapi import REQUEST_HEADERS
    from owslib.ogcapi.features import Features

    original = dict(REQUEST_HEADERS)

    s = serve_editable(people_county, "sqlite", tmp_path)
    url, srv = start_live(s.client.application, threads=2)  # type: ignore[attr-defined]
    try:
        def read() -> tuple[dict, str]:  # from the live server: the ETag is of the bytes its own host gives
            with urllib.request.urlopen(f"{url}/collections/grids/items/{s.grid_in}", timeout=10) as r:
                return json.loads(r.read()), r.headers["ETag"].strip('"')

        def client(**headers: str) -> Features:
            # OWSLib 0.35 keeps every instance's headers in one module dict (ogcapi.REQUEST_HEADERS), so
            # each client here starts from its original content
            REQUEST_HEADERS.clear()
            REQUEST_HEADERS.update(original)
            return Features(url, headers={"Authorization": f"Bearer {s.tokens['gis']}",
                                          "Content-Type": "application/geo+json", **headers})

        feat, etag = read()
        feat["properties"]["name"] = "OWSLib改名"
        assert client(**{"If-Match": f'"{etag}"'}).collection_item_update(
            "grids", s.grid_in, json.dumps(feat, ensure_ascii=False)) is True
        got, etag = read()
        assert got["properties"]["name"] == "OWSLib改名"
        moved = {**feat, "geometry": {"type": "Point", "coordinates": [117.0, 28.0]}}
        with pytest.raises(RuntimeError, match="Polygon or MultiPolygon"):
            client(**{"If-Match": f'"{etag}"'}).collection_item_update("grids", s.grid_in, json.dumps(moved))
        grid, point, was, geom = _neighbour_point(s)  # an outline taking a neighbour's grid point: it moves
        with urllib.request.urlopen(f"{url}/collections/grids/items/{grid}", timeout=10) as r:
            other, tag = json.loads(r.read()), r.headers["ETag"].strip('"')
        grown = {**other, "geometry": shapely.geometry.mapping(shapely.union(
            shapely.geometry.shape(other["geometry"]), geom))}
        assert client(**{"If-Match": f'"{tag}"'}).collection_item_update(
            "grids", grid, json.dumps(grown, ensure_ascii=False)) is True
        assert point in _points_of(s, grid) and point not in _points_of(s, was)
        feat["properties"]["name"] = "无条件"
        with pytest.raises(RuntimeError, match="If-Match"):  # OWSLib sends none of its own
            client().collection_item_update("grids", s.grid_in, json.dumps(feat))
        assert read()[0]["properties"]["name"] == "OWSLib改名"
    finally:
        REQUEST_HEADERS.clear()
        REQUEST_HEADERS.update(original)
        srv.close()  # type: ignore[attr-defined]


def test_an_edit_taking_a_grid_out_of_its_bounds_is_409(served: Served) -> None:
    """The bounds rule: a move that takes a grid outside its household bounds (the county's rules, here
    the defaults) or farther outside is refused, naming the grid and its count; nothing changes."""
    s = served
    grids, _ = _grids_and_points(s)
    grid, point, was, geom = _neighbour_point(s, within_rules=False)
    outline = shapely.union(shapely.geometry.shape(grids[grid]["geometry"]), geom)
    resp = _patch(s, {"geometry": shapely.geometry.mapping(outline)}, "*", "admin", code=grid)
    assert resp.status_code == 409, resp.get_data(as_text=True)
    assert "bounds: grid" in resp.get_json()["detail"] and "households, outside its bounds" in resp.get_json()["detail"]
    assert point in _points_of(s, was) and not _edits(s)


def test_the_codes_edits_look_up_are_indexed_before_the_first_edit(served: Served) -> None:
    """``gridgeo users add`` (the file) and ``gridgeo load`` (PostGIS) index grids.code, points.code and
    households.point, so the first edit of a province does not pay for it in its request."""
    store = served.store
    if store.dialect == "postgresql":  # type: ignore[attr-defined]
        rows = store.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")  # type: ignore[attr-defined]
    else:
        rows = store.query("SELECT name FROM sqlite_master WHERE type = 'index'")  # type: ignore[attr-defined]
    names = {r[0] for r in rows}
    assert {"gridgeo_grids_code", "gridgeo_points_code", "gridgeo_households_point"} <= names, sorted(names)
