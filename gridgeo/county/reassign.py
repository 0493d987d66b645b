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

__all__ = ["BLOCKS", "GRIDS", "MAJORITY", "Pair", "Reassignment", "points_union", "reassign", "regroup"]

#: a point joins the edited grid when more than this share of its area is inside the new outline
MAJORITY = 0.5


@dataclass(frozen=True)
class Pair:
    """A level edited by moving the whole units of the level below: the names the rules are reported in.

    ``parent`` is the level redrawn (a grid, a block), ``child`` its whole units (grid points, villages),
    ``border`` the unit neither may leave (a village, a township).
    """

    parent: str = "grid"
    child: str = "point"
    border: str = "village"


#: grids redrawn by moving grid points, inside their village
GRIDS = Pair()
#: blocks (片区) redrawn by moving villages, inside their township
BLOCKS = Pair("block", "village", "township")


@dataclass
class Reassignment:
    """What an outline does: the units moved (code -> (from parent, to parent)), the new outline of every
    parent that changed (CRS84), the rules it breaks (empty: it may be applied). ``grids`` holds the
    outlines whatever the level (named for the grids, the first level edited so)."""

    moves: dict[str, tuple[str, str]] = field(default_factory=dict)
    grids: dict[str, Any] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    level: Pair = GRIDS


def reassign(grid: str, outline: Any, *, grids: gpd.GeoDataFrame, points: gpd.GeoDataFrame,
             level: Pair = GRIDS) -> Reassignment:
    """The re-assignment of whole units that the new ``outline`` (CRS84) of ``grid`` asks for.

    Parameters
    ----------
    grids
        ``code``, ``parent`` (the border unit: village) and geometry (CRS84) of the parents near the
        outline, ``grid`` among them; a unit whose parent is not among them (an exclusive grid) may not move.
    points
        ``code``, ``parent`` (its grid) and geometry (CRS84) of every unit of those parents.
    level
        The names of the levels (:data:`GRIDS`, :data:`BLOCKS`).
    """
    metric = metric_crs(grids)
    pts = points.to_crs(metric).reset_index(drop=True)
    drawn = gpd.GeoSeries([outline], crs=grids.crs).to_crs(metric).iloc[0]
    share = shapely.area(shapely.intersection(pts.geometry.values, drawn)) / np.maximum(pts.area.to_numpy(), 1e-9)
    village = dict(zip(grids["code"].astype(str), grids["parent"].astype(str), strict=True))
    home = village.get(grid)
    parent = pts["parent"].astype(str).to_numpy()
    codes = pts["code"].astype(str).to_numpy()
    out = Reassignment(level=level)
    p, c, b = level.parent, level.child, level.border
    new_parent = parent.copy()
    for i in np.flatnonzero((share > MAJORITY) & (parent != grid)).tolist():
        if parent[i] not in village:
            out.broken.append(f"exclusive grid: point {codes[i]} belongs to {parent[i]}, not a base grid"
                              if level == GRIDS else f"{c} {codes[i]} belongs to {parent[i]}, not a {p} here")
        elif village[parent[i]] != home:
            out.broken.append(f"{b} border: {c} {codes[i]} is in {b} {village[parent[i]]}, {p} {grid} in {home}")
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
        out.broken.append(f"orphan: {c} {codes[i]} leaves {p} {grid} and touches no other {p} of {b} {home} to join")
    out.moves = {codes[i]: (parent[i], new_parent[i]) for i in np.flatnonzero(new_parent != parent).tolist()}
    _outlines(out, points, parent, new_parent, grids)
    return out


def regroup(targets: dict[str, str], *, grids: gpd.GeoDataFrame, points: gpd.GeoDataFrame,
            level: Pair = GRIDS) -> Reassignment:
    """Units moved to the parents ``targets`` names (code -> parent: a restore of earlier moves), with
    the changed parents' new outlines and the rules on them, as :func:`reassign` gives them."""
    codes = points["code"].astype(str).to_numpy()
    parent = points["parent"].astype(str).to_numpy()
    new_parent = np.array([targets.get(c, p) for c, p in zip(codes, parent, strict=True)], dtype=object)
    out = Reassignment(level=level)
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
        lv = out.level
        if not len(mine):
            out.broken.append(f"empty: {lv.parent} {g} would have no {'grid point' if lv == GRIDS else lv.child} "
                              "left")
            continue
        union = points_union(mine)
        was = before.get(g)
        if _parts(union) > max(_parts(was), 1):
            joining = ", ".join(sorted(str(c) for c, (_, to) in out.moves.items() if to == g))
            out.broken.append(f"contiguity: {lv.parent} {g} would fall into {_parts(union)} pieces "
                              f"({lv.child}s {joining})")
        out.grids[g] = union


def points_union(geoms: Any) -> Any:
    """The union of a grid's points: as a coverage (exact, fast) when they are noded as one, else by overlay."""
    try:
        return shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms)


def _parts(geom: Any) -> int:
    return 0 if geom is None or shapely.is_empty(geom) else int(shapely.get_num_geometries(geom))
