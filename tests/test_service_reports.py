"""``/reports`` (随手拍) on both backends: located, assigned, escalated on a passed deadline, closed, audited."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from .access_county import Served, inside, make_people_county, serve_people

T0 = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.timezone.utc)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 4


class Clock:
    """The service's clock in the tests: moved by hand, never slept on."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


#: the module's county, as made (no store in it: GDAL may read it while a served copy is open)
_SRC: list[Path] = []


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _SRC[:] = [make_people_county(tmp_path_factory.mktemp("reports") / "county.gpkg")]
    return _SRC[0]


def _serve(people_county: Path, store_target: str, tmp_path: Path, **config: object) -> tuple[Served, Clock, Path]:
    county = tmp_path / "served.gpkg"
    shutil.copy(people_county, county)
    clock = Clock()
    target = str(county) if not store_target.startswith("postgres") else store_target
    return serve_people(target, county, CLOCK=clock, **config), clock, county


@pytest.fixture
def served(people_county: Path, store_target: str, tmp_path: Path) -> tuple[Served, Clock, Path]:
    return _serve(people_county, store_target, tmp_path)


def _report(county: Path, grid: str, **extra: object) -> dict:
    lon, lat = inside(_SRC[0], grid)  # the source, never the served file: GDAL closing the GeoPackage would
    # delete the WAL file under the store's open connections
    return {"lon": lon, "lat": lat, "category": "sanitation", "text": "路边垃圾堆积三天了",
            "reporter_name": "王五", "reporter_phone": "13900001111", **extra}


def _grid_leader(county: Path, grid: str) -> str:
    g = pyogrio.read_dataframe(_SRC[0], layer="grids", read_geometry=False)
    return str(g.loc[g["code"] == grid, "leader"].iloc[0])


