"""Reads of personal fields leave one audit row per request (``read.WHAT``), on both backends; unrecorded: 503."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from .access_county import PERSONAL, Served, make_people_county, serve_people

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64
HOUSEHOLDS = "/collections/households/items?limit=10000"


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("read_audit") / "county.gpkg")


@pytest.fixture
def served(people_county: Path, store_target: str, tmp_path: Path) -> Served:
    county = tmp_path / "served.gpkg"
    shutil.copy(people_county, county)
    target = str(county) if not store_target.startswith("postgres") else store_target
    return serve_people(target, county)


def _reads(s: Served) -> list[dict]:
    """The read rows but those of this helper's own reads of the trail (each one a ``read.audit`` row)."""
    resp = s.client.get("/audit?kind=read&limit=10000", headers=s.auth("admin"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [r for r in resp.get_json()["audit"] if r["action"] != "read.audit"]


def test_reading_the_audit_trail_is_a_read_row(served: Served) -> None:
    s = served
    assert s.client.post(f"/households/{s.hh_in}/status", json={"priority": "red"},
                         headers=s.auth("worker")).status_code == 201
    shown = s.client.get("/audit?kind=write", headers=s.auth("admin")).get_json()["audit"]
    assert shown
    rows = s.client.get("/audit?kind=read&action=read.audit", headers=s.auth("admin")).get_json()["audit"]
    assert [(r["actor"], r["after"]) for r in rows] == [
        ("admin", {"ids": [r["id"] for r in shown], "count": len(shown)})]


def _personal_ids(doc: dict) -> list[str]:
    """The ids of the features of a page served with personal fields, in page order (a unit's name is public)."""
    return [str(f["id"]) for f in doc["features"] if (set(PERSONAL) - {"name"}) & set(f["properties"])]


def test_a_page_of_households_is_one_read_row_with_its_ids(served: Served) -> None:
    s = served
    admin = s.client.get(HOUSEHOLDS, headers=s.auth("admin")).get_json()
    worker = s.client.get(HOUSEHOLDS, headers=s.auth("worker")).get_json()
    everyone = _personal_ids(admin)
    mine = _personal_ids(worker)
    assert len(everyone) == len(admin["features"]) > len(mine) > 0
    rows = _reads(s)
    assert [(r["actor"], r["action"], r["kind"], r["target"]) for r in rows] == [
        ("admin", "read.households", "read", HOUSEHOLDS), ("worker", "read.households", "read", HOUSEHOLDS)]
    for row, ids in zip(rows, (everyone, mine), strict=True):
        assert row["after"]["count"] == len(ids)
        assert [str(i) for i in row["after"]["ids"]] == ids[:100] and len(row["after"]["ids"]) <= 100
        assert row["time"].endswith("Z") and row["before"] is None
    one = s.client.get(f"/collections/households/items/{s.hh_in}", headers=s.auth("secretary"))
    assert one.status_code == 200 and "name" in one.get_json()["properties"]
    last = _reads(s)[-1]
    assert (last["actor"], last["action"], last["after"]) == ("secretary", "read.households",
                                                              {"ids": [int(s.hh_in)], "count": 1})


def test_reads_without_personal_fields_leave_no_row(served: Served) -> None:
    s, c = served, served.client
    for who in (None, "viewer", "gis"):
        for url in (HOUSEHOLDS, f"/collections/households/items/{s.hh_in}", "/collections/grids/items"):
            resp = c.get(url, headers=s.auth(who))
            doc = resp.get_json()
            assert resp.status_code == 200 and _personal_ids({"features": doc.get("features", [doc])}) == []
    # a worker asking for a household outside their grid gets its public part, unrecorded
    assert "name" not in c.get(f"/collections/households/items/{s.hh_out}", headers=s.auth("worker")).get_json()[
        "properties"]
    assert c.get(HOUSEHOLDS + "&f=html", headers=s.auth("admin")).status_code == 200  # the HTML table: public only
    assert _reads(s) == []


def test_every_view_serving_personal_fields_records_its_read(served: Served) -> None:
    s, c = served, served.client
    admin = s.auth("admin")
    assert c.post("/visits", json={"household": s.hh_in, "time": "2026-11-30T09:00:00", "outcome": "visited",
                                   "note": "家中老人身体好"}, headers=s.auth("worker")).status_code == 201
    report = {"lon": s.pt_in[0], "lat": s.pt_in[1], "category": "sanitation", "text": "垃圾堆积",
              "reporter_name": "王五", "reporter_phone": "13900001111"}
    data = {"report": json.dumps(report), "photo": (io.BytesIO(JPEG), "p.jpg")}
    rid = c.post("/reports", data=data, headers=admin, content_type="multipart/form-data").get_json()["id"]
    before = len(_reads(s))
    calls = [(f"/households/{s.hh_in}/status", "read.household_status", [int(s.hh_in)]),
             ("/visits", "read.visits", None), (f"/reports?unit={s.grid_in}", "read.reports", [rid]),
             (f"/reports/{rid}", "read.report", [rid]), (f"/reports/{rid}/photo", "read.report_photo", [rid]),
             (f"/patrol/{s.grid_in}?date=2026-11-30", "read.patrol", None)]
    for url, action, ids in calls:
        resp = c.get(url, headers=s.auth("worker"))
        assert resp.status_code == 200, (url, resp.get_data(as_text=True))
        rows = _reads(s)
        assert len(rows) == before + 1, url  # one row for the request
        before += 1
        assert (rows[-1]["actor"], rows[-1]["action"], rows[-1]["target"]) == ("worker", action, url)
        if ids is not None:
            assert rows[-1]["after"] == {"ids": ids, "count": len(ids)}, url
        assert rows[-1]["after"]["count"] >= 1
    # the viewer reads the same reports without their personal parts: nothing recorded
    assert c.get(f"/reports/{rid}", headers=s.auth("viewer")).status_code == 200
    assert c.get("/reports", headers=s.auth("viewer")).status_code == 200
    assert len(_reads(s)) == before


def test_audit_kind_filters_reads_and_writes(served: Served) -> None:
    s, c = served, served.client
    h = s.auth("admin")
    assert c.post(f"/households/{s.hh_in}/status", json={"priority": "red"}, headers=h).status_code == 201
    assert c.get(HOUSEHOLDS, headers=h).status_code == 200
    both = c.get("/audit?limit=10000", headers=h).get_json()["audit"]
    reads = c.get("/audit?kind=read&limit=10000", headers=h).get_json()["audit"]
    writes = c.get("/audit?kind=write&limit=10000", headers=h).get_json()["audit"]
    # the first read of the trail (``both``) is a read row the second one shows
    assert [r["action"] for r in reads] == ["read.households", "read.audit"]
    assert {r["kind"] for r in writes} == {"write"}
    assert {"user.add", "household.status"} <= {r["action"] for r in writes}
    assert sorted(r["id"] for r in reads[:-1] + writes) == [r["id"] for r in both]
    assert [r["action"] for r in c.get("/audit?kind=write&action=household.", headers=h).get_json()["audit"]] == [
        "household.status"]
    assert c.get("/audit?kind=read&action=user.", headers=h).get_json()["audit"] == []
    for bad in ("reads", "READ", ""):
        resp = c.get(f"/audit?kind={bad}", headers=h)
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json", bad
        assert "kind" in resp.get_json()["detail"]
    doc = c.get("/api").get_json()
    kind = next(p for p in doc["paths"]["/audit"]["get"]["parameters"] if p["name"] == "kind")
    assert kind["in"] == "query" and kind["schema"]["enum"] == ["read", "write"]


def test_a_read_that_cannot_be_recorded_is_503_not_served(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    s, c = served, served.client
    store = c.application.extensions["store"]  # type: ignore[attr-defined]

    def broken(*args: object, **kwargs: object) -> None:  # the database refusing the insert
        raise store.errors[0]("disk I/O error")

    monkeypatch.setattr(store, "audit", broken)
    for who, url in (("admin", HOUSEHOLDS), ("worker", f"/collections/households/items/{s.hh_in}"),
                     ("worker", f"/households/{s.hh_in}/status")):
        resp = c.get(url, headers=s.auth(who))
        assert resp.status_code == 503 and resp.mimetype == "application/problem+json", url
        assert "audit" in resp.get_json()["detail"]
        body = resp.get_data(as_text=True)
        assert "户主" not in body and "1391234" not in body, url
    # what holds nothing personal is served as before
    assert c.get(HOUSEHOLDS, headers=s.auth("viewer")).status_code == 200
    assert c.get(HOUSEHOLDS).status_code == 200
    monkeypatch.undo()
    assert c.get(HOUSEHOLDS, headers=s.auth("admin")).status_code == 200
    assert [r["actor"] for r in _reads(s)] == ["admin"]  # the refused reads left nothing
