"""The ``units`` layer: the atomic pieces every level is made of, exact enough to rebuild every level from.

Why these checks: later edits and versions (issue 16) move whole units between grids and points and
write each level as the union of its units again, so the layer must tile every village, a point's (and
a grid's) units must unite to exactly the written point (grid), every household must sit in one unit of
its own point, and the same inputs and seed must give the same units, byte for byte.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import shapely.affinity

from gridgeo.cli import main
from gridgeo.data.crs import metric_crs
from tests.conftest import synth_rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RULES = ROOT / "boundaries" / "sample_rules.toml"
#: how far (m²) a level may differ from the union of its units, in the metric CRS
TOLERANCE_M2 = 1.0


def _build(rules: Path, out: Path, *extra: str) -> Path:
    assert main(["build", str(rules), "-o", str(out), "--no-progress", "-q", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(SAMPLE_RULES, tmp_path_factory.mktemp("units") / "sample.gpkg")


@pytest.fixture(scope="module")
def synth_micro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic county with micro-grids and lanes, whose atoms are the units."""
    d = tmp_path_factory.mktemp("units_synth")
    rules = synth_rules(d, seed=5, townships=2, villages=5, households=2500)
    rules.write_text(rules.read_text(encoding="utf-8") + "[levels]\nmicro_grids = true\nlanes = true\n",
                     encoding="utf-8")
    return _build(rules, d / "built.gpkg", "--workers", "1")


def _layers(path: Path) -> dict[str, gpd.GeoDataFrame]:
    names = set(pyogrio.list_layers(path)[:, 0])
    want = ("villages", "grids", "exclusive", "points", "units", "households", "micro_grids", "lanes")
    return {n: pyogrio.read_dataframe(path, layer=n) for n in want if n in names}


def _metric(g: gpd.GeoDataFrame, crs: object) -> np.ndarray:
    return np.asarray(g.to_crs(crs).geometry.values, dtype=object)


def _worst_symdiff(units: gpd.GeoDataFrame, level: gpd.GeoDataFrame, col: str, crs: object) -> float:
    """The largest area (m²) by which a unit of ``level`` differs from the union of the units naming it in ``col``."""
    ug = _metric(units, crs)
    by: dict[str, list[int]] = {}
    for i, c in enumerate(units[col]):
        if isinstance(c, str):
            by.setdefault(c, []).append(i)
    worst = 0.0
    for code, geom in zip(level["code"], _metric(level, crs), strict=True):
        assert code in by, f"{col} {code} has no units"
        union = shapely.coverage_union_all(ug[by[code]])
        worst = max(worst, float(shapely.area(shapely.symmetric_difference(union, geom))))
    return worst


def _check_exact(path: Path) -> dict[str, gpd.GeoDataFrame]:
    """Every exactness property of the units layer of the build at ``path``; returns its layers."""
    L = _layers(path)
    u, hh = L["units"], L["households"]
    crs = metric_crs(L["villages"])
    geoms = np.asarray(u.geometry.values, dtype=object)
    assert len(u) and shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any()
    assert set(shapely.get_type_id(geoms).tolist()) <= {3, 6}
    assert shapely.coverage_is_valid(geoms)  # one clean coverage: shared edges identical, no overlap
    for lvl, col in (("points", "point"), ("grids", "grid"), ("exclusive", "grid"), ("villages", "village"),
                     ("micro_grids", "micro_grid"), ("lanes", "lane")):
        if lvl in L and len(L[lvl]):
            assert _worst_symdiff(u, L[lvl], col, crs) <= TOLERANCE_M2, lvl
    # codes: unique, the village's code + U + digits
    assert u["code"].is_unique
    assert all(re.fullmatch(re.escape(v) + r"U\d{4,}", c) for c, v in zip(u["code"], u["village"], strict=True))
    # each unit's chain is the chain of its point
    pts = L["points"].set_index("code")
    assert (pts.loc[u["point"], "parent"].to_numpy() == u["grid"].to_numpy()).all()
    assert (pts.loc[u["point"], "village"].to_numpy() == u["village"].to_numpy()).all()
    assert (u["parent"] == u["point"]).all()
    excl = set(L["exclusive"]["code"]) if "exclusive" in L else set()
    assert [g if g in excl else None for g in u["grid"]] == [e if isinstance(e, str) else None for e in u["exclusive"]]
    # every household item in exactly one unit, that unit in the item's own point (and micro-grid, lane)
    assert hh["unit"].notna().all()
    unit = u.set_index("code")
    assert (unit.loc[hh["unit"], "point"].to_numpy() == hh["point"].to_numpy()).all()
    for col in ("micro_grid", "lane"):
        if col in hh.columns:
            assert (unit.loc[hh["unit"], col].to_numpy() == hh[col].to_numpy()).all(), col
    within = shapely.within(np.asarray(hh.geometry.values, dtype=object),
                            np.asarray(unit.loc[hh["unit"]].geometry.values, dtype=object))
    assert within.mean() > 0.999  # a location left on an edge by the rounding at most
    # households and items add up: per unit, per point
    per = hh.groupby("unit").agg(households=("households", "sum"), n_items=("households", "size"))
    got = unit[["households", "n_items"]].join(per.add_suffix("_hh")).fillna(0)
    assert (got["households"] == got["households_hh"]).all() and (got["n_items"] == got["n_items_hh"]).all()
    assert (u.groupby("point")["households"].sum().reindex(pts.index).to_numpy()
            == pts["households"].to_numpy()).all()
    assert (u["point"].value_counts().reindex(pts.index).to_numpy() == pts["n_units"].to_numpy()).all()
    return L


