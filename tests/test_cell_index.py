"""CellIndex: the same (place, box) pairs as shapely's STRtree on awkward sets of boxes."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridgeo.data.cell_index import FILL, CellIndex


def _tree_pairs(bounds: np.ndarray, x: np.ndarray, y: np.ndarray) -> set[tuple[int, int]]:
    boxes = np.array([shapely.box(*b) if np.isfinite(b).all() else shapely.Polygon() for b in bounds], dtype=object)
    pi, gi = shapely.STRtree(boxes).query(shapely.points(x, y))
    return set(zip(pi.tolist(), gi.tolist(), strict=True))


def _tiles(n: int) -> np.ndarray:
    """An n x n tiling of unit squares from (100, 30): shared edges and corners everywhere."""
    i, j = np.meshgrid(np.arange(n), np.arange(n))
    x0, y0 = 100 + i.ravel() * 0.01, 30 + j.ravel() * 0.01
    return np.c_[x0, y0, x0 + 0.01, y0 + 0.01]


def _catalogue() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    small = rng.uniform(0, 1, (500, 2))
    sizes = rng.lognormal(-5, 1.5, (500, 2))
    return {
        "tiling": _tiles(20),
        "random sizes": np.c_[small, small + sizes],
        "one giant among small": np.r_[np.c_[small, small + 0.001], [[-5, -5, 5, 5]]],
        "points as boxes": np.c_[small, small],
        "one box": np.array([[1.0, 2.0, 3.0, 4.0]]),
        "with empties": np.r_[np.c_[small[:50], small[:50] + 0.01], np.full((3, 4), np.nan)],
        "nested": np.array([[0, 0, 10, 10], [1, 1, 9, 9], [2, 2, 8, 8], [4.9, 4.9, 5.1, 5.1]], dtype=float),
    }


@pytest.mark.parametrize("name", list(_catalogue()))
def test_same_pairs_as_strtree(name: str) -> None:
    bounds = _catalogue()[name]
    ok = np.isfinite(bounds).all(axis=1)
    lo, hi = bounds[ok, :2].min(axis=0), bounds[ok, 2:].max(axis=0)
    rng = np.random.default_rng(5)
    pad = (hi - lo) * 0.1 + 1e-3
    x = rng.uniform(lo[0] - pad[0], hi[0] + pad[0], 3000)
    y = rng.uniform(lo[1] - pad[1], hi[1] + pad[1], 3000)
    # places exactly on edges and corners of the boxes too
    corners = bounds[ok][:200]
    x = np.r_[x, corners[:, 0], corners[:, 2], (corners[:, 0] + corners[:, 2]) / 2]
    y = np.r_[y, corners[:, 1], corners[:, 3], corners[:, 3]]
    ix = CellIndex(bounds)
    pi, gi = ix.query_xy(x, y)
    got = set(zip(pi.tolist(), gi.tolist(), strict=True))
    assert len(got) == len(pi)  # no pair twice
    assert got == _tree_pairs(bounds, x, y)
    assert len(ix.entries) <= FILL * len(bounds) + 1024


def test_nothing_and_nan() -> None:
    ix = CellIndex(np.empty((0, 4)))
    assert [len(a) for a in ix.query_xy(np.array([1.0]), np.array([2.0]))] == [0, 0]
    ix = CellIndex(np.array([[0.0, 0.0, 1.0, 1.0]]))
    pi, gi = ix.query_xy(np.array([np.nan, 0.5, 1e300, -1e300]), np.array([0.5, np.nan, 0.5, 0.5]))
    assert len(pi) == 0 and len(gi) == 0
    pi, gi = ix.query_xy(np.array([0.5]), np.array([0.5]))
    assert pi.tolist() == [0] and gi.tolist() == [0]
