"""The fallback ladder: no village that can be tiled at all stops the county build.

Why: a county has thousands of villages drawn by many hands, and one
village whose roads, group lines or buildings make GEOS fail (a
``TopologyException``), or whose faces come out a few square metres short,
used to stop the whole build. Each village is now built by a ladder of
methods, best first; the first whose result passes
:func:`~gridgeo.county.village.check_village` is taken, and the rung it needed
is recorded, so a county is built and the few villages to look at are named.

Rungs (:data:`RUNGS`), each from the village's own inputs
---------------------------------------------------------
0. ``pipeline`` -- the stages of :mod:`gridgeo.county.village` as they are.
1. ``snapped`` -- the same stages on inputs snapped to a :data:`GRID_M`
   precision grid and onto the village outline (:func:`snap_task`: barriers,
   groups, sites and buildings; buildings made valid; the outline kept).
   Nearly coincident lines become coincident, which is what most noding
   failures and slivers need.
2. ``coarse`` -- snapped, no barrier cuts and no heavy-face splitting: the
   units are the villager-group polygons (or the village itself) with the
   sites cut out; grids per group, points as the engine can make them.
3. ``voronoi`` -- snapped; units are the Voronoi cells of whole buildings
   (:func:`building_cells`: the cell of each building's representative
   point, with the building's whole footprint moved into it, so no building is
   cut), grouped into grids and points by the partition engine within the
   bounds. Sites are kept when their footprints can still be made (else made
   without the barriers, else dropped and reported).
4. ``whole`` -- the village as one grid and one point, sites dropped: it
   always tiles, so the build goes on and the village is named in the report.

A rung fails on :data:`RECOVERABLE` errors from any stage or from the check;
anything else (a usage error, an interrupt) goes on as before. Every rung is
deterministic (the same seeds as the pipeline), so the same inputs take the
same rung and give the same result. ``VillageOut.stats["fallback"]`` holds the
rung taken and one line per rung that failed (its stage and error); a village
that fails every rung raises :class:`~gridgeo.errors.GeometryError` naming its
code, name and the last rung's stage.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.errors import ShapelyError

from gridgeo._geom import make_valid_polygonal, polygonal
from gridgeo.county.sites import Footprints, site_footprints
from gridgeo.county.village import Method, VillageOut, VillageTask, build_village
from gridgeo.errors import GeometryError

log = logging.getLogger(__name__)

__all__ = ["GRID_M", "RECOVERABLE", "RUNGS", "Rung", "build_rung", "build_with_fallbacks", "building_cells",
           "snap_task"]

GArray = NDArray[np.object_]

#: Precision grid (m) of the ``snapped`` rung and those after it: far below anything drawn on a map,
#: far above the float noise that makes nearly coincident lines fail to node.
GRID_M = 0.01

#: What moves a village to the next rung: a geometry that cannot be used or tiled (our check and the
#: unit builders raise GeometryError), GEOS failing (ShapelyError, GEOSException among them), and the
#: partition engine giving up on the units it was handed (RuntimeError).
RECOVERABLE: tuple[type[BaseException], ...] = (GeometryError, ShapelyError, RuntimeError)

_EMPTY = np.zeros(0, dtype=object)


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _same(t: VillageTask) -> VillageTask:
    return t


def snap_task(t: VillageTask) -> VillageTask:
    """The task with its lines, groups, sites and items on a :data:`GRID_M` grid and snapped onto the outline.

    Why: nearly coincident linework (a group line a few nanometres off the
    village outline, two roads drawn twice) is what makes noding fail or
    leave slivers; on a common grid, and with vertices within :data:`GRID_M`
    of the outline moved onto it, such lines coincide exactly. The village
    outline itself is kept as given (repaired only if invalid), so the grids
    still tile the village the other layers hold.

    Buildings are made valid first; one that snapping would erase or move off
    the village keeps its repaired footprint (a household is never lost).
    Barriers that collapse are dropped; groups and sites keep their places
    (their codes and names are aligned with them). Later operations run in
    floating point (:func:`_on_grid`).
    """
    area = _valid_area(t.geometry)
    rim = shapely.boundary(area)

    def fit(g: GArray) -> GArray:
        return np.asarray(shapely.snap(_on_grid(g), rim, GRID_M), dtype=object) if len(g) else g

    bars = fit(t.barriers)
    bars = bars[~shapely.is_empty(bars)] if len(bars) else bars
    return dataclasses.replace(t, geometry=area, barriers=bars, group_geoms=fit(t.group_geoms),
                               site_geoms=fit(t.site_geoms), items=_snap_items(t.items, area))


def _on_grid(g: Any) -> Any:
    """``g`` with its coordinates on the :data:`GRID_M` grid and no precision model attached.

    Why detach it: a geometry that carries one makes every later operation
    snap-round its output, each on its own, so two operations that share an
    edge can round it differently (slivers between units that should meet).
    """
    return shapely.set_precision(shapely.set_precision(g, GRID_M), 0.0)


def _snap_items(items: GArray, area: Any) -> GArray:
    if len(items) == 0:
        return items
    fixed = np.asarray(items, dtype=object).copy()
    poly = np.isin(shapely.get_type_id(fixed), (3, 6))
    for i in np.flatnonzero(poly & ~shapely.is_valid(fixed)).tolist():
        fixed[i] = make_valid_polygonal(fixed[i]) or fixed[i]
    snapped = _on_grid(fixed)
    gone = shapely.is_empty(snapped) | (poly & (shapely.area(snapped) <= 0))
    gone |= shapely.intersects(fixed, area) & ~shapely.intersects(snapped, area)
    snapped[gone] = fixed[gone]
    return np.asarray(snapped, dtype=object)


def _coarse_task(t: VillageTask) -> VillageTask:
    return dataclasses.replace(snap_task(t), barriers=_EMPTY)


def _whole_task(t: VillageTask) -> VillageTask:
    """One grid drawn over one unit: no barriers, no groups, no household labels."""
    return dataclasses.replace(t, barriers=_EMPTY, use_groups=False, item_labels=None)


def _valid_area(g: Any) -> Any:
    return g if shapely.is_valid(g) else (make_valid_polygonal(g) or g)


# --------------------------------------------------------------------------------------
# sites and faces of the fallback rungs
# --------------------------------------------------------------------------------------
def _drop_sites(t: VillageTask, st: dict[str, Any]) -> Footprints:
    """No exclusive grid: every site stays in the base grids and is reported as dropped."""
    if len(t.site_geoms):
        st.setdefault("sites_dropped", []).extend(n or i for n, i in zip(t.site_names, t.site_ids, strict=True))
    return Footprints([], [])


def _sites_if_they_fit(t: VillageTask, st: dict[str, Any]) -> Footprints:
    """The site footprints as the pipeline makes them, else without the barriers, else none."""
    for task in (t, dataclasses.replace(t, barriers=_EMPTY)):
        mine: dict[str, Any] = {}
        try:
            fp = site_footprints(task, mine)
        except RECOVERABLE as err:
            log.debug("village %s: site footprints failed (%s)", t.code, err)
            continue
        st.update(mine)
        return fp
    return _drop_sites(t, st)


def _whole_face(t: VillageTask, site_polys: list[Any]) -> GArray:
    return np.asarray([_valid_area(t.geometry)], dtype=object)


def _voronoi_faces(t: VillageTask, site_polys: list[Any]) -> GArray:
    """The Voronoi cells of the buildings outside the sites, then the site footprints."""
    area = _valid_area(t.geometry)
    base = polygonal(shapely.difference(area, shapely.union_all(site_polys))) if site_polys else area
    cells = building_cells(base, t.items) if base is not None else []
    return np.asarray([*cells, *site_polys], dtype=object)


def building_cells(area: Any, items: GArray) -> list[Any]:
    """``area`` cut into one cell per building (or household point), never through a building.

    Each item's representative point inside ``area`` is a Voronoi seed
    (items on one point share a cell); the cells are clipped to ``area``; then
    each building's whole footprint (within ``area``) is taken out of the
    cells it pokes into and given to its own cell, the lower index keeping
    the overlap of two buildings. The cells tile ``area``: what is not a
    building is cut by the Voronoi edges, every building lies in one cell.
    Cells come in the order of their seeds' coordinates (x, then y).
    """
    if len(items) == 0:
        return [area]
    seed = shapely.point_on_surface(items)
    idx = np.flatnonzero(shapely.intersects(seed, area))
    if len(idx) == 0:
        return [area]
    uniq, inv = np.unique(shapely.get_coordinates(seed[idx]), axis=0, return_inverse=True)
    if len(uniq) < 2:
        return [area]
    vor = shapely.voronoi_polygons(shapely.multipoints(uniq), extend_to=area, ordered=True)
    cells = shapely.intersection(shapely.get_parts(vor), area)
    if np.isin(shapely.get_type_id(items[idx]), (3, 6)).all():
        cells = _move_buildings_in(cells, _claims(items[idx], area), np.asarray(inv).reshape(-1))
    return [p for p in (polygonal(c) for c in cells) if p is not None]


def _claims(buildings: GArray, area: Any) -> GArray:
    """Each building's footprint within ``area``, the lower index keeping what two of them share."""
    fp = np.asarray([_valid_area(b) for b in buildings], dtype=object)
    fp = shapely.intersection(fp, area)
    a, b = shapely.STRtree(fp).query(fp, predicate="intersects")
    keep = a < b
    out = fp.copy()
    earlier: dict[int, list[int]] = {}
    for i, j in zip(a[keep].tolist(), b[keep].tolist(), strict=True):
        earlier.setdefault(j, []).append(i)
    for j in sorted(earlier):
        out[j] = shapely.difference(fp[j], shapely.union_all(fp[earlier[j]]))
    return out


