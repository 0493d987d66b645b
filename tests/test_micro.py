"""Micro-grids (微网格) and lanes (巷) below the grids: tiling, one household one unit, codes, bounds, rules."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, box

from gridgeo.county.build import BuildResult, build_county
from gridgeo.county.micro import SubLevels, street_segments
from gridgeo.county.rules import load_county_rules
from gridgeo.county.village import VillageTask, build_village
from gridgeo.data.io import write_layers
from gridgeo.errors import UsageError
from tests.conftest import garray

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
#: a town of 13 urban communities and 1 village, a township of 2 villages and 3 communities, and a rural
#: township of 14 villages and 3 communities (where faces with a disc-shaped site footprint meet both levels)
TOWNSHIPS = ("369900001", "369900007", "369900018")
METRIC = "EPSG:4548"  # CGCS2000 GK CM 117E: the sample's
ON = "[levels]\nmicro_grids = true\nlanes = true\n"


def _subset(d: Path, townships: tuple[str, ...] = TOWNSHIPS) -> Path:
    """The sample's layers for ``townships`` only, as a county GeoPackage in ``d``."""
    out = d / "subset.gpkg"
    vil = pyogrio.read_dataframe(SAMPLE, layer="villages")
    vil = vil[vil["township"].isin(townships)].reset_index(drop=True)
    codes = set(vil["code"])
    area = shapely.union_all(vil.geometry.values).buffer(0.002)
    for layer in pyogrio.list_layers(SAMPLE)[:, 0]:
        g = pyogrio.read_dataframe(SAMPLE, layer=layer)
        if layer == "townships":
            g = g[g["code"].isin(townships)]
        elif "village" in g.columns:
            g = g[g["village"].isin(codes)]
        elif layer == "villages":
            g = vil
        else:
            g = g[g.intersects(area)]
        pyogrio.write_dataframe(g.reset_index(drop=True), out, layer=str(layer), driver="GPKG",
                                append=out.exists())
    return out


def _rules(d: Path, body: str = ON) -> Path:
    text = (ROOT / "boundaries" / "sample_rules.toml").read_text(encoding="utf-8")
    text = text.replace('county = "sample_county.gpkg"', f'county = "{_subset(d).as_posix()}"')
    text = text.replace("micro_grids = false", "").replace("lanes = false", "").replace("[levels]\n", body, 1)
    p = d / "rules.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    d = tmp_path_factory.mktemp("micro")
    return build_county(load_county_rules(_rules(d)), workers=1), d


