"""The county pipeline (``gridgeo build``): exact tiling, every household in one point, stable codes.

Generated counties come from :func:`gridgeo.synth.synth_county` (small ones,
so the file runs in seconds); the real extracts from ``../shared/data/osm``
(fail under CI=true when missing, see ``conftest.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from gridgeo._geom import reading_order
from gridgeo.county.build import LEVELS, BuildResult, build_county
from gridgeo.county.rules import DEFAULT_EXCLUSIVE, CountyRules, load_county_rules
from gridgeo.data import crs as _crs
from gridgeo.synth import synth_county, write_county

TOL = 1.0  # m², the tolerance the rules state
#: m per m of boundary: the output is rounded to 1e-7 degree (about 1 cm), so an area compared with an
#: unrounded input may differ by up to about half a centimetre times the perimeter
ROUNDING_M = 0.006


# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("county") / "county.gpkg"
    write_county(synth_county(seed=5, townships=3, villages=14, households=9000), p)
    return p


@pytest.fixture(scope="module")
def built(county: Path) -> BuildResult:
    return build_county(CountyRules(county=county), workers=2)


@pytest.fixture(scope="module")
def drawn(county: Path) -> BuildResult:
    """Grids drawn by the engine (villager groups ignored)."""
    return build_county(CountyRules(county=county, use_groups=False), workers=1)


def _metric(res: BuildResult) -> dict[str, gpd.GeoDataFrame]:
    m = _crs.metric_crs(res.layers["villages"])
    return {k: v.to_crs(m) for k, v in res.layers.items() if len(v)}


def assert_clean(res: BuildResult) -> None:
    """Every level valid as written and after rounding to 1e-7 degree, and each a clean coverage."""
    levels = ("townships", "blocks", "villages", "grids", "points", "exclusive")
    for name in levels:
        g = np.asarray(res.layers[name].geometry.values, dtype=object)
        assert shapely.is_valid(g).all(), f"{name}: invalid polygons"
        assert shapely.is_valid(shapely.transform(g, lambda c: np.round(c, 7))).all(), f"{name}: invalid rounded"
    for name in ("townships", "blocks", "villages", "points"):
        assert shapely.coverage_is_valid(res.layers[name].geometry.values), f"{name}: not a clean coverage"
    lvl2 = np.concatenate([res.layers["grids"].geometry.values, res.layers["exclusive"].geometry.values])
    assert shapely.coverage_is_valid(lvl2), "grids + exclusive: not a clean coverage"
    assert all(v["misnoded"] == 0 for v in res.report["coverage"]["levels"].values())


def assert_tiles(res: BuildResult) -> None:
    """Grids + exclusive grids tile every village; points tile every grid; blocks tile townships."""
    assert_clean(res)
    L = _metric(res)
    level2 = gpd.GeoDataFrame(
        {"code": list(L["grids"]["code"]) + list(L.get("exclusive", L["grids"].iloc[:0])["code"]),
         "parent": list(L["grids"]["parent"]) + list(L.get("exclusive", L["grids"].iloc[:0])["parent"])},
        geometry=list(L["grids"].geometry) + list(L.get("exclusive", L["grids"].iloc[:0]).geometry),
        crs=L["grids"].crs)
    for parent_layer, child, key in ((L["villages"], level2, "parent"), (L["townships"], L["villages"], "parent"),
                                     (level2, L["points"], "parent")):
        for code, geom in zip(parent_layer["code"], parent_layer.geometry, strict=True):
            kids = child[child[key] == code].geometry.values
            assert len(kids), f"{code} has no children"
            union = shapely.union_all(kids)
            gap = shapely.area(shapely.symmetric_difference(union, geom))
            overlap = float(np.sum(shapely.area(kids))) - shapely.area(union)
            assert gap < TOL, f"{code}: children leave {gap:.3f} m² uncovered or spill over"
            assert overlap < TOL, f"{code}: children overlap by {overlap:.3f} m²"
    if len(res.layers["blocks"]):
        for code, geom in zip(L["townships"]["code"], L["townships"].geometry, strict=True):
            kids = L["blocks"][L["blocks"]["parent"] == code].geometry.values
            assert shapely.area(shapely.symmetric_difference(shapely.union_all(kids), geom)) < TOL


def assert_households(res: BuildResult, buildings: gpd.GeoDataFrame | None = None) -> None:
    """Every building / household point in exactly one grid point, and the counts add up."""
    hh = res.layers["households"]
    pts = res.layers["points"]
    inside = hh[hh["village"].notna()]
    assert inside["point"].notna().all()
    assert set(inside["point"]) <= set(pts["code"])
    per_point = inside.groupby("point")["households"].sum()
    got = dict(zip(pts["code"], pts["households"], strict=True))
    for code, n in per_point.items():
        assert got[code] == n
    assert sum(got.values()) == int(inside["households"].sum())
    if buildings is not None:  # the building's own footprint meets its point
        m = _crs.metric_crs(res.layers["villages"])
        b = buildings.to_crs(m).geometry.values
        pmap = dict(zip(pts["code"], pts.to_crs(m).geometry.values, strict=True))
        mine = np.asarray([pmap.get(c) for c in hh["point"]], dtype=object)
        ok = np.asarray(hh["village"].notna())
        assert shapely.intersects(b[ok], mine[ok]).all()


def assert_codes(res: BuildResult) -> None:
    g, e, p, v = (res.layers[k] for k in ("grids", "exclusive", "points", "villages"))
    for c, parent in zip(g["code"], g["parent"], strict=True):
        assert re.fullmatch(re.escape(parent) + r"\d{2}", c), c
    for c, parent in zip(e["code"], e["parent"], strict=True):
        assert re.fullmatch(re.escape(parent) + r"Z\d{2}", c), c
    for c, parent in zip(p["code"], p["parent"], strict=True):
        assert re.fullmatch(re.escape(parent) + r"\d{3}", c), c
    for layer in (g, e, p, v):
        assert layer["code"].is_unique
    assert set(g["parent"]) | set(e["parent"]) <= set(v["code"])


# --------------------------------------------------------------------------------------
def test_layers_and_columns(built: BuildResult) -> None:
    for name in LEVELS:
        assert name in built.layers
    for name in ("townships", "blocks", "villages", "grids", "points", "exclusive"):
        gdf = built.layers[name]
        assert {"code", "households"} <= set(gdf.columns), name
        assert gdf.crs.is_geographic
    for name in ("blocks", "villages", "grids", "points", "exclusive"):
        assert "parent" in built.layers[name].columns


def test_tiling_exact(built: BuildResult, drawn: BuildResult) -> None:
    assert_tiles(built)
    assert_tiles(drawn)
    for res in (built, drawn):
        t = res.report["tiling"]
        assert t["worst_gap_m2"] < TOL and t["worst_overlap_m2"] < TOL and t["worst_points_m2"] < TOL


def test_every_household_in_one_point(built: BuildResult, drawn: BuildResult, county: Path) -> None:
    b = gpd.read_file(county, layer="buildings")
    assert_households(built, b)
    assert_households(drawn, b)
    assert built.report["households"]["total"] == int(b["households"].sum())
    assert built.report["households"]["estimated"] == 0


def test_codes_format_and_reading_order(built: BuildResult, drawn: BuildResult) -> None:
    assert_codes(built)
    assert_codes(drawn)
    m = _crs.metric_crs(drawn.layers["villages"])
    g = drawn.layers["grids"].to_crs(m)
    for _, grp in g.groupby("parent"):
        c = grp.geometry.centroid
        order = reading_order(c.x, c.y, grp.geometry.area)
        assert list(grp["code"].iloc[order]) == sorted(grp["code"])


def test_grids_follow_villager_groups(built: BuildResult, county: Path) -> None:
    groups = gpd.read_file(county, layer="villager_groups")
    g = built.layers["grids"]
    assert (g["source"] == "villager_group").all()
    assert set(g["group"]) <= set(groups["code"])
    # a group's grid is the group minus the exclusive sites in it
    m = _crs.metric_crs(g)
    gm = dict(zip(groups["code"], groups.to_crs(m).geometry, strict=True))
    for code, geom in zip(g["group"], g.to_crs(m).geometry, strict=True):
        assert shapely.area(shapely.difference(geom, gm[code])) < TOL + ROUNDING_M * geom.length


def test_drawn_grids_and_points_mostly_within_bounds(drawn: BuildResult) -> None:
    b = drawn.report["bounds"]
    assert b["grids"]["drawn"] == len(drawn.layers["grids"])
    assert b["grids"]["drawn_within_bounds"] >= 0.8
    assert b["points"]["within_bounds_where_possible"] >= 0.9
    # the report's share is what the layer says
    pts = drawn.layers["points"]
    assert b["points"]["within_bounds"] == pytest.approx(pts["within_bounds"].mean(), abs=1e-4)


def test_exclusive_grids(built: BuildResult, county: Path) -> None:
    e = built.layers["exclusive"]
    assert len(e) > 0
    assert set(e["category"]) <= set(DEFAULT_EXCLUSIVE)
    pois = gpd.read_file(county, layer="pois")
    sites = pois[pois["category"].isin(DEFAULT_EXCLUSIVE)]
    m = _crs.metric_crs(e)
    em = e.to_crs(m)
    # every site that got a grid lies in its own exclusive grid (its point, or most of its polygon)
    tree = shapely.STRtree(em.geometry.values)
    hit = 0
    for geom in sites.to_crs(m).geometry:
        probe = shapely.point_on_surface(geom)
        hit += len(tree.query(probe, predicate="intersects")) > 0
    assert hit >= 0.8 * len(sites)
    dropped = built.report["exclusive"]["dropped"]
    assert hit + len(dropped) >= len(sites) - 2  # shared footprints are merged, and reported


def test_deterministic(county: Path, built: BuildResult) -> None:
    again = build_county(CountyRules(county=county), workers=1)  # serial == parallel
    for name in ("grids", "points", "exclusive", "households"):
        a, b = built.layers[name], again.layers[name]
        assert list(a["code" if "code" in a else "point"]) == list(b["code" if "code" in b else "point"])
        assert all(shapely.equals_exact(x, y, 1e-9) for x, y in zip(a.geometry, b.geometry, strict=True))


def _change_one_village(src: Path, dst: Path) -> str:
    """Copy the county with one village's buildings thinned out (households change)."""
    layers = {name: gpd.read_file(src, layer=name) for name, _ in pyogrio.list_layers(src)}
    b = layers["buildings"]
    target = str(layers["villages"]["code"].iloc[3])
    mine = b.index[b["village"].astype(str) == target]
    layers["buildings"] = b.drop(index=mine[::2]).reset_index(drop=True)
    write_county(layers, dst)
    return target


