"""The tiling check of one village (:func:`check_village`): what every built or reused village must pass.

Why a module of its own: the check is the contract between the village pipeline, the fallback ladder and
a build that takes villages from an earlier file; each calls it (through
:mod:`gridgeo.county.village`, which re-exports it), and it is one place to read what "tiles" means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from gridgeo.county._parts import union
from gridgeo.county.atomic import check_units
from gridgeo.county.micro import check_sublevels
from gridgeo.errors import GeometryError

if TYPE_CHECKING:
    from gridgeo.county.village import VillageOut, VillageTask

__all__ = ["check_village"]


def check_village(t: VillageTask, out: VillageOut, *, slack_m: float = 0.0) -> None:
    """Grids + exclusive grids tile the village; points tile their grid; units their point; every item in one
    point and one unit of that point.

    ``slack_m`` widens the village tolerance by that many metres times the
    village's perimeter: a village taken from an earlier build comes with its
    written coordinates (rounded, :data:`gridgeo.county.coverage.ROUNDING_M`),
    while ``t.geometry`` is the input's.

    Raises
    ------
    GeometryError
        Naming the village and what does not hold.
    """
    tol = t.tolerance_m2
    tol_village = tol + slack_m * float(shapely.length(t.geometry))
    area = float(shapely.area(t.geometry))
    level2 = [r["geometry"] for r in out.grids] + [r["geometry"] for r in out.exclusive]
    total = float(np.sum(shapely.area(np.asarray(level2, dtype=object)))) if level2 else 0.0
    covered = union(np.asarray(level2, dtype=object)) if level2 else shapely.Polygon()
    sym = float(shapely.area(shapely.symmetric_difference(covered, t.geometry)))
    overlap = max(total - float(shapely.area(covered)), 0.0)
    out.stats["tiling"] = {"village_m2": round(area, 3), "grids_m2": round(total, 3), "gap_m2": round(sym, 6),
                           "overlap_m2": round(overlap, 6)}
    if sym > tol_village or overlap > tol:
        raise GeometryError(f"village {t.code} {t.name}: grids do not tile the village "
                            f"(gap {sym:.3f} m², overlap {overlap:.3f} m², tolerance {tol_village:g} m²)")
    pt_area: dict[str, float] = {}
    for r in out.points:
        pt_area[r["parent"]] = pt_area.get(r["parent"], 0.0) + float(shapely.area(r["geometry"]))
    worst = 0.0
    for r in out.grids + out.exclusive:
        worst = max(worst, abs(pt_area.get(r["code"], 0.0) - float(shapely.area(r["geometry"]))))
    out.stats["tiling"]["points_worst_m2"] = round(worst, 6)
    if worst > tol:
        raise GeometryError(f"village {t.code} {t.name}: grid points do not tile their grid "
                            f"(worst difference {worst:.3f} m², tolerance {tol:g} m²)")
    orphans = sum(c is None for c in out.item_point)
    if orphans:
        raise GeometryError(f"village {t.code} {t.name}: {orphans} building(s)/household(s) in no grid point")
    if len(t.items):
        by_code = {r["code"]: r["geometry"] for r in out.points}
        mine = np.asarray([by_code[c] for c in out.item_point], dtype=object)
        polys = np.asarray(list(by_code.values()), dtype=object)
        shapely.prepare(polys)  # each point is tested against many items
        bad = int(np.sum(~shapely.intersects(mine, t.items)))  # prepared: the first argument
        if bad:
            raise GeometryError(f"village {t.code} {t.name}: {bad} building(s)/household(s) lie outside the grid "
                                "point they were assigned to")
        out.stats["items"] = len(t.items)
        if shapely.get_type_id(t.items[0]) in (3, 6):
            # only a building not within its point can be cut by the point's edge (most are within: cheap)
            maybe = np.flatnonzero(~shapely.contains(mine, t.items))
            ia = shapely.area(t.items[maybe])
            inside = shapely.area(shapely.intersection(t.items[maybe], mine[maybe]))
            out.stats["items_cut"] = int(np.sum(inside < 0.999 * ia - 1e-9))
        else:
            out.stats["items_cut"] = 0
        shapely.destroy_prepared(polys)  # the rows keep plain polygons
    check_sublevels(t, out)
    check_units(t, out)
