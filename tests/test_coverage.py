"""gridgeo.county.coverage: every level one clean coverage, valid as written (issue 11, item 1).

A catalogue of awkward neighbours -- mis-noded edges, slivers of overlap,
gaps, spikes narrower than the written precision -- goes through
``clean_levels`` and must come out valid, edge-matched and on the 1e-7 degree
grid, with every coarser level the exact union of its members. Built counties
(generated, the sample file as written) are checked in
``tests/test_build.py::assert_clean`` and below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import Polygon, box

from gridgeo.county.coverage import DECIMALS_DEGREES, ROUNDING_M, clean_levels, verify_levels
from gridgeo.errors import GeometryError

ROOT = Path(__file__).resolve().parents[1]
METRIC = pyproj.CRS.from_epsg(4548)  # CGCS2000 3-degree GK CM 117E (the sample's zone)
X0, Y0 = 117.10, 28.29  # near the sample county
D = 1e-3  # about 100 m


def _sq(i: int, j: int, d: float = D) -> Polygon:
    return box(X0 + i * d, Y0 + j * d, X0 + (i + 1) * d, Y0 + (j + 1) * d)


def _layers(points: list[Any], *, grids: list[int] | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Points given; each point its own grid unless ``grids`` says which grid each point is in; one village."""
    grids = grids if grids is not None else list(range(len(points)))
    gcodes = [f"V1{g:02d}" for g in grids]
    crs = "EPSG:4490"
    pts = gpd.GeoDataFrame({"code": [f"{c}{i:03d}" for i, c in enumerate(gcodes)], "parent": gcodes,
                            "village": ["V1"] * len(points)}, geometry=points, crs=crs)
    uniq = sorted(set(gcodes))
    gr = gpd.GeoDataFrame({"code": uniq, "parent": ["V1"] * len(uniq)},
                          geometry=[shapely.union_all(pts.geometry[pts["parent"] == c].values) for c in uniq], crs=crs)
    vil = gpd.GeoDataFrame({"code": ["V1"], "parent": ["T1"], "block": ["B1"]},
                           geometry=[shapely.union_all(points)], crs=crs)
    return {"points": pts, "grids": gr, "exclusive": gr.iloc[:0].copy(), "villages": vil,
            "blocks": gpd.GeoDataFrame({"code": ["B1"], "parent": ["T1"]}, geometry=[vil.geometry[0]], crs=crs),
            "townships": gpd.GeoDataFrame({"code": ["T1"]}, geometry=[vil.geometry[0]], crs=crs)}


def _misnoded() -> list[Any]:
    """A square whose right edge has a midpoint vertex its neighbour lacks."""
    a = Polygon([(X0, Y0), (X0 + D, Y0), (X0 + D, Y0 + D / 2), (X0 + D, Y0 + D), (X0, Y0 + D)])
    return [a, _sq(1, 0)]


def _overlap() -> list[Any]:
    """Two squares overlapping by a 1e-9 degree sliver (about 0.1 mm)."""
    return [_sq(0, 0), box(X0 + D - 1e-9, Y0, X0 + 2 * D, Y0 + D)]


def _gap() -> list[Any]:
    """Two squares with a 1e-9 degree gap between them."""
    return [_sq(0, 0), box(X0 + D + 1e-9, Y0, X0 + 2 * D, Y0 + D)]


def _spike() -> list[Any]:
    """A polygon with a spike 4e-8 degree wide (under the written precision): rounding folds it flat."""
    b = Y0 + 0.5 * D
    s = Polygon([(X0, Y0), (X0 + D, Y0), (X0 + D, b), (X0 + 3 * D, b + 0.7e-7), (X0 + D, b + 0.4e-7),
                 (X0 + D, Y0 + D), (X0, Y0 + D)])
    return [s, _sq(0, 1)]


def _t_junction_grid() -> list[Any]:
    """Four points in two grids, the grids' common edge meeting a third point's edge mid-way."""
    return [_sq(0, 0), _sq(1, 0), box(X0, Y0 + D, X0 + 0.5 * D, Y0 + 2 * D), box(X0 + 0.5 * D, Y0 + D, X0 + 2 * D,
                                                                                Y0 + 2 * D)]


