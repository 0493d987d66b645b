"""The fallback ladder (``gridgeo.county.ladder``): no village that can be tiled stops the build.

A village forced off the pipeline (a stage patched to raise, in-process with one worker) is built by
the next rung, still tiles, and is named with its rung in the report and the closing summary; every
rung on its own tiles a few awkward generated villages; a village no rung can tile stops the build
naming it (nothing written); the same inputs take the same rung and give the same result.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import LineString, MultiPolygon, Point, box
from shapely.errors import GEOSException

import gridgeo.county.village as village_mod
from gridgeo.cli import main
from gridgeo.county import ladder
from gridgeo.county.build import BuildResult, build_county
from gridgeo.county.ladder import RUNGS, build_rung, build_with_fallbacks, building_cells
from gridgeo.county.report import format_report
from gridgeo.county.rules import CountyRules, load_county_rules
from gridgeo.county.village import VillageOut, VillageTask
from gridgeo.data import crs as _crs
from gridgeo.errors import GeometryError
from gridgeo.synth import synth_county, write_county
from tests.test_build import assert_codes, assert_households, assert_tiles
from tests.test_village import _task as _village_task

X0, Y0 = 39_500_000.0, 3_100_000.0
RUNG_NAMES = [r.name for r in RUNGS]


def _garray(geoms: list[Any]) -> np.ndarray:
    out = np.empty(len(geoms), dtype=object)
    out[:] = geoms
    return out


def _houses(x0: float, y0: float, w: float, h: float, pitch: float = 30.0) -> list[Any]:
    return [box(x0 + x, y0 + y, x0 + x + 12, y0 + y + 10)
            for x in np.arange(10, w - 15, pitch) for y in np.arange(10, h - 15, pitch)]


def _task(**kw: Any) -> VillageTask:
    """test_village's plain village (a road across, a school, a lattice of houses), named 甲村."""
    return _village_task(**{"name": "甲村", **kw})


def _slivers() -> VillageTask:
    """Lines a hair off the outline and off each other; two groups whose shared line is drawn twice."""
    eps = 1e-7
    north = box(X0 + eps, Y0 + 210, X0 + 420, Y0 + 420 - eps)
    south = box(X0, Y0, X0 + 420 + eps, Y0 + 210 + eps)
    bars = [LineString([(X0 + eps, Y0 - 5), (X0 + 2 * eps, Y0 + 425)]),  # along the west edge
            LineString([(X0 - 5, Y0 + 210 - eps), (X0 + 425, Y0 + 210 + eps)]),  # along the group line
            LineString([(X0 + 150, Y0 - 5), (X0 + 150, Y0 + 425)]),
            LineString([(X0 + 150 + 1e-6, Y0 - 5), (X0 + 150, Y0 + 425)])]  # the same road, twice
    return _task(barriers=_garray(bars), group_codes=["36000000000101", "36000000000102"],
                 group_names=["一组", "二组"], group_geoms=_garray([south, north]))


def _enclave() -> VillageTask:
    """Two parts; buildings straddling the rim; two overlapping buildings; a polygon site."""
    geom = MultiPolygon([box(X0, Y0, X0 + 300, Y0 + 300), box(X0 + 400, Y0, X0 + 560, Y0 + 160)])
    houses = [*_houses(X0, Y0, 300, 300), *_houses(X0 + 400, Y0, 160, 160)]
    houses += [box(X0 + 294, Y0 + 40, X0 + 306, Y0 + 50), box(X0 + 100, Y0 - 4, X0 + 112, Y0 + 6),  # on the rim
               box(X0 + 40, Y0 + 44, X0 + 60, Y0 + 54)]  # overlaps a house of the grid
    site = box(X0 + 200, Y0 + 200, X0 + 260, Y0 + 260)
    return _task(geometry=geom, barriers=_garray([]), items=_garray(houses),
                 weights=np.full(len(houses), 2, dtype=np.int64), site_geoms=_garray([site]))


def _heavy() -> VillageTask:
    """An urban block of 150 houses of 5 households with no road through it: heavy faces to split."""
    houses = _houses(X0, Y0, 400, 400, pitch=28.0)
    return _task(kind="urban", barriers=_garray([]), items=_garray(houses),
                 weights=np.full(len(houses), 5, dtype=np.int64), site_geoms=_garray([]), site_names=[],
                 site_categories=[], site_ids=[], grid_bounds=(100.0, 500.0), point_bounds=(20.0, 120.0))


