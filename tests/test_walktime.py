"""The walk-time bound (issue 14 item 5): the estimate and its inverse, k fitted on real networks, the route check.

Why these tests: the partition will size grids by :func:`households_within`, so it must invert
:func:`patrol_minutes` exactly and move the right way with every parameter; ``k`` must come out of a real network
reproducibly; and the build's check must name a grid whose day does not fit, and no grid where every day fits.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgeo.cli.main import main
from gridgeo.errors import UsageError
from gridgeo.patrol import DEFAULT_RULES, County, PatrolOptions, Stop
from gridgeo.patrol._kfit import Sample
from gridgeo.patrol.walkcheck import check_walk
from gridgeo.patrol.walktime import (
    DailyLoad,
    Sampling,
    _least_squares,
    daily_load,
    daily_load_of,
    fit_k,
    households_within,
    patrol_minutes,
    walk_limit,
)
from tests.conftest import built_synth

DAY = dt.date(2026, 12, 2)


# ------------------------------------------------------------------------------------------ the estimate
PARAMS = [dict(k=k, density_per_m2=rho, service_min=s, speed_kmh=v, due_share=d, site_share=site, door_m=door,
               access_m=acc)
          for k, rho, s, v, d, site, door, acc in itertools.product(
              (0.8, 1.2, 2.0), (1e-4, 2e-3, 0.02), (3.0, 6.5), (3.0, 4.5), (0.03, 0.075, 0.4), (None, 0.5),
              (0.0, 25.0), (0.0, 800.0))]


def _minutes(n: int, p: dict) -> float:
    share = p["site_share"] * p["due_share"] if p["site_share"] is not None else None
    load = DailyLoad(p["due_share"], p["service_min"], share, p["door_m"])
    return patrol_minutes(n, n / p["density_per_m2"], k=p["k"], load=load, speed_kmh=p["speed_kmh"],
                          access_m=p["access_m"])


@pytest.mark.parametrize("budget", [30.0, 240.0, 600.0])
def test_households_within_inverts_patrol_minutes(budget: float) -> None:
    for p in PARAMS:
        kw = {**p, "site_share": p["site_share"] * p["due_share"] if p["site_share"] is not None else None}
        n = households_within(budget, **kw)
        assert n >= 0
        assert n == 0 or _minutes(n, p) <= budget + 1e-9, (p, n)
        assert _minutes(n + 1, p) > budget, (p, n)  # the largest such n


def test_households_within_is_the_linear_form_for_large_parts() -> None:
    """Without the station's +1 the time is linear in n (the docstring's derivation): B / per-household."""
    k, rho, s, v, d = 1.2, 2e-3, 6.5, 4.5, 0.075
    mpm = v * 1000 / 60
    per = k * math.sqrt(d / rho) / mpm + d * s
    n = households_within(240.0, k=k, density_per_m2=rho, service_min=s, speed_kmh=v, due_share=d)
    assert abs(n - 240.0 / per) <= 0.02 * 240.0 / per


def test_estimate_is_monotone() -> None:
    base = dict(k=1.2, density_per_m2=2e-3, service_min=6.5, speed_kmh=4.5, due_share=0.075)
    n0 = households_within(240.0, **base)
    assert households_within(300.0, **base) > n0 > households_within(200.0, **base)
    for key, up in (("k", 1.5), ("service_min", 9.0), ("due_share", 0.1)):  # more of these: fewer households
        assert households_within(240.0, **{**base, key: up}) < n0
    for key, up in (("density_per_m2", 8e-3), ("speed_kmh", 5.5)):  # denser, faster: more
        assert households_within(240.0, **{**base, key: up}) > n0
    assert households_within(240.0, **base, access_m=2000.0) < n0
    load = DailyLoad(0.075, 6.5)
    t = [patrol_minutes(n, a, k=1.2, load=load, speed_kmh=4.5) for n, a in ((10, 1e5), (20, 1e5), (20, 4e5))]
    assert t[0] < t[1] < t[2]
    assert patrol_minutes(0, 1e6, k=1.2, load=load, speed_kmh=4.5) == 0.0


def test_walk_limit_is_households_within() -> None:
    load = daily_load(households_per_site=[1, 1, 2, 3, 60], door_m=20.0)
    walk = walk_limit(k=1.4, load=load, speed_kmh=4.5)
    for minutes, rho in ((240.0, 1e-4), (90.0, 3e-3)):
        assert walk(minutes, rho) == households_within(minutes, k=1.4, density_per_m2=rho, speed_kmh=4.5,
                                                       service_min=load.service_min, due_share=load.due_share,
                                                       site_share=load.site_share, door_m=20.0)
    assert walk(240.0, 1e-4) > walk(120.0, 1e-4) > 0


def test_estimate_refuses_nonsense() -> None:
    base = dict(k=1.2, density_per_m2=2e-3, service_min=6.5, speed_kmh=4.5, due_share=0.075)
    for key, bad in (("k", 0.0), ("density_per_m2", -1.0), ("speed_kmh", 0.0), ("due_share", 1.5)):
        with pytest.raises(UsageError):
            households_within(240.0, **{**base, key: bad})
    with pytest.raises(UsageError):
        households_within(0.0, **base)
    with pytest.raises(UsageError, match="no visit rule"):
        daily_load({"purple": 0.1})


def test_daily_load_of_the_rules() -> None:
    load = daily_load({"red": 0.03, "orange": 0.07, "yellow": 0.15})
    due = 0.03 / 1 + 0.07 / 3 + 0.15 / 7
    assert load.due_share == pytest.approx(due)
    assert load.service_min == pytest.approx((0.03 * 10 + 0.07 / 3 * 5 + 0.15 / 7 * 5) / due)
    assert load.sites == load.due_share  # one household per place
    # places: due households of one building are one stop
    apart = daily_load({"red": 0.5}, households_per_site=[1] * 10)
    together = daily_load({"red": 0.5}, households_per_site=[10])
    assert apart.sites == pytest.approx(0.5) and together.sites == pytest.approx((1 - 0.5 ** 10) / 10)
    none = daily_load({"none": 1.0})  # unmarked households are never due
    assert none.due_share == 0.0 and none.service_min == 0.0


def test_daily_load_of_real_stops() -> None:
    stops = [Stop("a", "household", "red", 0, 0), Stop("b", "household", "red", 0, 0),  # one building
             Stop("c", "household", "yellow", 50, 0), Stop("d", "household", "none", 90, 0)]
    load = daily_load_of(stops, 4, rules=DEFAULT_RULES)
    assert load.due_share == pytest.approx((1 + 1 + 1 / 7) / 4)
    assert load.sites == pytest.approx((1 + 1 / 7) / 4)
    assert load.service_min == pytest.approx((10 + 10 + 5 / 7) / (2 + 1 / 7))


# ------------------------------------------------------------------------------------------ k
def test_least_squares_recovers_a_known_k() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(5, 60, 50)
    a = rng.uniform(1e3, 1e6, 50)
    samples = [Sample(int(ni), float(ai), float(ai) * 2, 1.37 * math.sqrt(ni * ai), math.sqrt(ni * ai), 10.0)
               for ni, ai in zip(n, a, strict=True)]
    fit = _least_squares(samples, Sampling())
    assert fit.k == pytest.approx(1.37) and fit.rel_error == pytest.approx(0.0, abs=1e-12)
    assert fit.k_se == pytest.approx(0.0, abs=1e-9) and fit.samples == 50
    detour = [*samples, Sample(10, 1e4, 2e4, 9e4, 1e3, 5.0), Sample(10, 1e4, 2e4, math.inf, math.inf, 5.0)]
    fit2 = _least_squares(detour, Sampling())  # a network gap and no path: counted, not fitted
    assert fit2.k == pytest.approx(1.37) and (fit2.detours, fit2.disconnected) == (1, 1)


def _osm_places(path: Path) -> tuple[object, np.ndarray]:
    from gridgeo.data.osm import read_osm
    from gridgeo.patrol.network import load_network

    net = load_network(path)
    b = read_osm(path, "buildings").to_crs(net.crs)
    return net, shapely.get_coordinates(shapely.point_on_surface(b.geometry.values))


@pytest.mark.parametrize("name", ["guixi_jiangxi.osm.pbf", "beijing_haidian_cau.osm.pbf"])
def test_fit_k_on_real_osm(osm_dir: Path, name: str) -> None:
    net, xy = _osm_places(osm_dir / name)
    sp = Sampling(n_range=(5, 30), side_m=(150.0, 1000.0))
    fit = fit_k(net, xy, samples=60, seed=0, sampling=sp)  # type: ignore[arg-type]
    again = fit_k(net, xy, samples=60, seed=0, sampling=sp)  # type: ignore[arg-type]
    assert again == fit  # deterministic by seed
    other = fit_k(net, xy, samples=60, seed=1, sampling=sp)  # type: ignore[arg-type]
    assert other.length_m != fit.length_m  # other samples ...
    assert abs(other.k - fit.k) <= 4 * math.hypot(fit.k_se, other.k_se)  # ... the same k, within its error
    assert fit.k_se / fit.k < 0.15 and fit.samples >= 40  # k itself is known to within 15 %
    assert 0.5 < fit.k < 4.0  # a street round is at least about the plane's 0.71, and not wildly more
    assert fit.rel_error < 1.5  # one part's tour: within about its estimate (the spread of real places)
    assert 5 <= fit.n_range[0] <= fit.n_range[1] <= 30


def test_fit_k_on_the_sample_county_roads() -> None:
    from gridgeo.patrol.network import build_network

    src = Path(__file__).resolve().parents[1] / "boundaries" / "sample_county.gpkg"
    net = build_network(gpd.read_file(src, layer="roads"), mode="walk", source=str(src))
    b = gpd.read_file(src, layer="buildings").to_crs(net.crs)
    xy = shapely.get_coordinates(shapely.point_on_surface(b.geometry.values))
    fit = fit_k(net, xy, samples=60, seed=0)
    assert fit.k_se / fit.k < 0.1 and 0.5 < fit.k < 3.0 and fit.samples >= 50 and fit.rel_error < 0.8
    with pytest.raises(UsageError, match="distinct places"):
        fit_k(net, xy[:3], samples=5, seed=0)


# ------------------------------------------------------------------------------------------ the route check
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_synth(tmp_path_factory.mktemp("walk"), seed=4, townships=2, villages=4, households=1500)


@pytest.fixture(scope="module")
def roomy(built: Path) -> float:
    """A budget every grid's day of the built county fits: its longest round, planned with a whole day, and 5 %."""
    full = check_walk(County(built), day=DAY, options=PatrolOptions(budget_min=24 * 60.0))
    assert full.summary()["fit"] == len(full.grids)
    return 1.05 * max(g.duration_min for g in full.grids)