def _unrounded() -> list[Any]:
    """Neighbours with coordinates of full double precision (as reprojection leaves them)."""
    tr = pyproj.Transformer.from_crs(4490, METRIC, always_xy=True)
    back = pyproj.Transformer.from_crs(METRIC, 4490, always_xy=True)
    out = []
    for g in (_sq(0, 0), _sq(1, 0), _sq(0, 1)):
        m = shapely.transform(g, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
        m = shapely.segmentize(m, 7.3)
        out.append(shapely.transform(m, lambda c: np.column_stack(back.transform(c[:, 0], c[:, 1]))))
    return out


CATALOGUE = {"misnoded": (_misnoded, None), "overlap": (_overlap, None), "gap": (_gap, None),
             "spike": (_spike, None), "t_junction": (_t_junction_grid, [0, 0, 1, 1]),
             "unrounded": (_unrounded, None)}


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_catalogue_comes_out_clean(case: str) -> None:
    make, grids = CATALOGUE[case]
    layers = _layers(make(), grids=grids)
    rep = clean_levels(layers, metric=METRIC)
    assert rep["pieces"] == len(layers["points"])
    levels = verify_levels(layers)
    assert set(levels) == {"townships", "blocks", "villages", "grids", "points"}
    for name in ("points", "grids", "villages", "blocks", "townships"):
        g = np.asarray(layers[name].geometry.values, dtype=object)
        assert shapely.is_valid(g).all(), (case, name)
        assert shapely.coverage_is_valid(g), (case, name)
        on_grid = shapely.transform(g, lambda c: np.round(c, DECIMALS_DEGREES))
        assert shapely.equals_exact(on_grid, g, 0).all(), f"{case}/{name}: not on the written precision grid"
    # coarser levels are the exact unions of their members
    pts = layers["points"]
    for code, geom in zip(layers["grids"]["code"], layers["grids"].geometry, strict=True):
        assert shapely.equals(shapely.union_all(pts.geometry[pts["parent"] == code].values), geom)
    assert shapely.equals(layers["villages"].geometry[0], layers["townships"].geometry[0])
    # nothing moved by more than the written precision allows
    assert max(rep["max_area_change_m2"].values()) < 1.0 + ROUNDING_M * 2_000


def test_spike_needs_snap_rounding_and_gets_it() -> None:
    layers = _layers(_spike())
    rep = clean_levels(layers, metric=METRIC)
    assert rep["snap_rounded"] is True
    verify_levels(layers)


def test_clean_input_stays_as_it_is() -> None:
    layers = _layers([_sq(0, 0), _sq(1, 0), _sq(0, 1), _sq(1, 1)])
    before = layers["points"].geometry.values.copy()
    rep = clean_levels(layers, metric=METRIC)
    assert rep["snap_rounded"] is False
    assert (shapely.hausdorff_distance(before, layers["points"].geometry.values) < 1e-7).all()
    assert rep["changed_over_1m2"]["points"] == 0


def test_grid_without_points_stands_for_itself() -> None:
    layers = _layers([_sq(0, 0)])
    extra = gpd.GeoDataFrame({"code": ["V1Z01"], "parent": ["V1"]}, geometry=[_sq(1, 0)], crs="EPSG:4490")
    layers["exclusive"] = extra
    layers["villages"] = layers["villages"].set_geometry([shapely.union_all([_sq(0, 0), _sq(1, 0)])],
                                                         crs="EPSG:4490")
    clean_levels(layers, metric=METRIC)
    verify_levels(layers)
    assert shapely.hausdorff_distance(layers["villages"].geometry[0], shapely.union_all([_sq(0, 0), _sq(1, 0)])) < 1e-7


def test_verify_names_an_invalid_polygon() -> None:
    bow = Polygon([(X0, Y0), (X0 + D, Y0 + D), (X0 + D, Y0), (X0, Y0 + D)])
    layers = _layers([bow])
    with pytest.raises(GeometryError, match=r"1 invalid polygon"):
        verify_levels(layers)


def test_verify_names_misnoded_units() -> None:
    layers = _layers(_misnoded())
    with pytest.raises(GeometryError, match=r"do not share vertices.*V10"):
        verify_levels(layers)


@pytest.mark.slow
def test_sample_build_as_written_is_clean(tmp_path: Path) -> None:
    """The bundled sample's GeoPackage itself: valid, clean and on the precision grid, level by level."""
    from gridgeo.cli import main

    out = tmp_path / "county.gpkg"
    assert main(["build", str(ROOT / "boundaries" / "sample_rules.toml"), "-o", str(out), "--no-progress",
                 "-q"]) == 0
    layers = {n: gpd.read_file(out, layer=n) for n in ("townships", "blocks", "villages", "grids", "points",
                                                      "exclusive")}
    for name, g in layers.items():
        geoms = np.asarray(g.geometry.values, dtype=object)
        assert shapely.is_valid(geoms).all(), name
        rounded = shapely.transform(geoms, lambda c: np.round(c, DECIMALS_DEGREES))
        assert shapely.is_valid(rounded).all(), name
    for name in ("townships", "blocks", "villages", "points"):
        assert shapely.coverage_is_valid(layers[name].geometry.values), name
    lvl2 = np.concatenate([layers["grids"].geometry.values, layers["exclusive"].geometry.values])
    assert shapely.coverage_is_valid(lvl2)
    # grid 36990001820702 was written invalid before (issue 11)
    g = layers["grids"]
    assert shapely.is_valid(g.geometry[g["code"] == "36990001820702"].values).all()


@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_cleaning_is_clean_and_independent_of_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              workers: int) -> None:
    """A county cleaned in chunks of whole townships (then the seams) is one clean coverage, the same whatever
    the number of worker processes, and the same as cleaned in one piece up to the written precision."""
    import gridgeo.county.coverage as cov
    from gridgeo.county.build import build_county
    from gridgeo.county.rules import CountyRules
    from gridgeo.synth import synth_county, write_county

    src = tmp_path / "c.gpkg"
    write_county(synth_county(seed=8, townships=4, villages=16, households=8000), src)
    whole = build_county(CountyRules(county=src, use_groups=False), workers=1)
    assert whole.report["coverage"]["chunks"] == 1
    monkeypatch.setattr(cov, "CHUNK_PIECES", 30)
    res = build_county(CountyRules(county=src, use_groups=False), workers=workers)
    assert res.report["coverage"]["chunks"] > 1
    for name in ("townships", "blocks", "villages", "points"):
        g = res.layers[name].geometry.values
        assert shapely.is_valid(g).all() and shapely.coverage_is_valid(g), name
    for name in ("grids", "points", "villages"):
        a, b = whole.layers[name].geometry.values, res.layers[name].geometry.values
        assert list(whole.layers[name]["code"]) == list(res.layers[name]["code"])
        assert (shapely.hausdorff_distance(a, b) < 3e-7).all(), name


