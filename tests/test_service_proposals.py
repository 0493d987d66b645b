"""Redraw on request: ``POST /villages/{code}/redraw`` proposes, ``/proposals/{id}/accept`` applies, a restore
rolls it back (service/proposals.py), on both backends, the layers in memory and read page by page."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
import shapely.geometry

from gridgeo.store import Versions

from .access_county import Served

pytest_plugins = ("tests.edit_county",)


def _state(s: Served) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The grids (id -> feature), each grid point's grid and each household's grid, as served."""
    grids = {f["id"]: f for f in s.client.get("/collections/grids/items?limit=10000").get_json()["features"]}
    points = {str(f["id"]): f["properties"]["parent"]
              for f in s.client.get("/collections/points/items?limit=10000").get_json()["features"]}
    hh = {str(f["id"]): f["properties"]["grid"] for f in s.client.get(
        "/collections/households/items?limit=10000", headers=s.auth("admin")).get_json()["features"]}
    return grids, points, hh


def _village(s: Served) -> str:
    """The village with the most grids (the one a redraw has most freedom in)."""
    grids = s.client.get("/collections/grids/items?limit=10000").get_json()["features"]
    parents = [f["properties"]["parent"] for f in grids]
    return max(sorted(set(parents)), key=parents.count)


def _tight_bounds(s: Served, village: str) -> list[float]:
    """Bounds around the village's mean grid that its grids today do not all meet, so the engine must move."""
    grids, _, _ = _state(s)
    weights = {str(f["id"]): int(f["properties"].get("households") or 1) for f in s.client.get(
        "/collections/households/items?limit=10000", headers=s.auth("admin")).get_json()["features"]}
    hh = {str(f["id"]): f["properties"]["grid"] for f in s.client.get(
        "/collections/households/items?limit=10000", headers=s.auth("admin")).get_json()["features"]}
    mine = [g for g, f in grids.items() if f["properties"]["parent"] == village]
    sizes = [sum(weights[h] for h, x in hh.items() if x == g) for g in mine]
    mean = sum(sizes) / len(sizes)
    assert max(sizes) > 1.1 * mean or min(sizes) < 0.5 * mean, sizes
    return [round(0.5 * mean), round(1.1 * mean)]


def _propose(s: Served, body: dict[str, Any] | None = None, who: str = "gis", village: str | None = None):  # type: ignore[no-untyped-def]
    return s.client.post(f"/villages/{village or _village(s)}/redraw", json=body or {}, headers=s.auth(who))


def test_a_proposal_accepted_and_rolled_back(either: Served) -> None:
    """Proposed: kept, not applied; accepted: one version (kind redraw) moving the points, every grid of the
    village the union of its points, its households following; restored: all back as it was."""
    s = either
    grids0, points0, hh0 = _state(s)
    versions0 = Versions(s.store).list()  # type: ignore[arg-type]
    resp = _propose(s, {"bounds": _tight_bounds(s, _village(s)), "message": "居民小组调整"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert resp.headers["Location"].endswith(f"/proposals/{doc['id']}") and doc["state"] == "open"
    assert doc["moves"] and doc["rules"]["before"] and doc["rules"]["after"]
    assert _state(s)[1] == points0 and Versions(s.store).list() == versions0  # type: ignore[arg-type]
    assert s.client.get(f"/proposals/{doc['id']}", headers=s.auth("gis")).get_json()["moves"] == doc["moves"]
    target = {m["code"]: m["to"] for m in doc["moves"]}
    after = {r["code"]: r for r in doc["rules"]["after"]}

    acc = s.client.post(f"/proposals/{doc['id']}/accept", headers=s.auth("gis"))
    assert acc.status_code == 201, acc.get_data(as_text=True)
    body = acc.get_json()
    assert body["proposal"]["state"] == "accepted" and body["version"]["kind"] == "redraw"
    assert [(m["code"], m["to"]) for m in body["changes"]["levels"]["points"]["moved"]] == sorted(target.items())
    grids1, points1, hh1 = _state(s)
    assert points1 == {p: target.get(p, g) for p, g in points0.items()}
    for g in after:  # every grid of the village: the union of its points, valid, its counts the report's
        shape = shapely.geometry.shape(grids1[g]["geometry"])
        mine = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in s.client.get(
            "/collections/points/items?limit=10000").get_json()["features"] if f["properties"]["parent"] == g])
        assert shape.is_valid and shapely.symmetric_difference(mine, shape).area < 1e-6 * shape.area, g
        assert sum(1 for p, x in points1.items() if x == g) == after[g]["n_points"]
    moved_hh = [h for h, g in hh0.items() if g in grids0 and any(
        p for p, t in target.items() if points0[p] == g)]
    assert moved_hh and all(hh1[h] in grids1 for h in hh1)
    assert s.client.post(f"/proposals/{doc['id']}/accept", headers=s.auth("gis")).status_code == 409  # once

    back = s.client.post(f"/versions/{body['version']['previous']}/restore", headers=s.auth("gis"))
    assert back.status_code == 201, back.get_data(as_text=True)
    grids2, points2, hh2 = _state(s)
    assert points2 == points0 and hh2 == hh0
    for g in after:  # the grids as they were (the stored ones were their points' union to ~2 m²)
        a, b = (shapely.geometry.shape(x[g]["geometry"]) for x in (grids0, grids2))
        assert b.is_valid and shapely.symmetric_difference(a, b).area < 1e-4 * a.area, g


