"""Every level as one clean polygonal coverage, valid in the CRS it is written in.

Why this stage exists
---------------------
Villages are built one by one in the metric CRS, so two neighbouring grids
in different villages (or two points cut by different splits) need not
share vertices along their common edge: a cut that ends on a village border
puts a vertex there that the grid across the border lacks. Such a layer is
not a clean coverage (``shapely.coverage_is_valid`` is false), and QGIS's
topology checker, PostGIS and every coverage union reject it. Reprojection to
the geographic output CRS can also turn a sliver that was valid in metres
into a self-intersection. Both are fixed here, on what is about to be
written, in the output CRS:

1. the finest pieces (grid points; a grid, exclusive grid or village with no
   finer unit stands for itself) are cleaned as one coverage
   (``shapely.coverage_clean``: near-coincident vertices snapped, overlaps
   merged into the neighbour with the longest shared border, every shared
   edge made identical);
2. coordinates are rounded to ``decimals`` (1e-7 degree, about 1 cm: what
   the service serves, so its rounding changes nothing), vertex by vertex,
   so a vertex shared before is shared after; where rounding breaks a
   polygon, the whole set is snap-rounded together instead
   (:func:`_snap_round`: all edges noded on the precision grid at once);
3. every coarser level is the coverage union of its members' pieces: grids
   and exclusive grids of their points, villages of their grids, blocks and
   townships of their villages. Each level then tiles its parent exactly
   and shares its parent's vertices, by construction.

:func:`verify_levels` then checks validity and ``coverage_is_valid`` per
level and raises :class:`~gridgeo.errors.GeometryError` naming the level and
the first units at fault, so nothing invalid is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo._geom import polygonal
from gridgeo.errors import GeometryError

log = logging.getLogger(__name__)

__all__ = ["COVERAGE_LEVELS", "DECIMALS_DEGREES", "ROUNDING_M", "clean_levels", "verify_levels"]

GArray = NDArray[np.object_]

#: The layers that must each be a clean coverage; "grids" is checked together with "exclusive".
COVERAGE_LEVELS: tuple[str, ...] = ("townships", "blocks", "villages", "grids", "points")
#: Decimal places kept in a geographic output CRS (1e-7 degree is about 1 cm).
DECIMALS_DEGREES = 7
#: How far (m) rounding to :data:`DECIMALS_DEGREES` can move a vertex: half a unit of the last place,
#: on both axes, at a degree's longest (111.32 km). An area compared with unrounded input may differ
#: by up to about this times the perimeter.
ROUNDING_M = 0.5 * 10.0 ** -DECIMALS_DEGREES * 111_320.0 * 2 ** 0.5


@dataclass(frozen=True)
class _Pieces:
    """The finest pieces and, for each, the grid (or exclusive grid) and village it belongs to."""

    geoms: GArray
    point: NDArray[np.int64]  # row in the points layer, -1 for a piece that is a whole coarser unit
    lvl2: list[str | None]
    village: list[str]


def clean_levels(layers: dict[str, gpd.GeoDataFrame], *, metric: pyproj.CRS,
                 decimals: int = DECIMALS_DEGREES) -> dict[str, Any]:
    """Replace the geometry of every level by one clean coverage (module notes); return what changed.

    Parameters
    ----------
    layers
        The built layers in the output CRS: ``points``, ``grids``,
        ``exclusive``, ``villages``, ``blocks``, ``townships`` (changed in place).
    metric
        The county's metric CRS, for the area each unit gained or lost.
    decimals
        Decimal places kept (7 for degrees).

    Returns
    -------
    dict
        ``snap_rounded`` (whether the global fallback was needed),
        ``max_area_change_m2`` per level and ``changed`` (units whose area
        moved by more than 1 m²).
    """
    pieces = _pieces(layers)
    if not len(pieces.geoms):
        return {"pieces": 0}
    before = {lvl: layers[lvl].geometry.values.copy() for lvl in _present(layers)}
    cleaned = shapely.coverage_clean(pieces.geoms)  # type: ignore[attr-defined]  # shapely >= 2.2, GEOS >= 3.14
    rounded, snap = _round(cleaned, decimals)
    _set_levels(layers, pieces, rounded)
    report: dict[str, Any] = {"pieces": len(rounded), "snap_rounded": snap}
    report.update(_area_changes(layers, before, metric))
    return report


def verify_levels(layers: Mapping[str, gpd.GeoDataFrame]) -> dict[str, dict[str, int]]:
    """Check that every polygon is valid and each level is a clean coverage, as written.

    Raises
    ------
    GeometryError
        Naming the level, how many units are at fault, and the first codes.
    """
    out: dict[str, dict[str, int]] = {}
    for lvl in COVERAGE_LEVELS:
        if lvl not in layers or not len(layers[lvl]):
            continue
        frames = [layers[lvl]] + ([layers["exclusive"]] if lvl == "grids" and "exclusive" in layers else [])
        geoms = np.concatenate([np.asarray(f.geometry.values, dtype=object) for f in frames])
        codes = [str(c) for f in frames for c in f["code"]]
        bad = np.flatnonzero(~shapely.is_valid(geoms) | shapely.is_empty(geoms))
        if len(bad):
            why = shapely.is_valid_reason(geoms[bad[0]])
            raise GeometryError(f"{lvl}: {len(bad)} invalid polygon(s) about to be written, first "
                                f"{', '.join(codes[i] for i in bad[:5])} ({why}); this is a bug")
        edges = shapely.coverage_invalid_edges(geoms)
        mis = np.flatnonzero(~shapely.is_empty(edges))
        if len(mis):
            raise GeometryError(f"{lvl}: {len(mis)} unit(s) do not share vertices with their neighbours "
                                f"(not a clean coverage), first {', '.join(codes[i] for i in mis[:5])}; this is a bug")
        out[lvl] = {"units": len(geoms), "invalid": 0, "misnoded": 0}
    return out


# --------------------------------------------------------------------------------------
def _present(layers: Mapping[str, gpd.GeoDataFrame]) -> list[str]:
    return [lvl for lvl in (*COVERAGE_LEVELS, "exclusive") if lvl in layers and len(layers[lvl])]


def _pieces(layers: Mapping[str, gpd.GeoDataFrame]) -> _Pieces:
    """Points, then every grid / exclusive grid without points, then every village without either."""
    geoms: list[Any] = []
    point: list[int] = []
    lvl2: list[str | None] = []
    village: list[str] = []
    pts = layers.get("points")
    if pts is not None and len(pts):
        geoms += list(pts.geometry.values)
        point += list(range(len(pts)))
        lvl2 += [str(p) for p in pts["parent"]]
        village += [str(v) for v in pts["village"]]
    have2 = set(lvl2)
    for name in ("grids", "exclusive"):
        g = layers.get(name)
        if g is None or not len(g):
            continue
        for code, parent, geom in zip(g["code"], g["parent"], g.geometry.values, strict=True):
            if str(code) not in have2:
                _add(geoms, point, lvl2, village, (geom, -1, str(code), str(parent)))
    have_v = set(village)
    vil = layers.get("villages")
    if vil is not None:
        for code, geom in zip(vil["code"], vil.geometry.values, strict=True):
            if str(code) not in have_v:
                _add(geoms, point, lvl2, village, (geom, -1, None, str(code)))
    arr = np.asarray([polygonal(g) for g in geoms], dtype=object)
    return _Pieces(arr, np.asarray(point, dtype=np.int64), lvl2, village)


def _add(geoms: list[Any], point: list[int], lvl2: list[str | None], village: list[str],
         row: tuple[Any, int, str | None, str]) -> None:
    geoms.append(row[0])
    point.append(row[1])
    lvl2.append(row[2])
    village.append(row[3])


def _round(geoms: GArray, decimals: int) -> tuple[GArray, bool]:
    """Coordinates rounded vertex by vertex; the whole set snap-rounded together if that breaks any polygon."""
    grid = 10.0 ** -decimals
    rounded = shapely.set_precision(geoms, grid, mode="pointwise")
    ok = shapely.is_valid(rounded) & ~shapely.is_empty(rounded)
    if bool(ok.all()) and shapely.coverage_is_valid(rounded):
        return np.asarray(rounded, dtype=object), False
    log.info("rounding to %g broke %d polygon(s): snap-rounding the whole coverage", grid, int((~ok).sum()))
    return _snap_round(geoms, grid), True


def _snap_round(geoms: GArray, grid: float) -> GArray:
    """Every edge noded on the precision grid at once, faces given back to the piece they lie in.

    Why: snap-rounding all edges together (one overlay with a fixed
    precision model) yields faces whose shared edges are identical and whose
    coordinates are on the grid; a face goes to the piece holding a point of
    its interior, so every piece keeps its place.
    """
    lines = shapely.union_all(shapely.boundary(geoms), grid_size=grid)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))), dtype=object)
    inside = shapely.point_on_surface(faces)
    tree = shapely.STRtree(geoms)
    fi, gi = tree.query(inside, predicate="within")
    owner = np.full(len(faces), -1, dtype=np.int64)
    owner[fi[::-1]] = gi[::-1]  # the lowest-index piece wins where pieces touch
    out = np.empty(len(geoms), dtype=object)
    for k in range(len(geoms)):
        mine = faces[owner == k]
        out[k] = shapely.coverage_union_all(mine) if len(mine) else shapely.Polygon()
    return out


def _unite(geoms: GArray, keys: Sequence[str | None]) -> dict[str, Any]:
    """key -> coverage union of the pieces with that key (None keys skipped)."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k is not None:
            groups.setdefault(k, []).append(i)
    return {k: polygonal(shapely.coverage_union_all(geoms[idx])) if len(idx) > 1 else geoms[idx[0]]
            for k, idx in groups.items()}


