"""Patrol plans: stops, daily and periodic plans on real street networks, GeoJSON, GPX, CLI, bad input."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely

from gridgeo.cli import main
from gridgeo.data.osm import read_osm
from gridgeo.errors import InfeasibleError, InputError, UsageError
from gridgeo.patrol import (
    DayPlan,
    GridStops,
    Stop,
    parse_budget,
    plan_day,
    plan_period,
    prepare,
    route_geojson,
    route_gpx,
)
from gridgeo.patrol.network import Network, load_network

DAY = dt.date(2024, 5, 6)
GPX = "{http://www.topografix.com/GPX/1/1}"


def test_parse_budget() -> None:
    assert parse_budget("4h") == 240
    assert parse_budget("90min") == 90
    assert parse_budget("3h30m") == 210
    assert parse_budget("240") == 240
    assert parse_budget("1.5h") == 90
    for bad in ("", "4x", "-3", "0", "h"):
        with pytest.raises(UsageError):
            parse_budget(bad)


def _osm_stops(path: Path, net: Network, seed: int) -> GridStops:
    """Households on the extract's buildings with seeded priorities, a few grid points, a station."""
    b = read_osm(path, "buildings").to_crs(net.crs)
    xy = shapely.get_coordinates(shapely.point_on_surface(b.geometry.values))
    rng = np.random.default_rng(seed)
    centre = np.median(xy, axis=0)
    near = np.argsort(np.hypot(*(xy - centre).T))[:80]
    colours = rng.choice(["red", "orange", "yellow"], len(near), p=[0.2, 0.3, 0.5])
    stops = [Stop(f"h{i}", "household", str(c), *map(float, xy[i]), last_visit=DAY - dt.timedelta(days=7))
             for i, c in zip(near, colours, strict=True)]
    stops += [Stop(f"p{k}", "grid_point", "grid_point", *map(float, xy[near[k * 10]])) for k in range(3)]
    return GridStops("test", (float(centre[0]), float(centre[1])), stops, synthetic_priorities=True,
                     station_given=False)


def _check_plan(plan: DayPlan, budget: float) -> None:
    assert plan.duration_min <= budget + 1e-6
    line = shapely.LineString(plan.coords)
    assert np.allclose(plan.coords[0], plan.station) and np.allclose(plan.coords[-1], plan.station)
    for v in plan.visits:
        assert line.distance(shapely.Point(v.xy)) < 0.01  # the stop's street point is on the route
        assert line.distance(shapely.Point(v.stop.x, v.stop.y)) < 0.01  # and so is its door
    times = [plan.start] + [t for v in plan.visits for t in (v.arrival, v.departure)] + [plan.end]
    assert times == sorted(times)
    # the line runs along the streets and to each door and back: its length is the distance walked
    assert line.length == pytest.approx(plan.distance_m, rel=1e-6, abs=1e-3)


@pytest.mark.shared
@pytest.mark.parametrize("name", ["guixi_jiangxi.osm.pbf", "beijing_haidian_cau.osm.bz2"])
@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_daily_plan_on_osm(osm_dir: Path, name: str, mode: str) -> None:
    path = osm_dir / name
    net = load_network(path, mode=mode)
    grid = _osm_stops(path, net, seed=1)
    budget = 60.0
    problem = prepare(net, grid, speed_kmh=4.5 if mode == "walk" else 20.0, budget_min=budget)
    plan = plan_day(problem, DAY, budget_min=budget, seed=1)
    _check_plan(plan, budget)
    assert plan.visits, "something fits in an hour"
    assert plan.due == len(grid.stops)
    made = {v.stop.id for v in plan.visits}
    assert len(made) + len(plan.missed) == plan.due
    # priorities: among the visits made, reds come before lesser colours are preferred
    reds = [s for s in grid.stops if s.priority == "red"]
    red_made = sum(s.id in made for s in reds)
    yellows = [s for s in grid.stops if s.priority == "yellow"]
    assert red_made / len(reds) >= sum(s.id in made for s in yellows) / len(yellows)
    for m in plan.missed:
        assert m.reason