def test_locks_are_kept_and_the_seed_repeats(served: Served) -> None:
    s = served
    bounds = _tight_bounds(s, _village(s))
    free = _propose(s, {"bounds": bounds}).get_json()
    touched = sorted({m["from"] for m in free["moves"]} | {m["to"] for m in free["moves"]})
    locked = _propose(s, {"bounds": bounds, "locks": touched[:1]}).get_json()
    assert not any(touched[0] in (m["from"], m["to"]) for m in locked["moves"])
    assert locked["rules"]["engine"]["locked"] == touched[:1]
    assert _propose(s, {"bounds": bounds}).get_json()["moves"] == free["moves"]  # same seed, same proposal


def test_a_stale_proposal_is_refused(served: Served) -> None:
    """Two proposals made at one version: accepting one changes the village, so the other is 409."""
    s = served
    bounds = _tight_bounds(s, _village(s))
    first = _propose(s, {"bounds": bounds}).get_json()
    second = _propose(s, {"bounds": bounds, "seed": 1}).get_json()
    assert s.client.post(f"/proposals/{second['id']}/accept", headers=s.auth("gis")).status_code == 201
    _, points, _ = _state(s)
    resp = s.client.post(f"/proposals/{first['id']}/accept", headers=s.auth("gis"))
    assert resp.status_code == 409 and "ask for a new proposal" in resp.get_json()["detail"]
    assert _state(s)[1] == points
    assert s.client.get(f"/proposals/{first['id']}", headers=s.auth("gis")).get_json()["state"] == "open"


@pytest.mark.parametrize(("body", "who", "status", "words"), [
    ({"bounds": [10, 20], "colour": "red"}, "gis", 400, "colour"),
    ({"bounds": [10]}, "gis", 400, "bounds"),
    ({"bounds": [50, 20]}, "gis", 400, "bounds"),
    ({"locks": ["nope"]}, "gis", 400, "nope"),
    ({"seed": -1}, "gis", 400, "seed"),
    ([1, 2], "gis", 400, "JSON object"),
    ({}, None, 401, "sign in"),
    ({}, "worker", 403, ""),
    ({}, "secretary", 403, ""),
])
def test_bad_redraw_requests(served: Served, body: Any, who: str | None, status: int, words: str) -> None:
    resp = served.client.post(f"/villages/{_village(served)}/redraw", json=body, headers=served.auth(who))
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json" and words in resp.get_json()["detail"]


