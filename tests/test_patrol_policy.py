"""Visit policy as rules (issue 13 item 4): ``[patrol]`` in the rules file, rules per colour and special-care
category, API overrides, campaigns over N days, time windows, start and end places."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import shapely

from gridgeo.cli import main
from gridgeo.county.rules import PATROL_PRIORITIES, load_county_rules
from gridgeo.errors import UsageError
from gridgeo.patrol import (
    RULE_KEYS,
    CategoryRule,
    County,
    GridStops,
    PatrolOptions,
    Stop,
    VisitRule,
    effective_rule,
    options_from_rules,
    period_summary,
    plan_day,
    plan_grid,
    prepare,
)
from tests.test_patrol import DAY, _line_grid

pytest.register_assert_rewrite("tests.service_county")
pytest_plugins = ("tests.service_county",)

DATE = "2025-03-03"
RULES = """
[patrol]
budget = "3h"
speed_kmh = 4.0
start_time = "09:00"
campaign_days = 4
start = "station"
end = [117.1, 28.2]
[patrol.red]
frequency_days = 2
service_min = 12
[patrol.yellow]
window = "14:00-17:00"
[patrol.special."低保户"]
frequency_days = 30
service_min = 15
[patrol.special."留守儿童"]
frequency_days = 2
window = "16:30-20:00"
"""


def _rules(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rules.toml"
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------ the rules file
def test_patrol_section_parsed_into_options(tmp_path: Path) -> None:
    table = load_county_rules(_rules(tmp_path, RULES)).patrol
    assert table["budget_min"] == 180.0 and table["start_time"] == dt.time(9, 0)
    assert table["end"] == (117.1, 28.2) and table["start"] == "station"
    assert table["special"]["留守儿童"] == {"frequency_days": 2, "window": (990, 1200)}
    opts = options_from_rules(table)
    assert (opts.budget_min, opts.speed_kmh, opts.campaign_days) == (180.0, 4.0, 4)
    assert opts.rules["red"] == VisitRule(2, 12.0, 100.0, "红")  # what the file leaves out keeps its default
    assert opts.rules["yellow"].window == (840, 1020) and opts.rules["orange"] == PatrolOptions().rules["orange"]
    assert opts.special["低保户"] == CategoryRule(frequency_days=30, service_min=15.0)
    assert PATROL_PRIORITIES == RULE_KEYS  # the rules file knows every priority the planner does
    assert load_county_rules(_rules(tmp_path, "[county]\nseed = 1\n")).patrol == {}


def test_sample_rules_write_the_patrol_defaults_out() -> None:
    """``boundaries/sample_rules.toml`` writes the defaults out: its [patrol] changes nothing."""
    sample = Path(__file__).resolve().parents[1] / "boundaries" / "sample_rules.toml"
    opts = options_from_rules(load_county_rules(sample).patrol)
    assert opts == PatrolOptions()


@pytest.mark.parametrize(("text", "words"), [
    ('[patrol]\nbudjet = "4h"\n', "unknown key 'budjet' in [patrol]"),
    ('[patrol]\nbudget = "4 hours"\n', "[patrol] budget '4 hours': expected e.g. 4h"),
    ("[patrol]\nbudget = 0\n", "budget must be positive"),
    ("[patrol]\nbudget = true\n", "[patrol] budget"),
    ("[patrol]\nspeed_kmh = 0\n", "speed_kmh must be > 0"),
    ('[patrol]\nstart_time = "9 o\'clock"\n', "start_time must be HH:MM"),
    ("[patrol]\ncampaign_days = 0\n", "campaign_days must be >= 1"),
    ('[patrol]\nstart = "school"\n', "expected station, home or LON,LAT"),
    ("[patrol]\nend = [200, 30]\n", "outside -180..180"),
    ("[patrol.red]\nfreq = 1\n", "unknown key 'freq' in [patrol.red]"),
    ("[patrol.red]\nfrequency_days = 1.5\n", "frequency_days"),
    ("[patrol.red]\nweight = 0\n", "weight"),
    ('[patrol.yellow]\nwindow = "8pm"\n', "expected HH:MM-HH:MM"),
    ('[patrol.yellow]\nwindow = "21:00-18:00"\n', "closes before it opens"),
    ('[patrol.special."低保户"]\nfrequency_days = 0\n', "[patrol.special.低保户] frequency_days"),
    ('[patrol.special]\n"低保户" = 7\n', "[patrol.special.低保户] must be a table"),
    ("[patrol]\nblue = {frequency_days = 1}\n", "unknown key 'blue' in [patrol]"),
])
def test_patrol_section_refused_when_wrong(tmp_path: Path, text: str, words: str) -> None:
    path = _rules(tmp_path, text)
    with pytest.raises(UsageError) as err:
        load_county_rules(path)
    assert words in str(err.value) and str(path) in str(err.value)


# ------------------------------------------------------------------------------------- rules per category
def test_most_demanding_rule_of_colour_and_categories() -> None:
    rules = PatrolOptions().rules
    special = {"低保户": CategoryRule(frequency_days=30, service_min=15.0),
               "留守儿童": CategoryRule(frequency_days=2, service_min=8.0, window=(990, 1200)),
               "残疾人": CategoryRule(weight=50.0, window=(900, 1080))}
    home = Stop("h1", "household", "yellow", 0.0, 0.0, special=("低保户", "留守儿童"))
    assert effective_rule(home, rules, special) == VisitRule(2, 15.0, 1.0, "黄", (990, 1200))
    both = replace(home, special=("留守儿童", "残疾人"))
    assert effective_rule(both, rules, special) == VisitRule(2, 8.0, 50.0, "黄", (990, 1080))  # narrowest window
    assert effective_rule(replace(home, special=("其他",)), rules, special) is rules["yellow"]
    own = replace(home, window=(600, 660))  # the household's own visit_window wins
    assert effective_rule(own, rules, special).window == (600, 660)
    unmarked = Stop("h2", "household", "none", 0.0, 0.0, special=("低保户",))
    assert effective_rule(unmarked, rules, special).frequency_days == 30  # a category gives routine visits


def test_category_rule_applied_in_a_plan() -> None:
    net, grid = _line_grid(100.0, 1000.0)
    x0, y0 = grid.station
    # yellows seen 3 days ago: not due weekly, due under 留守儿童's 2 days with 低保户's 15 minutes
    stops = [Stop("plain", "household", "yellow", x0 + 300, y0 + 5, last_visit=DAY - dt.timedelta(days=3)),
             Stop("cared", "household", "yellow", x0 + 400, y0 + 5, last_visit=DAY - dt.timedelta(days=3),
                  special=("低保户", "留守儿童"))]
    special = {"低保户": CategoryRule(frequency_days=30, service_min=15.0), "留守儿童": CategoryRule(frequency_days=2)}
    plan = plan_day(prepare(net, GridStops("g", grid.station, stops), special=special), DAY)
    assert [v.stop.id for v in plan.visits] == ["cared"] and plan.due == 1
    v = plan.visits[0]
    door = 2 * v.snap_m / (4.5 * 1000 / 60)  # the walk to the door and back: at the door or not, as times are kept
    assert 15.0 - 1 / 60 <= (v.departure - v.arrival).total_seconds() / 60 <= 15.0 + door + 1 / 60
    assert plan_day(prepare(net, GridStops("g", grid.station, stops)), DAY).due == 0  # no category rule: not due


def test_county_reads_special_and_visit_window(tmp_path: Path) -> None:
    """A households layer with a register's ``special`` and ``visit_window`` columns: the stops carry them."""
    import geopandas as gpd
    import pyogrio

    x0, y0 = 500000.0, 3000000.0
    path = tmp_path / "c.gpkg"
    crs = "EPSG:32650"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"code": ["G1"]}, geometry=[shapely.box(x0 - 50, y0 - 200, x0 + 900,
                                                                                      y0 + 200)], crs=crs),
                            path, layer="grids")
    pyogrio.write_dataframe(gpd.GeoDataFrame({"highway": ["residential"]}, geometry=[shapely.LineString(
        [(x0 - 40, y0), (x0 + 890, y0)])], crs=crs), path, layer="roads", append=True)
    hh = gpd.GeoDataFrame({"id": ["a", "b", "c", "d"], "priority": ["红", None, "黄", None],
                           "special": [None, "低保户、留守儿童", "残疾人", None],
                           "visit_window": [None, "18:00-21:00", "", None],
                           "last_visit": ["2024-05-05"] * 4},
                          geometry=shapely.points([(x0 + 100 * i, y0 + 10) for i in range(1, 5)]), crs=crs)
    pyogrio.write_dataframe(hh, path, layer="households", append=True)
    c = County(path)
    stops = {s.id: s for s in c.grid_stops("G1", DAY).stops}
    assert set(stops) == {"a", "b", "c"}  # d: no colour, no category: visited by campaigns only
    assert stops["b"].priority == "none" and stops["b"].special == ("低保户", "留守儿童")
    assert stops["b"].window == (1080, 1260) and stops["c"].window is None
    assert {s.id for s in c.grid_stops("G1", DAY, every_household=True).stops} == {"a", "b", "c", "d"}
    hh.loc[0, "visit_window"] = "evenings"
    bad = tmp_path / "bad.gpkg"
    for layer in ("grids", "roads"):
        pyogrio.write_dataframe(pyogrio.read_dataframe(path, layer=layer), bad, layer=layer, append=bad.exists())
    pyogrio.write_dataframe(hh, bad, layer="households", append=True)
    with pytest.raises(Exception, match=r"household a: visit window 'evenings'") as err:
        County(bad).grid_stops("G1", DAY)
    assert "bad.gpkg" in str(err.value)


