"""gridgeo.county.reassign: a drawn grid outline read as whole grid points moving, and the rules it breaks.

A lattice of square grid points (0.001° near 117°E 28°N) in two villages: V1 holds grid A (columns 0-1)
and grid B (columns 2-3), V2 holds grid C (column 4); an exclusive grid E holds one point of column 5.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pytest
import shapely

from gridgeo.county.reassign import reassign

S = 0.001


def _cell(i: int, j: int) -> Any:
    return shapely.box(117 + i * S, 28 + j * S, 117 + (i + 1) * S, 28 + (j + 1) * S)


def _county() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    owner = {0: "A", 1: "A", 2: "B", 3: "B", 4: "C"}
    pts = [{"code": f"P{i}{j}", "parent": owner[i], "geometry": _cell(i, j)} for i in range(5) for j in range(3)]
    pts.append({"code": "P50", "parent": "E", "geometry": _cell(5, 0)})
    points = gpd.GeoDataFrame(pts, crs="OGC:CRS84")
    grids = points.loc[points["parent"] != "E", ["parent", "geometry"]].dissolve("parent").reset_index().rename(
        columns={"parent": "code"})
    grids["parent"] = grids["code"].map({"A": "V1", "B": "V1", "C": "V2"})
    return grids[["code", "parent", "geometry"]], points


def _outline(*cells: tuple[int, int]) -> Any:
    return shapely.union_all([_cell(i, j) for i, j in cells])


A = [(i, j) for i in (0, 1) for j in range(3)]
CASES = [
    ("takes a neighbour's point", [*A, (2, 1)], {"P21": ("B", "A")}, []),
    ("gives a column back", [(0, j) for j in range(3)], {f"P1{j}": ("A", "B") for j in range(3)}, []),
    ("most of a point is enough", "60 %", {"P21": ("B", "A")}, []),
    ("reaches into another village", [*A, (4, 0)], {}, ["village border: point P40"]),
    ("reaches an exclusive grid", [*A, (5, 0)], {}, ["exclusive grid: point P50"]),
    ("would cut the grid in two", [(0, 0), (0, 2), (1, 0), (1, 2)], {"P01": ("A", "B"), "P11": ("A", "B")},
     ["contiguity: grid A"]),
    ("is redrawn elsewhere in its village", [(3, 1)], {"P31": ("B", "A"), **{f"P{i}{j}": ("A", "B") for i, j in A}},
     []),
    ("would leave it empty", "sliver", {}, ["empty: grid A"]),
]


@pytest.mark.parametrize(("outline", "moves", "broken"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reassign(outline: list[tuple[int, int]] | str, moves: dict[str, tuple[str, str]], broken: list[str]) -> None:
    grids, points = _county()
    if outline == "sliver":  # a tenth of one point
        drawn = shapely.box(117, 28, 117 + 0.1 * S, 28 + S)
    elif outline == "60 %":  # grid A and 60 % of a point of B
        drawn = shapely.union(_outline(*A), shapely.box(117 + 2 * S, 28 + S, 117 + 2.6 * S, 28 + 2 * S))
    else:
        drawn = _outline(*outline)
    r = reassign("A", drawn, grids=grids, points=points)
    for word in broken:
        assert any(b.startswith(word) for b in r.broken), (word, r.broken)
    if not broken:
        assert r.broken == [] and r.moves == moves
        theirs = {g: shapely.union_all(points.geometry[points["code"].map(
            lambda c, g=g: r.moves.get(c, (None, points.set_index("code").at[c, "parent"]))[1] == g)].values)
            for g in r.grids}
        for g, geom in r.grids.items():  # each changed grid is the union of its points, in one piece
            assert shapely.symmetric_difference(geom, theirs[g]).area < 1e-15 and geom.geom_type == "Polygon"
        assert shapely.union_all(list(r.grids.values())).equals(shapely.union_all(
            grids.geometry[grids["code"].isin(list(r.grids))].values))  # the pair covers what it covered
    else:
        assert set(r.moves).issuperset(moves)


def test_less_than_half_inside_does_not_join() -> None:
    grids, points = _county()
    drawn = shapely.union(_outline(*A), shapely.box(117 + 2 * S, 28 + S, 117 + 2.4 * S, 28 + 2 * S))
    r = reassign("A", drawn, grids=grids, points=points)
    assert r.moves == {} and r.broken == [] and r.grids == {}
