"""The atomic units (layer ``units``): the pieces every level of a village is made of, persisted.

Why persisted
-------------
Each village's grids and points are unions of units: the street blocks the
barriers cut it into and the pieces heavy blocks are split into
(:func:`gridgeo.county.village._make_units`); where micro-grids or lanes are
drawn, the atoms those levels and the points share
(:func:`gridgeo.county.micro._atom_rows`). Written out, with each unit's grid
point, grid (and micro-grid, lane, exclusive grid) and households, every later
change -- an edit of a grid's outline, a version, a diff -- can be expressed as
units moving from one code to another, and the geometry of every level rebuilt
as the union of its units.

Exactness
---------
The units are the finest pieces the coverage cleaning works on
(:func:`gridgeo.county.coverage.clean_levels`): they are cleaned and rounded as
one coverage, and every point, grid, micro-grid, lane and village written is
the coverage union of its cleaned units. So the units tile their village, the
union of a point's units is the point, and each household's unit lies in its
point, by construction; :func:`check_units` checks it in the worker and
:func:`gridgeo.county.coverage.verify_levels` checks the written units as a
clean coverage.

Codes
-----
Village code + ``U`` + 4 digits (widened where a village has more), numbered in
reading order (west to east, north to south, :mod:`gridgeo.county.codes`).
Not the point's code + a number: a unit is what an edit moves from one point
or grid to another, so its code must not name the point it happens to be in
(it would lie after the edit, or change and lose the unit's history). A unit
never leaves its village. The same inputs and seed give the same units and
codes; a village re-drawn from ``--previous`` keeps the code of every unit
that continues an old one (intersection over union at least 0.5).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.county import codes as _codes
from gridgeo.county._parts import metric_xy
from gridgeo.errors import GeometryError

if TYPE_CHECKING:
    from gridgeo.county.village import VillageOut, VillageTask

log = logging.getLogger(__name__)

__all__ = ["UNIT_COLUMNS", "UNIT_LETTER", "UnitPlaces", "check_layers", "check_units", "unit_counts", "units_frame",
           "village_units"]

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]

#: the letter between the village code and a unit's number
UNIT_LETTER = "U"
#: digits of a unit's number (widened where a village has more units)
UNIT_WIDTH = 4
#: the attribute columns of the layer, in order (``micro_grid`` and ``lane`` only where a village draws them)
UNIT_COLUMNS: tuple[str, ...] = ("code", "parent", "village", "township", "grid", "point", "micro_grid", "lane",
                                 "exclusive", "households", "n_items")
#: the level codes an atom carries beside its point and grid (micro-grids and lanes)
_SUB_KEYS: tuple[str, ...] = ("micro_grid", "lane")


@dataclass(frozen=True)
class UnitPlaces:
    """Where each unit of a village lies: its grid point and level-2 grid codes, and whether that is exclusive."""

    point: Sequence[str]
    grid: Sequence[str]
    site: Sequence[bool]


def village_units(t: VillageTask, geoms: GArray, item_unit: IArray, places: UnitPlaces, out: VillageOut) -> None:
    """Fill ``out.units`` (rows in code order) and ``out.item_unit`` (each item's unit code).

    The units are ``geoms`` (the engine's units), or where a level below the
    grids cut them (``out.atoms``, :mod:`gridgeo.county.micro`) those atoms,
    which are then consumed (``out.atoms`` emptied: they travel once, as units).
    """
    if out.atoms:
        pieces, parent, keys = _atoms(out.atoms)
        item_piece = _item_atoms(t, item_unit, parent, keys, pieces=pieces, out=out)
        out.atoms = []
    else:
        pieces, parent, keys = geoms, np.arange(len(geoms), dtype=np.int64), {}
        item_piece = np.asarray(item_unit, dtype=np.int64)
    n = len(pieces)
    w = np.asarray(t.weights, dtype=np.int64)
    ok = item_piece >= 0
    hh = np.rint(np.bincount(item_piece[ok], weights=w[ok], minlength=n)).astype(np.int64)
    count = np.bincount(item_piece[ok], minlength=n)
    codes = _unit_codes(t, pieces)
    rows: list[dict[str, Any]] = []
    for k, i in enumerate(parent.tolist()):
        rows.append({"code": codes[k], "parent": places.point[i], "village": t.code, "grid": places.grid[i],
                     "point": places.point[i], **{col: keys[col][k] for col in keys},
                     "exclusive": places.grid[i] if places.site[i] else None,
                     "households": int(hh[k]), "n_items": int(count[k]), "geometry": pieces[k]})
    rows.sort(key=lambda r: r["code"])
    out.units = rows
    out.item_unit = [codes[p] if p >= 0 else None for p in item_piece.tolist()]


def _unit_codes(t: VillageTask, pieces: GArray) -> list[str]:
    """Village code + ``U`` + number in reading order; an earlier build's code kept where a unit continues it."""
    keep: list[str | None] | None = None
    prev = (t.previous or {}).get("units")
    if prev is not None and len(prev[0]):
        keep = _codes.match_previous(pieces, *prev)
    x, y, a = metric_xy(list(pieces))
    return _codes.number(t.code, x, y, a, width=UNIT_WIDTH, letter=UNIT_LETTER, keep=keep)


def _atoms(rows: list[dict[str, Any]]) -> tuple[GArray, IArray, dict[str, list[str | None]]]:
    """The atoms' geometries, the unit each is cut from, and their micro-grid and lane codes."""
    geoms = np.empty(len(rows), dtype=object)
    geoms[:] = [r["geometry"] for r in rows]
    parent = np.asarray([int(r["unit"]) for r in rows], dtype=np.int64)
    keys = {col: [r.get(col) for r in rows] for col in _SUB_KEYS}
    return geoms, parent, keys


def _item_atoms(t: VillageTask, item_unit: IArray, parent: IArray, keys: Mapping[str, list[str | None]], *,
                pieces: GArray, out: VillageOut) -> IArray:
    """The atom of each item: the one of its unit with its micro-grid and lane; the nearest where several are.

    Why by codes first: an item's micro-grid and lane were decided on the
    pieces of each level (:mod:`gridgeo.county.micro`), so the atom with both
    codes is where it was counted; geometry only breaks a tie (an atom in two
    parts, a building cut by a cut).
    """
    of_unit: dict[int, list[int]] = {}
    for k, i in enumerate(parent.tolist()):
        of_unit.setdefault(i, []).append(k)
    own = {"micro_grid": out.item_micro, "lane": out.item_lane}
    res = np.full(len(item_unit), -1, dtype=np.int64)
    for j, i in enumerate(np.asarray(item_unit).tolist()):
        cand = of_unit.get(i, [])
        if len(cand) <= 1:
            res[j] = cand[0] if cand else -1
            continue
        want = {col: (own[col][j] if own[col] else None) for col in keys}
        match = [k for k in cand if all(keys[col][k] == want[col] for col in keys)]
        pool = match or cand
        if len(pool) > 1:
            d = shapely.distance(shapely.point_on_surface(t.items[j]), pieces[np.asarray(pool)])
            pool = [pool[int(np.argmin(d))]]
        res[j] = pool[0]
    return res


def check_units(t: VillageTask, out: VillageOut) -> None:
    """The units tile their points (areas within ``tolerance_m2``) and hold every item in its own point.

    Raises
    ------
    GeometryError
        Naming the village and what does not hold.
    """
    if not out.units:
        return
    geoms = np.asarray([r["geometry"] for r in out.units], dtype=object)
    area: dict[str, float] = {}
    for r, a in zip(out.units, shapely.area(geoms).tolist(), strict=True):
        area[r["point"]] = area.get(r["point"], 0.0) + a
    pts = {r["code"]: float(shapely.area(r["geometry"])) for r in out.points}
    worst = max((abs(area.get(c, 0.0) - a) for c, a in pts.items()), default=0.0)
    out.stats.setdefault("tiling", {})["units_worst_m2"] = round(worst, 6)
    if worst > t.tolerance_m2 or set(area) - set(pts):
        raise GeometryError(f"village {t.code} {t.name}: units do not tile their grid points "
                            f"(worst difference {worst:.3f} m², tolerance {t.tolerance_m2:g} m²)")
    point_of = {r["code"]: r["point"] for r in out.units}
    bad = sum(u is None or point_of.get(u) != p for u, p in zip(out.item_unit, out.item_point, strict=True))
    if bad or len(out.item_unit) != len(out.item_point):
        raise GeometryError(f"village {t.code} {t.name}: {bad} building(s)/household(s) in no unit or in a unit "
                            "of another grid point")


def units_frame(outs: Sequence[VillageOut], crs: Any, township: Mapping[str, str], *,
                area_key: str) -> tuple[gpd.GeoDataFrame, NDArray[np.float64]]:
    """The units layer from the villages' rows (output CRS), and each unit's metric area as drawn (``area_key``).

    ``micro_grid`` and ``lane`` are columns only where some village draws them.
    """
    rows = [r for o in outs for r in o.units]
    cols = [c for c in UNIT_COLUMNS if c not in _SUB_KEYS or any(r.get(c) is not None for r in rows)]
    data = {c: [r.get(c) for r in rows] for c in cols if c != "township"}
    data = {**{k: data[k] for k in ("code", "parent", "village")},
            "township": [township.get(str(v)) for v in data["village"]],
            **{k: v for k, v in data.items() if k not in ("code", "parent", "village")}}
    gdf = gpd.GeoDataFrame(data, geometry=[r["geometry"] for r in rows], crs=crs)
    for col in ("households", "n_items"):
        gdf[col] = gdf[col].astype(np.int64)
    areas = np.asarray([r.get(area_key, np.nan) for r in rows], dtype=float)
    return gdf, areas


def unit_counts(units: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> list[int]:
    """How many units each point is made of, in the points' order (the points layer's ``n_units``)."""
    per = units["point"].value_counts()
    return [int(per.get(c, 0)) for c in points["code"]]


def check_layers(layers: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Every written unit's household count adds up to its point's (the layers agree), else a bug.

    Raises
    ------
    GeometryError
        Naming the first points whose units' households differ from theirs.
    """
    u, p = layers.get("units"), layers.get("points")
    if u is None or p is None or not len(u):
        return
    per = u.groupby("point")["households"].sum()
    off = [str(c) for c, h in zip(p["code"], p["households"], strict=True) if int(per.get(c, 0)) != int(h)]
    if off:
        raise GeometryError(f"units: the households of {len(off)} point(s) are not their units' sum, first "
                            f"{', '.join(off[:5])}; this is a bug")