def test_codes_stable_when_one_village_changes(county: Path, drawn: BuildResult, tmp_path: Path) -> None:
    changed = _change_one_village(county, tmp_path / "changed.gpkg")
    rules = CountyRules(county=tmp_path / "changed.gpkg", use_groups=False)
    again = build_county(rules, workers=1)
    for name in ("grids", "points", "exclusive"):
        a, b = drawn.layers[name], again.layers[name]
        key = "parent" if name != "points" else "village"
        a1, b1 = a[a[key] != changed], b[b[key] != changed]
        assert list(a1["code"]) == list(b1["code"]), name
        # the same up to the written precision: cleaning the coverage may add, on a shared border, the vertex
        # where the changed village's new cut meets it (rounded to 1e-7 degree)
        assert all(shapely.hausdorff_distance(x, y) < 3e-7 for x, y in zip(a1.geometry, b1.geometry, strict=True))
    # the changed village did change, and its household assignment is complete
    before = drawn.layers["points"]
    after = again.layers["points"]
    assert before[before["village"] == changed]["households"].sum() != after[after["village"] == changed][
        "households"].sum()
    assert_tiles(again)


def test_previous_build_keeps_codes_of_continuing_grids(county: Path, drawn: BuildResult, tmp_path: Path) -> None:
    old = tmp_path / "old.gpkg"
    from gridgeo.data.io import write_layers

    write_layers(drawn.layers, old)
    again = build_county(CountyRules(county=county, use_groups=False, seed=99), previous=old, workers=1)
    # a different seed re-draws every village; grids that still cover most of an old grid keep its code
    m = _crs.metric_crs(drawn.layers["villages"])
    og = dict(zip(drawn.layers["grids"]["code"], drawn.layers["grids"].to_crs(m).geometry, strict=True))
    kept = 0
    for code, geom in zip(again.layers["grids"]["code"], again.layers["grids"].to_crs(m).geometry, strict=True):
        if code in og:
            inter = shapely.area(shapely.intersection(geom, og[code]))
            union = shapely.area(shapely.union(geom, og[code]))
            kept += inter / union >= 0.5
    assert kept >= 1
    assert_codes(again)


