"""A grid's outline redrawn by hand, applied as grid points moving between grids (re-assignment).

Why whole points: every grid is the union of its grid points (level 3 tiles level 2 exactly), so a
drawn outline is read as which points it takes: a point joins the edited grid when most of its area
falls inside the new outline, a point of the edited grid that the outline leaves joins the neighbouring
grid it shares the longest border with, and every grid that changed is again the union of its points.
The tiling stays exact and the coverage clean whatever was drawn, and each household follows its point.
(The build's finer units, the street blocks a point is made of, are not persisted yet: a point is the
smallest piece moved here.)

Hard rules, checked on the result, every broken one named with the units concerned (nothing is applied
then): a point never leaves its village, an exclusive grid's points stay in it, no grid is left without
points, and no grid falls into more pieces than it had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gridgeo.data.crs import metric_crs

__all__ = ["MAJORITY", "Reassignment", "points_union", "reassign", "regroup"]

#: a point joins the edited grid when more than this share of its area is inside the new outline
MAJORITY = 0.5


@dataclass
class Reassignment:
    """What an outline does: the points moved (code -> (from grid, to grid)), the new outline of every grid
    that changed (CRS84), the rules it breaks (empty: it may be applied)."""

    moves: dict[str, tuple[str, str]] = field(default_factory=dict)
    grids: dict[str, Any] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)


def reassign(grid: str, outline: Any, *, grids: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> Reassignment:
    """The re-assignment of grid points that the new ``outline`` (CRS84) of ``grid`` asks for.

    Parameters
    ----------
    grids
        ``code``, ``parent`` (village) and geometry (CRS84) of the grids near the outline, ``grid`` among
        them; a point whose parent is not among them (an exclusive grid) may not move.
    points
        ``code``, ``parent`` (its grid) and geometry (CRS84) of every point of those grids.
    """
    metric = metric_crs(grids)
    pts = points.to_crs(metric).reset_index(drop=True)
    drawn = gpd.GeoSeries([outline], crs=grids.crs).to_crs(metric).iloc[0]
    share = shapely.area(shapely.intersection(pts.geometry.values, drawn)) / np.maximum(pts.area.to_numpy(), 1e-9)
    village = dict(zip(grids["code"].astype(str), grids["parent"].astype(str), strict=True))
    home = village.get(grid)
    parent = pts["parent"].astype(str).to_numpy()
    codes = pts["code"].astype(str).to_numpy()
    out = Reassignment()
    new_parent = parent.copy()
    for i in np.flatnonzero((share > MAJORITY) & (parent != grid)).tolist():
        if parent[i] not in village:
            out.broken.append(f"exclusive grid: point {codes[i]} belongs to {parent[i]}, not a base grid")
        elif village[parent[i]] != home:
            out.broken.append(f"village border: point {codes[i]} is in village {village[parent[i]]}, "
                              f"grid {grid} in {home}")
        else:
            new_parent[i] = grid
    leaving = np.flatnonzero((share <= MAJORITY) & (parent == grid)).tolist()
    while leaving:  # until no leaving point finds a neighbour: a strip given away flows on from its edge
        left = []
        for i in leaving:
            to = _neighbour(i, pts, new_parent, grid, village=village, home=home)
            if to is None:
                left.append(i)
            else:
                new_parent[i] = to
        if len(left) == len(leaving):
            break
        leaving = left
    for i in leaving:
        out.broken.append(f"orphan: point {codes[i]} leaves grid {grid} and touches no other grid of "
                          f"village {home} to join")
    out.moves = {codes[i]: (parent[i], new_parent[i]) for i in np.flatnonzero(new_parent != parent).tolist()}
    _outlines(out, points, parent, new_parent, grids)
    return out


def regroup(targets: dict[str, str], *, grids: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> Reassignment:
    """Points moved to the grids ``targets`` names (point code -> grid: a restore of earlier moves), with
    the changed grids' new outlines and the rules on them, as :func:`reassign` gives them."""
    codes = points["code"].astype(str).to_numpy()
    parent = points["parent"].astype(str).to_numpy()
    new_parent = np.array([targets.get(c, p) for c, p in zip(codes, parent, strict=True)], dtype=object)
    out = Reassignment()
    out.moves = {codes[i]: (parent[i], new_parent[i]) for i in np.flatnonzero(new_parent != parent).tolist()}
    _outlines(out, points, parent, new_parent, grids)
    return out


def _neighbour(i: int, pts: gpd.GeoDataFrame, new_parent: np.ndarray, grid: str, *, village: dict[str, str],
               home: str | None) -> str | None:
    """The grid of the same village, other than ``grid``, whose points share the longest border with point i."""
    geom = pts.geometry.values[i]
    near = np.flatnonzero(shapely.intersects(pts.geometry.values, geom))
    border: dict[str, float] = {}
    for j in near.tolist():
        g = str(new_parent[j])
        if j == i or g == grid or village.get(g) != home:
            continue
        border[g] = border.get(g, 0.0) + float(shapely.length(shapely.intersection(geom.boundary,
                                                                                  pts.geometry.values[j].boundary)))
    best = max(border.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    return None if best is None or best[1] <= 0 else best[0]


def _outlines(out: Reassignment, points: gpd.GeoDataFrame, parent: np.ndarray, new_parent: np.ndarray,
              grids: gpd.GeoDataFrame) -> None:
    """Each changed grid as the coverage union of its points (CRS84), and the rules on the results."""
    changed = sorted({g for pair in out.moves.values() for g in pair})
    before = dict(zip(grids["code"].astype(str), grids.geometry.values, strict=True))
    geoms = points.geometry.values
    for g in changed:
        mine = geoms[new_parent == g]
        if not len(mine):
            out.broken.append(f"empty: grid {g} would have no grid point left")
            continue
        union = points_union(mine)
        was = before.get(g)
        if _parts(union) > max(_parts(was), 1):
            out.broken.append(f"contiguity: grid {g} would fall into {_parts(union)} pieces "
                              f"(points {', '.join(sorted(str(c) for c, (_, to) in out.moves.items() if to == g))})")
        out.grids[g] = union


def points_union(geoms: Any) -> Any:
    """The union of a grid's points: as a coverage (exact, fast) when they are noded as one, else by overlay."""
    try:
        return shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms)


def _parts(geom: Any) -> int:
    return 0 if geom is None or shapely.is_empty(geom) else int(shapely.get_num_geometries(geom))