# ------------------------------------------------------------------------------------------- time windows
def _minutes(t: dt.datetime) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def _respects_windows(plan) -> None:  # type: ignore[no-untyped-def]
    for v in plan.visits:
        w = v.stop.window
        if w is not None:
            assert _minutes(v.arrival) >= w[0] - 1 / 60, (v.stop.id, v.arrival, w)
            assert _minutes(v.departure) <= w[1] + 1 / 60, (v.stop.id, v.departure, w)
    assert plan.duration_min <= plan.budget_min + 1e-6
    times = [plan.start] + [t for v in plan.visits for t in (v.arrival, v.departure)] + [plan.end]
    assert times == sorted(times)


def test_time_window_respected() -> None:
    net, grid = _line_grid(100.0, 1000.0)
    x0, y0 = grid.station
    stops = [replace(s, window=(600, 630)) if s.id == "red1" else s for s in grid.stops]  # 10:00-10:30, 200 m out
    stops.append(Stop("evening", "household", "red", x0 + 150, y0 + 10, last_visit=DAY - dt.timedelta(1),
                      window=(1080, 1260)))
    plan = plan_day(prepare(net, GridStops("line", grid.station, stops)), DAY, start_time=dt.time(8, 30))
    _respects_windows(plan)
    red1 = next(v for v in plan.visits if v.stop.id == "red1")
    assert red1.arrival.hour == 10 and red1.arrival.minute == 0  # waited for the window to open
    assert {s.id for s in stops} - {"evening"} == {v.stop.id for v in plan.visits}
    reason = next(m.reason for m in plan.missed if m.stop.id == "evening")
    assert "18:00-21:00" in reason and "08:30-12:30" in reason
    late = plan_day(prepare(net, GridStops("line", grid.station, stops)), DAY, start_time=dt.time(17, 30))
    _respects_windows(late)
    ev = next(v for v in late.visits if v.stop.id == "evening")
    assert _minutes(ev.arrival) >= 18 * 60