def test_estimated_households(county: Path, tmp_path: Path) -> None:
    layers = {name: gpd.read_file(county, layer=name) for name, _ in pyogrio.list_layers(county)}
    b = layers["buildings"]
    b.loc[b.index[::3], "households"] = None
    layers["buildings"] = b
    p = tmp_path / "est.gpkg"
    write_county(layers, p)
    res = build_county(CountyRules(county=p, points=True), workers=1)
    h = res.report["households"]
    assert h["estimated_items"] == len(b.index[::3])
    assert h["estimated"] > 0 and h["given"] > 0
    assert res.layers["households"]["estimated"].sum() == h["estimated_items"]
    assert_households(res)


def test_tiling_failure_falls_back_and_is_named(county: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A village whose faces leave a gap is built by a fallback rung, still tiles, and is named in the report
    (the ladder itself: tests/test_ladder.py)."""
    import gridgeo.county.village as grids_mod

    real = grids_mod._units.street_blocks

    def lossy(area: Any, barriers: Any, *, min_area: float = 1.0) -> Any:
        faces = real(area, barriers, min_area=min_area)
        return faces[:-1] if len(faces) > 3 else faces  # lose a face: a gap

    monkeypatch.setattr(grids_mod._units, "street_blocks", lossy)
    res = build_county(CountyRules(county=county, use_groups=False), workers=1)
    fbs = res.report["fallbacks"]
    assert fbs and all(re.fullmatch(r"\d{12}", f["code"]) and f["rung"] != "pipeline" for f in fbs)
    assert all(f["reason"].startswith("pipeline failed at check: grids do not tile the village") for f in fbs)
    assert_tiles(res)
    assert_households(res)


def test_bug_in_a_stage_keeps_its_type_and_names_the_village(county: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception that is not a gridgeo error (a bug) is not dressed up as one, but says where it happened."""
    import gridgeo.county.village as vmod

    def bug(*a: Any, **kw: Any) -> Any:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(vmod, "_make_units", bug)
    with pytest.raises(ZeroDivisionError, match="oops") as info:
        build_county(CountyRules(county=county), workers=1)
    assert re.fullmatch(r"in village \d{12} \S+, stage units", info.value.__notes__[-1])


#: run the CLI with one village's units stage failing (argv: village code, then the gridgeo arguments); the
#: workers are forked from this process, so they run the broken stage too
_BROKEN_VILLAGE = """
import sys
import gridgeo.county.village as v
from gridgeo.errors import GeometryError
real = v._make_units
def broken(t, *a, **kw):
    if t.code == sys.argv[1]:
        raise GeometryError("no faces")
    return real(t, *a, **kw)
v._make_units = broken
from gridgeo.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the broken stage reaches the workers by fork")
def test_cli_failing_village_named_nothing_written(county: Path, tmp_path: Path) -> None:
    """A village that fails in a worker: exit 1, one line naming its code, name and stage, no output at all."""
    vil = gpd.read_file(county, layer="villages")
    code, name = str(vil["code"].iloc[5]), str(vil["name"].iloc[5])
    rules = tmp_path / "rules.toml"
    rules.write_text("[county]\nseed = 1\n", encoding="utf-8")
    out = tmp_path / "out" / "county.gpkg"
    out.parent.mkdir()
    r = subprocess.run([sys.executable, "-c", _BROKEN_VILLAGE, code, "build", str(rules), "-o", str(out),
                        "--input", str(county), "--workers", "2", "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1] == (f"gridgeo: error: village {code} {name}: no rung of the fallback ladder "
                                         "tiles it (tried pipeline, snapped, coarse, voronoi, whole); the last, "
                                         "whole failed at units: no faces")
    assert list(out.parent.iterdir()) == []


# --------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridgeo.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_build(county: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[county]\nseed = 1\n[bounds.rural]\npoint = [8, 40]\n', encoding="utf-8")
    out = tmp_path / "out.gpkg"
    r = _cli("build", str(rules), "-o", str(out), "--input", str(county), "--report", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert "tiling:" in r.stdout and "points" in r.stdout
    assert {n for n, _ in pyogrio.list_layers(out)} >= set(LEVELS)
    assert (tmp_path / "r.json").exists()


def test_cli_build_bad_rules(tmp_path: Path, county: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[bounds.rural]\npoints = [8, 40]\n", encoding="utf-8")
    out = tmp_path / "out.gpkg"
    r = _cli("build", str(rules), "-o", str(out), "--input", str(county))
    assert r.returncode == 2
    assert "rules.toml" in r.stderr and "points" in r.stderr
    assert not out.exists()


def test_cli_build_missing_input_writes_nothing(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[inputs]\ncounty = "nowhere.gpkg"\n', encoding="utf-8")
    out = tmp_path / "out.gpkg"
    r = _cli("build", str(rules), "-o", str(out))
    assert r.returncode != 0
    assert "nowhere.gpkg" in r.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.gpkg*"))


# --------------------------------------------------------------------------------------
# Real extracts
# --------------------------------------------------------------------------------------
def _osm_rules(tmp_path: Path, pbf: Path, extra: str = "") -> Path:
    p = tmp_path / "rules.toml"
    p.write_text(f'[county]\ncode = "360681"\n[inputs]\nosm = "{pbf.as_posix()}"\n{extra}', encoding="utf-8")
    return p


def test_guixi_dongmen(osm_dir: Path, tmp_path: Path) -> None:
    pbf = osm_dir / "guixi_jiangxi.osm.pbf"
    res = build_county(load_county_rules(_osm_rules(tmp_path, pbf)), workers=1)
    L = res.layers
    assert len(L["townships"]) == 1 and "东门" in str(L["townships"]["name"].iloc[0])
    assert len(L["villages"]) >= 5
    assert (L["villages"]["kind"] == "urban").all()  # its communities (社区)
    assert_tiles(res)
    assert_households(res)
    assert_codes(res)
    h = res.report["households"]
    assert h["estimated_items"] > 0  # OSM buildings carry no household counts
    # every school inside the subdistrict is an exclusive grid
    from gridgeo.data.inputs import county_from_osm

    raw = county_from_osm(pbf, county_code="360681")
    schools = raw["pois"][(raw["pois"]["category"] == "school") & raw["pois"]["village"].notna()]
    ex = L["exclusive"]
    assert (ex["category"] == "school").sum() == len(schools)  # the extract's schools lie outside 东门
    # a site given as a point (the subdistrict office) takes its street block or a disc of site_radius_m
    rules = load_county_rules(_osm_rules(tmp_path, pbf, '[exclusive]\ncategories = ["school", "townhall"]\n'))
    res2 = build_county(rules, workers=1)
    ex2 = res2.layers["exclusive"]
    office = raw["pois"][(raw["pois"]["category"] == "townhall") & raw["pois"]["village"].notna()]
    assert len(office) == 1 and len(ex2) == 1
    assert ex2["name"].iloc[0] == office["name"].iloc[0]
    assert ex2.to_crs(4326).geometry.iloc[0].intersects(office.to_crs(4326).geometry.iloc[0])
    m = _crs.metric_crs(ex2)
    assert 200 <= ex2.to_crs(m).area.iloc[0] <= max(40_000, 3.2 * 60**2) + 1
    assert_tiles(res2)
    assert_households(res2)


def test_beijing_compounds_and_footways(osm_dir: Path, tmp_path: Path) -> None:
    src = osm_dir / "beijing_haidian_cau.osm.bz2"
    highways = '", "'.join(["primary", "secondary", "tertiary", "residential", "service", "unclassified",
                           "footway", "path", "steps", "pedestrian", "living_street"])
    rules = load_county_rules(_osm_rules(tmp_path, src, f'[barriers]\nhighway = ["{highways}"]\n'))
    res = build_county(rules, workers=1)
    assert_tiles(res)
    assert_households(res)
    assert_codes(res)
    ex = res.layers["exclusive"]
    cats = ex["category"].value_counts().to_dict()
    assert cats.get("gated_compound", 0) >= 8  # the named residential compounds (小区)
    assert cats.get("school", 0) >= 3
    assert cats.get("hospital", 0) >= 1
    assert cats.get("kindergarten", 0) >= 1  # a kindergarten (幼儿园) is a school: its own grid by default
    names = set(ex["name"])
    assert {"富润家园", "静淑苑"} & names
    # footways cut: more units than with roads alone
    roads_only = build_county(replace(rules, barrier_highways=("primary", "secondary", "tertiary", "residential")),
                              workers=1)
    assert res.report["units"]["faces"] > roads_only.report["units"]["faces"]


def test_patrol_on_a_built_county(built: BuildResult, tmp_path: Path) -> None:
    """The build's output is all the patrol planner needs: grids, points, households, roads."""
    from gridgeo.data.io import write_layers

    out = tmp_path / "built.gpkg"
    write_layers(built.layers, out)
    assert {"roads", "pois"} <= {n for n, _ in pyogrio.list_layers(out)}
    grid = str(built.layers["grids"].sort_values("households")["code"].iloc[-1])
    r = _cli("patrol", str(out), "--grid", grid, "--date", "2026-11-23", "-o", str(tmp_path / "route.geojson"))
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+)/(\d+) due visits", r.stdout + r.stderr)
    assert m and int(m.group(2)) > 0


