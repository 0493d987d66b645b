"""Handing a village's units to the partition engine and back (private to :mod:`gridgeo.county.village`).

How many parts a set of households is split into (:func:`part_count`), the
unit adjacency restricted to some units as engine :class:`~gridgeo.partition.Units`
(:func:`sub_units`), the union of a part's units (:func:`union`), and the
small geometric lookups the village stages share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.partition import Units

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]
FArray = NDArray[np.float64]

__all__ = ["Adjacency", "metric_xy", "nearest", "part_count", "sub_units", "union"]


@dataclass(frozen=True)
class Adjacency:
    """Rook adjacency of the units as CSR arrays with shared lengths (:func:`unit_adjacency`)."""

    indptr: IArray
    indices: IArray
    lengths: FArray


def metric_xy(polys: Sequence[Any]) -> tuple[FArray, FArray, FArray]:
    """Centroid x, y and area of each polygon (metric CRS): what reading order numbers by."""
    arr = np.asarray(polys, dtype=object)
    c = shapely.centroid(arr)
    return shapely.get_x(c), shapely.get_y(c), shapely.area(arr)


def nearest(tree_geoms: GArray, pts: GArray) -> NDArray[np.int64]:
    """Index of the geometry nearest to each point (ties: lowest index)."""
    tree = shapely.STRtree(tree_geoms)
    idx = tree.query_nearest(pts, all_matches=True)
    out = np.full(len(pts), -1, dtype=np.int64)
    for a, b in zip(idx[0].tolist(), idx[1].tolist(), strict=True):
        if out[a] < 0 or b < out[a]:
            out[a] = b
    return out


def part_count(total: float, lo: float, hi: float) -> int:
    """How many parts a set of ``total`` households is split into: moderate sizes.

    Aim at the middle of the bounds, ``round(total / ((lo + hi) / 2))``, but
    never so few that a part must exceed ``hi`` nor so many that a part must
    fall below ``lo``; at least one. Why not "as many as the bounds allow"
    (max-p): that drives every point down to the minimum, which a county
    reads as too fine, and a fixed count is far quicker to solve.
    """
    if total <= 0:
        return 1
    k = round(total / ((lo + hi) / 2.0)) if math.isfinite(hi) else 1
    if math.isfinite(hi) and hi > 0:
        k = max(k, math.ceil(total / hi - 1e-9))
    if lo > 0:
        k = min(k, math.floor(total / lo + 1e-9))
    return max(int(k), 1)


def sub_units(adj: Adjacency, keep: IArray) -> Units:
    """The adjacency restricted to ``keep`` (in that order), as engine Units whose ids are the unit indices."""
    indptr, indices, lengths = adj.indptr, adj.indices, adj.lengths
    n = len(indptr) - 1
    pos = np.full(n, -1, dtype=np.int64)
    pos[keep] = np.arange(len(keep))
    rows: list[int] = []
    cols: list[int] = []
    lens: list[float] = []
    for new_i, old_i in enumerate(keep.tolist()):
        for k in range(int(indptr[old_i]), int(indptr[old_i + 1])):
            j = int(pos[indices[k]])
            if j > new_i:
                rows.append(new_i)
                cols.append(j)
                lens.append(float(lengths[k]))
    m = len(keep)
    order = np.lexsort((np.asarray(cols, dtype=np.int64), np.asarray(rows, dtype=np.int64)))
    r = np.asarray(rows, dtype=np.int64)[order]
    c = np.asarray(cols, dtype=np.int64)[order]
    L = np.asarray(lens, dtype=float)[order]
    ip = np.zeros(m + 1, dtype=np.int64)
    np.add.at(ip, r + 1, 1)
    ip = np.cumsum(ip)
    return Units.from_arrays(ip, c, ids=keep.tolist(), lengths=L)


def union(geoms: GArray) -> Any:
    """Union of units that share exact edges (a coverage), robust fallback otherwise."""
    if len(geoms) == 1:
        return geoms[0]
    try:
        out = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        out = shapely.union_all(geoms)
    if not shapely.is_valid(out):
        out = shapely.make_valid(out)
    return out