def _household_points() -> VillageTask:
    """Household points, several on one spot, with group labels."""
    pts = [Point(X0 + x, Y0 + y) for x in range(15, 420, 40) for y in range(15, 420, 40)]
    pts += [Point(X0 + 55, Y0 + 55)] * 6
    labels = ["01" if p.y < Y0 + 205 else "02" for p in pts]
    return _task(items=_garray(pts), weights=np.ones(len(pts), dtype=np.int64), item_labels=labels)


def _empty() -> VillageTask:
    """No building at all; a polygon site."""
    return _task(items=_garray([]), weights=np.zeros(0, dtype=np.int64),
                 site_geoms=_garray([box(X0 + 10, Y0 + 10, X0 + 60, Y0 + 60)]))


AWKWARD = {"slivers": _slivers, "enclave": _enclave, "heavy": _heavy, "household_points": _household_points,
           "empty": _empty}


def assert_village_tiles(t: VillageTask, out: VillageOut, tol: float = 1.0) -> None:
    """Grids + exclusive tile the village as given; points their grid; every item in exactly its one point."""
    level2 = _garray([r["geometry"] for r in out.grids + out.exclusive])
    covered = shapely.union_all(level2)
    assert shapely.area(shapely.symmetric_difference(covered, t.geometry)) < tol
    assert float(np.sum(shapely.area(level2))) - shapely.area(covered) < tol
    for g in out.grids + out.exclusive:
        kids = _garray([p["geometry"] for p in out.points if p["parent"] == g["code"]])
        assert len(kids), g["code"]
        assert shapely.area(shapely.symmetric_difference(shapely.union_all(kids), g["geometry"])) < tol
    by_code = {p["code"]: p["geometry"] for p in out.points}
    assert len(out.item_point) == len(t.items)
    assert all(c in by_code for c in out.item_point)
    if len(t.items):
        assert shapely.intersects(t.items, _garray([by_code[c] for c in out.item_point])).all()
    per_point: dict[str, int] = {}
    for c, w in zip(out.item_point, t.weights.tolist(), strict=True):
        per_point[c] = per_point.get(c, 0) + w
    assert {p["code"]: p["households"] for p in out.points if p["households"]} == \
        {c: n for c, n in per_point.items() if n}


# --------------------------------------------------------------------------------------
# each rung on its own
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(AWKWARD))
@pytest.mark.parametrize("rung", RUNG_NAMES)
def test_each_rung_tiles_awkward_villages(rung: str, case: str) -> None:
    t = AWKWARD[case]()
    out = build_rung(t, rung)
    assert_village_tiles(t, out)
    assert out.stats["tiling"]["gap_m2"] < 1.0
    if rung == "whole":
        assert len(out.grids) == 1 and len(out.points) == 1 and out.exclusive == []
        assert out.stats.get("sites_dropped", []) == [n or i for n, i in zip(t.site_names, t.site_ids, strict=True)]
    if rung in ("voronoi", "coarse") and case == "heavy":
        assert out.stats["items_cut"] == 0  # buildings are never cut
    if rung == "voronoi" and case == "heavy":
        assert out.stats["units"] == len(t.items)
        assert sum(p["within_bounds"] for p in out.points) == len(out.points)  # the engine meets the bounds


def test_building_cells_tile_and_keep_buildings_whole() -> None:
    t = _enclave()
    cells = _garray(building_cells(t.geometry, t.items))
    assert abs(float(np.sum(shapely.area(cells))) - shapely.area(t.geometry)) < 1e-3
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(cells), t.geometry)) < 1e-3
    inside = shapely.intersection(t.items, t.geometry)
    best = np.asarray([max(shapely.area(shapely.intersection(b, cells))) for b in inside])
    overlapping = {len(t.items) - 1}  # the one drawn over another house keeps only what is its own
    whole = [i for i in range(len(t.items)) if i not in overlapping]
    assert np.allclose(best[whole], shapely.area(inside)[whole], atol=1e-6)


# --------------------------------------------------------------------------------------
# the ladder
# --------------------------------------------------------------------------------------
def _split_fails(code_of: Any) -> Any:
    """A ``split_heavy`` that raises a GEOS error for the village ``code_of(faces)`` names (else works)."""
    real = village_mod.split_heavy

    def split(faces: Any, *args: Any, **kw: Any) -> Any:
        if code_of(faces):
            raise GEOSException("TopologyException: side location conflict (forced by the test)")
        return real(faces, *args, **kw)

    return split