def test_unknown_village_and_proposal(served: Served) -> None:
    s = served
    assert _propose(s, village="999999999999").status_code == 404
    assert s.client.get("/proposals/99", headers=s.auth("gis")).status_code == 404
    assert s.client.get("/proposals/x", headers=s.auth("gis")).status_code == 400
    assert s.client.post("/proposals/99/accept", headers=s.auth("gis")).status_code == 404
    made = _propose(s).get_json()
    assert s.client.get(f"/proposals/{made['id']}", headers=s.auth("viewer")).status_code == 403
    assert s.client.post(f"/proposals/{made['id']}/accept", headers=s.auth("worker")).status_code == 403


def test_a_locked_grid_stops_edits_redraws_and_accepts(served: Served) -> None:
    """Locked: a hand edit touching it is 409 (its preview names the lock), a redraw keeps its points, a
    proposal made before the lock that moves them is not accepted; released: all allowed again."""
    s = served
    village = _village(s)
    bounds = _tight_bounds(s, village)
    before = _propose(s, {"bounds": bounds}).get_json()
    grid = before["moves"][0]["from"]
    h = s.auth("gis")
    made = s.client.post("/locks", json={"code": grid, "reason": "村民代表大会已确认"}, headers=h)
    assert made.status_code == 201 and made.get_json()["author"] == "gis", made.get_data(as_text=True)
    assert s.client.post("/locks", json={"code": grid}, headers=h).status_code == 409
    assert [x["code"] for x in s.client.get("/locks", headers=h).get_json()["locks"]] == [grid]
    # the redraw keeps the locked grid's points; the earlier proposal is refused
    now = _propose(s, {"bounds": bounds}).get_json()
    assert grid in now["rules"]["engine"]["locked"]
    assert not any(grid in (m["from"], m["to"]) for m in now["moves"])
    refused = s.client.post(f"/proposals/{before['id']}/accept", headers=h)
    assert refused.status_code == 409 and f"locks: grid {grid} is locked by gis" in refused.get_json()["detail"]
    # a hand edit giving one of its points away: the preview names the lock, the PATCH is 409
    grids, _, _ = _state(s)
    point = before["moves"][0]["code"]
    other = before["moves"][0]["to"]
    geom = next(shapely.geometry.shape(f["geometry"]) for f in s.client.get(
        "/collections/points/items?limit=10000").get_json()["features"] if str(f["id"]) == point)
    outline = shapely.geometry.mapping(shapely.union(shapely.geometry.shape(grids[other]["geometry"]), geom))
    shown = s.client.patch(f"/collections/grids/items/{other}?preview=true", json={"geometry": outline}, headers=h)
    assert any(b.startswith(f"locks: grid {grid}") for b in shown.get_json()["rules"]["broken"])
    patched = s.client.patch(f"/collections/grids/items/{other}", json={"geometry": outline},
                             headers={**h, "If-Match": "*"})
    assert patched.status_code == 409 and "locks: grid" in patched.get_json()["detail"]
    # released: the proposal goes through
    gone = s.client.delete(f"/locks/{grid}", headers=h)
    assert gone.status_code == 200 and gone.get_json()["released_by"] == "gis"
    assert s.client.delete(f"/locks/{grid}", headers=h).status_code == 404
    assert s.client.post(f"/proposals/{before['id']}/accept", headers=h).status_code == 201
    actions = [r["action"] for r in s.client.get("/audit?limit=1000", headers=s.auth("admin")).get_json()["audit"]]
    assert "lock.add" in actions and "lock.release" in actions


@pytest.mark.parametrize(("body", "who", "status"), [
    ({"code": "nope"}, "gis", 404), ({"code": 5}, "gis", 400), ({"code": "x", "colour": 1}, "gis", 400),
    ({"code": None}, None, 400), ("GRID", None, 401), ("GRID", "worker", 403), ("GRID", "viewer", 403),
])
def test_bad_lock_requests(served: Served, body: Any, who: str | None, status: int) -> None:
    grid = next(iter(_state(served)[0]))
    doc = {"code": grid} if body == "GRID" else body
    resp = served.client.post("/locks", json=doc, headers=served.auth(who))
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
