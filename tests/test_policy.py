"""The county's policy per village (gridgeo.county.policy): rules keys, kinds, overrides, limits, targets."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgeo.county._targets import share
from gridgeo.county.policy import apply_kinds, engine_bounds, share_targets, village_policies
from gridgeo.county.rules import Limits, load_county_rules
from gridgeo.errors import UsageError


def _rules(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "rules.toml"
    p.write_text(body, encoding="utf-8")
    return p


RULES = """
[grids]
groups = "merge"
[bounds.mountain]
grid = { households = [20, 150], area_km2 = [0, 6], walk = "3h30m" }
[bounds.rural]
grid = { households = [30, 300], population = [0, 600] }
[bounds.township."369900101"]
grid = [40, 250]
[bounds.township."城关镇"]
point = [10, 60]
[bounds.village."369900101001"]
point = [5, 30]
[kinds]
column = "terrain"
[kinds.mountain]
density_below = 40
names = ["山"]
[targets]
grids = 521
points = 3000
[households]
persons = 3.1
"""


def test_policy_keys_read(tmp_path: Path) -> None:
    r = load_county_rules(_rules(tmp_path, RULES))
    assert r.merge_groups and r.use_groups and r.targets == {"grids": 521, "points": 3000}
    m = r.bounds["mountain"]
    assert m.grid == (20.0, 150.0) and m.point == r.bounds["rural"].point  # a new kind starts from rural
    assert m.grid_limits == Limits(area_m2=(0.0, 6e6), walk_min=210.0)
    assert r.bounds["rural"].grid_limits.population == (0.0, 600.0)
    assert r.persons_per_household == 3.1 and r.kinds is not None and r.kinds.column == "terrain"
    # most specific wins: village over township over kind; a partial override keeps the rest
    b = r.bounds_of_village("mountain", village=["369900101001"], township=["369900101"])
    assert b.grid == (40.0, 250.0) and b.point == (5.0, 30.0) and b.grid_limits.walk_min == 210.0
    assert r.bounds_of_village("rural", township=["369900102", "城关镇"]).point == (10.0, 60.0)


@pytest.mark.parametrize(("body", "message"), [
    ("[grids]\ngroups = \"whole\"\n", "groups must be one of one, merge, draw"),
    ("[grids]\ngroups = \"merge\"\nuse_groups = true\n", "groups or use_groups, not both"),
    ("[bounds.mountain]\ngrid = [300, 20]\n", "needs 0 <= min <= max"),
    ("[bounds.rural]\ngrid = { households = [1, 2], persons = [1, 3] }\n", "unknown key 'persons'"),
    ("[bounds.rural]\nalley = [1, 2]\n", "unknown key 'alley' in [bounds.rural]"),
    ("[bounds.rural]\ngrid = { walk = \"soon\" }\n", "walk 'soon'"),
    ("[bounds.village]\nx = 3\n", "one table per village"),
    ("[kinds.mountain]\ndensity_below = 10\n", "needs its bounds: add [bounds.mountain]"),
    ("[bounds.hill]\ngrid = [1, 9]\n[kinds.hill]\nslope = 3\n", "unknown key 'slope' in [kinds.hill]"),
    ("[bounds.hill]\ngrid = [1, 9]\n[kinds.hill]\nnames = \"山\"\n", "must be a list of strings"),
    ("[targets]\ngrids = 0\n", "grids must be >= 1"),
    ("[targets]\nblocks = 3\n", "unknown key 'blocks' in [targets]"),
    ("[households]\npersons = 0\n", "persons must be > 0"),
])
def test_policy_keys_refused(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_county_rules(_rules(tmp_path, body))


def test_engine_bounds_turn_limits_into_households() -> None:
    assert engine_bounds((30, 300), Limits(), persons=3, density=1e-4, walk=None) == (None, None)
    # 600 persons at 3 a household: 200 households; 1 km² at 100 households a km²: 100 households
    got, note = engine_bounds((30, 300), Limits(population=(0, 600), area_m2=(0, 1e6)), persons=3,
                              density=1e-4, walk=None)
    assert got == (30, 100) and note is None
    got, _ = engine_bounds((30, 300), Limits(walk_min=240), persons=3, density=1e-4, walk=lambda m, d: m / 4)
    assert got == (30, 60)
    got, note = engine_bounds((50, 300), Limits(area_m2=(0, 2e5)), persons=3, density=1e-4, walk=None)
    assert got == (20, 20) and note is not None and "minimum gives way" in note  # 0.2 km² hold 20 households


@pytest.mark.parametrize(("total", "counts", "short"), [
    (10, [5, 3, 2], None),
    (3, [1, 1, 1], None),  # exactly the lows
    (2, [1, 1, 1], "at least 3"),
    (30, [8, 6, 4], "at most 18"),
    (14, [7, 4, 3], None),
])
def test_share_is_proportional_within_ranges(total: int, counts: list[int], short: str | None) -> None:
    s = share([50, 30, 20], [1, 1, 1], [8, 6, 4], total)
    assert s.counts == counts
    assert (s.shortfall is None) == (short is None) and (short is None or short in str(s.shortfall))
    assert all(lo <= c <= hi for c, lo, hi in zip(s.counts, [1, 1, 1], [8, 6, 4], strict=True))


def _villages() -> tuple[gpd.GeoDataFrame, np.ndarray]:
    geoms = [shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000), shapely.box(0, 1000, 3000, 4000)]
    vil = gpd.GeoDataFrame({"code": ["369900101001", "369900101002", "369900102001"],
                            "name": ["东村", "青山村", "城关社区"], "township": ["369900101", "369900101", "369900102"],
                            "kind": ["rural", "rural", "urban"], "terrain": [None, "flat", "mountain"],
                            "households": [300, 20, 900], "population": [900, None, None]},
                           geometry=geoms, crs="EPSG:4527")
    return vil, np.asarray(geoms, dtype=object)


def test_kinds_from_column_then_rules(tmp_path: Path) -> None:
    r = load_county_rules(_rules(tmp_path, RULES))
    vil, geoms = _villages()
    rep = apply_kinds(vil, geoms, r, township_names={"369900102": "城关镇"})
    # 东村: no value, dense: stays rural; 青山村: "flat" has no bounds, its name has 山; 城关社区: the column
    assert vil["kind"].tolist() == ["rural", "mountain", "mountain"]
    assert rep == {"villages": {"mountain": 2, "rural": 1}, "from_column": 1, "from_rules": 1,
                   "column_values_without_bounds": {"flat": 1}}
    pol = village_policies(vil, geoms, r, township_names={"369900102": "城关镇"})
    assert pol[0].persons == 3.0 and pol[1].persons == 3.1  # the village's own ratio, else the rules'
    assert pol[0].bounds.grid == (40, 250) and pol[0].bounds.point == (5, 30)  # township, then village
    assert pol[0].grid_aim == (40, 200)  # 600 persons / 3 a household
    assert pol[2].bounds.point == (10, 60)  # township override by name


def test_kinds_column_checked(tmp_path: Path) -> None:
    vil, geoms = _villages()
    r = load_county_rules(_rules(tmp_path, RULES.replace('column = "terrain"', 'column = "地形"')))
    with pytest.raises(UsageError, match="no such column"):
        apply_kinds(vil, geoms, r, township_names={})
    r = load_county_rules(_rules(tmp_path, RULES.replace('column = "terrain"', 'column = "kind"')))
    with pytest.raises(UsageError, match="holds urban/rural"):
        apply_kinds(vil, geoms, r, township_names={})


def test_targets_shared_and_shortfall_explained(tmp_path: Path) -> None:
    vil, geoms = _villages()
    r = load_county_rules(_rules(tmp_path, "[grids]\ngroups = \"draw\"\n[targets]\ngrids = 8\n"))
    pol, rep = share_targets(vil, village_policies(vil, geoms, r, township_names={}), r, groups=[0, 0, 0])
    assert [p.grid_count for p in pol] == [2, 1, 5] and rep["grids"]["shortfall"] is None
    r = load_county_rules(_rules(tmp_path, "[grids]\ngroups = \"draw\"\n[targets]\ngrids = 60\n"))
    pol, rep = share_targets(vil, village_policies(vil, geoms, r, township_names={}), r, groups=[0, 0, 0])
    assert rep["grids"]["planned"] == 10 + 1 + 9 and "at most 20" in rep["grids"]["shortfall"]
    r = load_county_rules(_rules(tmp_path, "[targets]\ngrids = 4\n"))  # one grid per group: fixed
    pol, rep = share_targets(vil, village_policies(vil, geoms, r, township_names={}), r, groups=[3, 2, 4])
    assert rep["grids"]["planned"] == 9 and "grids are the villager groups" in rep["grids"]["shortfall"]
    assert all(p.grid_count is None for p in pol)