def test_sample_units_are_exact(sample: Path) -> None:
    L = _check_exact(sample)
    assert len(L["units"]) > len(L["points"])  # street blocks and split pieces, finer than the points
    assert L["units"]["exclusive"].notna().any()  # the exclusive grids' pieces are units too


def test_sample_units_tile_every_village(sample: Path) -> None:
    L = _layers(sample)
    crs = metric_crs(L["villages"])
    u = L["units"]
    total = shapely.area(_metric(u, crs)).sum()
    assert abs(total - shapely.area(_metric(L["villages"], crs)).sum()) <= TOLERANCE_M2 * len(L["villages"])
    assert set(u["village"]) == set(L["villages"]["code"])


def test_same_inputs_and_seed_give_the_same_units(sample: Path, tmp_path: Path) -> None:
    again = _build(SAMPLE_RULES, tmp_path / "again.gpkg")
    a, b = (pyogrio.read_dataframe(p, layer="units") for p in (sample, again))
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert shapely.to_wkb(a.geometry.values).tolist() == shapely.to_wkb(b.geometry.values).tolist()
    ha, hb = (pyogrio.read_dataframe(p, layer="households", columns=["unit"]) for p in (sample, again))
    assert ha["unit"].tolist() == hb["unit"].tolist()


def test_micro_grid_and_lane_atoms_are_the_units(synth_micro: Path) -> None:
    L = _check_exact(synth_micro)
    assert "micro_grid" in L["units"].columns and "lane" in L["units"].columns
    assert L["units"]["micro_grid"].notna().all() and L["units"]["lane"].notna().all()


def test_previous_build_keeps_the_units_and_their_codes(synth_micro: Path, tmp_path: Path) -> None:
    # a plain build of the synth county, then again from it: unchanged villages are taken with their units
    rules = synth_micro.parent / "rules.toml"
    plain = tmp_path / "rules.toml"
    plain.write_text(rules.read_text(encoding="utf-8").split("[levels]")[0], encoding="utf-8")
    first = _build(plain, tmp_path / "first.gpkg", "--workers", "1")
    second = _build(plain, tmp_path / "second.gpkg", "--workers", "1", "--previous", str(first),
                    "--report", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["reused_villages"] == 5  # taken from the file: their units read back, not drawn again
    a, b = (pyogrio.read_dataframe(p, layer="units") for p in (first, second))
    assert a["code"].tolist() == b["code"].tolist()
    assert a["households"].tolist() == b["households"].tolist()
    _check_exact(second)
    # an older build without the units layer: nothing can be taken from it, every village is drawn again
    old = tmp_path / "old.gpkg"
    for name in pyogrio.list_layers(first)[:, 0]:
        if name != "units":
            g = pyogrio.read_dataframe(first, layer=name)
            pyogrio.write_dataframe(g.drop(columns=["unit"], errors="ignore"), old, layer=str(name),
                                    driver="GPKG", append=old.exists())
    third = _build(plain, tmp_path / "third.gpkg", "--workers", "1", "--previous", str(old),
                   "--report", str(tmp_path / "r3.json"))
    assert json.loads((tmp_path / "r3.json").read_text(encoding="utf-8"))["reused_villages"] == 0
    assert pyogrio.read_dataframe(third, layer="units")["code"].tolist() == a["code"].tolist()


def test_a_village_drawn_again_from_previous_gives_the_same_units(synth_micro: Path, tmp_path: Path) -> None:
    # villages with micro-grids are never taken unchanged: drawn again with the old build steering them
    again = _build(synth_micro.parent / "rules.toml", tmp_path / "again.gpkg", "--workers", "1",
                   "--previous", str(synth_micro))
    a, b = (pyogrio.read_dataframe(p, layer="units").set_index("code") for p in (synth_micro, again))
    common = a.index.intersection(b.index)
    assert len(common) >= 0.9 * len(a)
    same = shapely.equals_exact(np.asarray(a.loc[common].geometry.values, dtype=object),
                                np.asarray(b.loc[common].geometry.values, dtype=object), tolerance=1e-7)
    assert same.mean() >= 0.9


def test_unit_codes_continue_the_previous_ones_and_number_new_units_after() -> None:
    from types import SimpleNamespace

    from gridgeo.county.atomic import _unit_codes
    from tests.conftest import garray

    boxes = [shapely.box(i * 10.0, 0.0, i * 10.0 + 10.0, 10.0) for i in range(3)]
    fresh = _unit_codes(SimpleNamespace(code="V1", previous=None), garray(*boxes))  # type: ignore[arg-type]
    assert fresh == ["V1U0001", "V1U0002", "V1U0003"]  # west to east
    old = (garray(*boxes[:2]), ["V1U0007", "V1U0003"])  # an earlier build numbered them otherwise
    moved = [shapely.affinity.translate(boxes[0], 1.0), boxes[1], boxes[2]]  # the first moved a little, one new
    got = _unit_codes(SimpleNamespace(code="V1", previous={"units": old}), garray(*moved))  # type: ignore[arg-type]
    assert got == ["V1U0007", "V1U0003", "V1U0008"]