def _line_grid(spacing: float, far: float) -> tuple[Network, GridStops]:
    """A street 0..far metres long: reds near the station, one red far away."""
    import geopandas as gpd

    x0, y0 = 500000.0, 3000000.0
    roads = gpd.GeoDataFrame({"highway": ["residential"]},
                             geometry=[shapely.LineString([(x0, y0), (x0 + far + 100, y0)])], crs="EPSG:32650")
    from gridgeo.patrol.network import build_network

    net = build_network(roads)
    stops = [Stop(f"red{i}", "household", "red", x0 + spacing * (i + 1), y0 + 10, last_visit=DAY - dt.timedelta(1))
             for i in range(3)]
    stops.append(Stop("redfar", "household", "red", x0 + far, y0 + 10, last_visit=DAY - dt.timedelta(1)))
    stops += [Stop(f"y{i}", "household", "yellow", x0 + 50 + i, y0 - 5, last_visit=DAY - dt.timedelta(7))
              for i in range(5)]
    return net, GridStops("line", (x0, y0), stops)


def test_period_meets_red_daily_and_reports_infeasible() -> None:
    net, grid = _line_grid(100.0, 12_000.0)  # 24 km round trip: 5.3 h at 4.5 km/h
    problem = prepare(net, grid, budget_min=240)
    plans = plan_period(problem, DAY, 7, budget_min=240, seed=0)
    assert len(plans) == 7
    for p in plans:
        _check_plan(p, 240)
        made = {v.stop.id for v in p.visits}
        assert {"red0", "red1", "red2"} <= made
        far = [m for m in p.missed if m.stop.id == "redfar"]
        assert len(far) == 1
        assert "round trip alone is 5." in far[0].reason and "> 4.0 h budget" in far[0].reason
    # yellows are due on day 1 only (weekly) and are met then
    assert all(f"y{i}" in {v.stop.id for v in plans[0].visits} for i in range(5))
    assert not any(v.stop.id.startswith("y") for p in plans[1:] for v in p.visits)
    assert plans[1].date == DAY + dt.timedelta(days=1)
    with pytest.raises(InfeasibleError, match="below the shortest round trip"):
        plan_day(prepare(net, grid), DAY, budget_min=5, strict=True)


def test_overdue_red_dominates() -> None:
    net, grid = _line_grid(2000.0, 3000.0)
    # one overdue red 3 km out; twenty yellows at the station; a budget for one or the other
    x0, y0 = grid.station
    stops = [Stop("late", "household", "red", x0 + 3000, y0, last_visit=DAY - dt.timedelta(days=3))]
    stops += [Stop(f"y{i}", "household", "yellow", x0 + 30, y0 + 400, last_visit=DAY - dt.timedelta(days=9))
              for i in range(20)]
    problem = prepare(net, GridStops("g", grid.station, stops))
    budget = 2 * 3000 / 75 + 10 + 1  # just the round trip to the red and its visit
    plan = plan_day(problem, DAY, budget_min=budget)
    assert [v.stop.id for v in plan.visits] == ["late"]
    assert all("higher priorities" in m.reason for m in plan.missed)


def test_far_stop_is_missed_and_far_station_is_an_error() -> None:
    net, grid = _line_grid(100.0, 1000.0)
    x0, y0 = grid.station
    stops = [*grid.stops, Stop("hill", "household", "red", x0 + 500, y0 + 3000, last_visit=DAY - dt.timedelta(1))]
    plan = plan_day(prepare(net, GridStops("g", grid.station, stops), max_snap=500), DAY)
    reason = next(m.reason for m in plan.missed if m.stop.id == "hill")
    assert "3000 m from the nearest street" in reason
    with pytest.raises(InputError, match="station is 2000 m"):
        prepare(net, GridStops("g", (x0, y0 + 2000), stops), max_snap=500)


