"""Noding helpers shared by street blocks and heavy-unit splits (private to :mod:`gridgeo.county`).

Why faces come from one noding
------------------------------
Cutting a polygon barrier by barrier (``difference`` after ``difference``)
computes each cut point again for every piece, so neighbouring pieces end up
with vertices a few nanometres apart: sums of areas still match, but shared
edges no longer coincide and rook adjacency silently loses them. Here all the
linework of one area (its boundary, the barriers, the split lines) is noded
*once* with :func:`shapely.union_all` and turned into faces with
:func:`shapely.polygonize`, so neighbouring faces share their vertices exactly.
Barriers are cut to a box a little *larger* than the area first: a cut point
computed on the area's boundary could land a hair inside it and leave the
barrier dangling instead of splitting the face.

Floating-point noding is exact enough for lines that cross, not for lines that
run along each other a hair apart (the area's edge, a road drawn along it, a
site outline clipped to it): crossings can be left without a node, so
polygonize loses a face, or the edge and the barrier merge a hair inside the
area, so a face outside it is taken in. The faces are therefore checked to
tile the area and, when they do not, the linework is noded again with
snap-rounding on a 1 µm grid (:func:`_noded_faces`), which nodes every
crossing and makes lines closer than the grid one.

Results never depend on set or dict order: faces and pieces are numbered
north to south, then west to east, and every tie is broken by the lower index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.errors import GEOSException

from gridgeo._geom import polygonal_parts
from gridgeo.errors import GeometryError, UsageError

log = logging.getLogger(__name__)

IArray = NDArray[np.int64]
FArray = NDArray[np.float64]
GArray = NDArray[np.object_]
#: Geometries as an object array, a GeoSeries, or a plain sequence (None for missing).
GeomArrayLike: TypeAlias = ArrayLike | Sequence[Any] | gpd.GeoSeries

#: Relative tolerance of the tiling self-checks.
_TILE_RTOL = 1e-6

#: Grid (m) of the snap-rounded noding a face set falls back to when floating point does not tile.
_SNAP_GRID = 1e-6


def _as_geoms(values: GeomArrayLike, what: str) -> GArray:
    """A 1-D object array of geometries (a GeoSeries, list or array)."""
    if isinstance(values, gpd.GeoDataFrame):
        values = values.geometry
    if isinstance(values, shapely.Geometry):
        raise UsageError(f"{what} must be an array of geometries, not a single geometry")
    arr = np.asarray(getattr(values, "values", values), dtype=object)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    try:
        shapely.get_type_id(arr)  # raises on anything that is neither a geometry nor None
    except TypeError as err:
        raise UsageError(f"{what} must hold shapely geometries (or None): {err}") from None
    return arr


def _reading_order(geoms: GArray) -> IArray:
    """Indices that sort ``geoms`` north to south, then west to east (by representative point)."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=np.int64)
    xy = shapely.get_coordinates(shapely.point_on_surface(geoms))
    return np.lexsort((xy[:, 0], -xy[:, 1])).astype(np.int64)


def _linear_parts(geoms: GArray) -> GArray:
    """LineStrings of any geometries: polygons give their boundary rings, points are dropped."""
    g = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(g) == 0:
        return np.zeros(0, dtype=object)
    bad = ~shapely.is_valid(g)
    if bad.any():
        g = g.copy()
        g[bad] = shapely.make_valid(g[bad])
    for _ in range(3):  # collections may nest (make_valid gives GEOMETRYCOLLECTIONs of multi-parts)
        g = shapely.get_parts(g)
    tid = shapely.get_type_id(g)
    poly = tid == 3
    if poly.any():
        rings = shapely.get_parts(shapely.boundary(g[poly]))
        g = np.concatenate([g[(tid == 1) | (tid == 2)], rings])
    else:
        g = g[(tid == 1) | (tid == 2)]
    g = g[~shapely.is_empty(g)]
    return np.asarray(shapely.force_2d(g), dtype=object)