def test_grids_from_household_labels_and_leaders(county: Path, tmp_path: Path) -> None:
    """Without group polygons, household points labelled with their group give the grids."""
    layers = {name: gpd.read_file(county, layer=name) for name, _ in pyogrio.list_layers(county)}
    groups = layers.pop("villager_groups")
    b = layers.pop("buildings")
    pts = gpd.GeoDataFrame({"households": b["households"]}, geometry=b.representative_point(), crs=b.crs)
    hit = gpd.sjoin(pts, groups[["code", "geometry"]], predicate="within", how="left")
    pts["group"] = hit[~hit.index.duplicated()]["code"]
    layers["households"] = pts
    layers["villages"]["leader"] = [f"书记{i}" for i in range(len(layers["villages"]))]
    p = tmp_path / "labels.gpkg"
    write_county(layers, p)
    res = build_county(CountyRules(county=p), workers=1)
    g = res.layers["grids"]
    assert (g["source"] == "household_labels").all()
    labelled = set(pts["group"].dropna())
    assert set(g["group"].dropna()) <= labelled
    # a label in the village code + 2 digits form is the grid's code
    same = g[g["group"].notna()]
    assert (same["code"] == same["group"]).mean() > 0.9
    assert_tiles(res)
    assert_households(res)
    assert_codes(res)
    assert res.report["households"]["source"] == "household"
    assert "leader" in res.layers["villages"].columns