def test_located_assigned_escalated_closed_and_audited(served: tuple[Served, Clock, Path]) -> None:
    s, clock, county = served
    c, h = s.client, s.auth
    resp = c.post("/reports", json=_report(county, s.grid_in), headers=h("worker"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    rid = doc["id"]
    assert resp.headers["Location"].endswith(f"/reports/{rid}")
    levels = [p["level"] for p in doc["chain"]]
    assert levels[0] == "township" and levels[-1] == "point" and "village" in levels and "grid" in levels
    assert next(p["code"] for p in doc["chain"] if p["level"] == "grid") == s.grid_in
    assert next(p["code"] for p in doc["chain"] if p["level"] == "village") == s.village
    a = doc["assigned_to"]
    assert (a["level"], a["unit"], a["role"], a["name"]) == ("grid", s.grid_in, "格长", _grid_leader(county, s.grid_in))
    assert doc["state"] == "received" and doc["due"] == "2026-12-02T01:00:00.000000Z"  # sanitation: 24 h in the grid
    assert c.post(f"/reports/{rid}/transition", json={"to": "handling", "note": "已联系保洁"},
                  headers=h("worker")).status_code == 200
    # the deadline passes: the next read escalates it to the village, as "system", before answering
    clock.now = T0 + dt.timedelta(hours=25)
    assert [r["id"] for r in c.get("/reports?overdue=true", headers=h("admin")).get_json()["reports"]] == []
    doc = c.get(f"/reports/{rid}", headers=h("secretary")).get_json()
    assert (doc["state"], doc["assigned_to"]["level"], doc["assigned_to"]["unit"]) == ("routed", "village", s.village)
    assert doc["assigned_to"]["name"] and doc["escalations"] == 1 and not doc["overdue"]
    # the grid worker may read it still, but it is the village's now
    assert c.get(f"/reports/{rid}", headers=h("worker")).status_code == 200
    resp = c.post(f"/reports/{rid}/transition", json={"to": "closed", "note": "x"}, headers=h("worker"))
    assert resp.status_code == 403 and "assigned to village" in resp.get_json()["detail"]
    clock.now += dt.timedelta(hours=1)
    resp = c.post(f"/reports/{rid}/transition", json={"to": "closed", "note": "已清运"}, headers=h("secretary"))
    assert resp.status_code == 200 and resp.get_json()["state"] == "closed"
    events = resp.get_json()["events"]
    assert [(e["actor"], e["action"], e["to_state"], e["to_level"]) for e in events] == [
        ("worker", "file", "received", "grid"), ("worker", "transition", "handling", "grid"),
        ("system", "deadline", "routed", "village"), ("secretary", "transition", "closed", "village")]
    assert events[2]["time"] == "2026-12-02T02:00:00.000000Z"  # when the sweep ran, the injected time
    audit = c.get("/audit?action=report.", headers=h("admin")).get_json()["audit"]
    assert [(r["actor"], r["action"], r["target"]) for r in audit] == [
        ("worker", "report.file", f"reports/{rid}"), ("worker", "report.handling", f"reports/{rid}"),
        ("system", "report.deadline", f"reports/{rid}"), ("secretary", "report.closed", f"reports/{rid}")]
    assert audit[2]["after"]["unit"] == s.village and audit[2]["before"]["unit"] == s.grid_in
    resp = c.post(f"/reports/{rid}/transition", json={"to": "handling"}, headers=h("admin"))
    assert resp.status_code == 409 and resp.mimetype == "application/problem+json"
    assert "it may go to: none" in resp.get_json()["detail"]


def test_personal_parts_only_to_those_allowed(served: tuple[Served, Clock, Path]) -> None:
    s, _, county = served
    rid = s.client.post("/reports", json=_report(county, s.grid_in), headers=s.auth("admin")).get_json()["id"]
    for who in ("gis", "viewer"):
        doc = s.client.get(f"/reports/{rid}", headers=s.auth(who)).get_json()
        assert not {"text", "reporter", "filed_by", "photo"} & set(doc), who
        assert "name" not in doc["assigned_to"] and "phone" not in doc["assigned_to"]
        assert doc["assigned_to"]["role"] == "格长" and doc["assigned_to"]["unit"] == s.grid_in
        assert all(e["note"] is None for e in doc["events"])
        listed = s.client.get("/reports", headers=s.auth(who)).get_json()["reports"]
        assert listed and all("reporter" not in r and "text" not in r for r in listed)
        assert "王五" not in s.client.get(f"/reports/{rid}", headers=s.auth(who)).get_data(as_text=True)
    doc = s.client.get(f"/reports/{rid}", headers=s.auth("worker")).get_json()
    assert doc["reporter"] == {"name": "王五", "phone": "13900001111"} and doc["text"].startswith("路边")
    assert s.client.get(f"/reports/{rid}", headers=s.auth("worker_out")).status_code == 403
    assert s.client.get(f"/reports?unit={s.grid_in}", headers=s.auth("worker_out")).status_code == 403
    assert s.client.get("/reports", headers=s.auth("worker_out")).get_json()["reports"] == []  # its own scope


def test_web_map_datums_and_projected_crs_locate_the_same(served: tuple[Served, Clock, Path]) -> None:
    from gridgeo.data.crs import wgs84_to_datum

    s, _, county = served
    lon, lat = inside(_SRC[0], s.grid_in)
    gcj = wgs84_to_datum(np.asarray([shapely.Point(lon, lat)], dtype=object), "gcj02")[0]
    bd = wgs84_to_datum(np.asarray([shapely.Point(lon, lat)], dtype=object), "bd09")[0]
    from pyproj import Transformer

    e, n = Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True).transform(lon, lat)
    bodies = [{"lon": gcj.x, "lat": gcj.y, "coords": "gcj02"}, {"lon": bd.x, "lat": bd.y, "coords": "bd09"},
              {"lon": e, "lat": n, "crs": "http://www.opengis.net/def/crs/EPSG/0/4548"},
              {"lon": lon, "lat": lat, "crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}]
    for b in bodies:
        resp = s.client.post("/reports", json={**_report(county, s.grid_in), **b}, headers=s.auth("worker"))
        assert resp.status_code == 201, (b, resp.get_data(as_text=True))
        doc = resp.get_json()
        assert doc["assigned_to"]["unit"] == s.grid_in, b
        got = doc["location"]["coordinates"]
        assert abs(got[0] - lon) < 2e-5 and abs(got[1] - lat) < 2e-5, (b, got)  # back to WGS84, within ~2 m


def test_bad_reports_are_4xx_problems(served: tuple[Served, Clock, Path]) -> None:
    s, _, county = served
    c, h = s.client, s.auth("worker")
    good = _report(county, s.grid_in)
    cases = [({**good, "lon": 100.0, "lat": 40.0}, 422, "outside the county"),
             ({**good, "category": "noise"}, 400, "unknown category 'noise'; known: sanitation (环境卫生)"),
             ({**good, "lon": "east"}, 400, "report.lon"), ({**good, "lat": 95.0}, 400, "off the globe"),
             ({**good, "coords": "utm"}, 400, "report.coords"), ({**good, "text": ""}, 400, "report.text: missing"),
             ({**good, "colour": "red"}, 400, "unknown field(s) colour"), ([good], 400, "must be an object"),
             ({**good, "crs": "EPSG:9999"}, 400, "crs")]
    for body, status, words in cases:
        resp = c.post("/reports", json=body, headers=h)
        assert resp.status_code == status, (body, resp.get_data(as_text=True))
        assert resp.mimetype == "application/problem+json" and words in resp.get_json()["detail"], resp.get_json()
    assert c.post("/reports", data="{", headers={**h, "Content-Type": "application/json"}).status_code == 400
    assert c.post("/reports", data="text", headers=h).status_code == 400
    rid = c.post("/reports", json=good, headers=h).get_json()["id"]
    for data, status in ((b"GIF89a" + b"\x00" * 50, 415), (b"", 415), (JPEG + b"\x00" * (10 * 2**20), 413)):
        resp = c.put(f"/reports/{rid}/photo", data=data, headers={**h, "Content-Type": "image/jpeg"})
        assert resp.status_code == status and resp.mimetype == "application/problem+json", resp.get_data()
    assert c.get(f"/reports/{rid}/photo", headers=h).status_code == 404  # none stored by the refusals
    for bad in ("999999", "abc", "-1"):
        assert c.get(f"/reports/{bad}", headers=h).status_code == 404
    assert c.post(f"/reports/{rid}/transition", json={"to": "done"}, headers=h).status_code == 400
    assert c.post(f"/reports/{rid}/transition", json={"to": "closed"}, headers=h).status_code == 400  # no note
    assert c.get("/reports?overdue=maybe", headers=h).status_code == 400
    assert c.get("/reports?state=lost", headers=s.auth("admin")).status_code == 400
    assert c.get("/reports?unit=nowhere", headers=h).status_code == 404


def test_photo_with_the_report_and_later(served: tuple[Served, Clock, Path]) -> None:
    s, _, county = served
    c = s.client
    import json

    data = {"report": json.dumps(_report(county, s.grid_in)), "photo": (io.BytesIO(JPEG), "p.jpg")}
    resp = c.post("/reports", data=data, headers=s.auth("worker"), content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert doc["photo"]["type"] == "image/jpeg" and doc["photo"]["size"] == len(JPEG)
    got = c.get(f"/reports/{doc['id']}/photo", headers=s.auth("worker"))
    assert got.status_code == 200 and got.data == JPEG and got.mimetype == "image/jpeg"
    assert c.get(f"/reports/{doc['id']}/photo", headers=s.auth("viewer")).status_code == 403
    photos = county.with_name(county.stem + ".photos")
    assert [p.name for p in photos.rglob("*") if p.is_file()] == [__import__("hashlib").sha256(JPEG).hexdigest()]
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
    resp = c.put(f"/reports/{doc['id']}/photo", data=png, headers={**s.auth("secretary"), "Content-Type": "image/png"})
    assert resp.status_code == 200 and resp.get_json()["photo"]["type"] == "image/png"
    assert c.get(f"/reports/{doc['id']}/photo", headers=s.auth("admin")).data == png
    rows = c.get("/audit?action=report.photo", headers=s.auth("admin")).get_json()["audit"]
    assert [r["actor"] for r in rows] == ["worker", "secretary"] and rows[1]["before"]["photo"] == rows[0]["after"][
        "photo"]


def test_nobody_at_the_grid_goes_one_level_up_and_says_so(people_county: Path, store_target: str,
                                                         tmp_path: Path) -> None:
    county = tmp_path / "served.gpkg"
    shutil.copy(people_county, county)
    grids = pyogrio.read_dataframe(county, layer="grids")
    hh = pyogrio.read_dataframe(county, layer="households", read_geometry=False)
    g_in = str(hh["grid"].value_counts().index[0])
    grids.loc[grids["code"] == g_in, "leader"] = None
    pyogrio.write_dataframe(grids, county, layer="grids", driver="GPKG")
    other = str(grids.loc[grids["code"] != g_in, "code"].iloc[0])
    people = pd.DataFrame({"person_id": ["p1"], "name": ["陈网格员"], "role": ["网格员"], "phone": ["13512345678"],
                           "level": ["grids"], "unit": [other], "unit_name": ["x"], "roster_row": [1]})
    pyogrio.write_dataframe(people, county, layer="people", driver="GPKG")
    target = str(county) if not store_target.startswith("postgres") else store_target
    s = serve_people(target, county, CLOCK=Clock())
    doc = s.client.post("/reports", json=_report(county, g_in), headers=s.auth("admin")).get_json()
    a = doc["assigned_to"]
    assert (a["level"], a["unit"]) == ("village", s.village)
    assert f"no one responsible for grid {g_in}" in a["note"] and "one level up" in a["note"]
    doc = s.client.post("/reports", json=_report(county, other), headers=s.auth("admin")).get_json()
    assert (doc["assigned_to"]["name"], doc["assigned_to"]["role"]) == ("陈网格员", "网格员")  # the roster first


def test_services_start_in_the_village_and_categories_are_listed(served: tuple[Served, Clock, Path]) -> None:
    s, _, county = served
    doc = s.client.post("/reports", json=_report(county, s.grid_in, category="民生服务"),
                        headers=s.auth("worker")).get_json()
    assert doc["category"] == "services" and doc["assigned_to"]["level"] == "village"
    cats = s.client.get("/reports/categories").get_json()
    assert {c["key"] for c in cats["categories"]} == {"sanitation", "dispute", "safety", "services", "other"}
    assert cats["ladder"][-1] == "county"


def test_supervision_comes_from_above(served: tuple[Served, Clock, Path]) -> None:
    s, _, county = served
    rid = s.client.post("/reports", json=_report(county, s.grid_in), headers=s.auth("worker")).get_json()["id"]
    assert s.client.post(f"/reports/{rid}/transition", json={"to": "handling"}, headers=s.auth("worker")).status_code \
        == 200
    resp = s.client.post(f"/reports/{rid}/transition", json={"to": "supervised"}, headers=s.auth("worker"))
    assert resp.status_code == 403 and "level above" in resp.get_json()["detail"]
    resp = s.client.post(f"/reports/{rid}/transition", json={"to": "supervised", "note": "督办: 两日内办结"},
                         headers=s.auth("secretary"))
    assert resp.status_code == 200 and resp.get_json()["state"] == "supervised"
    resp = s.client.post(f"/reports/{rid}/escalate", json={"note": "需要村里协调"}, headers=s.auth("worker"))
    assert resp.status_code == 200 and resp.get_json()["assigned_to"]["unit"] == s.village
    assert resp.get_json()["events"][-1]["note"] == "需要村里协调"


def _anonymous_on(off: Served, clock: Clock, county: Path, **config: object) -> Served:
    """The same store served again with residents' reports on (its connections closed first: GDAL reads the
    file)."""
    from gridgeo.service import create_app

    off.client.application.extensions["store"].close()  # type: ignore[attr-defined]
    off.store.close()  # type: ignore[attr-defined]
    target = off.store.url if off.store.dialect == "sqlite" else off.store.dsn  # type: ignore[attr-defined]
    app = create_app({"COUNTY": str(county), "STORE": target, "TESTING": True, "CLOCK": clock,
                      "ANONYMOUS_REPORTS": True, **config})
    return Served(app.test_client(), off.store, off.tokens, off.grid_in, off.grid_out, off.village, off.hh_in,
                  off.hh_out)


def test_anonymous_reports_only_when_allowed(served: tuple[Served, Clock, Path]) -> None:
    off, clock, county = served
    resp = off.client.post("/reports", json=_report(county, off.grid_in))
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    on = _anonymous_on(off, clock, county, ANONYMOUS_REPORTS_PER_HOUR=3)
    resp = on.client.post("/reports", json=_report(county, on.grid_in))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert "reporter" not in doc and "name" not in doc["assigned_to"] and doc["assigned_to"]["unit"] == on.grid_in
    assert on.client.get(f"/reports/{doc['id']}").status_code == 401  # filing is not reading
    assert on.client.get(f"/reports/{doc['id']}", headers=on.auth("worker")).get_json()["filed_by"] == "anonymous"
    assert on.client.post("/reports", json=_report(county, on.grid_in),
                          headers=on.auth("viewer")).status_code == 403  # a token is still its role
    codes = [on.client.post("/reports", json=_report(county, on.grid_in)).status_code for _ in range(3)]
    assert codes == [201, 201, 429]  # 3 an hour from one address; a signed-in worker is not counted
    assert on.client.post("/reports", json=_report(county, on.grid_in), headers=on.auth("worker")).status_code == 201


def test_cli_sweep_escalates_with_the_service_idle(served: tuple[Served, Clock, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from gridgeo.cli.main import main

    s, _, county = served
    rid = s.client.post("/reports", json=_report(county, s.grid_in, category="safety"),
                        headers=s.auth("worker")).get_json()["id"]
    target = s.store.url if s.store.dialect == "sqlite" else s.store.dsn  # type: ignore[attr-defined]
    assert main(["reports", "sweep", target, "--now", "2026-12-01T12:00:00+08:00"]) == 0  # 3 h on: not yet
    assert capsys.readouterr().out == ""
    assert main(["reports", "sweep", target, "--now", "2026-12-01T14:30:00+08:00"]) == 0  # safety: 4 h in the grid
    assert capsys.readouterr().out.split() == [str(rid)]
    doc = s.client.get(f"/reports/{rid}", headers=s.auth("admin")).get_json()
    assert doc["assigned_to"]["level"] == "village" and doc["events"][-1]["actor"] == "system"


def test_rules_file_sets_categories_ladder_and_deadlines(people_county: Path, store_target: str,
                                                         tmp_path: Path) -> None:
    from gridgeo.county.rules import load_county_rules
    from gridgeo.errors import UsageError

    rules = tmp_path / "rules.toml"
    rules.write_text('[reports]\nladder = ["grid", "village", "township"]\ncounty_handler = "县综治中心"\n'
                     '[reports.categories.noise]\nlabel = "噪音扰民"\nlowest = "village"\n'
                     'hours = { village = 6, county = 12 }\n', encoding="utf-8")
    s, _, county = _serve(people_county, store_target, tmp_path, RULES=str(rules))
    doc = s.client.post("/reports", json=_report(county, s.grid_in, category="噪音扰民"),
                        headers=s.auth("admin")).get_json()
    assert doc["category"] == "noise" and doc["assigned_to"]["level"] == "village"
    assert doc["due"] == "2026-12-01T07:00:00.000000Z"  # 6 h
    rid = doc["id"]
    doc = s.client.post(f"/reports/{rid}/escalate", headers=s.auth("admin")).get_json()
    assert doc["assigned_to"]["level"] == "township" and doc["assigned_to"]["hours"] == 6.0  # below it: the village's
    doc = s.client.post(f"/reports/{rid}/escalate", headers=s.auth("admin")).get_json()
    a = doc["assigned_to"]
    assert (a["level"], a["role"], a["hours"]) == ("county", "县综治中心", 12.0)
    resp = s.client.post(f"/reports/{rid}/escalate", headers=s.auth("admin"))
    assert resp.status_code == 409 and "top of its ladder" in resp.get_json()["detail"]
    cats = s.client.get("/reports/categories").get_json()
    assert cats["ladder"] == ["grid", "village", "township", "county"] and "block" not in cats["ladder"]
    for bad, words in (('[reports]\nladder = ["village", "grid"]\n', "must go up"),
                       ('[reports]\nladder = ["grid", "moon"]\n', "ladder entries must be one of"),
                       ('[reports]\nsla = 3\n', "unknown key 'sla'"),
                       ('[reports.categories.x]\nlabel = "X"\nlowest = "grid"\n', "needs hours"),
                       ('[reports.categories.x]\nlabel = "X"\nlowest = "grid"\nhours = {grid = -1}\n',
                        "hours.grid must be a number of hours > 0, not -1"),
                       ('[reports.categories.x]\nlabel = "X"\nlowest = "grid"\nhours = {grid = 0}\n', "> 0"),
                       ('[reports]\nladder = ["village", "county"]\n', "category sanitation starts at grid")):
        rules.write_text(bad, encoding="utf-8")
        with pytest.raises(UsageError, match=words.replace("(", r"\(")):
            load_county_rules(rules)


def test_receipt_lets_an_anonymous_filer_follow_the_report(served: tuple[Served, Clock, Path]) -> None:
    import hashlib
    import json

    off, clock, county = served
    s = _anonymous_on(off, clock, county, AUTH_FAILURES=4)
    c = s.client
    data = {"report": json.dumps(_report(county, s.grid_in)), "photo": (io.BytesIO(JPEG), "p.jpg")}
    resp = c.post("/reports", data=data, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    doc = resp.get_json()
    rid, receipt = doc["id"], doc["receipt"]
    assert isinstance(receipt, str) and len(receipt) >= 32 and resp.headers["Cache-Control"] == "private, no-store"
    stored = s.store.query("SELECT receipt_hash FROM gg_reports WHERE id = ?", (rid,))  # type: ignore[attr-defined]
    assert stored == [(hashlib.sha256(receipt.encode()).hexdigest(),)]
    signed = c.post("/reports", json=_report(county, s.grid_in), headers=s.auth("worker")).get_json()
    assert "receipt" not in signed  # a user follows reports with their token
    assert c.post(f"/reports/{rid}/transition", json={"to": "handling", "note": "已联系保洁员李六"},
                  headers=s.auth("worker")).status_code == 200
    mine = {"X-Report-Receipt": receipt}
    resp = c.get(f"/reports/{rid}", headers=mine)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store"
    assert "X-Report-Receipt" in resp.headers["Vary"]
    doc = resp.get_json()
    assert doc["state"] == "handling" and doc["assigned_to"]["unit"] == s.grid_in
    assert {s.grid_in, s.village} <= {p["code"] for p in doc["chain"]}
    assert [(e["action"], e["to_state"]) for e in doc["events"]] == [("file", "received"), ("transition", "handling")]
    assert all("actor" not in e and "note" not in e for e in doc["events"])  # nothing of the handlers
    assert not {"text", "reporter", "filed_by", "receipt"} & set(doc) and not {"name", "phone"} & set(
        doc["assigned_to"])
    body = resp.get_data(as_text=True)
    for secret in ("王五", "13900001111", "李六", _grid_leader(county, s.grid_in), '"worker"'):
        assert secret not in body, secret
    photo = c.get(doc["photo"]["href"].replace("http://localhost", ""), headers=mine)
    assert photo.status_code == 200 and photo.data == JPEG and photo.headers["Cache-Control"] == "private, no-store"
    # a user's token decides what they read; the header is ignored
    doc = c.get(f"/reports/{rid}", headers={**s.auth("viewer"), **mine}).get_json()
    assert "events" in doc and all("actor" in e for e in doc["events"])
    # no oracle: a wrong receipt, another report's, none at all for a report filed with a token, and an id that
    # does not exist all get the same 404
    missing = c.get("/reports/999999", headers=mine)
    bad = receipt[:-1] + ("B" if receipt.endswith("A") else "A")  # one character off, never the receipt itself
    wrong = c.get(f"/reports/{rid}", headers={"X-Report-Receipt": bad})
    other = c.get(f"/reports/{signed['id']}", headers=mine)
    for resp, n in ((missing, 999999), (wrong, rid), (other, signed["id"])):
        assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
        assert resp.get_json() == {"type": "about:blank", "title": "NotFoundError", "status": 404,
                                   "detail": f"no report {n}"}
    assert c.get(f"/reports/{rid}/photo", headers={"X-Report-Receipt": "guess"}).status_code == 404
    # four failures from this address: the next try is slowed down, even with the right receipt
    resp = c.get(f"/reports/{rid}", headers=mine)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert c.get(f"/reports/{rid}").status_code == 401  # no receipt, no token: as before


def test_county_level_report_past_its_deadline_is_supervised_once(served: tuple[Served, Clock, Path]) -> None:
    """No level above the county to escalate to: its passed deadline marks the report supervised (督办), once."""
    from gridgeo.store.reports import stamp

    s, clock, county = served
    c, h = s.client, s.auth
    rid = c.post("/reports", json=_report(county, s.grid_in), headers=h("worker")).get_json()["id"]
    while c.post(f"/reports/{rid}/escalate", headers=h("admin")).status_code == 200:  # by hand, up to the top
        pass
    doc = c.get(f"/reports/{rid}", headers=h("admin")).get_json()
    assert (doc["assigned_to"]["level"], doc["overdue"], doc["overdue_hours"], doc["overdue_marked"]) == (
        "county", False, None, None)
    clock.now = T0 + dt.timedelta(hours=doc["assigned_to"]["hours"] + 5)
    marked_at = stamp(clock.now)
    doc = c.get(f"/reports/{rid}", headers=h("admin")).get_json()
    assert (doc["state"], doc["assigned_to"]["level"], doc["overdue"], doc["overdue_hours"]) == (
        "supervised", "county", True, 5.0)
    assert doc["overdue_marked"] == marked_at
    last = doc["events"][-1]
    assert (last["actor"], last["action"], last["to_state"], last["to_level"]) == (
        "system", "deadline", "supervised", "county")
    listed = c.get("/reports?overdue=true", headers=h("admin")).get_json()["reports"]
    assert [(r["id"], r["state"], r["overdue_marked"]) for r in listed] == [(rid, "supervised", marked_at)]
    assert listed[0]["overdue_hours"] > 0
    # a day on, every reports route sweeps again (one read, one list): the mark stays, nothing is added
    clock.now += dt.timedelta(hours=24)
    again = c.get(f"/reports/{rid}", headers=h("admin")).get_json()
    listed = c.get("/reports?overdue=true", headers=h("admin")).get_json()["reports"]
    assert (again["state"], again["overdue_hours"], again["overdue_marked"]) == ("supervised", 29.0, marked_at)
    assert again["events"] == doc["events"]
    assert [(r["id"], r["overdue_hours"]) for r in listed] == [(rid, 29.0)]
    rows = c.get("/audit?action=report.deadline", headers=h("admin")).get_json()["audit"]
    assert [(r["actor"], r["target"], r["before"]["state"], r["after"]["state"]) for r in rows] == [
        ("system", f"reports/{rid}", doc["events"][-1]["from_state"], "supervised")]


def test_an_open_report_names_todays_roster(served: tuple[Served, Clock, Path]) -> None:
    """The grid's worker changes (a rebuild with a new roster, then a restart): the report filed before
    names the new one to call, and still says whom it was given to; nothing personal to others."""
    import pandas as pd

    s, clock, county = served
    rid = s.client.post("/reports", json=_report(county, s.grid_in), headers=s.auth("worker")).get_json()["id"]
    first = _grid_leader(county, s.grid_in)
    # the restart: connections closed (GDAL writes the file), the roster written, the county served again
    s.client.application.extensions["store"].close()  # type: ignore[attr-defined]
    s.store.close()  # type: ignore[attr-defined]
    roster = pd.DataFrame({"level": ["grids"], "unit": [s.grid_in], "name": ["赵新"], "role": ["网格员"],
                           "phone": ["13700002222"]})
    pyogrio.write_dataframe(roster, county, layer="people", driver="GPKG")
    again = _anonymous_on(s, clock, county)
    doc = again.client.get(f"/reports/{rid}", headers=again.auth("worker")).get_json()
    got = doc["assigned_to"]
    assert (got["name"], got["phone"], got["role"], got["roster_changed"]) == ("赵新", "13700002222", "网格员", True)
    assert got["assigned_first"]["name"] == first
    assert doc["events"][0]["action"] == "file"  # the history is as it was
    viewer = again.client.get(f"/reports/{rid}", headers=again.auth("viewer")).get_json()["assigned_to"]
    assert viewer["roster_changed"] is True and not {"name", "phone", "assigned_first"} & set(viewer)
    assert "赵新" not in again.client.get(f"/reports/{rid}", headers=again.auth("viewer")).get_data(as_text=True)