def _metric(g: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(g.to_crs(METRIC).geometry.values, dtype=object)


@pytest.mark.parametrize("level", ["micro_grids", "lanes"])
def test_each_level_tiles_every_grid(built: tuple[BuildResult, Path], level: str) -> None:
    res, _ = built
    layers = res.layers
    sub = layers[level]
    parents = gpd.GeoDataFrame(
        {"code": [*layers["grids"]["code"], *layers["exclusive"]["code"]]},
        geometry=[*layers["grids"].geometry, *layers["exclusive"].geometry], crs=layers["grids"].crs)
    assert set(sub["parent"]) == set(parents["code"])  # every grid and exclusive grid has its units
    geoms, pgeoms = _metric(sub), _metric(parents)
    assert shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any()
    assert shapely.coverage_is_valid(np.asarray(sub.geometry.values, dtype=object))  # as written
    tol = load_county_rules(ROOT / "boundaries" / "sample_rules.toml").tolerance_m2
    parent_of = sub["parent"].to_numpy()
    for code, pg in zip(parents["code"], pgeoms, strict=True):
        mine = geoms[parent_of == code]
        covered = shapely.union_all(mine)
        assert shapely.area(shapely.symmetric_difference(covered, pg)) <= tol, code  # no gap
        assert float(np.sum(shapely.area(mine))) - shapely.area(covered) <= tol, code  # no overlap
    assert res.report["coverage"]["levels"][level]["misnoded"] == 0


@pytest.mark.parametrize(("level", "column", "letter"), [("micro_grids", "micro_grid", "M"), ("lanes", "lane", "L")])
def test_every_household_in_exactly_one_unit(built: tuple[BuildResult, Path], level: str, column: str,
                                             letter: str) -> None:
    res, _ = built
    sub, hh = res.layers[level], res.layers["households"]
    assert hh[column].notna().all() and set(hh[column]) <= set(sub["code"])
    by_code = sub.set_index("code")
    # a household's unit lies in its grid, and holds the household's location
    assert (by_code.loc[hh[column], "parent"].to_numpy() == hh["grid"].to_numpy()).all()  # grid or exclusive
    polys = np.asarray(by_code.loc[hh[column]].geometry.values, dtype=object)
    assert shapely.intersects(polys, np.asarray(hh.geometry.values, dtype=object)).all()
    total = hh.groupby(column)["households"].sum()
    assert (by_code.loc[total.index, "households"] == total).all()
    assert int(sub["households"].sum()) == int(hh["households"].sum())
    # codes: the parent's code + letter + 2 digits, unique
    assert sub["code"].is_unique
    assert all(c.startswith(p + letter) and c[len(p) + 1:].isdigit() and len(c) == len(p) + 3
               for c, p in zip(sub["code"], sub["parent"], strict=True))


def test_bounds_are_the_rules_and_the_share_is_reported(built: tuple[BuildResult, Path]) -> None:
    res, _ = built
    rules = load_county_rules(ROOT / "boundaries" / "sample_rules.toml")
    for level, key in (("micro_grids", "micro"), ("lanes", "lane")):
        sub = res.layers[level]
        for kind, b in rules.bounds.items():
            lo, hi = getattr(b, key)
            rows = sub[sub["kind"] == kind]
            assert (rows["within_bounds"] == rows["households"].between(lo, hi)).all()
        rep = res.report["bounds"][level]
        assert rep["n"] == len(sub) and rep["within_bounds"] == round(float(sub["within_bounds"].mean()), 4)
        assert rep["worst_gap_m2"] <= rules.tolerance_m2 and rep["worst_overlap_m2"] <= rules.tolerance_m2
    lanes = res.report["bounds"]["lanes"]
    assert lanes["merged"] >= 0 and lanes["split_segments"] >= 0
    # a lane above the maximum is a building too big to share, or took in small lanes no other neighbour had
    # room for; the report counts every merge and every street cut
    lns = res.layers["lanes"]
    assert lanes["merged"] == int(lns["merged"].sum()) and lanes["faces_uncut"] == 0
    hh = res.layers["households"]
    biggest = hh.groupby("lane")["households"].max()
    for _, r in lns[lns["households"] > rules.bounds["urban"].lane[1]].iterrows():
        assert r["merged"] > 0 or biggest[r["code"]] > rules.bounds["urban"].lane[1] / 2, r["code"]


def test_lanes_are_named_by_their_street(built: tuple[BuildResult, Path]) -> None:
    res, _ = built
    lanes = res.layers["lanes"]
    names = set(res.layers["roads"]["name"].dropna())
    named = lanes[lanes["street"].notna()]
    assert len(named) and set(named["street"]) <= names
    assert all(str(n).startswith(str(s)) for n, s in zip(named["name"], named["street"], strict=True))


def test_the_build_is_deterministic(built: tuple[BuildResult, Path], tmp_path: Path) -> None:
    res, _ = built
    again = build_county(load_county_rules(_rules(tmp_path)), workers=2)
    for level in ("micro_grids", "lanes"):
        a, b = res.layers[level], again.layers[level]
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
        assert list(shapely.to_wkb(a.geometry.values)) == list(shapely.to_wkb(b.geometry.values))


def test_switching_them_on_moves_no_grid_and_no_household(built: tuple[BuildResult, Path], tmp_path: Path) -> None:
    # the levels below the grids are cleaned with the points as common atoms: the grids, points and each
    # household's point stay as the build without them draws them (up to the cleaning's centimetres)
    res, _ = built
    off = build_county(load_county_rules(_rules(tmp_path, "[levels]\n")), workers=1)
    for level in ("grids", "points"):
        a, b = off.layers[level].set_index("code"), res.layers[level].set_index("code")
        assert list(a.index) == list(b.index)
        moved = np.abs(a.geometry.to_crs(METRIC).area - b.geometry.to_crs(METRIC).area.reindex(a.index))
        assert float(moved.max()) < 5.0, (level, moved.idxmax())
    assert list(off.layers["households"]["point"]) == list(res.layers["households"]["point"])
    worst = res.report["coverage"]["max_area_change_m2"]
    assert max(worst["micro_grids"], worst["lanes"]) < 5.0 + off.report["coverage"]["max_area_change_m2"]["points"]


def test_off_by_default_and_only_for_the_kinds_named(tmp_path: Path) -> None:
    rules = load_county_rules(ROOT / "boundaries" / "sample_rules.toml")
    assert rules.micro_grids == () and rules.lanes == () and rules.sub_levels_for("urban") == (False, False)
    assert rules.bounds["urban"].micro == (20.0, 60.0) and rules.bounds["rural"].lane == (5.0, 80.0)
    res = build_county(load_county_rules(_rules(tmp_path, '[levels]\nmicro_grids = ["rural"]\n')), workers=1)
    assert "lanes" not in res.layers and "lane" not in res.layers["households"].columns
    micro = res.layers["micro_grids"]
    rural = set(res.layers["villages"].query("kind == 'rural'")["code"])
    assert set(micro["village"]) == rural  # every rural village, and nothing else
    assert "micro_grid" in res.layers["households"].columns


def test_rules_keys_are_checked(tmp_path: Path) -> None:
    p = tmp_path / "rules.toml"
    for body, match in [("[levels]\nlanes = 3\n", "must be bool or list"),
                        ("[levels]\nmicro_grids = [1]\n", "list of village kinds"),
                        ("[levels]\nmicrogrids = true\n", "unknown key 'microgrids'"),
                        ("[bounds.urban]\nmicro = [60, 20]\n", r"micro = \[60, 20\] needs"),
                        ("[bounds.urban]\nlanes = [5, 80]\n", r"unknown key 'lanes' in \[bounds.urban\]"),
                        ("[bounds.village.\"369900001001\"]\nlane = { households = [1, 9] }\n",
                         "must be \\[min, max\\]")]:
        p.write_text(body, encoding="utf-8")
        with pytest.raises(UsageError, match=match):
            load_county_rules(p)
    p.write_text("[levels]\nlanes = [\"urban\"]\n[bounds.urban]\nlane = [10, 40]\n", encoding="utf-8")
    r = load_county_rules(p)
    assert r.lanes == ("urban",) and r.bounds["urban"].lane == (10.0, 40.0) and r.bounds["rural"].lane == (5.0, 80.0)
    assert r.sub_levels_for("urban") == (False, True) and r.sub_levels_for("rural") == (False, False)


# ------------------------------------------------------------------ one hand-made village
def _alley_task(lane_max: float = 80.0) -> VillageTask:
    """A 200 x 100 m village with one alley along y = 50 and 10 one-household houses on each side."""
    houses = [box(x, 56, x + 8, 64) for x in range(5, 200, 20)] + [box(x, 36, x + 8, 44) for x in range(5, 200, 20)]
    return VillageTask(
        code="369900009001", name="巷村", kind="urban", geometry=box(0, 0, 200, 100),
        barriers=garray(LineString([(0, 50), (200, 50)])), group_codes=[], group_names=[],
        group_geoms=garray(), items=garray(*houses), weights=np.ones(len(houses), dtype=np.int64),
        item_labels=None, site_geoms=garray(), site_names=[], site_categories=[], site_ids=[],
        grid_bounds=(10.0, 500.0), point_bounds=(5.0, 120.0), seed=0,
        sub=SubLevels(micro=True, lanes=True, micro_bounds=(4.0, 8.0), lane_bounds=(2.0, lane_max),
                      roads=garray(LineString([(0, 50), (200, 50)])), road_names=("幸福巷",)))


def test_both_sides_of_an_alley_are_one_lane() -> None:
    out = build_village(_alley_task())
    assert len(out.grids) == 1 and len(out.lanes) == 1
    lane = out.lanes[0]
    assert lane["name"] == "幸福巷" and lane["households"] == 20 and lane["code"] == out.grids[0]["code"] + "L01"
    assert shapely.equals(lane["geometry"], out.grids[0]["geometry"])
    assert set(out.item_lane) == {lane["code"]}


def test_a_long_lane_is_cut_along_its_street() -> None:
    out = build_village(_alley_task(lane_max=10.0))
    # 20 households over a maximum of 10: cut into moderate stretches (part_count aims at the bounds' middle)
    assert len(out.lanes) == 3 and all(2 <= r["households"] <= 10 for r in out.lanes)
    c = np.asarray([shapely.get_coordinates(shapely.centroid(b))[0] for b in _alley_task().items])
    lane_of = np.asarray(out.item_lane)
    spans = sorted((c[lane_of == code, 0].min(), c[lane_of == code, 0].max()) for code in set(lane_of))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # consecutive along the alley
    for code in set(lane_of):  # each stretch holds both sides of the alley
        ys = c[lane_of == code, 1]
        assert ys.min() < 50 < ys.max()
    assert out.stats["lanes_split"] == 1 and out.stats["lanes_merged"] == 0
    assert sum(shapely.area(r["geometry"]) for r in out.lanes) == pytest.approx(200 * 100)


def test_micro_grids_within_their_bounds_and_contiguous() -> None:
    out = build_village(_alley_task())
    assert [r["households"] for r in out.micro_grids] and all(4 <= r["households"] <= 8 for r in out.micro_grids)
    assert all(shapely.get_type_id(r["geometry"]) == 3 for r in out.micro_grids)  # one polygon each
    assert sorted(out.item_micro) == sorted(c for r in out.micro_grids for c in [r["code"]] * r["households"])
    assert out.stats["tiling"]["micro_grids"]["gap_m2"] <= 1.0


def test_a_village_without_the_levels_is_built_as_before() -> None:
    t = dataclasses.replace(_alley_task(), sub=None)
    out = build_village(t)
    assert out.micro_grids == [] and out.lanes == [] and out.item_lane == []
    assert [r["code"] for r in out.points] == [r["code"] for r in build_village(_alley_task()).points]


def test_street_segments_are_cut_at_junctions_and_keep_their_names() -> None:
    roads = garray(LineString([(0, 0), (100, 0)]), LineString([(50, -50), (50, 50)]))
    segs, names = street_segments(roads, ("东街", None))
    assert len(segs) == 4 and sum(shapely.length(segs)) == pytest.approx(200)
    assert sorted(n or "" for n in names) == ["", "", "东街", "东街"]


# ------------------------------------------------------------------ served, located, people
def test_served_located_and_people_on_them(built: tuple[BuildResult, Path]) -> None:
    import pandas as pd

    from gridgeo.data.tables import ROW
    from gridgeo.people.roster import resolve_roster
    from service import create_app

    res, d = built
    out = d / "built.gpkg"
    write_layers(res.layers, out)
    client = create_app({"COUNTY": str(out), "TESTING": True}).test_client()
    for level in ("micro_grids", "lanes"):
        items = client.get(f"/collections/{level}/items?limit=5").get_json()
        assert items["numberMatched"] == len(res.layers[level])
    hh = res.layers["households"].iloc[:40]
    for _, h in hh.iterrows():
        props = client.get(f"/locate?lon={h.geometry.x}&lat={h.geometry.y}").get_json()["properties"]
        assert props["micro_grid"]["code"] == h["micro_grid"] and props["lane"]["code"] == h["lane"]
    lane, micro = str(hh["lane"].iloc[0]), str(hh["micro_grid"].iloc[0])
    df = pd.DataFrame({"name": ["巷长甲", "楼栋长乙"], "role": ["巷长", "楼栋长"], "unit": [lane, micro], ROW: [2, 3]})
    df.attrs["found"] = {"name": "name", "role": "role", "unit": "unit"}
    got = resolve_roster(df, res.layers, source="r.csv").table
    assert got[["level", "unit"]].values.tolist() == [["lanes", lane], ["micro_grids", micro]]


def test_locate_without_the_levels_has_no_such_members(tmp_path: Path) -> None:
    from service import create_app
    from tests.service_county import make_county

    client = create_app({"COUNTY": str(make_county(tmp_path / "c.gpkg")), "TESTING": True}).test_client()
    v = pyogrio.read_dataframe(tmp_path / "c.gpkg", layer="villages").geometry.iloc[0].representative_point()
    props: dict[str, Any] = client.get(f"/locate?lon={v.x}&lat={v.y}").get_json()["properties"]
    assert "micro_grid" not in props and "lane" not in props and props["grid"] is not None


def test_a_previous_build_is_drawn_again_with_its_atoms(built: tuple[BuildResult, Path]) -> None:
    # the atoms are not written, so a village with these levels is never taken from an old file unchecked
    res, d = built
    old = d / "old.gpkg"
    write_layers(res.layers, old)
    again = build_county(load_county_rules(d / "rules.toml"), previous=old, workers=1)
    assert again.report["reused_villages"] == 0
    assert set(again.layers["lanes"]["parent"]) == set(res.layers["lanes"]["parent"])
    assert again.report["coverage"]["levels"]["lanes"]["misnoded"] == 0


@pytest.mark.parametrize("level", ["micro_grids", "lanes"])
def test_gridgeo_check_finds_no_overlap_or_gap(built: tuple[BuildResult, Path], level: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from gridgeo.cli import main

    res, d = built
    out = d / f"check_{level}.gpkg"
    write_layers(res.layers, out)
    assert main(["check", str(out), "--layer", level, "--parent", "parent", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    worse = {i["kind"] for i in report["problems"] if i["severity"] != "info"}
    assert report["usable"] and not worse, worse  # enclaves (exclusive grids' units) and multiparts only
    assert set(report["summary"]) <= {"enclave", "multipart"}