def _merged(built: Path, out: Path) -> tuple[Path, str]:
    """The built county with every grid merged into one (the exclusive grids kept): a grid deliberately too big."""
    import pyogrio

    from gridgeo.data.io import list_layers, read_layer, write_layers

    layers = {n: read_layer(built, layer=n) if n not in ("people",) else pyogrio.read_dataframe(built, layer=n)
              for n in list_layers(built)}
    g = layers["grids"]
    code = str(g["code"].iloc[0])
    one = g.iloc[:1].copy()
    one["households"] = int(g["households"].sum())
    one = one.set_geometry([shapely.union_all(g.geometry.values)], crs=g.crs)
    layers["grids"] = one
    pts = layers["points"]
    pts.loc[pts["parent"].astype(str).isin(set(g["code"].astype(str))), "parent"] = code
    write_layers(layers, out)
    return out, code


def test_check_finds_none_where_all_fit(built: Path, roomy: float) -> None:
    res = check_walk(County(built), day=DAY, options=PatrolOptions(budget_min=roomy))
    s = res.summary()
    assert s["grids"] == len(County(built).codes) and s["fit"] == s["grids"] and s["by_reason"] == {}
    table = res.table()
    assert table["fits"].all() and (table["duration_min"] <= roomy).all() and (table["missed"] == 0).all()