def test_group_leaders_carried_to_grids(county: Path, tmp_path: Path) -> None:
    layers = {name: gpd.read_file(county, layer=name) for name, _ in pyogrio.list_layers(county)}
    layers["villager_groups"]["leader"] = [f"组长{i}" for i in range(len(layers["villager_groups"]))]
    layers["villager_groups"]["leader_phone"] = "13800000000"
    p = tmp_path / "leaders.gpkg"
    write_county(layers, p)
    res = build_county(CountyRules(county=p, points=False), workers=1)
    g = res.layers["grids"]
    lead = dict(zip(layers["villager_groups"]["code"], layers["villager_groups"]["leader"], strict=True))
    assert all(lead[gc] == ld for gc, ld in zip(g["group"], g["leader"], strict=True))
    assert (g["leader_phone"] == "13800000000").all()
    # without points, each grid and exclusive grid is one point
    assert len(res.layers["points"]) == len(g) + len(res.layers["exclusive"])


def test_ridges_cut_units(county: Path, tmp_path: Path) -> None:
    layers = {name: gpd.read_file(county, layer=name) for name, _ in pyogrio.list_layers(county)}
    v = layers["villages"].to_crs(_crs.metric_crs(layers["villages"]))
    lines = [shapely.LineString([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)]) for x0, y0, x1, y1 in v.bounds.values]
    ridges = gpd.GeoDataFrame({"name": ["岭"] * len(lines)}, geometry=lines, crs=v.crs)
    p = tmp_path / "ridges.geojson"
    ridges.to_crs(4326).to_file(p, driver="GeoJSON")
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[inputs]\ncounty = "{county.as_posix()}"\nridges = "{p.as_posix()}"\n', encoding="utf-8")
    with_r = build_county(load_county_rules(rules), workers=1)
    without = build_county(replace(load_county_rules(rules), ridges=False), workers=1)
    assert with_r.report["units"]["faces"] >= without.report["units"]["faces"] + len(lines)
    assert_tiles(with_r)