def _move_buildings_in(cells: GArray, claims: GArray, cell_of: NDArray[np.int64]) -> GArray:
    """Each cell without the buildings that poke into it, joined with the buildings of its own seeds."""
    ci, bi = shapely.STRtree(claims).query(cells, predicate="intersects")
    poking: dict[int, list[int]] = {}
    for k, j in zip(ci.tolist(), bi.tolist(), strict=True):
        poking.setdefault(k, []).append(j)
    own: dict[int, list[int]] = {}
    for j, k in enumerate(cell_of.tolist()):
        own.setdefault(k, []).append(j)
    out = cells.copy()
    for k in range(len(cells)):
        free = shapely.difference(cells[k], shapely.union_all(claims[poking[k]])) if k in poking else cells[k]
        out[k] = shapely.union_all([free, *claims[own[k]]]) if k in own else free
    return np.asarray(out, dtype=object)


# --------------------------------------------------------------------------------------
# the ladder
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rung:
    """One way of building a village: the task it starts from and the method of its sites and units."""

    name: str
    prepare: Callable[[VillageTask], VillageTask]
    method: Method


#: Best first; see the module notes.
RUNGS: tuple[Rung, ...] = (
    Rung("pipeline", _same, Method()),
    Rung("snapped", snap_task, Method()),
    Rung("coarse", _coarse_task, Method(split=False)),
    Rung("voronoi", snap_task, Method(faces=_voronoi_faces, split=False, sites=_sites_if_they_fit)),
    Rung("whole", _whole_task, Method(faces=_whole_face, split=False, sites=_drop_sites)),
)