def _set_levels(layers: dict[str, gpd.GeoDataFrame], p: _Pieces, rounded: GArray) -> None:
    """Each level's geometry from the rounded pieces: points as they are, coarser levels as unions."""
    pts = layers.get("points")
    if pts is not None and len(pts):
        mine = p.point >= 0
        geo = np.empty(len(pts), dtype=object)
        geo[p.point[mine]] = rounded[mine]
        pts.set_geometry(list(geo), inplace=True, crs=pts.crs)
    lvl2 = _unite(rounded, p.lvl2)
    for name in ("grids", "exclusive"):
        _replace(layers, name, lvl2)
    vil = _unite(rounded, p.village)
    _replace(layers, "villages", vil)
    vgeoms = np.asarray([vil[str(c)] for c in layers["villages"]["code"]], dtype=object) \
        if "villages" in layers and len(layers["villages"]) else np.zeros(0, dtype=object)
    for name, key in (("blocks", "block"), ("townships", "parent")):
        if name in layers and len(layers[name]) and key in layers["villages"].columns:
            keys = [None if k is None or (isinstance(k, float) and np.isnan(k)) else str(k)
                    for k in layers["villages"][key]]
            _replace(layers, name, _unite(vgeoms, keys))


def _replace(layers: dict[str, gpd.GeoDataFrame], name: str, by_code: Mapping[str, Any]) -> None:
    """A layer's geometries replaced by ``by_code`` where it has its code (kept where it has none)."""
    g = layers.get(name)
    if g is None or not len(g):
        return
    new = [by_code.get(str(c), old) for c, old in zip(g["code"], g.geometry.values, strict=True)]
    g.set_geometry(new, inplace=True, crs=g.crs)


def _area_changes(layers: Mapping[str, gpd.GeoDataFrame], before: Mapping[str, GArray],
                  metric: pyproj.CRS) -> dict[str, Any]:
    """Largest area change per level (m², metric CRS) and how many units moved by more than 1 m²."""
    worst: dict[str, float] = {}
    changed: dict[str, int] = {}
    for lvl, old in before.items():
        g = layers[lvl]
        a0 = gpd.GeoSeries(old, crs=g.crs).to_crs(metric).area.to_numpy()
        a1 = g.geometry.to_crs(metric).area.to_numpy()
        d = np.abs(a1 - a0)
        worst[lvl] = round(float(d.max()), 4) if len(d) else 0.0
        changed[lvl] = int((d > 1.0).sum())
    return {"max_area_change_m2": worst, "changed_over_1m2": changed}
