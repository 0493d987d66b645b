"""Accounts and access on the served county: the role x route matrix, personal fields, tokens, throttling."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from .access_county import PERSONAL, Served, make_people_county, serve_copy, serve_people

ROLES = (None, "admin", "gis", "worker", "worker_out", "secretary", "viewer")
GPX = (b'<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
       b'<trkpt lat="28.0" lon="115.0"><time>2026-11-30T01:00:00Z</time></trkpt>'
       b'<trkpt lat="28.001" lon="115.0"><time>2026-11-30T01:05:00Z</time></trkpt></trkseg></trk></gpx>')


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("access") / "county.gpkg")


@pytest.fixture
def served(people_county: Path, store_target: str, tmp_path: Path) -> Served:
    return serve_copy(people_county, store_target, tmp_path)


def _visit(hid: str) -> dict:
    return {"household": hid, "time": "2026-11-30T09:00:00", "outcome": "visited", "note": "家中老人身体好"}


#: route -> expected status per caller (anonymous first, then ROLES[1:])
MATRIX = {
    "GET items": (200, 200, 200, 200, 200, 200, 200),
    "GET item in": (200, 200, 200, 200, 200, 200, 200),
    "POST visit in": (401, 201, 403, 201, 403, 201, 403),
    "POST visit out": (401, 201, 403, 403, 201, 403, 403),
    "GET visits in": (401, 200, 200, 200, 403, 200, 200),
    "GET visits all": (401, 200, 200, 200, 200, 200, 200),
    "POST status in": (401, 201, 403, 201, 403, 201, 403),
    "GET status in": (401, 200, 403, 200, 403, 200, 403),
    "GET audit": (401, 200, 403, 403, 403, 403, 403),
    "GET users": (401, 200, 403, 403, 403, 403, 403),
    "GET versions": (401, 200, 200, 403, 403, 403, 403),
    "POST version restore": (401, 409, 409, 403, 403, 403, 403),  # allowed: the newest version is current
    "POST village redraw in": (401, 201, 201, 403, 403, 403, 403),
    "GET proposal": (401, 200, 200, 403, 403, 403, 403),
    "POST proposal accept": (401, 409, 409, 403, 403, 403, 403),  # allowed: a proposal that moves nothing
    "POST lock in": (401, 201, 201, 403, 403, 403, 403),
    "GET locks": (401, 200, 200, 403, 403, 403, 403),
    "DELETE lock in": (401, 200, 200, 403, 403, 403, 403),
    "POST user token": (401, 200, 403, 403, 403, 403, 403),
    "POST track": (401, 201, 403, 201, 201, 201, 403),
    "GET grids": (200, 200, 200, 200, 200, 200, 200),
    "GET locate": (200, 200, 200, 200, 200, 200, 200),
    "GET patrol in": (401, 200, 403, 200, 403, 200, 403),
    "GET patrol gpx in": (401, 200, 403, 200, 403, 200, 403),
    "GET item out": (200, 200, 200, 200, 200, 200, 200),
    "POST status out": (401, 201, 403, 403, 201, 403, 403),
    "GET status out": (401, 200, 403, 403, 200, 403, 403),
    "POST report in": (401, 201, 403, 201, 403, 201, 403),
    "POST report out": (401, 201, 403, 403, 201, 403, 403),
    "POST report photo in": (401, 201, 403, 201, 403, 201, 403),
    "GET reports in": (401, 200, 200, 200, 403, 200, 200),
    "GET reports all": (401, 200, 200, 200, 200, 200, 200),
    "GET report in": (401, 200, 200, 200, 403, 200, 200),
    "GET report out": (401, 200, 200, 403, 200, 403, 200),
    "POST report transition in": (401, 200, 403, 200, 403, 200, 403),
    "POST report escalate in": (401, 200, 403, 200, 403, 200, 403),
    "POST report escalated transition": (401, 200, 403, 403, 403, 200, 403),
    "PUT report photo in": (401, 200, 403, 200, 403, 200, 403),
    "GET report photo in": (401, 200, 403, 200, 403, 200, 403),
    "GET report categories": (200, 200, 200, 200, 200, 200, 200),
    "GET landing": (200, 200, 200, 200, 200, 200, 200),
    "GET api": (200, 200, 200, 200, 200, 200, 200),
}


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64


def _report(pt: tuple[float, float]) -> dict:
    return {"lon": pt[0], "lat": pt[1], "category": "sanitation", "text": "垃圾堆积", "reporter_name": "王五",
            "reporter_phone": "13900001111"}


def _filed(s: Served, pt: tuple[float, float], *, photo: bool = False, escalated: bool = False) -> int:
    """A report filed by the admin (fresh for each caller, so one caller's change is not the next one's 409)."""
    admin = s.auth("admin")
    rid = int(s.client.post("/reports", json=_report(pt), headers=admin).get_json()["id"])
    if photo:
        s.client.put(f"/reports/{rid}/photo", data=JPEG, headers={**admin, "Content-Type": "image/jpeg"})
    if escalated:
        s.client.post(f"/reports/{rid}/escalate", json={"note": "村里处理"}, headers=admin)
    return rid


def _report_calls(s: Served, h: dict[str, str]) -> dict:  # type: ignore[type-arg]
    c = s.client
    multipart = lambda: {"report": json.dumps(_report(s.pt_in)), "photo": (io.BytesIO(JPEG), "p.jpg")}  # noqa: E731
    return {
        "POST report in": lambda: c.post("/reports", json=_report(s.pt_in), headers=h),
        "POST report out": lambda: c.post("/reports", json=_report(s.pt_out), headers=h),
        "POST report photo in": lambda: c.post("/reports", data=multipart(), headers=h,
                                               content_type="multipart/form-data"),
        "GET reports in": lambda: (_filed(s, s.pt_in), c.get(f"/reports?unit={s.grid_in}", headers=h))[1],
        "GET reports all": lambda: (_filed(s, s.pt_in), _filed(s, s.pt_out), c.get("/reports", headers=h))[2],
        "GET report in": lambda: c.get(f"/reports/{_filed(s, s.pt_in)}", headers=h),
        "GET report out": lambda: c.get(f"/reports/{_filed(s, s.pt_out)}", headers=h),
        "POST report transition in": lambda: c.post(f"/reports/{_filed(s, s.pt_in)}/transition",
                                                    json={"to": "handling", "note": "已到现场"}, headers=h),
        "POST report escalate in": lambda: c.post(f"/reports/{_filed(s, s.pt_in)}/escalate",
                                                  json={"note": "需要村里协调"}, headers=h),
        "POST report escalated transition": lambda: c.post(f"/reports/{_filed(s, s.pt_in, escalated=True)}/transition",
                                                           json={"to": "handling"}, headers=h),
        "PUT report photo in": lambda: c.put(f"/reports/{_filed(s, s.pt_in)}/photo", data=JPEG,
                                             headers={**h, "Content-Type": "image/jpeg"}),
        "GET report photo in": lambda: c.get(f"/reports/{_filed(s, s.pt_in, photo=True)}/photo", headers=h),
        "GET report categories": lambda: c.get("/reports/categories", headers=h),
    }


#: what of a report only callers who read personal fields at its place may see
REPORT_PERSONAL = ("text", "reporter", "filed_by", "photo")


def _report_leaks(s: Served, who: str | None, resp) -> list[str]:  # type: ignore[no-untyped-def]
    """The personal parts of the reports in an answer (one report or a list) that ``who`` may not read: those
    of every report for anonymous, gis and viewer; of reports outside their scope for the scoped workers."""
    try:
        doc = resp.get_json()
    except Exception:
        return []
    if not isinstance(doc, dict):
        return []
    scope = {"admin": "*", "worker": s.grid_in, "worker_out": s.grid_out, "secretary": s.village}.get(who or "")
    reps = [r for r in doc.get("reports", [doc] if "assigned_to" in doc else [])
            if scope != "*" and (scope is None or scope not in {p["code"] for p in r["chain"]})]
    found = {k for r in reps for k in REPORT_PERSONAL if k in r}
    found |= {f"assigned_to.{k}" for r in reps for k in ("name", "phone")
              if k in r.get("assigned_to", {}) and r["assigned_to"]["level"] != "county"}
    found |= {"events.note" for r in reps for e in r.get("events", []) if e.get("note")}
    if reps and len(reps) == len(doc.get("reports", [doc])) and (
            "王五" in resp.get_data(as_text=True) or "13900001111" in resp.get_data(as_text=True)):
        found.add("reporter (in the body)")
    return sorted(found)


def _new_user(s: Served) -> str:
    """A fresh user for a caller to act on (so no caller's own token changes under the matrix)."""
    name = f"u{len(s.store.users())}"  # type: ignore[attr-defined]
    s.store.add_user(name, role="viewer")  # type: ignore[attr-defined]
    return name


def _new_version(s: Served) -> int:
    """A fresh version (a build's, without a change list): the one a restore is asked to go back to."""
    from gridgeo.store import Versions

    return int(Versions(s.store).add(kind="build", author="cli", message="gridgeo build", changes=None)["id"])  # type: ignore[arg-type]


#: where the layers are a file and the store a database (they cannot be edited together): 405 once allowed
MATRIX_LAYERS_READ_ONLY = {
    "POST village redraw in": (401, 405, 405, 403, 403, 403, 403),
    "POST proposal accept": (401, 405, 405, 403, 403, 403, 403),
}


def _new_proposal(s: Served) -> int:
    """A fresh open proposal for the village in scope that moves nothing (so accepting it is a 409, not a
    version that changes the county under the matrix)."""
    from gridgeo.store import Proposals

    row = Proposals(s.store).add(author="cli", village=s.village, base_version=None,  # type: ignore[arg-type]
                                 body={"targets": {}, "village_grids": [], "moves": []})
    return int(row["id"])


def _lockable(s: Served, *, locked: bool) -> str:
    """The grid in scope, its lock released (``locked=False``) or made (``locked=True``) first, so that
    each caller of the matrix finds it the same."""
    from gridgeo.store import Locks

    locks = Locks(s.store)  # type: ignore[arg-type]
    held = s.grid_in in locks.active([s.grid_in])
    if held and not locked:
        locks.release(s.grid_in, author="cli")
    elif locked and not held:
        locks.lock(s.grid_in, author="cli", reason="")
    return s.grid_in


def _call(s: Served, route: str, who: str | None):  # type: ignore[no-untyped-def]
    h = s.auth(who)
    c = s.client
    if "report" in route:
        return _report_calls(s, h)[route]()
    calls = {
        "GET items": lambda: c.get("/collections/households/items?limit=10000", headers=h),
        "GET item in": lambda: c.get(f"/collections/households/items/{s.hh_in}", headers=h),
        "POST visit in": lambda: c.post("/visits", json=_visit(s.hh_in), headers=h),
        "POST visit out": lambda: c.post("/visits", json=[_visit(s.hh_out)], headers=h),
        "GET visits in": lambda: c.get(f"/visits?unit={s.grid_in}", headers=h),
        "GET visits all": lambda: c.get("/visits", headers=h),
        "POST status in": lambda: c.post(f"/households/{s.hh_in}/status", json={"priority": "red"}, headers=h),
        "GET status in": lambda: c.get(f"/households/{s.hh_in}/status", headers=h),
        "GET audit": lambda: c.get("/audit", headers=h),
        "GET users": lambda: c.get("/users", headers=h),
        "GET versions": lambda: c.get("/versions", headers=h),
        "POST version restore": lambda: c.post(f"/versions/{_new_version(s)}/restore", headers=h),
        "POST village redraw in": lambda: c.post(f"/villages/{s.village}/redraw", headers=h),
        "GET proposal": lambda: c.get(f"/proposals/{_new_proposal(s)}", headers=h),
        "POST proposal accept": lambda: c.post(f"/proposals/{_new_proposal(s)}/accept", headers=h),
        "POST lock in": lambda: c.post("/locks", json={"code": _lockable(s, locked=False)}, headers=h),
        "GET locks": lambda: c.get("/locks", headers=h),
        "DELETE lock in": lambda: c.delete(f"/locks/{_lockable(s, locked=True)}", headers=h),
        "POST user token": lambda: c.post(f"/users/{_new_user(s)}/token", headers=h),
        "POST track": lambda: c.post("/visits/track", data=GPX, headers={**h, "Content-Type": "application/gpx+xml"}),
        "GET grids": lambda: c.get("/collections/grids/items?limit=5", headers=h),
        "GET locate": lambda: c.get("/locate?lon=115.0&lat=28.0", headers=h),
        "GET patrol in": lambda: c.get(f"/patrol/{s.grid_in}?date=2026-11-30", headers=h),
        "GET patrol gpx in": lambda: c.get(f"/patrol/{s.grid_in}?date=2026-11-30&f=gpx", headers=h),
        "GET item out": lambda: c.get(f"/collections/households/items/{s.hh_out}", headers=h),
        "POST status out": lambda: c.post(f"/households/{s.hh_out}/status", json={"priority": "red"}, headers=h),
        "GET status out": lambda: c.get(f"/households/{s.hh_out}/status", headers=h),
        "GET landing": lambda: c.get("/", headers=h),
        "GET api": lambda: c.get("/api", headers=h),
    }
    return calls[route]()


def _leaks(resp) -> list[str]:  # type: ignore[no-untyped-def]
    """The personal fields present in a response's features."""
    try:
        doc = resp.get_json()
    except Exception:
        return []
    feats = doc.get("features", [doc]) if isinstance(doc, dict) else []
    return sorted({k for f in feats if isinstance(f, dict) for k in (f.get("properties") or {}) if k in PERSONAL})


@pytest.mark.parametrize("route", list(MATRIX))
def test_role_route_matrix(served: Served, route: str) -> None:
    got = []
    for who in ROLES:
        resp = _call(served, route, who)
        got.append(resp.status_code)
        assert resp.status_code < 500, resp.get_data(as_text=True)
        if resp.status_code >= 400:
            assert resp.mimetype == "application/problem+json"
        if (who in (None, "gis", "viewer") and route.startswith("GET item")) or (
                who == "worker_out" and route == "GET item in") or (
                who in ("worker", "secretary") and route == "GET item out"):
            assert _leaks(resp) == [], (who, route)
        if resp.status_code == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        if "report" in route and resp.status_code < 300:
            assert _report_leaks(served, who, resp) == [], (who, route)
    expected = MATRIX_LAYERS_READ_ONLY.get(route, MATRIX[route]) if served.layers_read_only else MATRIX[route]
    assert tuple(got) == expected, dict(zip(ROLES, got, strict=True))


def test_personal_fields_only_in_scope(served: Served) -> None:
    def feats(who: str | None) -> dict[str, dict]:
        doc = served.client.get("/collections/households/items?limit=10000", headers=served.auth(who)).get_json()
        return {str(f["id"]): f["properties"] for f in doc["features"]}

    admin, worker, anon = feats("admin"), feats("worker"), feats(None)
    assert all(set(PERSONAL) <= set(p) for p in admin.values())
    assert all(not set(PERSONAL) & set(p) for p in anon.values())
    for fid, props in worker.items():
        inside = props["grid"] == served.grid_in
        assert bool(set(PERSONAL) & set(props)) == inside, fid
    sec = feats("secretary")
    assert {fid for fid, p in sec.items() if "name" in p} == {fid for fid, p in admin.items()
                                                              if p["village"] == served.village}
    resp = served.client.get("/collections/households/items", headers=served.auth("worker"))
    assert resp.headers["Cache-Control"] == "private, no-store" and "Authorization" in resp.headers["Vary"]


def test_bad_tokens_are_401_and_slowed_down(served: Served) -> None:
    for header in ("Bearer nope", "Basic dXNlcjpwYXNz", "Bearer "):
        resp = served.client.get("/collections", headers={"Authorization": header})
        assert resp.status_code == 401 and resp.mimetype == "application/problem+json"
    statuses = [served.client.get("/collections", headers={"Authorization": f"Bearer bad{i}"}).status_code
                for i in range(10)]
    assert statuses[:7] == [401] * 7 and statuses[-1] == 429
    resp = served.client.get("/collections", headers=served.auth("admin"))
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1  # from the same address
    assert served.client.get("/collections").status_code == 200  # no token: not a sign-in


def test_revoked_token_is_401(served: Served) -> None:
    assert served.client.get("/audit", headers=served.auth("admin")).status_code == 200
    served.store.revoke_user("admin")  # type: ignore[attr-defined]
    assert served.client.get("/audit", headers=served.auth("admin")).status_code == 401


def test_anonymous_none_reads_nothing(people_county: Path, tmp_path: Path) -> None:
    county = tmp_path / "c.gpkg"
    shutil.copy(people_county, county)
    s = serve_people(str(county), county, ANONYMOUS="none")
    assert s.client.get("/collections/grids/items").status_code == 401
    assert s.client.get("/").status_code == 200 and s.client.get("/api").status_code == 200
    assert s.client.get("/collections/grids/items", headers=s.auth("viewer")).status_code == 200


def test_audit_names_every_write(served: Served) -> None:
    c, h = served.client, served.auth
    assert c.post("/visits", json=[_visit(served.hh_in), _visit(served.hh_in)], headers=h("worker")).status_code == 201
    assert c.post(f"/households/{served.hh_in}/status", json={"special": ["独居老人"]},
                  headers=h("secretary")).status_code == 201
    rows = c.get("/audit", headers=h("admin")).get_json()["audit"]
    acts = [(r["actor"], r["action"]) for r in rows if not r["action"].startswith("user.")]
    assert acts == [("worker", "visit.add"), ("worker", "visit.add"), ("secretary", "household.status")]
    st = rows[-1]
    assert st["target"] == f"households/{served.hh_in}" and st["after"]["special"] == ["独居老人"]
    assert json.dumps(rows).count("gg_") == 0  # no token, not even its prefix
    only = c.get("/audit?actor=secretary", headers=h("admin")).get_json()["audit"]
    assert [r["action"] for r in only] == ["household.status"]


def test_status_change_shown_to_those_allowed(served: Served) -> None:
    c, h = served.client, served.auth
    url = f"/collections/households/items/{served.hh_in}"
    before = c.get(url, headers=h("worker")).get_json()["properties"]["priority"]
    new = "yellow" if before != "yellow" else "red"
    assert c.post(f"/households/{served.hh_in}/status", json={"priority": new}, headers=h("worker")).status_code == 201
    assert c.get(url, headers=h("worker")).get_json()["properties"]["priority"] == new
    assert "priority" not in c.get(url).get_json()["properties"]
    doc = c.get(f"/households/{served.hh_in}/status", headers=h("admin")).get_json()
    assert doc["status"] == {"priority": new} and doc["history"][0]["author"] == "worker"


def test_bad_bodies_are_4xx(served: Served) -> None:
    c, h = served.client, served.auth("worker")
    for body, status in (("not json", 400), ({"household": served.hh_in}, 400), ([], 400),
                         ({"household": "999999", "time": "2026-11-30T09:00", "outcome": "visited"}, 422),
                         ([_visit(served.hh_in), {**_visit(served.hh_in), "outcome": "maybe"}], 400)):
        kw = {"data": body} if isinstance(body, str) else {"json": body}
        resp = c.post("/visits", headers=h, **kw)
        assert resp.status_code == status, (body, resp.get_data(as_text=True))
    assert c.get("/visits", headers=h).get_json()["visits"] == []  # the half-good batch stored nothing
    assert c.post("/visits/track", data=b"<gpx", headers=h).status_code == 422
    assert c.post("/households/999999/status", json={"priority": "red"}, headers=h).status_code == 404
    assert c.get("/visits?unit=nowhere", headers=h).status_code == 404