def test_check_names_a_grid_too_big(built: Path, roomy: float, tmp_path: Path) -> None:
    path, code = _merged(built, tmp_path / "merged.gpkg")
    res = check_walk(County(path), day=DAY, options=PatrolOptions(budget_min=roomy))
    bad = [g for g in res.grids if not g.fits]
    assert [g.grid for g in bad] == [code]  # the exclusive grids still fit
    g = bad[0]
    assert g.reason == "too_many" and g.needed_min is not None and g.needed_min > roomy
    assert g.missed > 0 and g.made + g.missed == g.due and f"need {g.needed_min:.0f} min" in g.detail


def test_check_names_a_far_start(built: Path) -> None:
    import pyproj

    county = County(built)
    # a start on a street far across the county: the grid's round trips are over the budget, the start is to blame
    grid = county.grids.geometry.iloc[0]
    nodes = county.network.node_xy
    far = nodes[int(np.argmax(shapely.distance(grid, shapely.points(nodes))))]
    metres = float(shapely.distance(grid, shapely.Point(far)))
    assert metres > 3000
    lonlat = pyproj.Transformer.from_crs(county.network.crs, "EPSG:4326", always_xy=True).transform(*far)
    budget = 0.8 * 2 * metres / (4.5 * 1000 / 60)  # below the walk there and back alone
    opts = PatrolOptions(budget_min=budget, start=(float(lonlat[0]), float(lonlat[1])), end=(float(lonlat[0]),
                                                                                            float(lonlat[1])))
    g = check_walk(county, day=DAY, options=opts, codes=county.codes[:1]).grids[0]
    assert g.reason == "start_far", (g.reason, g.detail)
    assert "below the shortest round trip" in g.detail or "round trip alone" in g.detail