def _faces(area: Any, lines: GArray, *, clean: bool = False) -> GArray:
    """Faces of ``area`` cut by ``lines``, tiling it, from one noding of all the linework.

    ``lines`` need not be clipped: they are cut to a box a little larger than
    the area (so no cut point lands on its boundary), noded with the area's
    boundary, and the faces outside the area (or in its holes) are dropped.
    When the faces of the floating-point noding do not tile the area, the
    linework is noded again with snap-rounding on a :data:`_SNAP_GRID` grid
    (see :func:`_noded_faces`).
    """
    parts = np.asarray(polygonal_parts(area), dtype=object)
    if len(lines) == 0:
        return parts
    x0, y0, x1, y1 = shapely.bounds(area)
    pad = max(1.0, 1e-3 * math.hypot(x1 - x0, y1 - y0))
    clipped = np.asarray(shapely.clip_by_rect(lines, x0 - pad, y0 - pad, x1 + pad, y1 + pad), dtype=object)
    clipped = _linear_parts(clipped) if not clean else clipped[~shapely.is_empty(clipped)]
    if len(clipped) == 0:
        return parts
    linework = np.concatenate([shapely.get_parts(shapely.boundary(parts)), clipped])
    try:
        faces = _noded_faces(area, linework, None)
        if _tiles(area, faces):
            return faces
        log.debug("street faces: the floating-point noding does not tile the area; noding on a %g m grid", _SNAP_GRID)
    except GEOSException as err:  # pragma: no cover - GEOS robustness fallback
        log.warning("street faces: noding failed (%s); retrying on a %g m grid", err, _SNAP_GRID)
    faces = _noded_faces(area, linework, _SNAP_GRID)
    return faces if len(faces) else parts