def test_forced_village_takes_the_next_rung(monkeypatch: pytest.MonkeyPatch) -> None:
    t = _task()
    monkeypatch.setattr(village_mod, "split_heavy", _split_fails(lambda faces: True))
    out = build_with_fallbacks(t)  # the pipeline and snapped split heavy faces; coarse does not
    fb = out.stats["fallback"]
    assert fb["rung"] == "coarse" and fb["name"] == t.name
    assert fb["failed"] == ["pipeline failed at units: GEOSException: TopologyException: side location conflict "
                            "(forced by the test)",
                            "snapped failed at units: GEOSException: TopologyException: side location conflict "
                            "(forced by the test)"]
    assert out.seconds["fallback"] > 0
    assert_village_tiles(t, out)


def test_deterministic_rung_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    t = _slivers()
    real = ladder.RUNGS

    def failing(_: VillageTask) -> VillageTask:
        raise GeometryError("forced")

    monkeypatch.setattr(ladder, "RUNGS", tuple(dataclasses.replace(r, prepare=failing) for r in real[:3])
                        + real[3:])
    a, b = build_with_fallbacks(t), build_with_fallbacks(t)
    assert a.stats["fallback"]["rung"] == b.stats["fallback"]["rung"] == "voronoi"
    assert a.stats["fallback"]["failed"][0] == "pipeline failed at prepare: forced"
    for la, lb in ((a.grids, b.grids), (a.points, b.points), (a.exclusive, b.exclusive)):
        assert [r["code"] for r in la] == [r["code"] for r in lb]
        assert all(shapely.equals_exact(x["geometry"], y["geometry"], 0.0) for x, y in zip(la, lb, strict=True))
    assert a.item_point == b.item_point


