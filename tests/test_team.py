"""Teams (gridgeo.patrol.team): a grid's workers get one round each, together covering the day's due visits."""

from __future__ import annotations

import datetime as dt

import pytest

from gridgeo.errors import UsageError
from gridgeo.patrol import GridStops, Stop, plan_day, plan_period, prepare
from gridgeo.patrol.team import plan_team
from tests.test_patrol import DAY, _line_grid

pytest_plugins = ("tests.service_county",)


def _far_red_and_yellows() -> tuple[object, float]:
    """An overdue red 3 km out and twenty yellows by the station: one worker's budget fits one or the other."""
    net, grid = _line_grid(2000.0, 3000.0)
    x0, y0 = grid.station
    stops = [Stop("late", "household", "red", x0 + 3000, y0, last_visit=DAY - dt.timedelta(days=3))]
    stops += [Stop(f"y{i}", "household", "yellow", x0 + 30, y0 + 400, last_visit=DAY - dt.timedelta(days=9))
              for i in range(20)]
    return prepare(net, GridStops("g", grid.station, stops)), 2 * 3000 / 75 + 10 + 1


def test_two_workers_cover_what_one_cannot() -> None:
    problem, budget = _far_red_and_yellows()
    alone = plan_day(problem, DAY, budget_min=budget)
    assert [v.stop.id for v in alone.visits] == ["late"] and len(alone.missed) == 20
    team = plan_team(problem, DAY, 2, budget_min=budget)
    assert [p.worker for p in team] == [1, 2]
    ids = [v.stop.id for p in team for v in p.visits]
    assert len(ids) == len(set(ids))  # no stop on two rounds
    assert "late" in ids and len(ids) > len(alone.visits)
    assert all(p.duration_min <= budget + 1e-6 for p in team)
    missed = [m.stop.id for p in team for m in p.missed]
    assert sorted(ids + missed) == sorted(s.id for s in problem.grid.stops)  # each due visit counted once
    assert sum(p.due for p in team) == len(problem.grid.stops)


def test_team_over_days_updates_last_visits_from_every_round() -> None:
    problem, budget = _far_red_and_yellows()
    plans = plan_period(problem, DAY, 2, budget_min=budget, workers=2)
    assert [(p.date, p.worker) for p in plans] == [(DAY, 1), (DAY, 2), (DAY + dt.timedelta(1), 1),
                                                  (DAY + dt.timedelta(1), 2)]
    day1 = {v.stop.id for p in plans[:2] for v in p.visits}
    day2 = {v.stop.id for p in plans[2:] for v in p.visits}
    assert not {s for s in day1 if s.startswith("y")} & day2  # yellows seen on day 1 are not due on day 2


@pytest.mark.parametrize("workers", [0, 11])
def test_workers_checked(workers: int) -> None:
    problem, budget = _far_red_and_yellows()
    with pytest.raises(UsageError, match="workers must be 1 to 10"):
        plan_team(problem, DAY, workers, budget_min=budget)


def test_service_plans_a_team_and_refuses_a_bad_count(client) -> None:  # type: ignore[no-untyped-def]
    grid = client.get("/collections/grids/items?limit=1").get_json()["features"][0]["id"]
    doc = client.get(f"/patrol/{grid}?date=2025-03-03&workers=2").get_json()
    routes = [f for f in doc["features"] if f["properties"]["kind"] == "route"]
    assert sorted(f["properties"]["worker"] for f in routes) == [1, 2]
    assert doc["properties"]["workers"] == 2 and doc["properties"]["days"] == 1
    bad = client.get(f"/patrol/{grid}?date=2025-03-03&workers=0")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"


def test_workers_from_the_roster(county_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``--workers roster``: as many rounds as the county's people table lists 网格员 on the grid."""
    import shutil

    import pandas as pd
    import pyogrio

    from gridgeo.cli import main
    from gridgeo.patrol import County

    county = tmp_path / "county.gpkg"
    shutil.copy(county_path, county)
    grid = str(pyogrio.read_dataframe(county, layer="grids", columns=["code"])["code"].iloc[0])
    people = pd.DataFrame({"person_id": ["P1", "P2", "P3"], "name": ["甲", "乙", "丙"],
                           "role": ["专职网格员", "网格辅助员", "网格长"], "level": ["grids"] * 3,
                           "unit": [grid] * 3})
    pyogrio.write_dataframe(people, county, layer="people", driver="GPKG", append=True)
    assert County(county).workers_of(grid) == 2
    out = tmp_path / "route.geojson"
    assert main(["patrol", str(county), "--grid", grid, "--date", "2025-03-03", "--workers", "roster",
                 "-o", str(out)]) == 0
    import json

    doc = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(f["properties"]["worker"] for f in doc["features"] if f["properties"]["kind"] == "route") == [1, 2]
    assert main(["patrol", str(county), "--grid", grid, "--date", "2025-03-03", "--workers", "x",
                 "-o", str(out)]) == 2


def test_one_round_across_several_grids(county_path, tmp_path, client) -> None:  # type: ignore[no-untyped-def]
    """One worker responsible for two small grids: one round visiting both grids' due stops."""
    import json
    import shutil

    import pandas as pd
    import pyogrio

    from gridgeo.cli import main
    from gridgeo.patrol import County, plan_grid

    county = tmp_path / "county.gpkg"
    shutil.copy(county_path, county)
    a, b = (str(c) for c in pyogrio.read_dataframe(county, layer="grids", columns=["code"])["code"].iloc[:2])
    c = County(county)
    both = c.round_stops(f"{a},{b}", dt.date(2025, 3, 3))
    ids = [s.id for s in both.stops]
    assert len(ids) == len(set(ids))
    assert ids == [s.id for code in (a, b) for s in c.grid_stops(code, dt.date(2025, 3, 3)).stops]
    plans = plan_grid(c, f"{a},{b}", day=dt.date(2025, 3, 3))
    assert len(plans) == 1 and plans[0].grid == f"{a},{b}"
    seen = {v.stop.id for v in plans[0].visits}
    own = {code: {s.id for s in c.grid_stops(code, dt.date(2025, 3, 3)).stops} for code in (a, b)}
    assert seen & own[a] and seen & own[b]  # the round reaches into both grids
    with pytest.raises(UsageError, match="twice"):
        c.round_stops(f"{a},{a}", dt.date(2025, 3, 3))
    people = pd.DataFrame({"person_id": ["P9", "P9"], "name": ["丁", "丁"], "role": ["网格员", "网格员"],
                           "level": ["grids", "grids"], "unit": [a, b]})
    pyogrio.write_dataframe(people, county, layer="people", driver="GPKG", append=True)
    out = tmp_path / "route.geojson"
    assert main(["patrol", str(county), "--worker", "P9", "--date", "2025-03-03", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["properties"]["grid"] == f"{a},{b}"
    assert client.get(f"/patrol/{a},{b}?date=2025-03-03").status_code == 200
