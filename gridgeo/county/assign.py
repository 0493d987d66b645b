"""Which unit holds each item, and which units touch: the arrays the partition engine reads.

* :func:`assign_items` -- the unit of each building (by overlap: a building
  cut by a road line goes where most of its footprint is) or household point;
* :func:`unit_adjacency` -- rook adjacency with shared boundary lengths, as
  CSR arrays for :meth:`gridgeo.partition.Units.from_arrays`, measured by
  :func:`shared_lengths`.

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

__all__ = ["assign_items", "shared_lengths", "unit_adjacency"]

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
    meet; :func:`shared_lengths` does so without an overlay per pair.

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
    a, b, shared = shared_lengths(U)
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


#: Distance (m) from a segment within which another unit's vertex (not one of its ends) sends the
#: pair to the overlay: beyond the reach of a :data:`_SNAP_GRID` pixel (its diagonal, ~1.4e-4 m), so
#: every place where snap rounding may join or bend edges is found.
_NEAR = 3 * _SNAP_GRID


def shared_lengths(units: GArray) -> tuple[IArray, IArray, FArray]:
    """Pairs ``a < b`` of units sharing boundary and the length they share, as snap rounding measures it.

    Why not one overlay per pair: a village's units are faces of one noding
    (split pieces get their cut vertices inserted into their neighbours), so
    almost every shared edge is made of segments present, vertex for vertex,
    in both units. Those are matched exactly (sorted endpoint pairs, numpy)
    and measured between their endpoints rounded to the :data:`_SNAP_GRID`
    grid, as :func:`shapely.intersection` with ``grid_size`` rounds them.
    Snap rounding measures more than the matched segments only where a
    vertex lies within a pixel of a segment it does not end: a cut vertex on
    one side only, vertices nanometres apart, a sliver thinner than the grid
    between two units. Pairs with a vertex of one within :data:`_NEAR` of a
    segment of the other (not one of its ends), and every pair of a unit
    with such a vertex near its own boundary or a segment it does not share
    with exactly one other unit, are measured by the snapped GEOS
    intersection of their boundaries as before (:func:`_overlay_lengths`);
    so are all pairs when some unit is not polygonal.

    Returns
    -------
    a, b, lengths
        Unit positions (``a < b``, sorted by ``a`` then ``b``) and their shared length (> 0).
    """
    n = len(units)
    tid = shapely.get_type_id(units)
    present = (tid >= 0) & ~shapely.is_empty(units)
    if not np.isin(tid[present], (3, 6)).all():
        return _overlay_lengths(units)
    seg = _segments(units, np.flatnonzero(present))
    if len(seg.start) == 0:
        none = np.zeros(0, dtype=np.int64)
        return none, none.copy(), np.zeros(0)
    ma, mb, mlen, odd, groups = _match_segments(seg)
    a, b, length = _sum_pairs(ma, mb, mlen, n)
    da, db = _doubtful_pairs(units, seg, groups, odd)
    if len(da) == 0:
        return a, b, length
    redo = np.isin(a * n + b, da * n + db)
    oa, ob, olen = _overlay_lengths(units, pairs=(da, db))
    a, b, length = np.r_[a[~redo], oa], np.r_[b[~redo], ob], np.r_[length[~redo], olen]
    o = np.lexsort((b, a))
    return a[o], b[o], length[o]


def _overlay_lengths(units: GArray, *, pairs: tuple[IArray, IArray] | None = None) -> tuple[IArray, IArray, FArray]:
    """The snap-rounded length of the intersection of the boundaries of intersecting units.

    Of every pair of intersecting units (``a < b``), or of those of ``pairs`` that intersect.
    """
    if pairs is None:
        a, b = shapely.STRtree(units).query(units, predicate="intersects")
        keep = a < b
        a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    else:
        a, b = pairs
        meet = shapely.intersects(units[a], units[b])
        a, b = a[meet], b[meet]
    bd = shapely.boundary(units)
    shared = shapely.length(shapely.intersection(bd[a], bd[b], grid_size=_SNAP_GRID)) if len(a) else np.zeros(0)
    pos = shared > 0
    o = np.lexsort((b[pos], a[pos]))
    return a[pos][o], b[pos][o], np.asarray(shared[pos][o], dtype=float)


class _Segments:
    """The ring vertices and segments of some units, each with its unit."""

    def __init__(self, xy: FArray, start: IArray, unit: IArray, vertex: IArray, vertex_unit: IArray) -> None:
        self.xy = xy  #: every ring coordinate, rings one after another
        self.start = start  #: coordinate index of each segment's first end (the second is start + 1)
        self.unit = unit  #: unit position of each segment
        self.vertex = vertex  #: coordinate index of every ring vertex (a ring's closing repeat left out)
        self.vertex_unit = vertex_unit  #: unit position of each vertex


def _segments(units: GArray, idx: IArray) -> _Segments:
    """The ring vertices and segments (of non-zero length) of the polygonal units at positions ``idx``."""
    parts, p_of = shapely.get_parts(units[idx], return_index=True)
    rings, r_of = shapely.get_rings(parts, return_index=True)
    xy, c_of = shapely.get_coordinates(rings, return_index=True)
    unit_of = idx[p_of[r_of[c_of]]].astype(np.int64)
    vertex = np.flatnonzero(c_of[1:] == c_of[:-1]).astype(np.int64)
    start = vertex[np.any(xy[vertex] != xy[vertex + 1], axis=1)]
    return _Segments(xy, start, unit_of[start], vertex, unit_of[vertex])


def _snapped(xy: FArray) -> FArray:
    """Coordinates rounded to the :data:`_SNAP_GRID` grid as GEOS rounds them (half up, by the scale)."""
    scale = 1.0 / _SNAP_GRID
    return np.asarray(np.floor(xy * scale + 0.5) / scale, dtype=float)


class _Groups:
    """Distinct segments (endpoints sorted) and the units having each, as CSR."""

    def __init__(self, key: FArray, head: IArray, unit: IArray) -> None:
        self.key = key  #: (g, 4): x0, y0, x1, y1 of each distinct segment, (x0, y0) < (x1, y1)
        self.head = head  #: start of each segment's units in ``unit``, then the total
        self.unit = unit  #: units of the segments, grouped


def _match_segments(seg: _Segments) -> tuple[IArray, IArray, FArray, IArray, _Groups]:
    """Segments present in exactly two units: their unit pairs and snapped lengths; the units of odd ones.

    A segment is matched when the same two endpoints (in either order) occur
    in exactly two segments of two different units; the units of a segment
    three units have, or one unit twice, are returned as odd. Also returns
    the distinct segments with their units.
    """
    p, q = seg.xy[seg.start], seg.xy[seg.start + 1]
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    lo, hi = np.where(swap[:, None], q, p), np.where(swap[:, None], p, q)
    order = np.lexsort((hi[:, 1], hi[:, 0], lo[:, 1], lo[:, 0]))
    key = np.concatenate([lo, hi], axis=1)[order]
    head = np.r_[True, np.any(key[1:] != key[:-1], axis=1)]
    gid = np.cumsum(head) - 1
    size = np.bincount(gid)[gid]
    unit = seg.unit[order]
    first = np.flatnonzero(head & (size == 2))
    twice = unit[first] == unit[first + 1]
    odd = np.unique(np.r_[unit[size > 2], unit[first[twice]]]).astype(np.int64)
    pair = first[~twice]
    ua, ub = unit[pair], unit[pair + 1]
    d = _snapped(key[pair, 2:]) - _snapped(key[pair, :2])
    length = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    starts = np.flatnonzero(head)
    groups = _Groups(key[starts], np.r_[starts, len(key)].astype(np.int64), unit)
    return np.minimum(ua, ub), np.maximum(ua, ub), length, odd, groups


def _doubtful_pairs(units: GArray, seg: _Segments, groups: _Groups, odd: IArray) -> tuple[IArray, IArray]:
    """Pairs ``a < b`` whose snap-rounded shared length may differ from their matched segments' sum.

    Those where a vertex of one lies within :data:`_NEAR` of a segment of the
    other that it does not end, and every pair of a unit with such a vertex
    near its own boundary or with an ``odd`` segment (:func:`_match_segments`).
    Distinct vertices are tested against distinct segments (GEOS), then
    expanded to the units having them.
    """
    vx, vu = seg.xy[seg.vertex], seg.vertex_unit
    vo = np.lexsort((vu, vx[:, 1], vx[:, 0]))
    vx, vu = vx[vo], vu[vo]
    vstart = np.flatnonzero(np.r_[True, np.any(vx[1:] != vx[:-1], axis=1)])
    vhead = np.r_[vstart, len(vx)]
    k = groups.key
    lines = np.asarray(shapely.linestrings(k.reshape(-1, 2, 2)), dtype=object)
    vi, si = shapely.STRtree(lines).query(shapely.points(vx[vstart]), predicate="dwithin", distance=_NEAR)
    v = vx[vstart[vi]]
    far = np.any(v != k[si, :2], axis=1) & np.any(v != k[si, 2:], axis=1)
    vi, si = vi[far], si[far]
    cv, cs = np.diff(vhead)[vi], np.diff(groups.head)[si]
    rep = np.repeat(np.arange(len(vi)), cv * cs)
    local = np.arange(len(rep)) - np.repeat(np.cumsum(cv * cs) - cv * cs, cv * cs)
    a = vu[vhead[vi][rep] + local // cs[rep]]
    b = groups.unit[groups.head[si][rep] + local % cs[rep]]
    whole = np.unique(np.r_[a[a == b], odd])
    if len(whole):
        wa, wb = shapely.STRtree(units).query(units[whole], predicate="intersects")
        a, b = np.r_[a, whole[wa]], np.r_[b, wb]
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]).astype(np.int64), np.maximum(a[keep], b[keep]).astype(np.int64)
    key = np.unique(lo * len(units) + hi)
    return key // len(units), key % len(units)


def _sum_pairs(a: IArray, b: IArray, length: FArray, n: int) -> tuple[IArray, IArray, FArray]:
    """Lengths of repeated pairs summed (in the order given), pairs sorted by ``a`` then ``b``."""
    key = a.astype(np.int64) * n + b.astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.zeros(len(uniq))
    np.add.at(total, inv, length)
    return (uniq // n).astype(np.int64), (uniq % n).astype(np.int64), total
