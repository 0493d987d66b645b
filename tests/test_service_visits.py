"""Visits logged through the API change what the next plan asks for (the real last visits, not invented ones)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from .access_county import Served, make_people_county, serve_copy, serve_people

DAY = dt.date(2026, 11, 30)


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("visits") / "county.gpkg")


@pytest.fixture
def served(people_county: Path, store_target: str, tmp_path: Path) -> Served:
    return serve_copy(people_county, store_target, tmp_path)


def _stops(s: Served, day: dt.date) -> list[dict]:
    resp = s.client.get(f"/patrol/{s.grid_in}?date={day.isoformat()}", headers=s.auth("worker"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [f["properties"] for f in resp.get_json()["features"] if f["properties"].get("kind") == "stop"
            and f["properties"]["stop_kind"] == "household"]


def test_visits_change_next_days_plan(served: Served) -> None:
    today = _stops(served, DAY)
    assert today and all(st["household"] for st in today)
    orange = [st for st in today if st["priority"] == "orange"]
    assert orange, "the test grid needs an orange household due"
    # nothing logged: tomorrow's plan still asks for them (the invented last visits made them due today)
    before = {st["household"] for st in _stops(served, DAY + dt.timedelta(days=1)) if st["priority"] == "orange"}
    visits = [{"household": st["household"], "time": f"{DAY.isoformat()}T{st['time']}:00",
               "outcome": "visited"} for st in orange]
    visits[0]["outcome"] = "absent"  # not found at home: still due
    resp = served.client.post("/visits", json=visits, headers=served.auth("worker"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    tomorrow = _stops(served, DAY + dt.timedelta(days=1))
    seen = {v["household"] for v in visits[1:]}
    again = {st["household"] for st in tomorrow}
    assert not (seen & again), "a household visited yesterday with a 3-day rhythm is not due tomorrow"
    assert visits[0]["household"] in again or visits[0]["household"] not in before
    last = {st["household"]: st["last_visit"] for st in _stops(served, DAY + dt.timedelta(days=3))}
    back = seen & set(last)
    assert back, "three days on, the visited households are due again"
    assert all(last[h] == DAY.isoformat() for h in back), "counted from the logged day"


def test_status_change_puts_a_household_on_the_plan(served: Served) -> None:
    today = _stops(served, DAY)
    planned = {st["household"] for st in today}
    yellow = [st["household"] for st in today if st["priority"] == "yellow"]
    if yellow:  # unmark one: it leaves the plan
        h = yellow[0]
        r = served.client.post(f"/households/{h}/status", json={"priority": "none"}, headers=served.auth("worker"))
        assert r.status_code == 201
        assert h not in {st["household"] for st in _stops(served, DAY)}
    red = [st for st in today if st["priority"] == "red"]
    assert red and all(st["household"] in planned for st in red)


def test_cli_patrol_plans_from_logged_visits(people_county: Path, tmp_path: Path) -> None:
    """``gridgeo patrol`` on the county file reads the visits its embedded store holds, in its own process
    while the server's connections stay open (as on a county's machine)."""
    import json
    import subprocess
    import sys

    county = tmp_path / "c.gpkg"
    shutil.copy(people_county, county)
    s = serve_people(str(county), county)
    day = DAY.isoformat()

    def plan(name: str) -> list[dict]:
        out = tmp_path / name
        res = subprocess.run([sys.executable, "-m", "gridgeo.cli", "patrol", str(county), "--grid", s.grid_in,
                              "--date", day, "-o", str(out), "-q"], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        feats = json.loads(out.read_text(encoding="utf-8"))["features"]
        return [f["properties"] for f in feats if f["properties"].get("stop_kind") == "household"]

    first = plan("a.geojson")
    target = first[0]["household"]
    visit = {"household": target, "time": f"{(DAY - dt.timedelta(days=1)).isoformat()}T10:00:00",
             "outcome": "visited"}
    assert s.client.post("/visits", json=visit, headers=s.auth("worker")).status_code == 201
    again = {st["household"]: st for st in plan("b.geojson")}
    rule = {"red": 1, "orange": 3, "yellow": 7}[first[0]["priority"]]
    if rule > 1:
        assert target not in again  # visited yesterday: not due today
    else:
        assert again[target]["last_visit"] == visit["time"][:10]