def test_rounding_repair_is_local() -> None:
    """A sliver narrower than the grid in a large coverage: only its neighbourhood is snap-rounded again."""
    import gridgeo.county.coverage as cov

    squares = [_sq(i, j) for i in range(2, 8) for j in range(0, 6)]
    pieces = np.asarray([*_spike(), *squares], dtype=object)
    cleaned = cov._coverage_clean(pieces)
    rounded, snapped = cov._round(cleaned, DECIMALS_DEGREES)
    assert snapped is True
    assert shapely.is_valid(rounded).all() and shapely.coverage_is_valid(rounded)
    plain = shapely.set_precision(cleaned, 1e-7, mode="pointwise")
    far = [k for k in range(2, len(pieces)) if shapely.distance(pieces[k], pieces[0]) > 3 * D]
    assert far and all(shapely.equals_exact(rounded[k], plain[k], 0) for k in far)


def test_misnoded_in_parallel_chunks_agrees_with_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # a 40 x 40 lattice with mis-noded cells scattered over it (an extra vertex on a shared edge, a cell
    # nudged a hair): chunked with halos in two worker processes, the flags must be those of one call
    from gridgeo.county import coverage as cov
    from gridgeo.county._pool import WorkerPool

    cells = [_sq(i, j) for i in range(40) for j in range(40)]
    rng = np.random.default_rng(3)
    for k in rng.choice(len(cells), size=25, replace=False).tolist():
        x0, y0, x1, y1 = cells[k].bounds
        if k % 2:
            cells[k] = Polygon([(x0, y0), (x1, y0), (x1, (y0 + y1) / 2), (x1, y1), (x0, y1)])  # T-junction
        else:
            cells[k] = box(x0 + 1e-9, y0, x1, y1)  # a hair off its neighbour
    geoms = np.asarray(cells, dtype=object)
    want = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms))
    assert 0 < want.sum() < len(geoms)
    monkeypatch.setattr(cov, "PARALLEL_CHECK", 100)
    with WorkerPool(2) as pool:
        pool.start()
        got = cov._misnoded(geoms, pool=pool)
    assert got.tolist() == want.tolist()



