"""The atomic units a village's grids and grid points are built from.

A grid (网格) is a contiguous group of *units*; a grid point (网格点) a
contiguous group of smaller units. This module makes those units and the
arrays the partition engine reads:

* :func:`estimate_households` -- households per building, where the data does
  not say (OSM buildings rarely do), from footprint area and levels;
* :func:`street_blocks` -- a village cut by its barriers (roads, villager group
  lines, exclusive-site outlines) into faces that tile it exactly;
* :func:`assign_items` -- which unit holds each building or household point;
* :func:`split_heavy` -- units holding more households than one grid point may
  hold are split between buildings (never through one), so the engine can
  meet the bound;
* :func:`unit_adjacency` -- rook adjacency with shared lengths, as the CSR
  arrays :meth:`gridgeo.partition.Units.from_arrays` takes.

Everything is in a metric CRS (metres) and works on numpy object arrays of
shapely 2 geometries. Results never depend on set or dict order: faces and
pieces are numbered north to south, then west to east, and every tie is broken
by the lower index.

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

A split unit's pieces gain vertices where split lines meet the unit's edge;
:func:`split_heavy` inserts the same vertices into the neighbouring units it
was given, so one village's units stay an exact coverage
(:func:`shapely.coverage_is_valid`). Faces of *different* villages are cut in
different calls: where a road crosses a village boundary each side computes
its own crossing point, nanometres apart. :func:`unit_adjacency` therefore
measures shared boundary with snap rounding on a 0.1 mm grid, which still
finds those edges; a county-wide coverage can be made exact afterwards with
``shapely.coverage_clean(units, snapping_distance=1e-6)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import Delaunay, QhullError, cKDTree
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon

from gridgeo._geom import make_valid_polygonal, polygonal_parts
from gridgeo.errors import CRSError, GeometryError, InputError, UsageError

log = logging.getLogger(__name__)

IArray = NDArray[np.int64]
FArray = NDArray[np.float64]
GArray = NDArray[np.object_]
#: Geometries as an object array, a GeoSeries, or a plain sequence (None for missing).
GeomArrayLike: TypeAlias = ArrayLike | Sequence[Any] | gpd.GeoSeries

#: OSM ``building=*`` values that hold no households unless the data says so.
#: Kept: ``yes`` (the OSM default: mostly homes in villages), ``house``,
#: ``residential``, ``apartments``, ``detached``, ``terrace``, ``dormitory``,
#: ``semidetached_house``, ``village_house``, ``bungalow``, ``farm`` (a
#: farmhouse) and anything unknown. Dropped: places of work, worship, study,
#: care, storage, transport and roofs without walls. ``hut`` and ``cabin`` are
#: dropped too: in Chinese OSM data they are sheds and guard huts far more often
#: than dwellings.
NON_RESIDENTIAL: frozenset[str] = frozenset({
    "commercial", "industrial", "retail", "office", "supermarket", "kiosk", "warehouse", "factory",
    "manufacture", "school", "university", "college", "kindergarten", "hospital", "clinic",
    "church", "chapel", "cathedral", "temple", "mosque", "shrine", "monastery", "religious",
    "public", "civic", "government", "fire_station", "police", "toilets", "sports_hall", "stadium",
    "garage", "garages", "carport", "shed", "hut", "cabin", "barn", "cowshed", "stable", "sty",
    "greenhouse", "farm_auxiliary", "silo", "storage_tank", "roof", "service", "transformer_tower",
    "water_tower", "transportation", "train_station", "parking", "bridge", "construction", "ruins",
    "military", "hotel", "gatehouse",
})

#: Snap-rounding grid (m) for measuring shared boundaries between units made
#: in different calls; far below any real feature, far above float noise at
#: Gauss-Krüger coordinates (~1e-8 m at 4e7 m).
_SNAP_GRID = 1e-4
#: Relative tolerance of the tiling self-checks.
_TILE_RTOL = 1e-6


# --------------------------------------------------------------------------------------
# households
# --------------------------------------------------------------------------------------
def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    dwelling_m2: float = 90.0,
    default_levels: float = 1.0,
    min_area_m2: float = 20.0,
    non_residential: Collection[str] = NON_RESIDENTIAL,
) -> tuple[IArray, NDArray[np.bool_]]:
    """Households per building, and whether each figure is an estimate.

    Grid bounds are set in households, but building footprints (OSM above all)
    seldom carry a household count. A count in the data wins; otherwise a
    building holds ``round(area × levels / dwelling_m2)`` households -- floor
    area over the size of one dwelling -- at least one when it is residential
    and at least ``min_area_m2`` (a small house is still a home), none when it
    is smaller (sheds, kiosks, digitising debris) or of a non-residential type.

    Parameters
    ----------
    buildings
        Footprints in a metric CRS. Optional columns: ``households`` (used
        where it is a finite number >= 0), ``levels`` or ``building:levels``
        (used where a positive number), ``building`` (the OSM type).
    dwelling_m2
        Floor area of one dwelling (m²), > 0.
    default_levels
        Levels assumed where none are known, > 0.
    min_area_m2
        Footprints below this area (m²) hold no households unless given.
    non_residential
        ``building`` values (case-insensitive) that hold no households unless given.

    Returns
    -------
    households : ndarray of int64
        Households of each building, >= 0.
    estimated : ndarray of bool
        True where the figure was estimated rather than taken from the data.
    """
    for name, v in (("dwelling_m2", dwelling_m2), ("default_levels", default_levels)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise UsageError(f"{name} must be a finite number > 0, not {v!r}")
    if not (isinstance(min_area_m2, int | float) and math.isfinite(min_area_m2) and min_area_m2 >= 0):
        raise UsageError(f"min_area_m2 must be a finite number >= 0, not {min_area_m2!r}")
    crs = getattr(buildings, "crs", None)
    if crs is not None and not crs.is_projected:
        raise CRSError("estimate_households needs a metric CRS to measure footprints; reproject first",
                       path=buildings.attrs.get("source"))
    n = len(buildings)
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    area = np.nan_to_num(shapely.area(geoms), nan=0.0)

    given = _numeric(buildings, "households")
    use_given = np.isfinite(given) & (given >= 0)

    levels = _numeric(buildings, "levels")
    if "building:levels" in buildings.columns:
        alt = _numeric(buildings, "building:levels")
        levels = np.where(np.isfinite(levels) & (levels > 0), levels, alt)
    levels = np.where(np.isfinite(levels) & (levels > 0), levels, float(default_levels))

    if "building" in buildings.columns:
        kind = buildings["building"].to_numpy(dtype=object)
        excluded = {str(k).strip().lower() for k in non_residential}
        non_res = np.fromiter(
            (isinstance(k, str) and k.strip().lower() in excluded for k in kind), dtype=bool, count=n)
    else:
        non_res = np.zeros(n, dtype=bool)

    est = np.floor(area * levels / float(dwelling_m2) + 0.5)  # half up, not to even
    est = np.where(area >= min_area_m2, np.maximum(est, 1.0), 0.0)
    est = np.where(non_res, 0.0, est)
    out = np.where(use_given, np.floor(np.where(use_given, given, 0.0) + 0.5), est).astype(np.int64)
    estimated = ~use_given
    log.debug("estimate_households: %d buildings, %d estimated (%d non-residential), %d households",
              n, int(estimated.sum()), int((estimated & non_res).sum()), int(out.sum()))
    return out, estimated


def _numeric(frame: pd.DataFrame, col: str) -> FArray:
    """Column ``col`` as floats (NaN where missing or not a number); all NaN if absent.

    OSM tags arrive as strings ("3", "2;3", "两层"): anything that is not a
    plain number counts as unknown rather than failing the whole layer.
    """
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    vals = pd.to_numeric(frame[col], errors="coerce")
    return np.asarray(vals.to_numpy(dtype=float, na_value=np.nan), dtype=float)


# --------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------
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
        noded = shapely.union_all(linework)
    except GEOSException as err:  # pragma: no cover - GEOS robustness fallback
        log.warning("street faces: noding failed (%s); retrying on a 1 µm grid", err)
        noded = shapely.union_all(linework, grid_size=1e-6)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return parts
    faces = faces[shapely.area(faces) > 0]
    inside = _contains_points(area, shapely.point_on_surface(faces))
    doubt = np.flatnonzero(~inside)
    if len(doubt):  # a representative point can land on the area's own edge: judge those faces by area
        share = shapely.area(shapely.intersection(faces[doubt], area)) / shapely.area(faces[doubt])
        inside[doubt[share > 0.5]] = True
    return np.asarray(faces[inside], dtype=object)


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
    i, j, shared = _shared_pairs(faces, small)
    nbrs: dict[int, dict[int, float]] = {}
    for a, b, length in zip(i.tolist(), j.tolist(), shared.tolist(), strict=True):
        if length > 0:
            nbrs.setdefault(a, {})[b] = length
            nbrs.setdefault(b, {})[a] = length
    root = list(range(len(faces)))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    members: dict[int, list[int]] = {}
    gsize = {int(k): float(size[k]) for k in range(len(faces))}
    for s in sorted(small.tolist(), key=lambda k: (size[k], k)):
        g = find(s)
        while gsize[g] < threshold:
            around: dict[int, float] = {}
            for m in members.get(g, [g]):
                for nb, length in nbrs.get(m, {}).items():
                    h = find(nb)
                    if h != g:
                        around[h] = around.get(h, 0.0) + length
            if not around:
                break
            h = min(around, key=lambda r: (-around[r], min(members.get(r, [r]))))
            root[g] = h
            members[h] = members.get(h, [h]) + members.pop(g, [g])
            gsize[h] += gsize.pop(g)
            g = h
    out: list[Any] = []
    where = np.zeros(len(faces), dtype=np.int64)
    for k in range(len(faces)):
        if find(k) != k:
            continue
        ms = sorted(members.get(k, [k]))
        where[ms] = len(out)
        if len(ms) == 1:
            out.append(faces[k])
        else:
            out.append(_coverage_union(faces[ms]))
    log.debug("%s: %d faces below %.3g merged into their neighbours", what, len(small), threshold)
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


# --------------------------------------------------------------------------------------
# street blocks
# --------------------------------------------------------------------------------------
def street_blocks(
    area: Polygon | MultiPolygon,
    barriers: GeomArrayLike,
    *,
    min_area: float = 1.0,
) -> GArray:
    """Cut ``area`` by ``barriers`` into faces that tile it exactly.

    A grid should not straddle a main road, a river or a villager group line,
    so those lines cut the village into faces, the smallest units grids are
    made of. Lines that end inside a face (dead ends, roads touching the
    boundary) are harmless; overlapping, duplicate or invalid barriers are
    cleaned first.

    Parameters
    ----------
    area
        The polygon to cut (a village), metric CRS. Holes are not faces; the
        parts of a MultiPolygon (enclaves) are cut separately.
    barriers
        LineStrings and MultiLineStrings; Polygons and MultiPolygons
        contribute their boundaries (villager groups, exclusive sites); points
        are ignored.
    min_area
        Faces below this area (m²) -- slivers between nearly parallel lines --
        merge into the neighbour they share the longest edge with.

    Returns
    -------
    ndarray of Polygon
        Faces ordered north to south, then west to east (by representative
        point). Their union is ``area`` and their areas sum to its area.

    Raises
    ------
    GeometryError
        ``area`` is not a usable polygon, or (a bug) the faces do not tile it.
    """
    if not (isinstance(min_area, int | float) and math.isfinite(min_area) and min_area >= 0):
        raise UsageError(f"min_area must be a finite number >= 0, not {min_area!r}")
    if not isinstance(area, shapely.Geometry) or shapely.is_empty(area):
        raise GeometryError("street_blocks needs a non-empty Polygon or MultiPolygon area")
    geom = shapely.force_2d(area)
    if not shapely.is_valid(geom):
        log.warning("street_blocks: invalid area repaired with make_valid")
        geom = make_valid_polygonal(geom)
    if geom is None or not polygonal_parts(geom):
        raise GeometryError("street_blocks needs a polygonal area; it has no area")
    bar = _as_geoms(barriers, "barriers")
    near = np.sort(shapely.STRtree(bar).query(geom)) if len(bar) else np.zeros(0, dtype=np.int64)
    lines = _linear_parts(bar[near])  # bounding boxes first: cleaning every barrier per call is slow
    if len(lines):
        lines = lines[np.sort(shapely.STRtree(lines).query(geom, predicate="intersects"))]
    faces = _faces(geom, lines)
    if min_area > 0:
        faces, _ = _merge_small(faces, shapely.area(faces), float(min_area), "street_blocks")
    faces = faces[_reading_order(faces)]
    _check_tiling(float(shapely.area(geom)), faces, "street_blocks")
    return faces


# --------------------------------------------------------------------------------------
# items in units
# --------------------------------------------------------------------------------------
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
    it, un = tree.query(items_arr, predicate="intersects")
    if len(it) == 0:
        return out
    order = np.lexsort((un, it))
    it, un = it[order], un[order]
    starts = np.flatnonzero(np.r_[True, it[1:] != it[:-1]])
    counts = np.diff(np.r_[starts, len(it)])
    first_item, first_unit = it[starts], un[starts]
    area = shapely.area(items_arr)
    polygonal = np.isin(shapely.get_type_id(items_arr), (3, 6)) & (area > 0)

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


# --------------------------------------------------------------------------------------
# splitting heavy units
# --------------------------------------------------------------------------------------
def split_heavy(
    units: GeomArrayLike,
    items: GeomArrayLike,
    weights: ArrayLike,
    item_unit: ArrayLike,
    *,
    max_weight: float,
    target: float | None = None,
) -> tuple[GArray, IArray, IArray]:
    """Split units whose items weigh more than ``max_weight``, between items, never through one.

    A street block of a county town can hold more households than one grid
    point may (a point is a building, a courtyard, a street face), and the
    partition engine cannot break a unit. So such a unit's items are bisected
    by weight -- at the weighted median along the longer side of the extent
    of their representative points, recursively, until each cluster weighs at
    most ``target`` or is a single item (a 150-household tower stays whole) --
    and each cluster gets the part of the unit nearer to its items than to any
    other cluster's: the Voronoi cells of its items' vertices. A building that
    still pokes into another cluster's cells takes its whole footprint with it,
    so split lines run between buildings and the pieces tile the unit exactly
    (all linework of one unit is noded once). A cluster region in several
    parts becomes several units.

    Parameters
    ----------
    units
        Unit polygons (e.g. :func:`street_blocks` faces).
    items
        Buildings (Polygons) or household points, the things weighed.
    weights
        Weight (households) of each item, finite and >= 0.
    item_unit
        Unit index of each item (:func:`assign_items`), -1 for none.
    max_weight
        Units heavier than this are split (> 0).
    target
        Largest cluster weight aimed at; default ``max_weight / 2`` so the
        engine has pieces to combine. ``0 < target <= max_weight``.

    Returns
    -------
    new_units : ndarray of Polygon
        Unsplit units unchanged and in order, each split unit replaced by its
        pieces (north to south, then west to east).
    parent : ndarray of int64
        Original unit index of each new unit (non-decreasing).
    new_item_unit : ndarray of int64
        New unit index of each item (-1 stays -1).
    """
    U = _as_geoms(units, "units")
    items_arr = _as_geoms(items, "items")
    w = np.asarray(weights, dtype=float).reshape(-1)
    iu = np.asarray(item_unit).reshape(-1)
    if len(w) != len(items_arr) or len(iu) != len(items_arr):
        raise UsageError(f"{len(items_arr)} items need as many weights and item_unit values "
                         f"(got {len(w)} and {len(iu)})")
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise InputError("item weights must be finite numbers >= 0")
    if not np.issubdtype(iu.dtype, np.integer):
        raise UsageError("item_unit must hold integer unit indices (-1 for none)")
    iu = iu.astype(np.int64)
    if len(iu) and (iu.min() < -1 or iu.max() >= len(U)):
        raise UsageError(f"item_unit must lie in -1..{len(U) - 1}")
    if not (isinstance(max_weight, int | float) and math.isfinite(max_weight) and max_weight > 0):
        raise UsageError(f"max_weight must be a finite number > 0, not {max_weight!r}")
    tgt = max_weight / 2.0 if target is None else target
    if not (isinstance(tgt, int | float) and math.isfinite(tgt) and 0 < tgt <= max_weight):
        raise UsageError(f"target must lie in (0, max_weight], not {target!r}")

    has = iu >= 0
    load = np.bincount(iu[has], w[has], minlength=len(U))
    heavy = np.flatnonzero(load > max_weight + 1e-9)
    by_unit = np.argsort(np.where(has, iu, len(U)), kind="stable")
    sorted_units = np.where(has, iu, len(U))[by_unit]
    lo = np.searchsorted(sorted_units, np.arange(len(U)), side="left")
    hi = np.searchsorted(sorted_units, np.arange(len(U)), side="right")

    pieces: dict[int, tuple[GArray, IArray, IArray]] = {}  # unit -> (pieces, item ids, piece of item)
    for u in heavy.tolist():
        ids = by_unit[lo[u]:hi[u]]
        res = _split_unit(U[u], items_arr[ids], w[ids], float(tgt))
        if res is not None:
            pieces[u] = (res[0], ids, res[1])

    new_units: list[Any] = []
    parent: list[int] = []
    offset = np.zeros(len(U), dtype=np.int64)
    for u in range(len(U)):
        offset[u] = len(new_units)
        if u in pieces:
            new_units.extend(pieces[u][0].tolist())
            parent.extend([u] * len(pieces[u][0]))
        else:
            new_units.append(U[u])
            parent.append(u)
    new_item_unit = np.where(has, offset[np.where(has, iu, 0)], -1).astype(np.int64)
    for u, (_, ids, local) in pieces.items():
        new_item_unit[ids] = offset[u] + local
    out = np.empty(len(new_units), dtype=object)
    out[:] = new_units
    if pieces:
        fresh = [_new_boundary_vertices(U[u], p[0]) for u, p in sorted(pieces.items())]
        origin = np.repeat(sorted(pieces), [len(f) for f in fresh]).astype(np.int64)
        _insert_vertices(out, np.concatenate(fresh), origin, np.asarray(parent, dtype=np.int64))
    log.info("split_heavy: %d of %d units above %g split into %d pieces; %d units in all",
             len(pieces), len(U), max_weight, sum(len(p[0]) for p in pieces.values()), len(out))
    return out, np.asarray(parent, dtype=np.int64), new_item_unit


def _bisect(xy: FArray, w: FArray, target: float) -> IArray:
    """Cluster label per item by recursive weighted bisection (labels in depth-first order).

    The cut is at the weighted median along the longer side of the cluster's
    extent; among equally good cuts the one nearest the middle by count wins,
    so weightless items (sheds) are not peeled off one at a time.
    """
    n = len(w)
    labels = np.zeros(n, dtype=np.int64)
    stack = [np.arange(n, dtype=np.int64)]
    nxt = 0
    while stack:
        idx = stack.pop()
        total = float(w[idx].sum())
        if total <= target + 1e-9 or len(idx) == 1:
            labels[idx] = nxt
            nxt += 1
            continue
        p = xy[idx]
        span = p.max(axis=0) - p.min(axis=0)
        ax = 0 if span[0] >= span[1] else 1
        s = idx[np.lexsort((idx, p[:, 1 - ax], p[:, ax]))]
        cw = np.cumsum(w[s])[:-1]
        ks = np.arange(1, len(s))
        k = int(ks[np.lexsort((np.abs(2 * ks - len(s)), np.round(np.abs(2 * cw - total), 9)))[0]])
        stack.append(s[k:])
        stack.append(s[:k])
    return labels


def _split_unit(unit: Any, geoms: GArray, w: FArray, target: float) -> tuple[GArray, IArray] | None:
    """Pieces of one heavy unit and the piece of each of its items, or None if it cannot split.

    The split lines are the Voronoi ridges between vertices of items in
    different clusters, read off the Delaunay triangulation (qhull via scipy:
    only those ridges are needed, not the cells). They are noded with the unit boundary and the outlines of the
    items they cross; each face then belongs to the item it lies in, else to
    the cluster of its nearest vertex -- which is the Voronoi region it lies
    in, since no split line crosses a face.
    """
    n = len(geoms)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if n < 2 or ok.sum() < 2:
        return None
    rp = np.zeros((n, 2))
    rp[ok] = shapely.get_coordinates(shapely.point_on_surface(geoms[ok]))
    labels = np.full(n, -1, dtype=np.int64)
    labels[ok] = _bisect(rp[ok], w[ok], target)
    if labels.max() < 1:
        return None

    # sites: item vertices, deduplicated; a vertex shared by two items (terraced
    # houses) goes to the lower item index
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    order = np.lexsort((owner, coords[:, 1], coords[:, 0]))
    coords, owner = coords[order], owner[order]
    first = np.r_[True, np.any(coords[1:] != coords[:-1], axis=1)]
    coords, owner = coords[first], owner[first]
    site_label = labels[owner]
    if len(np.unique(site_label)) < 2:
        return None
    # local coordinates for qhull; four far corners keep every ridge between two
    # real sites finite (the hull is made of the corners alone)
    origin = coords.mean(axis=0)
    local = coords - origin
    ub = np.asarray(shapely.bounds(unit)).reshape(2, 2) - origin
    reach = 4.0 * float(max(np.abs(local).max(), np.abs(ub).max())) + 10.0
    corners = np.array([[-reach, -reach], [reach, -reach], [reach, reach], [-reach, reach]])
    try:
        tri = Delaunay(np.vstack([local, corners]))
    except QhullError:  # pragma: no cover - degenerate sites (qhull refuses); leave the unit whole
        log.warning("split_heavy: qhull could not triangulate a unit's %d vertices; unit left whole", len(coords))
        return None
    segs, used = _split_ridges(tri, site_label)
    split_lines = np.asarray(shapely.linestrings(segs + origin), dtype=object)

    # items a split line runs through bring their outline, so they stay whole
    poly = ok & np.isin(shapely.get_type_id(geoms), (3, 6)) & (shapely.area(geoms) > 0)
    pidx = np.flatnonzero(poly)
    hit = shapely.STRtree(split_lines).query(geoms[pidx], predicate="intersects")[0] if len(pidx) else []
    cut_ids = pidx[np.unique(hit)] if len(hit) else np.zeros(0, dtype=np.int64)
    lines = np.concatenate([split_lines, _linear_parts(geoms[cut_ids])]) if len(cut_ids) else split_lines
    faces = _faces(unit, lines, clean=True)  # split lines are plain segments; outlines cleaned above
    if len(faces) < 2:
        return None

    fpts = shapely.point_on_surface(faces)
    face_label = np.full(len(faces), -1, dtype=np.int64)
    if len(cut_ids):  # faces inside a cut item follow the item (lowest item index if several)
        f, c = shapely.STRtree(geoms[cut_ids]).query(fpts, predicate="within")
        o = np.lexsort((cut_ids[c], f))
        f, c = f[o], c[o]
        head = np.r_[True, f[1:] != f[:-1]] if len(f) else np.zeros(0, dtype=bool)
        face_label[f[head]] = labels[cut_ids[c[head]]]
    rest = np.flatnonzero(face_label < 0)
    if len(rest):
        _, nearest = cKDTree(local[used]).query(shapely.get_coordinates(fpts[rest]) - origin)
        face_label[rest] = site_label[used[nearest]]

    out: list[Any] = []
    for c in np.unique(face_label).tolist():
        sel = face_label == c
        out.extend(polygonal_parts(_coverage_union(faces[sel])) if sel.sum() > 1 else faces[sel].tolist())
    pieces = np.empty(len(out), dtype=object)
    pieces[:] = out
    place = _place(pieces, geoms, ok & ~np.isin(np.arange(n), cut_ids))
    held = np.bincount(place[place >= 0], minlength=len(pieces)).astype(float)
    if (held == 0).any():  # fragments holding nothing (the far side of a building) join a neighbour
        pieces, where = _merge_small(pieces, held, 1.0, "split_heavy")
        place = np.where(place >= 0, where[np.maximum(place, 0)], -1)
    rank = np.empty(len(pieces), dtype=np.int64)
    order = _reading_order(pieces)
    rank[order] = np.arange(len(pieces))
    pieces = pieces[order]
    place = np.where(place >= 0, rank[np.maximum(place, 0)], -1)
    _check_tiling(float(shapely.area(unit)), pieces, "split_heavy")

    lost = np.flatnonzero(place < 0)
    if len(lost):  # items that do not meet their unit at all: nearest piece
        near = shapely.STRtree(pieces).query_nearest(geoms[lost], all_matches=False)
        place[lost[near[0]]] = near[1]
        place[place < 0] = 0
    return pieces, place


def _place(pieces: GArray, geoms: GArray, simple: NDArray[np.bool_]) -> IArray:
    """Piece of each item: by representative point for ``simple`` items (no split line
    crosses them, so they lie in one piece), by :func:`assign_items` for the rest."""
    place = np.full(len(geoms), -1, dtype=np.int64)
    idx = np.flatnonzero(simple)
    if len(idx):
        i, j = shapely.STRtree(pieces).query(shapely.point_on_surface(geoms[idx]), predicate="intersects")
        o = np.lexsort((j, i))
        i, j = i[o], j[o]
        head = np.r_[True, i[1:] != i[:-1]] if len(i) else np.zeros(0, dtype=bool)
        place[idx[i[head]]] = j[head]
    rest = np.flatnonzero(place < 0)
    if len(rest):  # cut items, straddlers of the unit's edge, items outside it
        place[rest] = assign_items(pieces, geoms[rest])
    return place


def _split_ridges(tri: Delaunay, site_label: IArray) -> tuple[FArray, IArray]:
    """Voronoi ridges between sites of different clusters, as segments (k, 2, 2) in local coordinates.

    The ridge dual to a Delaunay edge joins the circumcentres of the two
    triangles on either side. Sites at index ``len(site_label)`` and above
    are the frame corners and never take part. Also returns the sites the
    triangulation used (qhull drops exact and near duplicates).
    """
    m = len(site_label)
    simp = tri.simplices
    p = tri.points[simp]  # (t, 3, 2)
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    d = 2.0 * (a[:, 0] * (b[:, 1] - c[:, 1]) + b[:, 0] * (c[:, 1] - a[:, 1]) + c[:, 0] * (a[:, 1] - b[:, 1]))
    sa, sb, sc = (a * a).sum(axis=1), (b * b).sum(axis=1), (c * c).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (sa * (b[:, 1] - c[:, 1]) + sb * (c[:, 1] - a[:, 1]) + sc * (a[:, 1] - b[:, 1])) / d
        uy = (sa * (c[:, 0] - b[:, 0]) + sb * (a[:, 0] - c[:, 0]) + sc * (b[:, 0] - a[:, 0])) / d
    cc = np.stack([ux, uy], axis=1)
    t = np.repeat(np.arange(len(simp)), 3)
    opp = np.tile(np.arange(3), len(simp))
    nb = tri.neighbors.reshape(-1)
    va, vb = simp[t, (opp + 1) % 3], simp[t, (opp + 2) % 3]
    real = (va < m) & (vb < m)
    lab_a = site_label[np.minimum(va, m - 1)]
    lab_b = site_label[np.minimum(vb, m - 1)]
    take = (nb > t) & real & (lab_a != lab_b)
    segs = np.stack([cc[t[take]], cc[nb[take]]], axis=1)
    segs = segs[np.isfinite(segs).all(axis=(1, 2))]
    used = np.unique(simp)
    return segs, used[used < m].astype(np.int64)


#: How far (m) a vertex may lie off a ring and still be taken as on it: a few
#: ulps of Gauss-Krüger coordinates (~7e-9 m at 4e7 m), far below any real detail.
_ON_EDGE = 1e-6


def _new_boundary_vertices(unit: Any, pieces: GArray) -> FArray:
    """Vertices of ``pieces`` on the boundary of ``unit`` that ``unit`` does not have.

    They are where split lines meet the unit's edge; a neighbour sharing that
    edge must get them too, or its edge and the pieces' edges no longer match.
    """
    pc = shapely.get_coordinates(pieces)
    uc = shapely.get_coordinates(unit)
    key_p, key_u = pc[:, 0] + 1j * pc[:, 1], uc[:, 0] + 1j * uc[:, 1]
    only = np.unique(key_p[~np.isin(key_p, key_u)])
    if len(only) == 0:
        return np.zeros((0, 2))
    xy = np.stack([only.real, only.imag], axis=1)
    on = shapely.dwithin(shapely.boundary(unit), shapely.points(xy), _ON_EDGE)
    return np.asarray(xy[on], dtype=float)


def _insert_vertices(polys: GArray, xy: FArray, origin: IArray, parent: IArray) -> None:
    """Insert the points ``xy`` into every ring of ``polys`` they lie on (in place).

    A point is inserted into the ring segment it lies on (within
    :data:`_ON_EDGE`), unless the ring already has a vertex there; the shape
    does not change, but shared edges get the same vertices on both sides.
    Pieces of the unit a point came from (``parent == origin``) have it already.
    """
    if len(xy) == 0 or len(polys) == 0:
        return
    pts = shapely.points(xy)
    p_idx, g_idx = shapely.STRtree(shapely.boundary(polys)).query(pts, predicate="dwithin", distance=_ON_EDGE)
    if len(p_idx) == 0:
        return
    need = parent[g_idx] != origin[p_idx]
    p_idx, g_idx = p_idx[need], g_idx[need]
    if len(p_idx) == 0:
        return
    order = np.lexsort((p_idx, g_idx))
    p_idx, g_idx = p_idx[order], g_idx[order]
    cuts = np.flatnonzero(np.r_[True, g_idx[1:] != g_idx[:-1], True])
    changed = 0
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        g = int(g_idx[a])
        new = _with_vertices(polys[g], xy[p_idx[a:b]])
        if new is not None:
            polys[g] = new
            changed += 1
    log.debug("split_heavy: new split-line vertices inserted into %d neighbouring units", changed)


def _with_vertices(poly: Any, xy: FArray) -> Any | None:
    """``poly`` with the points ``xy`` inserted into the ring segments they lie on; None if none."""
    if shapely.get_type_id(poly) != 3:
        return None
    rings = [np.asarray(shapely.get_coordinates(poly.exterior))]
    rings += [np.asarray(shapely.get_coordinates(r)) for r in poly.interiors]
    done = False
    out = []
    for ring in rings:
        a, d = ring[:-1], ring[1:] - ring[:-1]
        dd = np.maximum((d * d).sum(axis=1), 1e-300)
        rel = xy[:, None, :] - a[None, :, :]  # (points, segments, 2)
        t = np.clip((rel * d[None]).sum(axis=2) / dd[None], 0.0, 1.0)
        dist = np.hypot(rel[..., 0] - t * d[None, :, 0], rel[..., 1] - t * d[None, :, 1])
        seg = dist.argmin(axis=1)
        k = np.arange(len(xy))
        ts = t[k, seg]
        take = (dist[k, seg] <= _ON_EDGE) & (ts > 0.0) & (ts < 1.0)
        take &= ~(xy[:, None, :] == ring[None, :, :]).all(axis=2).any(axis=1)  # already a vertex
        if not take.any():
            out.append(ring)
            continue
        done = True
        ins = np.flatnonzero(take)
        ins = ins[np.lexsort((ts[ins], seg[ins]))]
        # vertex j of the ring goes to slot j + (insertions before it); inserted points fill the gaps
        slot = np.arange(len(ring)) + np.searchsorted(seg[ins], np.arange(len(ring)), side="left")
        new = np.empty((len(ring) + len(ins), 2))
        new[slot] = ring
        new[np.setdiff1d(np.arange(len(new)), slot)] = xy[ins]
        out.append(new)
    if not done:
        return None
    return shapely.Polygon(out[0], out[1:])


# --------------------------------------------------------------------------------------
# adjacency
# --------------------------------------------------------------------------------------
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