@pytest.mark.parametrize("seed", range(4))
def test_random_windows_never_broken(seed: int) -> None:
    """Households along a 3 km street with random windows in the morning: every visit made is inside its window."""
    net, grid = _line_grid(100.0, 3000.0)
    x0, y0 = grid.station
    rng = np.random.default_rng(seed)
    stops = []
    for i in range(30):
        lo = int(rng.integers(8 * 60 + 30, 12 * 60))
        w = (lo, lo + int(rng.integers(20, 90))) if rng.random() < 0.6 else None
        stops.append(Stop(f"h{i}", "household", str(rng.choice(["red", "orange", "yellow"])),
                          x0 + float(rng.uniform(0, 3000)), y0 + 8, last_visit=DAY - dt.timedelta(days=7), window=w))
    plan = plan_day(prepare(net, GridStops("line", grid.station, stops)), DAY, budget_min=240, seed=seed)
    _respects_windows(plan)
    assert any(v.stop.window is not None for v in plan.visits)
    assert len(plan.visits) + len(plan.missed) == plan.due == 30
    assert all(m.reason for m in plan.missed)


# ------------------------------------------------------------------------------------------ start and end
def test_start_and_end_points_used() -> None:
    net, grid = _line_grid(100.0, 1000.0)
    x0, y0 = grid.station
    end = (x0 + 1050.0, y0 + 20.0)
    plan = plan_day(prepare(net, grid, end=end), DAY)
    assert np.allclose(plan.coords[0], plan.station) and plan.end_point is not None
    assert np.allclose(plan.coords[-1], plan.end_point) and abs(plan.end_point[0] - end[0]) < 1e-6
    assert plan.duration_min <= plan.budget_min + 1e-6
    # walking to the end point is on the route and in its metres (door legs drawn or not)
    length = shapely.LineString(plan.coords).length
    assert plan.distance_m - sum(2 * v.snap_m for v in plan.visits) - 1e-6 <= length <= plan.distance_m + 1e-6
    street = plan.distance_m - sum(2 * v.snap_m for v in plan.visits)
    assert street == pytest.approx(1050.0, abs=1.0)  # one way out to the end past every stop, no walk back
    assert len(plan.visits) == plan.due
    from gridgeo.errors import InfeasibleError
    from gridgeo.patrol import check_budget

    far = prepare(net, grid, end=(x0 + 1050.0, y0 + 20.0))
    with pytest.raises(InfeasibleError, match="below the walk from the start to the end alone"):
        check_budget(far, 10.0)  # 1050 m: 14 min at 4.5 km/h
    with pytest.raises(InfeasibleError, match="below the shortest round trip"):
        check_budget(far, 15.0)  # the end fits, no stop on the way does