def build_rung(t: VillageTask, rung: Rung | str) -> VillageOut:
    """The village built by one rung, checked (:func:`~gridgeo.county.village.check_village`).

    Raises
    ------
    GeometryError, ShapelyError, RuntimeError
        What the rung raised; ``out.stage`` is lost with it (use
        :func:`build_with_fallbacks` to know the stage).
    """
    r = _rung(rung)
    return build_village(r.prepare(t), method=r.method)


def build_with_fallbacks(t: VillageTask) -> VillageOut:
    """The village built by the first rung of :data:`RUNGS` whose result tiles (the build's worker function).

    Raises
    ------
    GeometryError
        Every rung failed: names the village's code and name, and the last
        rung's stage and error.
    """
    failed: list[str] = []
    spent = 0.0
    for rung in RUNGS:
        out = VillageOut(code=t.code, stage="prepare")
        t0 = time.perf_counter()
        try:
            build_village(rung.prepare(t), method=rung.method, out=out)
        except RECOVERABLE as err:
            spent += time.perf_counter() - t0
            line = f"{rung.name} failed at {out.stage}: {_why(t, err)}"
            log.info("village %s %s: %s", t.code, t.name, line)
            failed.append(line)
            continue
        if failed:
            out.stats["fallback"] = {"rung": rung.name, "name": t.name, "failed": failed}
            out.seconds["fallback"] = spent
        return out
    raise GeometryError(f"village {t.code} {t.name}: no rung of the fallback ladder tiles it "
                        f"(tried {', '.join(r.name for r in RUNGS)}); the last, {failed[-1]}")


def _rung(rung: Rung | str) -> Rung:
    if isinstance(rung, Rung):
        return rung
    for r in RUNGS:
        if r.name == rung:
            return r
    raise KeyError(f"no rung {rung!r}; rungs: {', '.join(r.name for r in RUNGS)}")


def _why(t: VillageTask, err: BaseException) -> str:
    """One line for the error: its type unless a GeometryError, without a repeat of the village's name."""
    msg = (str(err).strip().splitlines() or [""])[0]
    msg = re.sub(rf"^village {re.escape(t.code)}( {re.escape(t.name)})?( \(stage \w+\))?: ", "", msg)
    kind = "" if isinstance(err, GeometryError) else f"{type(err).__name__}: "
    return (kind + msg)[:300]