def test_geojson_and_gpx() -> None:
    net, grid = _line_grid(100.0, 1000.0)
    plans = plan_period(prepare(net, grid), DAY, 2, start_time=dt.time(8, 30))
    fc = route_geojson(plans)
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    json.dumps(fc)  # plain JSON values only
    s = fc["properties"]
    for key in ("distance_m", "duration_min", "score", "visits_made", "visits_missed", "missed", "red_met_share"):
        assert key in s
    lines = [f for f in fc["features"] if f["geometry"]["type"] == "LineString"]
    assert len(lines) == 2
    for f in fc["features"]:
        c = np.array(f["geometry"]["coordinates"], dtype=float).reshape(-1, 2)
        assert (np.abs(c[:, 0]) <= 180).all() and (np.abs(c[:, 1]) <= 90).all()
        assert 100 < c[:, 0].min() < 130 and 20 < c[:, 1].min() < 40  # lon, lat order (UTM 50N)
    stops = [f["properties"] for f in fc["features"] if f["properties"]["kind"] == "stop"]
    assert stops[0]["arrival"].startswith("2024-05-06T08:3") and stops[0]["arrival"].endswith("+08:00")
    assert [p["order"] for p in stops if p["date"] == "2024-05-06"] == list(range(1, 1 + len(plans[0].visits)))
    root = ET.fromstring(route_gpx(plans))
    assert root.tag == f"{GPX}gpx" and root.get("version") == "1.1"
    children = [c.tag.removeprefix(GPX) for c in root]
    assert children[0] == "metadata"
    assert children.index("trk") > max(i for i, t in enumerate(children) if t == "wpt")
    wpts = root.findall(f"{GPX}wpt")
    assert len(wpts) == sum(len(p.visits) for p in plans)
    for w in wpts:
        assert -90 <= float(w.get("lat", "nan")) <= 90 and -180 <= float(w.get("lon", "nan")) <= 180
        assert w.find(f"{GPX}time") is not None and w.find(f"{GPX}name") is not None
    trks = root.findall(f"{GPX}trk")
    assert len(trks) == 2
    assert all(len(t.findall(f"{GPX}trkseg/{GPX}trkpt")) >= 2 for t in trks)


# ---------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gridgeo.synth import synth_county, write_county

    path = tmp_path_factory.mktemp("patrol") / "county.gpkg"
    write_county(synth_county(seed=7, townships=2, villages=6, households=600), path)
    return path


def _first_grid(county: Path) -> str:
    from gridgeo.data.io import read_layer

    return str(read_layer(county, layer="villager_groups")["code"].iloc[0])


