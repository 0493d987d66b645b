"""Grids from whole villager groups (``[grids] groups = "merge"``, gridgeo.county._groups) and the county
policy through a real build of the bundled sample: areas, a third village kind, a per-village override,
target counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgeo.county._groups import merge_groups
from gridgeo.county._parts import Adjacency
from gridgeo.county.build import build_county
from gridgeo.county.rules import load_county_rules
from gridgeo.partition import Objective

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
OVERRIDDEN = "369900004201"  # a rural village with a group of 143 households: above the override's 60

POLICY = f"""
[inputs]
county = "{SAMPLE.as_posix()}"
[grids]
groups = "merge"
[areas]
count = 7
[kinds]
column = "industry"
[kinds.mountain]
density_below = 12
[bounds.manufacturing]
grid = [50, 400]
[bounds.mountain]
grid = [20, 200]
point = [5, 30]
[bounds.village."{OVERRIDDEN}"]
grid = [10, 60]
"""


def _lattice(n: int) -> Adjacency:
    """Rook adjacency of an n x n lattice of unit squares, as the village stage hands it on."""
    rows, cols = [], []
    for i in range(n * n):
        r, c = divmod(i, n)
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < n and 0 <= cc < n:
                rows.append(i)
                cols.append(rr * n + cc)
    order = np.lexsort((cols, rows))
    ip = np.zeros(n * n + 1, dtype=np.int64)
    np.add.at(ip, np.asarray(rows)[order] + 1, 1)
    return Adjacency(np.cumsum(ip), np.asarray(cols, dtype=np.int64)[order], np.ones(len(rows)))


def test_merge_groups_merges_small_and_splits_only_the_oversized() -> None:
    # 6 x 6 lattice, one household per unit; groups are column pairs: 12 units each, except the last pair
    # cut into two groups of 6 (small) and the first pair weighted 5 a unit (60: above the maximum 40)
    adj = _lattice(6)
    units = np.arange(36, dtype=np.int64)
    col = units % 6
    group = np.where(col < 2, 0, np.where(col < 4, 1, np.where(units < 18, 2, 3)))
    size = np.where(col < 2, 5.0, 1.0)
    res = merge_groups(adj, units, group, size, bounds=(10, 40), count=None, seed=lambda s: 3,
                       objective=Objective(iterations=10, restarts=2))
    assert res.split == {0: 2}  # 60 households: two pieces of 30
    whole = [g for g, _ in res.parts if 0 not in g]
    assert sorted(whole) == [(1,), (2, 3)]  # 12 stays alone; the two sixes are merged whole
    covered = np.concatenate([m for _, m in res.parts])
    assert sorted(covered.tolist()) == units.tolist()  # every unit in exactly one grid
    for groups, members in res.parts:
        assert set(group[members].tolist()) == set(groups)  # a grid holds whole groups (or one group's piece)
        assert 10 <= size[members].sum() <= 40
    again = merge_groups(adj, units, group, size, bounds=(10, 40), count=None, seed=lambda s: 3,
                         objective=Objective(iterations=10, restarts=2))
    assert [(g, m.tolist()) for g, m in again.parts] == [(g, m.tolist()) for g, m in res.parts]


@pytest.fixture(scope="module")
def policy_build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("policy")
    (d / "rules.toml").write_text(POLICY, encoding="utf-8")
    return build_county(load_county_rules(d / "rules.toml"), workers=2)


@pytest.mark.slow
def test_sample_areas_count_7_tile_the_county(policy_build: Any) -> None:
    areas, towns = policy_build.layers["areas"], policy_build.layers["townships"]
    assert len(areas) == 7 and areas["n_townships"].sum() == len(towns)
    assert set(towns["area"]) == set(areas["code"])  # whole townships, each in one area
    for code, geom in zip(areas["code"], areas.geometry, strict=True):
        assert shapely.get_num_geometries(geom) == 1  # contiguous
        mine = shapely.union_all(towns[towns["area"] == code].geometry.values)
        assert shapely.symmetric_difference(geom, mine).area < 1e-12
    county = shapely.union_all(towns.geometry.values)
    assert shapely.symmetric_difference(shapely.union_all(areas.geometry.values), county).area < 1e-12


@pytest.mark.slow
def test_sample_merge_splits_no_group_that_fits(policy_build: Any) -> None:
    grids, hh = policy_build.layers["grids"], policy_build.layers["households"]
    groups = gpd.read_file(SAMPLE, layer="villager_groups").to_crs(hh.crs)
    base = hh[hh["grid"].isin(set(grids["code"]))]  # households of the base grids (not exclusive ones)
    where = gpd.sjoin(base[["grid", "households", "geometry"]], groups[["code", "village", "geometry"]],
                      predicate="within")
    per_group = where.groupby("code")["grid"].nunique()
    maxima = dict(zip(grids["parent"], [0] * len(grids), strict=True))
    for code, kind in zip(policy_build.layers["villages"]["code"], policy_build.layers["villages"]["kind"],
                          strict=True):
        maxima[code] = {"urban": 500, "rural": 300, "manufacturing": 400, "mountain": 200}[kind]
    maxima[OVERRIDDEN] = 60
    size = groups.set_index("code")["households"]
    fits = [g for g in per_group.index if size[g] <= maxima[g[:12]]]
    assert len(fits) > 1000
    assert (per_group[fits] == 1).all(), per_group[fits][per_group[fits] > 1].head()
    split = set(per_group.index[per_group > 1])
    assert split and all(g.startswith(OVERRIDDEN) for g in split)  # only the override's big group is cut
    assert set(policy_build.report["groups"]["split"]) == split and policy_build.report["groups"]["merged"] > 300


@pytest.mark.slow
def test_sample_merge_share_within_bounds(policy_build: Any) -> None:
    grids = policy_build.layers["grids"]
    groups = gpd.read_file(SAMPLE, layer="villager_groups")
    kinds = dict(zip(policy_build.layers["villages"]["code"], policy_build.layers["villages"]["kind"],
                     strict=True))
    bounds = {"urban": (100, 500), "rural": (30, 300), "manufacturing": (50, 400), "mountain": (20, 200)}
    one_per_group = np.mean([bounds[kinds[v]][0] <= h <= bounds[kinds[v]][1] if v != OVERRIDDEN else h <= 60
                             for v, h in zip(groups["village"], groups["households"], strict=True)])
    share = float(grids["within_bounds"].mean())
    assert one_per_group < 0.45 and share > 0.95, (one_per_group, share)
    assert set(grids["source"]) <= {"villager_group", "villager_groups_merged", "villager_group_split"}
    merged = grids[grids["source"] == "villager_groups_merged"]
    assert len(merged) > 100 and all("," in g for g in merged["group"])


@pytest.mark.slow
def test_sample_third_kind_and_override(policy_build: Any) -> None:
    grids, points = policy_build.layers["grids"], policy_build.layers["points"]
    rep = policy_build.report["kinds"]
    assert rep["villages"]["manufacturing"] == 18 and rep["villages"]["mountain"] > 0
    assert rep["column_values_without_bounds"]["agriculture"] > 0
    made = grids[grids["kind"] == "manufacturing"]
    assert len(made) and made["households"].between(50, 400).mean() > 0.9
    mine = grids[grids["parent"] == OVERRIDDEN]
    assert mine["households"].max() <= 60 and (mine["source"] == "villager_group_split").sum() >= 3
    mountain = points[points["kind"] == "mountain"]
    assert len(mountain) and mountain["households"].max() <= 30 + 10  # one face may exceed; most within


@pytest.fixture(scope="module")
def target_build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("targets")
    (d / "rules.toml").write_text(f'[inputs]\ncounty = "{SAMPLE.as_posix()}"\n[grids]\ngroups = "merge"\n'
                                  "[targets]\ngrids = 700\npoints = 2400\n[levels]\nblocks = false\n",
                                  encoding="utf-8")
    return build_county(load_county_rules(d / "rules.toml"), workers=2)


@pytest.mark.slow
def test_sample_target_counts_met_or_explained(target_build: Any) -> None:
    rep = target_build.report["targets"]
    grids, points, excl = (target_build.layers[k] for k in ("grids", "points", "exclusive"))
    assert rep["grids"]["target"] == 700 and rep["grids"]["shortfall"] is None
    assert rep["grids"]["planned"] == 700 and rep["grids"]["made"] == len(grids)
    # a village whose exclusive grids took households its share counted on makes fewer: each one named
    off = rep["grids"].get("villages_off_detail", [])
    assert len(off) == rep["grids"]["villages_off"] <= 5
    assert len(grids) == 700 - sum(v["planned"] - v["made"] for v in off)
    assert rep["points"]["shortfall"] is None and rep["points"]["planned"] == 2400
    assert abs(len(points) - 2400) <= 0.05 * 2400, len(points)  # per-grid ranges are tighter than the village's
    assert len(points) == 2400 - sum(v["planned"] - v["made"] for v in rep["points"].get("villages_off_detail", []))
    # fewer grids than max-p: some whole groups do not pair within the maximum
    assert grids["within_bounds"].mean() > 0.8 and len(excl) > 0