def _noded_faces(area: Any, linework: GArray, grid_size: float | None) -> GArray:
    """The faces of one noding of ``linework`` that lie in ``area`` (floating point, or snap-rounded).

    Why snap-rounding when floating point fails: lines that run along each
    other a hair apart -- the area's edge, a road drawn along it, a site
    outline clipped to it, each with its own computed vertices -- are not
    noded reliably in floating point: the result can keep crossings without a
    node (polygonize then sees cut edges and dangles where a face's ring
    should be, and the face is lost), or merge the edge and the barrier into
    one line a hair *inside* the area, so an outside face's representative
    point lands in the area and the face is taken in. On a grid, lines closer
    than the grid become one and every crossing is a node, so each face is
    cleanly inside or outside.
    """
    noded = shapely.union_all(linework, grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return np.zeros(0, dtype=object)
    faces = faces[shapely.area(faces) > 0]
    inside = _contains_points(area, shapely.point_on_surface(faces))
    doubt = np.flatnonzero(~inside)
    if len(doubt):  # a representative point can land on the area's own edge: judge those faces by area
        share = shapely.area(shapely.intersection(faces[doubt], area)) / shapely.area(faces[doubt])
        inside[doubt[share > 0.5]] = True
    return np.asarray(faces[inside], dtype=object)


def _tiles(area: Any, pieces: GArray) -> bool:
    """Whether the areas of ``pieces`` add up to the area of ``area`` (to :data:`_TILE_RTOL`)."""
    a = float(shapely.area(area))
    total = float(np.sum(shapely.area(pieces))) if len(pieces) else 0.0
    return abs(total - a) <= _TILE_RTOL * max(a, 1.0)


def _contains_points(poly: Any, points: GArray) -> NDArray[np.bool_]:
    """Which ``points`` lie inside ``poly`` (prepared once, not mutating the caller's object)."""
    p = shapely.from_wkb(shapely.to_wkb(poly))
    shapely.prepare(p)
    return np.asarray(shapely.contains(p, points), dtype=bool)


def _shared_pairs(geoms: GArray, subset: IArray | None = None) -> tuple[IArray, IArray, FArray]:
    """Pairs (i < j) of touching polygons and their exactly shared boundary length.

    With ``subset``, only pairs with at least one member in it. Lengths are
    exact: for faces of one noding, which share vertices.
    """
    tree = shapely.STRtree(geoms)
    q = geoms if subset is None else geoms[subset]
    a, b = tree.query(q, predicate="intersects")
    a = a if subset is None else subset[a]
    i, j = np.minimum(a, b), np.maximum(a, b)
    keep = i != j
    if not keep.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    key = np.unique(i[keep] * len(geoms) + j[keep])
    i, j = key // len(geoms), key % len(geoms)
    bd = shapely.boundary(geoms)
    L = shapely.length(shapely.intersection(bd[i], bd[j]))
    return i.astype(np.int64), j.astype(np.int64), np.asarray(L, dtype=float)


def _merge_small(faces: GArray, size: FArray, threshold: float, what: str) -> tuple[GArray, IArray]:
    """Merge faces whose ``size`` is below ``threshold`` into the neighbour they share most edge with.

    Smallest first (ties to the lower index); a merged group still below the
    threshold keeps merging. A face with no neighbour along an edge (only
    corners, or none) stays. ``size`` is area for slivers, item count for
    empty split pieces.

    Returns
    -------
    merged faces, and for each input face the index of the merged face holding it.
    """
    small = np.flatnonzero(size < threshold)
    if len(small) == 0 or len(faces) < 2:
        return faces, np.arange(len(faces), dtype=np.int64)
    groups = _FaceGroups(size, _edge_neighbours(faces, small))
    for s in sorted(small.tolist(), key=lambda k: (size[k], k)):
        groups.grow(s, threshold)
    log.debug("%s: %d faces below %.3g merged into their neighbours", what, len(small), threshold)
    return groups.merged(faces)


def _edge_neighbours(faces: GArray, small: IArray) -> dict[int, dict[int, float]]:
    """Face -> neighbour -> shared edge length, for the pairs touching a ``small`` face along an edge."""
    i, j, shared = _shared_pairs(faces, small)
    nbrs: dict[int, dict[int, float]] = {}
    for a, b, length in zip(i.tolist(), j.tolist(), shared.tolist(), strict=True):
        if length > 0:
            nbrs.setdefault(a, {})[b] = length
            nbrs.setdefault(b, {})[a] = length
    return nbrs


class _FaceGroups:
    """Union-find over faces, with each group's members and size, for :func:`_merge_small`."""

    def __init__(self, size: FArray, nbrs: dict[int, dict[int, float]]) -> None:
        self.root = list(range(len(size)))
        self.members: dict[int, list[int]] = {}
        self.size = {int(k): float(size[k]) for k in range(len(size))}
        self.nbrs = nbrs

    def find(self, x: int) -> int:
        root = self.root
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    def _around(self, g: int) -> dict[int, float]:
        """Neighbouring groups of group ``g`` and the edge length shared with each."""
        around: dict[int, float] = {}
        for m in self.members.get(g, [g]):
            for nb, length in self.nbrs.get(m, {}).items():
                h = self.find(nb)
                if h != g:
                    around[h] = around.get(h, 0.0) + length
        return around

    def grow(self, s: int, threshold: float) -> None:
        """Merge the group of face ``s`` into its longest-shared neighbour until it reaches ``threshold``."""
        g = self.find(s)
        while self.size[g] < threshold:
            around = self._around(g)
            if not around:
                break
            h = min(around, key=lambda r: (-around[r], min(self.members.get(r, [r]))))
            self.root[g] = h
            self.members[h] = self.members.get(h, [h]) + self.members.pop(g, [g])
            self.size[h] += self.size.pop(g)
            g = h

    def merged(self, faces: GArray) -> tuple[GArray, IArray]:
        """One face per group (in the order of its root) and each input face's group."""
        out: list[Any] = []
        where = np.zeros(len(faces), dtype=np.int64)
        for k in range(len(faces)):
            if self.find(k) != k:
                continue
            ms = sorted(self.members.get(k, [k]))
            where[ms] = len(out)
            if len(ms) == 1:
                out.append(faces[k])
            else:
                out.append(_coverage_union(faces[ms]))
        res = np.empty(len(out), dtype=object)
        res[:] = out
        return res, where


def _coverage_union(polys: GArray) -> Any:
    """Union of polygons that share edges exactly (fast), falling back to a full overlay."""
    if len(polys) == 1:
        return polys[0]
    try:
        u = shapely.coverage_union_all(polys)
        if shapely.is_valid(u):
            return u
    except GEOSException:  # pragma: no cover - only for inputs that are not a coverage
        pass
    return shapely.union_all(polys)  # pragma: no cover


def _check_tiling(area: float, pieces: GArray, what: str) -> None:
    total = float(np.sum(shapely.area(pieces))) if len(pieces) else 0.0
    if abs(total - area) > _TILE_RTOL * max(area, 1.0):
        raise GeometryError(f"{what}: pieces cover {total:.3f} m² of {area:.3f} m² (they must tile it); "
                            "this is a bug, please report it with the input")