def test_villages_only_taipei(taipei: Path, tmp_path: Path) -> None:
    """Real 里 boundaries with nothing else: townships from the district column, repaired rings reported."""
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[inputs]\nvillages = "{taipei.as_posix()}"\n', encoding="utf-8")
    res = build_county(load_county_rules(rules), workers=1)
    assert len(res.layers["townships"]) == 12
    assert len(res.layers["villages"]) == 456
    assert len(res.report["repaired"]) >= 2  # the two invalid rings as shipped
    assert_tiles(res)
    assert_codes(res)
    assert res.report["households"]["total"] == 0


def test_rebuild_with_previous_after_one_village_changes(county: Path, drawn: BuildResult, tmp_path: Path) -> None:
    """Dynamic adjustment: unchanged villages come out identical; the changed one keeps most of its grids."""
    from gridgeo.data.io import write_layers

    old = tmp_path / "old.gpkg"
    write_layers(drawn.layers, old)
    changed = _change_one_village(county, tmp_path / "changed.gpkg")
    again = build_county(CountyRules(county=tmp_path / "changed.gpkg", use_groups=False), previous=old, workers=1)
    n = len(drawn.layers["villages"])
    assert again.report["reused_villages"] == n - 1  # only the changed village is re-drawn
    for name in ("grids", "points", "exclusive"):
        a, b = drawn.layers[name], again.layers[name]
        key = "parent" if name != "points" else "village"
        a1, b1 = a[a[key] != changed], b[b[key] != changed]
        assert list(a1["code"]) == list(b1["code"]), name
        moved = [c for c, x, y in zip(a1["code"], a1.geometry, b1.geometry, strict=True)
                 if not shapely.hausdorff_distance(x, y) < 3e-7]  # up to the written precision (see above)
        assert not moved, f"{name}: {len(moved)} parts of unchanged villages moved, e.g. {moved[:3]}"
    m = _crs.metric_crs(drawn.layers["villages"])
    og = drawn.layers["grids"][drawn.layers["grids"]["parent"] == changed].to_crs(m)
    ng = again.layers["grids"][again.layers["grids"]["parent"] == changed].to_crs(m)
    old_by = dict(zip(og["code"], og.geometry, strict=True))
    same_code_overlap = [shapely.area(shapely.intersection(g, old_by[c])) / shapely.area(old_by[c])
                         for c, g in zip(ng["code"], ng.geometry, strict=True) if c in old_by]
    assert len(same_code_overlap) >= min(len(og), len(ng)) - 1
    assert np.mean(same_code_overlap) > 0.6
    assert_tiles(again)
    assert_codes(again)


def test_rebuild_with_previous_unchanged_takes_everything(county: Path, drawn: BuildResult, tmp_path: Path) -> None:
    from gridgeo.data.io import write_layers

    old = tmp_path / "old.gpkg"
    write_layers(drawn.layers, old)
    again = build_county(CountyRules(county=county, use_groups=False), previous=old, workers=1)
    assert again.report["reused_villages"] == len(drawn.layers["villages"])
    for name in ("grids", "points", "exclusive", "households"):
        a, b = drawn.layers[name], again.layers[name]
        key = "code" if "code" in a.columns else "point"
        assert list(a[key]) == list(b[key]), name
        # the same point sets (cleaning the coverage again may drop a vertex that no longer marks a node)
        assert all(shapely.equals(x, y) for x, y in zip(a.geometry, b.geometry, strict=True)), name
    assert list(drawn.layers["points"]["households"]) == list(again.layers["points"]["households"])
    # other rules: nothing is taken
    other = build_county(CountyRules(county=county, use_groups=False, seed=5), previous=old, workers=1)
    assert other.report["reused_villages"] == 0


# --------------------------------------------------------------------------------------
