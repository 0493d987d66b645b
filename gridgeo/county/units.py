"""The atomic units a village's grids and grid points are built from: households and street blocks.

A grid (网格) is a contiguous group of *units*; a grid point (网格点) a
contiguous group of smaller units. The unit pipeline, by module:

* :func:`estimate_households` (here) -- households per building, where the
  data does not say (OSM buildings rarely do), from footprint area and levels;
* :func:`street_blocks` (here) -- a village cut by its barriers (roads,
  villager group lines, exclusive-site outlines) into faces that tile it
  exactly (one noding of all the linework, :mod:`gridgeo.county._faces`);
* :func:`gridgeo.county.assign.assign_items` -- which unit holds each building
  or household point; :func:`gridgeo.county.assign.unit_adjacency` -- rook
  adjacency with shared lengths, as the CSR arrays
  :meth:`gridgeo.partition.Units.from_arrays` takes;
* :func:`gridgeo.county.split.split_heavy` -- units holding more households
  than one grid point may hold are split between buildings (never through
  one), so the engine can meet the bound.

Everything is in a metric CRS (metres) and works on numpy object arrays of
shapely 2 geometries. Results never depend on set or dict order: faces and
pieces are numbered north to south, then west to east, and every tie is broken
by the lower index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from gridgeo._geom import make_valid_polygonal, polygonal_parts
from gridgeo.county._faces import (
    FArray,
    GArray,
    GeomArrayLike,
    IArray,
    _as_geoms,
    _check_tiling,
    _faces,
    _linear_parts,
    _merge_small,
    _reading_order,
)
from gridgeo.errors import CRSError, GeometryError, UsageError

log = logging.getLogger(__name__)

__all__ = ["NON_RESIDENTIAL", "estimate_households", "street_blocks"]

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
# street blocks
# --------------------------------------------------------------------------------------
#: m²: a part smaller than a square centimetre cannot survive rounding to the written precision (1e-7 degree)
SPECK_M2 = 1e-4


def _without_specks(geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    """The area without parts below :data:`SPECK_M2` while a larger part remains.

    Why: a repaired or reprojected ring can leave a speck part (seen: 3.5e-19 m²
    beside a 63 ha Taipei village) that has no neighbour to merge into; it would
    become a grid and a point with no area, which vanish from the written,
    rounded coverage. Small enclaves above a square centimetre stay.
    """
    parts = polygonal_parts(geom)
    if len(parts) < 2:
        return geom
    keep = [p for p in parts if p.area >= SPECK_M2]
    if not keep or len(keep) == len(parts):
        return geom
    log.info("street_blocks: %d speck part(s) below %g m² dropped", len(parts) - len(keep), SPECK_M2)
    return keep[0] if len(keep) == 1 else MultiPolygon(keep)


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
    geom = _without_specks(geom)
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