def test_every_rung_failing_names_the_village(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(t: VillageTask, out: VillageOut) -> None:
        raise GeometryError(f"village {t.code} {t.name}: grids do not tile the village (forced)")

    monkeypatch.setattr(village_mod, "check_village", never)
    with pytest.raises(GeometryError) as err:
        build_with_fallbacks(_task())
    msg = str(err.value)
    assert msg.startswith("village 360000000001 甲村: no rung of the fallback ladder tiles it")
    assert "the last, whole failed at check: grids do not tile the village (forced)" in msg


# --------------------------------------------------------------------------------------
# in a county build
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("ladder") / "county.gpkg"
    write_county(synth_county(seed=11, townships=2, villages=6, households=2500), p)
    return p


@pytest.fixture(scope="module")
def normal(county: Path) -> BuildResult:
    return build_county(CountyRules(county=county), workers=1)


def _target(county: Path, normal: BuildResult) -> tuple[str, str, Any]:
    """The village to force down the ladder: the one with the most points; its code, name and a point in it."""
    vil = gpd.read_file(county, layer="villages")
    code = str(normal.layers["villages"].sort_values("n_points")["code"].iloc[-1])
    metric = _crs.metric_crs(vil)
    row = vil[vil["code"].astype(str) == code].to_crs(metric)
    return code, str(row["name"].iloc[0]), shapely.point_on_surface(row.geometry.values[0])


def test_county_build_reports_the_fallback(county: Path, normal: BuildResult, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    code, name, inside = _target(county, normal)
    monkeypatch.setattr(village_mod, "split_heavy",
                        _split_fails(lambda faces: bool(shapely.intersects(faces, inside).any())))
    res = build_county(CountyRules(county=county), workers=1)
    (fb,) = res.report["fallbacks"]
    assert fb["code"] == code and fb["name"] == name and fb["rung"] == "coarse"
    assert fb["reason"].startswith("pipeline failed at units: GEOSException: TopologyException")
    assert len(fb["failed"]) == 2
    assert normal.report["fallbacks"] == []
    assert any(code in r.getMessage() and "coarse" in r.getMessage() for r in caplog.records)
    assert_tiles(res)
    assert_households(res)
    assert_codes(res)
    # marked in build_hash (a later --previous build tries the pipeline again); the other villages unchanged
    hashes = dict(zip(res.layers["villages"]["code"], res.layers["villages"]["build_hash"], strict=True))
    before = dict(zip(normal.layers["villages"]["code"], normal.layers["villages"]["build_hash"], strict=True))
    assert hashes[code] == before[code] + "+coarse"
    assert {k: v for k, v in hashes.items() if k != code} == {k: v for k, v in before.items() if k != code}
    metric = _crs.metric_crs(res.layers["villages"])
    for lvl in ("grids", "points"):  # the same parts; only edges shared with it may move (the county-wide clean)
        a, b = (r.layers[lvl][r.layers[lvl]["code"].str[:12] != code].to_crs(metric) for r in (normal, res))
        assert list(a["code"]) == list(b["code"]) and list(a["households"]) == list(b["households"])
        assert float(np.max(shapely.hausdorff_distance(a.geometry.values, b.geometry.values))) < 0.05
    # the closing summary names it
    text = format_report(res.report)
    assert "fallbacks: 1 village(s) built by a fallback rung (1 coarse)" in text
    assert f"  {code} {name}: coarse <- pipeline failed at units: GEOSException" in text
    assert "fallbacks" not in format_report(normal.report)


@pytest.mark.parametrize("rung", RUNG_NAMES[1:])
def test_every_rung_alone_builds_a_generated_county(county: Path, rung: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ladder, "RUNGS", tuple(r for r in RUNGS if r.name == rung))
    res = build_county(CountyRules(county=county), workers=1)
    assert res.report["fallbacks"] == []  # the first rung tried is taken: nothing fell back
    assert_tiles(res)
    assert_households(res)
    assert_codes(res)


@pytest.mark.shared
@pytest.mark.parametrize("rung", RUNG_NAMES[1:])
def test_every_rung_alone_builds_a_real_extract(osm_dir: Path, tmp_path: Path, rung: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[county]\ncode = "360681"\n[inputs]\nosm = "{(osm_dir / "guixi_jiangxi.osm.pbf").as_posix()}"\n',
                     encoding="utf-8")
    monkeypatch.setattr(ladder, "RUNGS", tuple(r for r in RUNGS if r.name == rung))
    res = build_county(load_county_rules(rules), workers=1)
    assert len(res.layers["villages"]) >= 5
    assert_tiles(res)
    assert_households(res)
    assert_codes(res)


def test_closing_summary_lists_the_first_few() -> None:
    fbs = [{"code": f"3600000000{i:02d}", "name": f"村{i}", "rung": "voronoi" if i % 2 else "snapped",
            "reason": "pipeline failed at check: grids do not tile the village"} for i in range(14)]
    from gridgeo.county.report import _fallback_lines

    lines = _fallback_lines(fbs)
    assert lines[0] == "fallbacks: 14 village(s) built by a fallback rung (7 snapped, 7 voronoi); why the pipeline " \
                       "failed:"
    assert len(lines) == 1 + 10 + 1 and lines[-1].startswith("  ... and 4 more")


def test_county_build_stops_when_no_rung_tiles(county: Path, normal: BuildResult, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, name, inside = _target(county, normal)
    real = village_mod.check_village

    def check(t: VillageTask, out: VillageOut) -> None:
        if shapely.intersects(t.geometry, inside):
            raise GeometryError(f"village {t.code} {t.name}: grid points do not tile their grid (forced)")
        real(t, out)

    monkeypatch.setattr(village_mod, "check_village", check)
    with pytest.raises(GeometryError, match=rf"village {code} {name}: no rung .* whole failed at check"):
        build_county(CountyRules(county=county), workers=1)
    rules = tmp_path / "rules.toml"
    rules.write_text("[county]\nseed = 0\n", encoding="utf-8")
    out = tmp_path / "out.gpkg"
    assert main(["build", str(rules), "-o", str(out), "--input", str(county), "--workers", "1",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"village {code} {name}" in err and "whole failed at check" in err
    assert not out.exists() and not list(tmp_path.glob(".out.gpkg*"))


def test_previous_build_retries_fallback_villages(county: Path, normal: BuildResult, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A village a fallback built is not taken from that build (its build_hash is marked), nor is one whose
    old grids no longer pass the check: both are drawn again, the rest taken unchanged."""
    from gridgeo.data.io import write_layers

    code, _, inside = _target(county, normal)
    with monkeypatch.context() as m:
        m.setattr(village_mod, "split_heavy", _split_fails(lambda faces: bool(shapely.intersects(faces, inside).any())))
        fell = build_county(CountyRules(county=county), workers=1)
    old = tmp_path / "old.gpkg"
    write_layers(fell.layers, old)
    again = build_county(CountyRules(county=county), previous=old, workers=1)
    n = len(normal.layers["villages"])
    assert again.report["reused_villages"] == n - 1 and again.report["fallbacks"] == []
    assert list(again.layers["villages"]["build_hash"]) == list(normal.layers["villages"]["build_hash"])
    # an old village whose grids were edited since (a gap): re-drawn, not a stopped build
    layers = dict(normal.layers)
    grids = layers["grids"].copy()
    first = grids.index[grids["parent"] == code][0]
    grids.loc[first, "geometry"] = grids.loc[first, "geometry"].buffer(-1e-4)
    layers["grids"] = grids
    edited = tmp_path / "edited.gpkg"
    write_layers(layers, edited)
    res = build_county(CountyRules(county=county), previous=edited, workers=1)
    assert res.report["reused_villages"] == n - 1
    assert_tiles(res)
