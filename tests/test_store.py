"""The writable store (gridgeo.store): users, visits, status, tracks, audit; the same tests on every backend."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from gridgeo.errors import ConflictError, NotFoundError, StoreError, UsageError
from gridgeo.store import Placed, open_store
from gridgeo.store.access import Principal, token_hash
from gridgeo.store.records import parse_gpx, parse_status, parse_visits

GRID, VILLAGE, TOWN = "36990000100101", "369900001001", "369900001"


def _place(hid: str, where: str = "") -> Placed:
    return Placed(hid, {"grid": GRID, "village": VILLAGE, "township": TOWN}, (GRID, VILLAGE, TOWN))


@pytest.fixture
def store(store_target):  # type: ignore[no-untyped-def]
    s = open_store(store_target)
    yield s
    s.close()


def test_user_token_shown_once_stored_hashed(store) -> None:
    user, token = store.add_user("wang", role="worker", scope=GRID)
    assert token.startswith("gg_") and len(token) > 40
    assert store.authenticate(token) == user
    assert store.authenticate(token + "x") is None
    rows = store.query("SELECT token_hash FROM gg_users")
    assert rows == [(token_hash(token),)] and token not in str(rows)
    with pytest.raises(ConflictError, match="already exists"):
        store.add_user("wang", role="viewer")
    with pytest.raises(UsageError, match="role must be one of"):
        store.add_user("li", role="boss")
    revoked = store.revoke_user("wang")
    assert revoked.revoked is not None and store.authenticate(token) is None
    assert store.has_users()  # a revoked last user keeps access control on
    with pytest.raises(NotFoundError):
        store.revoke_user("nobody")


def test_visits_all_or_none_filtered_by_unit_and_time(store) -> None:
    vs = parse_visits([{"household": 5, "time": "2026-11-30T09:00:00", "outcome": "visited"},
                       {"household": "6", "time": "2026-11-30T23:30:00Z", "outcome": "absent", "note": "不在家"}],
                      _place)
    ids = store.add_visits(vs, actor="wang")
    assert len(ids) == 2 and ids[0] < ids[1]
    got = store.visits(unit=("grid", GRID))
    assert [v["household"] for v in got] == ["5", "6"]
    assert got[0]["time"] == "2026-11-30T01:00:00.000000Z" and got[0]["day"] == "2026-11-30"  # CST in, UTC kept
    assert got[1]["day"] == "2026-12-01"  # 23:30 UTC is the next morning in China
    assert store.visits(unit=("chain", TOWN)) == got
    assert store.visits(unit=("grid", "other")) == []
    assert [v["id"] for v in store.visits(start="2026-11-30T12:00:00Z")] == [ids[1]]
    assert store.visits(after=ids[0]) == got[1:]
    assert store.last_visits() == {"5": dt.date(2026, 11, 30)}  # absent: still due


def test_bad_visits_name_the_entry(store) -> None:
    good = {"household": 1, "time": "2026-11-30T09:00:00", "outcome": "visited"}
    for bad, msg in [({**good, "outcome": "maybe"}, r"visits\[1\].outcome"), ({**good, "time": "noon"},
                     r"visits\[1\].time"), ({**good, "extra": 1}, "unknown field"),
                     ({**good, "time": "2099-01-01T00:00:00"}, "in the future"), ({"time": good["time"]}, "household")]:
        with pytest.raises(UsageError, match=msg):
            parse_visits([good, bad], _place)
    assert store.visits() == []


def test_status_history_and_audit_append_only(store) -> None:
    changes, note, when = parse_status({"priority": "红", "special": ["低保户", "独居老人"], "note": "新增"})
    assert changes == {"priority": "red", "special": ["低保户", "独居老人"]}
    store.set_status(_place("7"), changes, actor="wang", note=note, time=when)
    after = store.set_status(_place("7"), {"priority": None}, actor="li")
    assert after == {"priority": None, "special": ["低保户", "独居老人"]}
    assert store.statuses()["7"] == after
    assert [h["field"] for h in store.status_history("7")] == ["priority", "special", "priority"]
    trail = store.audit_rows(action="household")
    assert [a["actor"] for a in trail] == ["wang", "li"]
    assert trail[1]["before"]["priority"] == "red" and trail[1]["after"]["priority"] is None
    with pytest.raises(StoreError, match="append-only"), store.transaction() as cur:
        store.execute(cur, "DELETE FROM gg_audit")
    with pytest.raises(StoreError, match="append-only"), store.transaction() as cur:
        store.execute(cur, "UPDATE gg_audit SET actor = 'x'")
    assert len(store.audit_rows()) == 2


def test_track_from_gpx(store) -> None:
    gpx = b"""<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
    <trkpt lat="28.0" lon="115.0"><time>2026-11-30T01:00:00Z</time></trkpt>
    <trkpt lat="28.001" lon="115.0"><time>2026-11-30T01:05:00Z</time></trkpt></trkseg></trk></gpx>"""
    t = parse_gpx(gpx)
    assert t["n_points"] == 2 and t["day"] == "2026-11-30" and 110 < t["length_m"] < 111.5
    tid = store.add_track(t, actor="wang", scope=GRID)
    assert store.track(tid)["length_m"] == t["length_m"]
    with pytest.raises(Exception, match="not a GPX"):
        parse_gpx(b"<gpx")


def test_principal_scope_and_roles() -> None:
    w = Principal.of_user("wang", "worker", GRID)
    assert w.allowed("visit.write", (GRID, VILLAGE)) and not w.allowed("visit.write", ("other", VILLAGE))
    assert not w.allowed("audit.read")
    assert Principal.anonymous().may("read") and not Principal.anonymous("none").may("read")
    with pytest.raises(UsageError):
        Principal.anonymous("everything")


def test_not_a_store(tmp_path: Path) -> None:
    bad = tmp_path / "x.gpkg"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="x.gpkg"):
        open_store(bad)
    with pytest.raises(StoreError, match="no such store"):
        open_store(tmp_path / "missing.gpkg")


def test_store_in_county_leaves_layers_alone(tmp_path: Path) -> None:
    import pyogrio

    from .service_county import SAMPLE

    p = tmp_path / "c.gpkg"
    shutil.copy(SAMPLE, p)
    before = [(str(n), g) for n, g in pyogrio.list_layers(p)]
    s = open_store(p)
    s.add_user("a", role="admin")
    s.close()
    after = [(str(n), g) for n, g in pyogrio.list_layers(p)]
    assert [x for x in after if not x[0].startswith("gg_")] == before
    assert {n for n, g in after if n.startswith("gg_")} == {"gg_users", "gg_visits", "gg_status", "gg_tracks",
                                                            "gg_audit", "gg_reports", "gg_report_events",
                                                            "gg_versions", "gg_proposals", "gg_locks"}
    assert all(g is None for n, g in after if n.startswith("gg_"))  # attribute tables, not layers
    assert len(pyogrio.read_dataframe(p, layer="gg_users")) == 1


def test_a_retried_visit_is_stored_once(store) -> None:
    v = {"household": 5, "time": "2026-11-30T09:00:00", "outcome": "visited", "uid": "phone-7-0001"}
    first = store.add_visits(parse_visits(v, _place), actor="wang")
    again = store.add_visits(parse_visits([v, {**v, "uid": "phone-7-0002"}], _place), actor="wang")
    assert again[0] == first[0] and again[1] != first[0]
    assert len(store.visits()) == 2
    assert len(store.audit_rows(action="visit")) == 2
    with pytest.raises(UsageError, match="uid"):
        parse_visits({**v, "uid": ""}, _place)