def test_start_end_and_home_on_a_county(county_path: Path) -> None:
    import pyproj

    c = County(county_path)
    code = c.codes[0]
    to_m = pyproj.Transformer.from_crs("EPSG:4326", c.network.crs, always_xy=True)
    base = plan_grid(c, code, day=dt.date(2025, 3, 3))[0]
    street = base.visits[len(base.visits) // 2].xy  # a point on a street the round walks
    lon, lat = pyproj.Transformer.from_crs(c.network.crs, "EPSG:4326", always_xy=True).transform(*street)
    home = (float(lon), float(lat))
    opts = PatrolOptions(start="home", end="station", home=home)
    plan = plan_grid(c, code, day=dt.date(2025, 3, 3), options=opts)[0]
    hx, hy = to_m.transform(*home)
    assert np.hypot(plan.coords[0][0] - hx, plan.coords[0][1] - hy) < 1.0  # home lies on a street of the route
    assert plan.end_point is not None and np.allclose(plan.end_point, base.station, atol=1e-6)
    there = plan_grid(c, code, day=dt.date(2025, 3, 3), options=PatrolOptions(end=home))[0]
    assert np.allclose(there.coords[0], base.station) and np.hypot(*(there.coords[-1] - (hx, hy))) < 1.0
    with pytest.raises(UsageError, match="needs the worker's home"):
        plan_grid(c, code, day=dt.date(2025, 3, 3), options=PatrolOptions(start="home"))


# ------------------------------------------------------------------------------------------------ campaigns
def test_campaign_over_five_days_covers_every_household_once(county_path: Path) -> None:
    c = County(county_path)
    code = c.codes[0]
    day = dt.date(2025, 3, 3)
    every = {s.id for s in c.grid_stops(code, day, every_household=True).stops}
    assert len(every) > 50
    plans = plan_grid(c, code, day=day, options=PatrolOptions(campaign_days=5))
    assert [p.date for p in plans] == [day + dt.timedelta(days=i) for i in range(5)]
    ids = [v.stop.id for p in plans for v in p.visits]
    assert len(ids) == len(set(ids)) and set(ids) == every  # every household, each exactly once
    assert all(p.duration_min <= p.budget_min + 1e-6 for p in plans)
    s = period_summary(plans)
    assert (s["visits_due"], s["visits_made"], s["visits_missed"]) == (len(every), len(every), 0)
    assert plans[0].summary()["campaign_days"] == 5
    # a budget that cannot hold them all: the rest is reported, each once, with its reason
    short = plan_grid(c, code, day=day, options=PatrolOptions(campaign_days=5, budget_min=30.0))
    made = [v.stop.id for p in short for v in p.visits]
    missed = [m.stop.id for m in short[-1].missed]
    assert len(made) == len(set(made)) and sorted(made + missed) == sorted(every) and missed
    assert all("are full" in m.reason or "round trip" in m.reason for m in short[-1].missed)


def test_campaign_keeps_windows() -> None:
    net, grid = _line_grid(100.0, 1000.0)
    stops = [replace(s, window=(9 * 60, 9 * 60 + 30)) if s.id.startswith("y") else s for s in grid.stops]
    from gridgeo.patrol import plan_campaign

    plans = plan_campaign(prepare(net, GridStops("line", grid.station, stops)), DAY, 3, budget_min=60.0)
    for p in plans:
        _respects_windows(p)
    ids = [v.stop.id for p in plans for v in p.visits] + [m.stop.id for m in plans[-1].missed]
    assert sorted(ids) == sorted(s.id for s in stops)


# ----------------------------------------------------------------------------------------- CLI and service
def test_cli_rules_and_campaign(county_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = County(county_path).codes[0]
    rules = _rules(tmp_path, '[patrol]\nbudget = "2h"\nstart_time = "09:15"\n[patrol.red]\nservice_min = 20\n')
    out = tmp_path / "r.geojson"
    base = ["patrol", str(county_path), "--grid", code, "--date", DATE, "-o", str(out), "--rules", str(rules)]
    assert main(base) == 0, capsys.readouterr().err
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert fc["properties"]["budget_min"] == 120 and fc["properties"]["start"].startswith(f"{DATE}T09:15")
    reds = [f["properties"] for f in fc["features"] if f["properties"].get("priority") == "red"]
    assert reds and all(dt.datetime.fromisoformat(r["departure"]) - dt.datetime.fromisoformat(r["arrival"])
                        >= dt.timedelta(minutes=20) for r in reds)
    assert main([*base, "--budget", "3h", "--campaign", "5"]) == 0  # the command line overrides the file
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert fc["properties"]["days"] == 5 and fc["properties"]["budget_min"] == 180
    assert "campaign of 5 days" in capsys.readouterr().out
    assert main([*base, "--start", "10:00"]) == 0  # --start HH:MM: the start time, as before
    assert json.loads(out.read_text(encoding="utf-8"))["properties"]["start"].startswith(f"{DATE}T10:00")
    assert main([*base, "--start", "home"]) == 2
    assert "needs the worker's home" in capsys.readouterr().err
    assert main([*base, "--campaign", "0"]) == 2
    bad = _rules(tmp_path, "[patrol]\nbudget = \"soon\"\n")
    assert main([*base[:-1], str(bad)]) == 2 and "budget 'soon'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def grid(app) -> str:  # type: ignore[no-untyped-def]
    return app.test_client().get("/collections/grids/items?limit=1").get_json()["features"][0]["id"]


def _stops(doc: dict) -> list[dict]:
    return [f["properties"] for f in doc["features"] if f["properties"]["kind"] == "stop"]


def test_api_overrides_applied(client, grid: str) -> None:  # type: ignore[no-untyped-def]
    plain = client.get(f"/patrol/{grid}?date={DATE}").get_json()
    resp = client.get(f"/patrol/{grid}?date={DATE}&budget=2h&service_red=25&start_time=09:00&speed=3.5")
    assert resp.status_code == 200, resp.get_json()
    doc = resp.get_json()
    assert doc["properties"]["budget_min"] == 120 and doc["properties"]["speed_kmh"] == 3.5
    assert doc["properties"]["start"].startswith(f"{DATE}T09:00")
    reds = [p for p in _stops(doc) if p["priority"] == "red"]
    assert reds and all(dt.datetime.fromisoformat(p["departure"]) - dt.datetime.fromisoformat(p["arrival"])
                        >= dt.timedelta(minutes=25) for p in reds)
    assert doc != plain
    # frequency per colour: yellows weekly by default, every day when asked
    daily = client.get(f"/patrol/{grid}?date={DATE}&frequency_yellow=1&frequency_orange=1").get_json()
    assert daily["properties"]["visits_due"] > plain["properties"]["visits_due"]
    camp = client.get(f"/patrol/{grid}?date={DATE}&campaign=5").get_json()
    assert camp["properties"]["days"] == 5 and camp["properties"]["visits_missed"] == 0
    ids = [p["stop"] for p in _stops(camp)]
    assert len(ids) == len(set(ids)) == camp["properties"]["visits_due"]
    lon, lat = plain["features"][0]["geometry"]["coordinates"][3]
    there = client.get(f"/patrol/{grid}?date={DATE}&end={lon},{lat}").get_json()
    assert np.allclose(there["features"][0]["geometry"]["coordinates"][-1], (lon, lat), atol=2e-5)


@pytest.mark.parametrize("query", [
    "speed=0", "speed=fast", "speed=nan", "budget=4x", "frequency_red=0", "frequency_red=1.5", "service_red=-1",
    "service_yellow=abc", "campaign=0", "campaign=40", "campaign=2.5", "start=moon", "end=200,30", "home=1,2,3",
    "start=home", "start_time=25:00", "frequency_blue=1",
])
def test_api_bad_override_is_400(client, grid: str, query: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/patrol/{grid}?date={DATE}&{query}")
    assert resp.status_code == 400, (query, resp.get_json())
    assert resp.mimetype == "application/problem+json" and resp.get_json()["title"] == "UsageError"


def test_service_reads_patrol_rules_from_its_config(county_path: Path, tmp_path: Path, grid: str) -> None:
    from gridgeo.service import create_app

    rules = _rules(tmp_path, '[patrol]\nbudget = "90min"\n[patrol.red]\nservice_min = 30\n')
    client = create_app({"COUNTY": str(county_path), "TESTING": True, "RULES": str(rules)}).test_client()
    doc = client.get(f"/patrol/{grid}?date={DATE}").get_json()
    assert doc["properties"]["budget_min"] == 90
    assert client.get(f"/patrol/{grid}?date={DATE}&budget=2h").get_json()["properties"]["budget_min"] == 120
    with pytest.raises(UsageError, match="unknown key 'budjet'"):
        create_app({"COUNTY": str(county_path), "TESTING": True,
                    "RULES": str(_rules(tmp_path, '[patrol]\nbudjet = "1h"\n'))})
