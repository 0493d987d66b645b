"""Exclusive-site footprints: the area a school, hospital, mine or compound takes out of a village.

A polygon site is its own footprint clipped to the village; a point site
takes the street block it stands in when that block is at most
``site_max_block_m2``, else a disc of ``site_radius_m`` clipped to the block,
its edge moved off the buildings it would cut. Sites are carved smallest first
and each loses what a smaller one took; a site left under ``site_min_m2``
stays in the base grids (reported in the village's stats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo._geom import containing, polygonal
from gridgeo.county import units as _units

if TYPE_CHECKING:
    from gridgeo.county.village import VillageTask

GArray = NDArray[np.object_]

__all__ = ["Footprints", "site_footprints"]


@dataclass(frozen=True)
class Footprints:
    """The sites kept as exclusive grids: each one's index in the task and its footprint (disjoint)."""

    index: list[int]
    polygons: list[Any]


def site_footprints(t: VillageTask, stats: dict[str, Any]) -> Footprints:
    """Footprints of the village's sites, smallest first, disjoint.

    ``stats`` counts how each footprint was made (``sites_from_block``,
    ``sites_from_radius``, ``sites_from_polygon``) and lists the sites dropped
    as too small (``sites_dropped``).
    """
    if len(t.site_geoms) == 0:
        return Footprints([], [])
    return _carve(t, _raw_footprints(t, stats), stats)


def _is_point(g: Any) -> bool:
    return bool(shapely.get_type_id(g) in (0, 4))  # Point / MultiPoint


def _raw_footprints(t: VillageTask, stats: dict[str, Any]) -> list[Any]:
    """Each site's footprint on its own, before the sites are made disjoint."""
    area = t.geometry
    polys: list[Any] = []
    blocks: GArray | None = None
    if any(_is_point(g) for g in t.site_geoms):
        blocks = _units.street_blocks(area, t.barriers, min_area=t.min_unit_m2)
    for g in t.site_geoms:
        if _is_point(g):
            assert blocks is not None
            polys.append(_point_footprint(t, shapely.centroid(g), blocks, stats))
        else:
            polys.append(shapely.intersection(shapely.make_valid(g), area))
            stats["sites_from_polygon"] = stats.get("sites_from_polygon", 0) + 1
    return polys


def _point_footprint(t: VillageTask, pt: Any, blocks: GArray, stats: dict[str, Any]) -> Any:
    """A point site's footprint: its small street block, else a disc clipped to the block."""
    hit = int(containing(blocks, np.asarray([pt], dtype=object))[0])
    block = blocks[hit] if hit >= 0 else t.geometry
    if hit >= 0 and shapely.area(block) <= t.site_max_block_m2:
        stats["sites_from_block"] = stats.get("sites_from_block", 0) + 1
        return block
    disc = shapely.intersection(block, shapely.buffer(pt, t.site_radius_m, quad_segs=8))
    stats["sites_from_radius"] = stats.get("sites_from_radius", 0) + 1
    return _snap_to_buildings(disc, block, t.items)


def _carve(t: VillageTask, polys: list[Any], stats: dict[str, Any]) -> Footprints:
    """Smallest first, each site loses what a smaller one took; too small ones are dropped."""
    order = sorted(range(len(polys)), key=lambda i: (shapely.area(polys[i]), t.site_ids[i]))
    taken: Any = None
    keep_idx: list[int] = []
    keep_poly: list[Any] = []
    for i in order:
        p = polys[i] if taken is None else shapely.difference(polys[i], taken)
        p = polygonal(p)
        if p is None or shapely.area(p) < t.site_min_m2:
            stats.setdefault("sites_dropped", []).append(t.site_names[i] or t.site_ids[i])
            continue
        keep_idx.append(i)
        keep_poly.append(p)
        taken = p if taken is None else shapely.union(taken, p)
    return Footprints(keep_idx, keep_poly)


def _snap_to_buildings(disc: Any, block: Any, items: GArray) -> Any:
    """Move a disc footprint's edge off the buildings it would cut.

    A building mostly inside the disc joins it (within its street block); one
    mostly outside leaves it. Why: an exclusive grid's edge through a house
    would put one household in two grids.
    """
    if len(items) == 0 or shapely.get_type_id(items[0]) not in (3, 6):
        return disc
    rim = shapely.boundary(disc)
    hit = items[shapely.STRtree(items).query(rim, predicate="intersects")]
    if len(hit) == 0:
        return disc
    inside = shapely.area(shapely.intersection(hit, disc)) >= 0.5 * shapely.area(hit)
    add = [shapely.intersection(b, block) for b in hit[inside]]
    out = shapely.union_all([disc, *add]) if add else disc
    if (~inside).any():
        out = shapely.difference(out, shapely.union_all(hit[~inside]))
    return polygonal(out) or disc