def test_atoms_make_points_micro_grids_and_lanes_that_nest_exactly() -> None:
    # two points (west, east) and two lanes (south, north) over one grid: four atoms, the east ones misnoded
    # and one collapsed to nothing in the output CRS (dropped: the cleaning must keep the others in place)
    layers = _layers([box(X0, Y0, X0 + D, Y0 + 2 * D), box(X0 + D, Y0, X0 + 2 * D, Y0 + 2 * D)], grids=[0, 0])
    grid, p0, p1 = "V100", "V100000", "V100001"
    layers["micro_grids"] = gpd.GeoDataFrame({"code": [grid + "M01"], "parent": [grid]},
                                             geometry=[box(X0, Y0, X0 + 2 * D, Y0 + 2 * D)], crs="EPSG:4490")
    layers["lanes"] = gpd.GeoDataFrame({"code": [grid + "L01", grid + "L02"], "parent": [grid, grid]},
                                       geometry=[box(X0, Y0, X0 + 2 * D, Y0 + D),
                                                 box(X0, Y0 + D, X0 + 2 * D, Y0 + 2 * D)], crs="EPSG:4490")
    east_s = Polygon([(X0 + D, Y0), (X0 + 2 * D, Y0), (X0 + 2 * D, Y0 + D), (X0 + 1.5 * D, Y0 + D),
                      (X0 + D, Y0 + D)])  # a vertex its north neighbour lacks
    atoms = gpd.GeoDataFrame({
        "point": [p0, p0, p1, p1, p1], "micro_grid": [grid + "M01"] * 5,
        "lane": [grid + "L01", grid + "L02", grid + "L02", grid + "L01", grid + "L02"],
        "grid": [grid] * 5, "village": ["V1"] * 5},
        geometry=[_sq(0, 0), _sq(0, 1), shapely.Polygon(), east_s, _sq(1, 1)], crs="EPSG:4490")
    clean_levels(layers, metric=METRIC, atoms=atoms)
    verify_levels(layers)
    g = layers["grids"].geometry[0]
    for lvl in ("points", "micro_grids", "lanes"):
        assert shapely.area(shapely.symmetric_difference(shapely.union_all(layers[lvl].geometry.values), g)) < 1e-14
    assert shapely.hausdorff_distance(layers["lanes"].geometry[1], box(X0, Y0 + D, X0 + 2 * D, Y0 + 2 * D)) < 1e-9
    assert shapely.hausdorff_distance(layers["points"].geometry[1], box(X0 + D, Y0, X0 + 2 * D, Y0 + 2 * D)) < 1e-9


def test_a_unit_below_the_grids_that_vanishes_without_households_is_dropped_and_reported() -> None:
    # a lane whose only atom lies inside another's (an overlap the cleaning gives to its neighbour): it holds
    # no household, so it goes, counted; the other lane takes its place
    layers = _layers([_sq(0, 0)])
    grid, point = "V100", "V100000"
    inner = box(X0 + 0.4 * D, Y0 + 0.4 * D, X0 + 0.6 * D, Y0 + 0.6 * D)
    layers["lanes"] = gpd.GeoDataFrame({"code": [grid + "L01", grid + "L02"], "parent": [grid, grid],
                                        "households": [5, 0]}, geometry=[_sq(0, 0), inner], crs="EPSG:4490")
    atoms = gpd.GeoDataFrame({"point": [point, point], "micro_grid": [None, None],
                              "lane": [grid + "L01", grid + "L02"], "grid": [grid, grid], "village": ["V1", "V1"]},
                             geometry=[_sq(0, 0), inner], crs="EPSG:4490")
    rep = clean_levels(layers, metric=METRIC, atoms=atoms)
    verify_levels(layers)
    assert list(layers["lanes"]["code"]) == [grid + "L01"] and rep["vanished"] == {"lanes": 1}
    assert rep["changed_over_1m2"]["lanes"] == 0
