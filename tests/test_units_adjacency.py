"""shared_lengths (unit_adjacency's measure): matched segments in numpy, the overlay where snapping may differ.

Each case is checked twice: against the expected pairs and lengths, and against
the reference (one snapped GEOS intersection per pair of intersecting units,
``_overlay_lengths``, the former implementation), pair for pair.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import shapely
from shapely import LineString, MultiPolygon, Polygon, box

from gridgeo.county import assign
from gridgeo.county._faces import FArray, GArray, IArray
from gridgeo.county.assign import shared_lengths, unit_adjacency

X0, Y0 = 39_500_000.0, 3_100_000.0


def sq(x: float, y: float, w: float, h: float | None = None) -> Polygon:
    return box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + (w if h is None else h))


def poly(*pts: tuple[float, float], holes: list[list[tuple[float, float]]] | None = None) -> Polygon:
    return Polygon([(X0 + x, Y0 + y) for x, y in pts], [[(X0 + x, Y0 + y) for x, y in h] for h in holes or []])


def lattice() -> list[object]:
    return [sq(10 * i, 10 * j, 10) for j in range(3) for i in range(3)]


def cut_one_side() -> list[object]:
    # a has a vertex at (10, 4) on the edge it shares with b; b does not (a split piece's cut vertex)
    a = poly((0, 0), (10, 0), (10, 4), (10, 10), (0, 10))
    return [a, sq(10, 0, 10), sq(0, 10, 10)]


def cut_nanometres() -> list[object]:
    # both have a vertex near (10, 5), 15 nanometres apart (two ulps): no segment matches
    a = poly((0, 0), (10, 0), (10, 5), (10, 10), (0, 10))
    b = poly((10, 0), (20, 0), (20, 10), (10, 10), (10 + 2e-8, 5))
    return [a, b]


def corner_only() -> list[object]:
    return [sq(0, 0, 10), sq(10, 10, 10)]


def hole_filled() -> list[object]:
    ring = [(2, 2), (8, 2), (8, 8), (2, 8)]
    return [poly((0, 0), (10, 0), (10, 10), (0, 10), holes=[ring]), poly(*ring), sq(10, 0, 10)]


def multipolygon_unit() -> list[object]:
    return [MultiPolygon([sq(0, 0, 10), sq(30, 0, 10)]), sq(10, 0, 20, 10), sq(40, 0, 10)]


def sliver_between() -> list[object]:
    # b is a sliver 3e-5 m wide between a and c along x in [20, 80]: every segment matches exactly,
    # but snap rounding collapses b, so a and c share its length too
    h = 10 + 3e-5
    a = poly((0, 0), (100, 0), (100, 10), (80, 10), (20, 10), (0, 10))
    b = poly((20, 10), (80, 10), (80, h), (20, h))
    c = poly((0, 10), (20, 10), (20, h), (80, h), (80, 10), (100, 10), (100, 20), (0, 20))
    return [a, b, c]


def three_on_one_edge() -> list[object]:
    # c overlaps b: c's edges lie along edges of 0 and 1 without matching a segment
    return [sq(0, 0, 10), sq(10, 0, 10), sq(10, 0, 5)]


def with_missing() -> list[object]:
    return [sq(0, 0, 10), None, Polygon(), sq(10, 0, 10)]


def not_polygonal() -> list[object]:
    return [sq(0, 0, 10), sq(10, 0, 10), LineString([(X0 + 10, Y0), (X0 + 10, Y0 + 10)])]


def empty() -> list[object]:
    return []


CASES: dict[str, tuple[Callable[[], list[object]], dict[tuple[int, int], float], int]] = {
    # name: (units, expected {(a, b): length}, pairs with length the overlay must measure: 0 = no overlay)
    "lattice": (lattice, {(0, 1): 10, (1, 2): 10, (3, 4): 10, (4, 5): 10, (6, 7): 10, (7, 8): 10,
                          (0, 3): 10, (3, 6): 10, (1, 4): 10, (4, 7): 10, (2, 5): 10, (5, 8): 10}, 0),
    "cut vertex on one side": (cut_one_side, {(0, 1): 10, (0, 2): 10, (1, 2): 0}, 1),
    "cut vertices 15 nm apart": (cut_nanometres, {(0, 1): 10}, 1),
    "corner only": (corner_only, {}, 0),
    "hole filled by a unit": (hole_filled, {(0, 1): 24, (0, 2): 10}, 0),
    "multipolygon unit": (multipolygon_unit, {(0, 1): 20, (0, 2): 10}, 0),
    "sliver thinner than the grid": (sliver_between, {(0, 1): 60, (1, 2): 60, (0, 2): 100}, 2),
    "edge in three units": (three_on_one_edge, {(0, 1): 10, (0, 2): 5, (1, 2): 10}, 2),
    "missing and empty units": (with_missing, {(0, 3): 10}, 0),
    "a unit not polygonal": (not_polygonal, {(0, 1): 10}, 1),
    "empty input": (empty, {}, 0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_shared_lengths_cases(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, expected, min_overlay = CASES[name]
    units = np.empty(len(make()), dtype=object)
    units[:] = make()
    measured: list[int] = []
    real = assign._overlay_lengths

    def counted(u: GArray, *, pairs: tuple[IArray, IArray] | None = None) -> tuple[IArray, IArray, FArray]:
        out = real(u, pairs=pairs)
        measured.append(len(out[0]))
        return out

    monkeypatch.setattr(assign, "_overlay_lengths", counted)
    a, b, length = shared_lengths(units)
    got = {(int(i), int(j)): float(L) for i, j, L in zip(a, b, length, strict=True)}
    want = {k: v for k, v in expected.items() if v > 0}
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-3), k
    assert sum(measured) >= min_overlay if min_overlay else measured == []
    # pair for pair as the reference measures it
    ra, rb, rl = real(units) if len(units) else (np.zeros(0), np.zeros(0), np.zeros(0))
    assert a.tolist() == ra.tolist() and b.tolist() == rb.tolist()
    assert np.allclose(length, rl, rtol=1e-13, atol=1e-9)
    assert (np.diff(a * max(len(units), 1) + b) > 0).all()


def test_matched_lengths_are_snapped_like_geos() -> None:
    """A matched edge is measured between its ends rounded to the 0.1 mm grid, as the overlay measures it."""
    a = poly((0, 0), (10.00004, 0), (10.00004, 10.00006), (0, 10.00006))
    b = poly((10.00004, 0), (20, 0), (20, 10.00006), (10.00004, 10.00006))
    units = np.array([a, b], dtype=object)
    _, _, length = shared_lengths(units)
    ref = shapely.length(shapely.intersection(a.boundary, b.boundary, grid_size=1e-4))
    assert length[0] == pytest.approx(10.0001, abs=1e-9) and length[0] == pytest.approx(ref, rel=1e-15)


def test_unit_adjacency_min_shared_at_a_cut_vertex() -> None:
    """0.5 m shared up to a cut vertex of one side only: neighbours at min_shared 0.5, not at 0.6."""
    units = [sq(0, 0, 10), sq(10, 9.5, 10), sq(0, 10, 10)]
    indptr, indices, lengths = unit_adjacency(units, min_shared=0.5)
    assert indices[indptr[0]:indptr[1]].tolist() == [1, 2]
    assert lengths[indptr[0]:indptr[1]] == pytest.approx([0.5, 10.0], abs=1e-9)
    indptr, indices, _ = unit_adjacency(units, min_shared=0.6)
    assert indices[indptr[0]:indptr[1]].tolist() == [2]