def test_cli_check_budget(built: Path, roomy: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "check.json"
    argv = ["patrol", str(built), "--check-budget", "--date", DAY.isoformat(), "--budget", f"{roomy:.1f}",
            "-o", str(out)]
    assert main(argv) == 0
    body = json.loads(out.read_text(encoding="utf-8"))
    assert body["fit"] == body["grids"] and body["not_fitting"] == []
    merged, code = _merged(built, tmp_path / "merged.gpkg")
    assert main(["patrol", str(merged), *argv[2:-1], str(out)]) == 3
    body = json.loads(out.read_text(encoding="utf-8"))
    assert [r["grid"] for r in body["not_fitting"]] == [code] and body["by_reason"] == {"too_many": 1}
    assert "not fitting: 1 too_many" in capsys.readouterr().out
    assert main([*argv[:-1], str(tmp_path / "check.geojson")]) == 2


def test_build_walk_check_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyogrio

    from tests.conftest import synth_rules

    rules = synth_rules(tmp_path, seed=4, townships=1, villages=2, households=500)
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text + '[grids]\nwalk_check = true\n', encoding="utf-8")
    out = tmp_path / "built.gpkg"  # (county.gpkg is the input)
    assert main(["build", str(rules), "-o", str(out), "--workers", "1", "--no-progress"]) == 2  # no budget
    assert "needs the budget" in capsys.readouterr().err and not out.exists()
    rules.write_text(text + '[grids]\nwalk_check = true\n[patrol]\nbudget = "4h"\n', encoding="utf-8")
    report = tmp_path / "report.json"
    assert main(["build", str(rules), "-o", str(out), "--workers", "1", "--no-progress", "--report",
                 str(report)]) == 0
    assert "walk check " in capsys.readouterr().out
    table = pyogrio.read_dataframe(out, layer="walk_check", read_geometry=False)
    county = County(out)
    assert list(table["grid"].astype(str)) == county.codes
    wc = json.loads(report.read_text(encoding="utf-8"))["walk_check"]
    assert wc["grids"] == len(table) and wc["fit"] == int(table["fits"].astype(bool).sum())
    # the stage and the supervisor's command agree on the same day
    again = check_walk(county, day=dt.date.fromisoformat(wc["date"]), options=PatrolOptions(budget_min=240.0))
    assert pd.Series([g.fits for g in again.grids]).tolist() == table["fits"].astype(bool).tolist()