def test_cli_single_grid(county: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = _first_grid(county)
    out, gpx = tmp_path / "route.geojson", tmp_path / "route.gpx"
    rc = main(["patrol", str(county), "--grid", grid, "--date", "2024-05-06", "--days", "3", "--budget", "3h30m",
               "-o", str(out), "--gpx", str(gpx), "--seed", "2"])
    assert rc == 0, capsys.readouterr().err
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert fc["properties"]["synthetic_priorities"] is True
    assert fc["properties"]["days"] == 3 and fc["properties"]["budget_min"] == 210
    assert all(d["duration_min"] <= 210 for d in fc["properties"]["days_detail"])
    ET.parse(gpx)
    assert "synthetic" in capsys.readouterr().out


def test_cli_all(county: Path, tmp_path: Path) -> None:
    out = tmp_path / "routes"
    argv = ["patrol", str(county), "--all", "--date", "2024-05-06", "-o", str(out), "--gpx", str(tmp_path / "gpx")]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["planned"] == summary["grids"] and summary["grids"] > 10
    assert len(list(out.glob("*.geojson"))) == summary["grids"]
    assert len(list((tmp_path / "gpx").glob("*.gpx"))) == summary["grids"]


def test_cli_bad_input(county: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = _first_grid(county)
    base = ["patrol", str(county), "--date", "2024-05-06", "-o", str(tmp_path / "r.geojson")]
    assert main([*base, "--grid", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no grid 'nope'" in err and grid in err
    assert main([*base, "--grid", grid, "--budget", "1min"]) == 3
    assert "below the shortest round trip" in capsys.readouterr().err
    assert main([*base, "--grid", grid, "--budget", "soon"]) == 2
    assert main([*base, "--grid", grid, "--date", "yesterday"]) == 2
    import geopandas as gpd

    roads = gpd.GeoDataFrame({"highway": ["motorway"], "oneway": ["yes"]},
                             geometry=[shapely.LineString([(117.18, 28.25), (117.2, 28.25)])], crs=4326)
    bad = tmp_path / "motorway.geojson"
    roads.to_file(bad, driver="GeoJSON")
    assert main([*base, "--grid", grid, "--network", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "motorway.geojson" in err and "no walkable ways" in err
    assert not (tmp_path / "r.geojson").exists()


def test_plan_grid_is_the_library_sequence(county: Path) -> None:
    from gridgeo.patrol import SPEED_KMH, County, PatrolOptions, check_budget, plan_grid

    opts = PatrolOptions()
    assert (opts.budget_min, opts.start_time, opts.max_snap, opts.seed) == (240.0, dt.time(8, 30), 1000.0, 0)
    assert opts.speed("walk") == SPEED_KMH["walk"] == 4.5 and opts.speed("drive") == 25.0
    assert PatrolOptions(speed_kmh=6.0).speed("drive") == 6.0
    c = County(county)
    grid = _first_grid(county)
    plans = plan_grid(c, grid, day=DAY, days=2)
    problem = prepare(c.network, c.grid_stops(grid, DAY), budget_min=240.0)
    check_budget(problem, 240.0)
    by_hand = plan_period(problem, DAY, 2, budget_min=240.0)
    assert [p.summary() for p in plans] == [p.summary() for p in by_hand]
    assert [[v.stop.id for v in p.visits] for p in plans] == [[v.stop.id for v in p.visits] for p in by_hand]
    short = plan_grid(c, grid, day=DAY, options=PatrolOptions(budget_min=90.0, start_time=dt.time(9, 0)))
    assert len(short) == 1 and short[0].budget_min == 90.0 and short[0].start.hour == 9


# ---------------------------------------------------------------------------------- door to door, plans people read
def _metric(plan: DayPlan, lonlat: np.ndarray) -> np.ndarray:
    """Lon/lat back in the plan's metric CRS (where it was measured)."""
    import pyproj

    tr = pyproj.Transformer.from_crs("EPSG:4326", plan.crs, always_xy=True)
    x, y = tr.transform(lonlat[:, 0], lonlat[:, 1])
    return np.c_[x, y]


def _gpx_days(text: str) -> tuple[list[ET.Element], list[np.ndarray]]:
    """The waypoints and, per track, its lon/lat points."""
    root = ET.fromstring(text)
    tracks = [np.array([(float(p.get("lon", "nan")), float(p.get("lat", "nan")))
                        for p in t.iter(f"{GPX}trkpt")]) for t in root.findall(f"{GPX}trk")]
    return root.findall(f"{GPX}wpt"), tracks


@pytest.fixture(scope="module")
def county_plans(county: Path) -> list[DayPlan]:
    """Three days of the first three grids of the generated county (households 25-165 m from a street)."""
    from gridgeo.patrol import County, plan_grid

    c = County(county)
    return [p for code in c.codes[:3] for p in plan_grid(c, code, day=DAY, days=3)]


def test_drawn_route_is_the_distance_walked(county_plans: list[DayPlan]) -> None:
    """GeoJSON line and GPX track, measured in the metric CRS, are ``distance_m`` within 1 %: the door legs are
    drawn (street -> door -> street), and they are a real share of the walk here, so leaving them out fails."""
    door_share = []
    for p in county_plans:
        if not p.visits:
            continue
        fc = route_geojson(p)
        line = next(f for f in fc["features"] if f["properties"]["kind"] == "route")
        drawn = shapely.LineString(_metric(p, np.array(line["geometry"]["coordinates"]))).length
        _, tracks = _gpx_days(route_gpx(p))
        track = shapely.LineString(_metric(p, tracks[0])).length
        assert drawn == pytest.approx(p.distance_m, rel=0.01)
        assert track == pytest.approx(p.distance_m, rel=0.01)
        assert line["properties"]["distance_m"] == round(p.distance_m, 1)
        door_share.append(sum(2 * v.snap_m for v in p.visits) / p.distance_m)
    assert len(door_share) >= 3 and max(door_share) > 0.05


def test_gpx_waypoints_at_the_door(county_plans: list[DayPlan]) -> None:
    plans = [p for p in county_plans if p.visits]
    wpts, tracks = _gpx_days(route_gpx(plans))
    visits = [(p, v) for p in plans for v in p.visits]
    assert len(wpts) == len(visits) and len(tracks) == len(plans)
    far_from_street = 0
    for w, (p, v) in zip(wpts, visits, strict=True):
        at = _metric(p, np.array([[float(w.get("lon", "nan")), float(w.get("lat", "nan"))]]))[0]
        assert np.hypot(*(at - (v.stop.x, v.stop.y))) < 1.0  # at the door, within 1 m
        far_from_street += bool(np.hypot(*(at - v.xy)) > 10.0)  # not on the street
    assert far_from_street > len(visits) // 2
    # each track walks street -> door -> street at every visit
    for p, t in zip(plans, tracks, strict=True):
        line = shapely.LineString(_metric(p, t))
        assert all(line.distance(shapely.Point(v.stop.x, v.stop.y)) < 1.0 for v in p.visits)


def test_stop_list_in_order_with_what_is_due(county_plans: list[DayPlan]) -> None:
    from gridgeo.patrol import DEFAULT_RULES

    p = next(q for q in county_plans if len(q.visits) >= 3)
    fc = route_geojson(p)
    route = next(f for f in fc["features"] if f["properties"]["kind"] == "route")
    entries = route["properties"]["stops"]
    points = [f for f in fc["features"] if f["properties"]["kind"] == "stop"]
    assert [e["order"] for e in entries] == list(range(1, len(p.visits) + 1))
    assert [e["stop"] for e in entries] == [v.stop.id for v in p.visits]
    arrivals = [dt.datetime.fromisoformat(e["arrival"]) for e in entries]
    assert arrivals == sorted(arrivals) and all(a.utcoffset() == dt.timedelta(hours=8) for a in arrivals)
    for e, v, f in zip(entries, p.visits, points, strict=True):
        rule = DEFAULT_RULES[v.stop.priority]
        assert e["name"] == v.stop.name and e["priority"] == v.stop.priority and e["label"] == rule.label
        assert e["time"] == v.arrival.strftime("%H:%M") and e["address"] is None  # a generated county
        assert e["frequency_days"] == rule.frequency_days and e["minutes"] == rule.service_min
        assert e["due"].startswith(rule.label + " ") and e["due"] == (
            f"{rule.label} {({1: '每日', 7: '每周'}).get(rule.frequency_days, f'每{rule.frequency_days}天')}"
            f"{'走访' if v.stop.kind == 'household' else '巡查'}，"
            + (f"逾期{v.days_overdue}天" if v.days_overdue else "今日到期"))
        # the Point is at the door with the same entry; the street point is where the door leg starts
        assert f["geometry"]["coordinates"] == e["location"]
        assert {k: f["properties"][k] for k in e} == e
        door = _metric(p, np.array([e["location"]]))[0]
        street = _metric(p, np.array([e["street"]]))[0]
        assert np.hypot(*(door - (v.stop.x, v.stop.y))) < 0.05 and np.hypot(*(street - v.xy)) < 0.05
        assert np.hypot(*(door - street)) == pytest.approx(v.snap_m, abs=0.05)


def test_an_overdue_visit_says_so() -> None:
    net, grid = _line_grid(100.0, 500.0)
    late = [Stop("late", "household", "orange", grid.station[0] + 200, grid.station[1] + 30,
                 "王五", DAY - dt.timedelta(days=5))]
    plan = plan_day(prepare(net, GridStops("g", grid.station, late)), DAY)
    (v,) = plan.visits
    assert v.days_overdue == 2 and v.rule is not None and v.rule.frequency_days == 3
    entry = next(f for f in route_geojson(plan)["features"] if f["properties"]["kind"] == "stop")["properties"]
    assert entry["due"] == "橙 每3天走访，逾期2天" and entry["last_visit"] == (DAY - dt.timedelta(days=5)).isoformat()
    (w,), _ = _gpx_days(route_gpx(plan))
    assert w.findtext(f"{GPX}name") == f"01 {v.arrival:%H:%M} 橙 王五"
    assert "橙 每3天走访，逾期2天" in (w.findtext(f"{GPX}desc") or "")


def test_gpx_names_and_descriptions(county_plans: list[DayPlan]) -> None:
    import re

    plans = [p for p in county_plans if p.visits][:2]
    one, _ = _gpx_days(route_gpx(plans[0]))
    name = re.compile(r"^(\d\d) (\d\d:\d\d) (红|橙|黄|风险点|网格点) (.+)$")
    for w, v in zip(one, plans[0].visits, strict=True):
        m = name.match(w.findtext(f"{GPX}name") or "")
        assert m is not None, w.findtext(f"{GPX}name")
        assert (int(m[1]), m[2], m[4]) == (v.order, v.arrival.strftime("%H:%M"), v.stop.name)
        desc = w.findtext(f"{GPX}desc") or ""
        minutes = round((v.departure - v.arrival).total_seconds() / 60, 1)
        assert f"停留{minutes:g}分钟" in desc and f"{v.stop.kind} {v.stop.id}" in desc and "地址" not in desc
        assert desc.startswith(m[3] + " ")  # what is due comes first where there is no address
        when = dt.datetime.fromisoformat((w.findtext(f"{GPX}time") or "").replace("Z", "+00:00"))
        assert when == v.arrival
    # several days in one file: the day first, so that an app's list sorts by day, then by order
    many, _ = _gpx_days(route_gpx(plans))
    names = [w.findtext(f"{GPX}name") or "" for w in many]
    assert all(re.match(r"^\d\d-\d\d \d\d \d\d:\d\d ", n) for n in names)
    assert [n[:8] for n in names] == [f"{p.date:%m-%d} {v.order:02d}" for p in plans for v in p.visits]


def _with_register(county: Path, d: Path) -> Path:
    """A copy of the generated county with a register's households (name, address, special, priority, last visit)."""
    import shutil

    import geopandas as gpd

    from gridgeo.data.io import read_layer

    out = d / "registered.gpkg"
    shutil.copy(county, out)
    b = read_layer(out, layer="buildings")
    n = len(b)
    hh = gpd.GeoDataFrame({
        "source_id": [f"3699{i:05d}" for i in range(n)],
        "name": [f"户主{i}" for i in range(n)],
        "address": [f"幸福路{i}号" if i % 5 else None for i in range(n)],
        "special": ["独居老人" if i % 4 == 0 else None for i in range(n)],
        "priority": [["红", "橙", "黄"][i % 3] for i in range(n)],
        "last_visit": [(DAY - dt.timedelta(days=1 + i % 9)).isoformat() for i in range(n)],
    }, geometry=b.geometry.representative_point(), crs=b.crs)
    hh.to_file(out, layer="households", driver="GPKG")
    return out


def test_register_address_in_the_plan_and_withheld_without_names(county: Path, tmp_path: Path) -> None:
    from gridgeo.patrol import County, plan_grid

    path = _with_register(county, tmp_path)
    named = County(path)
    code = next(c for c in named.codes if len(named.grid_stops(c, DAY).stops) >= 5)
    (plan,) = plan_grid(named, code, day=DAY)
    homes = [v for v in plan.visits if v.stop.kind == "household"]
    assert homes and any(v.address for v in homes) and any(v.special for v in homes)
    fc = route_geojson(plan)
    entries = next(f for f in fc["features"] if f["properties"]["kind"] == "route")["properties"]["stops"]
    for e, v in zip(entries, plan.visits, strict=True):
        if v.stop.kind != "household":  # the county's POIs as risk points: no register
            assert e["address"] is None and e["special"] is None
            continue
        i = int(v.stop.id[4:])
        assert e["name"] == f"户主{i}" and e["address"] == (f"幸福路{i}号" if i % 5 else None)
        assert e["special"] == ("独居老人" if i % 4 == 0 else None)
    wpts, _ = _gpx_days(route_gpx(plan))
    for w, v in zip(wpts, plan.visits, strict=True):
        desc = w.findtext(f"{GPX}desc") or ""
        assert desc.startswith(f"地址：{v.address}；") if v.address else "地址" not in desc
        assert (w.findtext(f"{GPX}name") or "").endswith(f" {v.stop.name}")
    # the service's way: no names, no addresses, no special-care categories; stops named by household id
    (hidden,) = plan_grid(County(path, names=False), code, day=DAY)
    assert [v.stop.id for v in hidden.visits] == [v.stop.id for v in plan.visits]
    text = json.dumps(route_geojson(hidden), ensure_ascii=False) + route_gpx(hidden)
    assert "户主" not in text and "幸福路" not in text and "独居老人" not in text
    assert all(v.stop.name == v.stop.id and not v.address and not v.special
               for v in hidden.visits if v.stop.kind == "household")
