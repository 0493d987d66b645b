"""Which unit holds each item, and which units touch: the arrays the partition engine reads.

* :func:`assign_items` -- the unit of each building (by overlap: a building
  cut by a road line goes where most of its footprint is) or household point;
* :func:`unit_adjacency` -- rook adjacency with shared boundary lengths, as
  CSR arrays for :meth:`gridgeo.partition.Units.from_arrays`.

Faces of *different* villages are cut in different calls: where a road
crosses a village boundary each side computes its own crossing point,
nanometres apart. :func:`unit_adjacency` therefore measures shared boundary
with snap rounding on a 0.1 mm grid, which still finds those edges; a
county-wide coverage can be made exact afterwards with
``shapely.coverage_clean(units, snapping_distance=1e-6)``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.county._faces import FArray, GArray, GeomArrayLike, IArray, _as_geoms
from gridgeo.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["assign_items", "unit_adjacency"]

#: Snap-rounding grid (m) for measuring shared boundaries between units made
#: in different calls; far below any real feature, far above float noise at
#: Gauss-Krüger coordinates (~1e-8 m at 4e7 m).
_SNAP_GRID = 1e-4


def assign_items(units: GeomArrayLike, items: GeomArrayLike) -> IArray:
    """Index of the unit holding each item, -1 where none does.

    A household belongs to exactly one grid point, so every building and
    household point needs exactly one unit, even where a road line crosses a
    building (it goes where most of its footprint is) or a point lies on a
    shared boundary (the lower unit index takes it).

    Parameters
    ----------
    units
        Polygons, normally a tiling (e.g. from :func:`street_blocks`).
    items
        Polygons (buildings) or Points (household points); missing or empty
        items get -1.

    Returns
    -------
    ndarray of int64
        Unit index per item, -1 where the item meets no unit (or only touches
        one from outside).
    """
    U = _as_geoms(units, "units")
    items_arr = _as_geoms(items, "items")
    out = np.full(len(items_arr), -1, dtype=np.int64)
    if len(U) == 0 or len(items_arr) == 0:
        return out
    tree = shapely.STRtree(U)
    area = shapely.area(items_arr)
    polygonal = np.isin(shapely.get_type_id(items_arr), (3, 6)) & (area > 0)
    out[polygonal] = _covered_once(U, tree, items_arr[polygonal])
    rest = np.flatnonzero(out < 0)
    out[rest] = _by_overlap(U, tree, items_arr[rest], polygonal[rest])
    return out


def _covered_once(U: GArray, tree: shapely.STRtree, polys: GArray) -> IArray:
    """The one unit covering each polygon, -1 where none or several do.

    Why first: nearly every building lies inside one unit, and a prepared
    ``covers`` answers that without the overlay an overlap area costs (a
    villager group along a village border *touches* its neighbours, which the
    overlap rule would otherwise measure one by one). A polygon covered by
    exactly one unit is the one :func:`_by_overlap` would give it: its whole
    footprint lies there and none elsewhere.
    """
    found = np.full(len(polys), -1, dtype=np.int64)
    if len(polys) == 0:
        return found
    it, un = tree.query(polys)  # envelopes only: covers decides
    if len(it) == 0:
        return found
    prepared = np.asarray(shapely.from_wkb(shapely.to_wkb(U)), dtype=object)  # a copy: the caller's stay as given
    shapely.prepare(prepared)
    cov = shapely.covers(prepared[un], polys[it])
    n_cov = np.bincount(it[cov], minlength=len(polys))
    once = cov & (n_cov[it] == 1)
    found[it[once]] = un[once]
    return found


def _by_overlap(U: GArray, tree: shapely.STRtree, items_arr: GArray, polygonal: NDArray[np.bool_]) -> IArray:
    """The unit of each item by the rules of :func:`assign_items`, for items no single unit covers."""
    out = np.full(len(items_arr), -1, dtype=np.int64)
    if len(items_arr) == 0:
        return out
    it, un = tree.query(items_arr, predicate="intersects")
    if len(it) == 0:
        return out
    order = np.lexsort((un, it))
    it, un = it[order], un[order]
    starts = np.flatnonzero(np.r_[True, it[1:] != it[:-1]])
    counts = np.diff(np.r_[starts, len(it)])
    first_item, first_unit = it[starts], un[starts]

    # points, lines, degenerate polygons: the lowest unit they meet
    pt = ~polygonal[first_item]
    out[first_item[pt]] = first_unit[pt]

    # polygons meeting one unit: theirs if inside, else check the overlap is real
    one = ~pt & (counts == 1)
    fi, fu = first_item[one], first_unit[one]
    inside = shapely.covers(U[fu], shapely.point_on_surface(items_arr[fi]))
    out[fi[inside]] = fu[inside]
    doubt = np.flatnonzero(~inside)
    if len(doubt):
        ov = shapely.area(shapely.intersection(items_arr[fi[doubt]], U[fu[doubt]]))
        ok = ov > 0
        out[fi[doubt[ok]]] = fu[doubt[ok]]

    # straddlers: the unit with the largest overlap, ties to the lower index
    multi = ~pt & (counts > 1)
    if multi.any():
        sel = np.repeat(multi, counts)
        si, su = it[sel], un[sel]
        ov = shapely.area(shapely.intersection(items_arr[si], U[su]))
        o2 = np.lexsort((su, -ov, si))
        si, su, ov = si[o2], su[o2], ov[o2]
        head = np.r_[True, si[1:] != si[:-1]]
        win = head & (ov > 0)
        out[si[win]] = su[win]
        log.debug("assign_items: %d straddling items resolved by overlap", int(head.sum()))
    return out


def unit_adjacency(units: GeomArrayLike, *, min_shared: float = 0.5) -> tuple[IArray, IArray, FArray]:
    """Rook adjacency of units as CSR arrays with shared boundary lengths (m).

    Grids must be walkable, so units are neighbours only along an edge of at
    least ``min_shared`` metres; corner contacts do not count. The length is
    measured with snap rounding on a 0.1 mm grid, so units cut in different
    calls (whose shared edges carry a crossing vertex on one side only) still
    meet.

    Parameters
    ----------
    units
        Unit polygons, a tiling with shared vertices (street blocks, split pieces).
    min_shared
        Shortest shared boundary (m) that makes two units neighbours, >= 0.

    Returns
    -------
    indptr, indices, lengths
        Symmetric CSR over unit positions, no self loops, columns sorted;
        feed to ``Units.from_arrays(indptr, indices, lengths=lengths)``.
    """
    if not (isinstance(min_shared, int | float) and math.isfinite(min_shared) and min_shared >= 0):
        raise UsageError(f"min_shared must be a finite number >= 0, not {min_shared!r}")
    U = _as_geoms(units, "units")
    n = len(U)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return np.zeros(1, dtype=np.int64), empty, np.zeros(0)
    tree = shapely.STRtree(U)
    a, b = tree.query(U, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    bd = shapely.boundary(U)
    shared = shapely.length(shapely.intersection(bd[a], bd[b], grid_size=_SNAP_GRID)) if len(a) else np.zeros(0)
    ok = (shared >= min_shared) & (shared > 0)
    a, b, shared = a[ok], b[ok], shared[ok]
    rows = np.concatenate([a, b]).astype(np.int64)
    cols = np.concatenate([b, a]).astype(np.int64)
    lens = np.concatenate([shared, shared]).astype(float)
    o = np.lexsort((cols, rows))
    rows, cols, lens = rows[o], cols[o], lens[o]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols, lens
