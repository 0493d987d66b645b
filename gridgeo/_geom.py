"""Geometry helpers shared by every package: one place for each piece of logic.

Polygonal parts and repair, the one point-in-polygon lookup (:func:`containing`) and the one
reading-order numbering (:func:`reading_order`). May import :mod:`gridgeo.errors` only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely

from gridgeo.errors import UsageError


def polygonal_parts(geom: Any) -> list[Any]:
    """The Polygon parts of any geometry (collections flattened, lines and points dropped)."""
    if geom is None or shapely.is_empty(geom):
        return []
    return [p for p in shapely.get_parts(shapely.get_parts(geom)) if shapely.get_type_id(p) == 3]


def make_valid_polygonal(geom: Any) -> Any:
    """Repair ``geom`` and keep its area: a Polygon, a MultiPolygon, or None if nothing is left.

    ``method="structure"`` rebuilds rings by their role (shell or hole) rather
    than tracing linework, which is what a digitised boundary means; collapsed
    parts (zero-area spikes) are dropped.
    """
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    polys = polygonal_parts(fixed)
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def make_valid_array(geoms: np.ndarray) -> np.ndarray:
    """Vectorised :func:`make_valid_polygonal` on the invalid entries only."""
    out = np.asarray(geoms, dtype=object).copy()
    bad = np.flatnonzero(~shapely.is_valid(out) & ~shapely.is_missing(out))
    for i in bad:
        out[i] = make_valid_polygonal(out[i])
    return out


def polygonal(geom: Any) -> Any:
    """The positive-area polygonal part of ``geom``: a Polygon, a MultiPolygon, or None.

    Intersections, differences and repairs may leave lines, points and zero-area
    rings beside the area that matters; this keeps the area only.
    """
    parts = [p for p in polygonal_parts(geom) if shapely.area(p) > 0]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def is_geometry_array(a: np.ndarray) -> bool:
    """Whether ``a`` is an object array holding only geometries and None (vectorised; True when empty)."""
    return a.dtype == object and bool(np.all(shapely.is_valid_input(a)))


def polygonal_array(geoms: Any) -> np.ndarray:
    """:func:`polygonal` of each geometry: the polygons with area kept as they are, the rest one by one.

    Why: a province's 200,000 grid points are nearly all plain polygons; one
    vectorised test spares a Python call each, with the same result.
    """
    g = np.asarray(geoms, dtype=object)
    out = g.copy()
    if len(g) == 0:
        return out
    plain = (shapely.get_type_id(g) == 3) & (np.nan_to_num(shapely.area(g)) > 0)
    for i in np.flatnonzero(~plain):
        out[i] = polygonal(g[i])
    return out


def containing(polygons: np.ndarray, points: np.ndarray, *, boundary: bool = True) -> np.ndarray:
    """Index of the lowest-numbered polygon holding each point; -1 where none does.

    The one point-in-polygon lookup of the package (one STRtree query). With
    ``boundary=True`` a point on a polygon's edge counts as held by it
    (``intersects``); with ``False`` only interior points do (``within``).
    The lowest index wins where polygons overlap, so the answer does not depend
    on the tree's traversal order. Missing or empty points get -1.
    """
    polys = np.asarray(polygons, dtype=object)
    pts = np.asarray(points, dtype=object)
    out = np.full(len(pts), -1, dtype=np.int64)
    if len(polys) == 0 or len(pts) == 0:
        return out
    pi, gi = shapely.STRtree(polys).query(pts, predicate="intersects" if boundary else "within")
    if len(pi):
        best = np.full(len(pts), len(polys), dtype=np.int64)
        np.minimum.at(best, pi, gi)
        hit = best < len(polys)
        out[hit] = best[hit]
    return out


def reading_order(x: Any, y: Any, area: Any) -> np.ndarray:
    """Indices in reading order: bands from the north, west to east within a band.

    The band height is the square root of the median area (about one part
    high), so a few metres of northing never swap two parts of one row; ties
    go to the northern part. ``x``, ``y`` are centroids in a metric CRS.
    """
    xa, ya, aa = (np.asarray(v, dtype=float) for v in (x, y, area))
    if not (len(xa) == len(ya) == len(aa)):
        raise UsageError("x, y and area must have the same length")
    if len(xa) == 0:
        return np.zeros(0, dtype=np.int64)
    h = math.sqrt(max(float(np.median(aa)), 0.0)) or 1.0
    band = np.floor(-ya / h)
    return np.lexsort((ya * -1.0, xa, band)).astype(np.int64)
