"""The build's households layer: one row per building or household point, with its point, grid, village, township.

Made after the cleaning of the levels (:func:`gridgeo.county.coverage.clean_levels`), from the items the
build holds as WKB (:func:`item_geoms`), a chunk at a time: a province's 3M buildings are never held as
geometries in two CRSs at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.county._job import transformer
from gridgeo.data.registers import carried_columns

if TYPE_CHECKING:
    from gridgeo.county.build import _County
    from gridgeo.county.village import VillageOut

log = logging.getLogger(__name__)

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]


def item_geoms(c: _County, idx: IArray | None = None) -> GArray:
    """The items' geometries (metric CRS): those at ``idx``, or all of them, from their WKB."""
    wkb = c.item_wkb if idx is None else c.item_wkb[idx]
    return np.asarray(shapely.from_wkb(wkb), dtype=object) if len(wkb) else np.zeros(0, dtype=object)


def index_by(labels: IArray, n: int) -> list[IArray]:
    """Row indices per label 0..n-1, each sorted (so a village's items keep their input order)."""
    order = np.argsort(labels, kind="stable")
    sl = labels[order]
    starts = np.searchsorted(sl, np.arange(n), side="left")
    ends = np.searchsorted(sl, np.arange(n), side="right")
    return [order[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def households_frame(c: _County, outs: list[VillageOut], points: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One row per building or household point: its grid point, grid, village and township."""
    by_code = {o.code: o for o in outs}
    items, item_v, vil = c.items, c.item_v, c.vil
    ip: list[str | None] = [None] * len(item_v)
    for vi, idx in enumerate(index_by(item_v, len(vil))):
        o = by_code[str(vil["code"].iloc[vi])]
        for j, pc in zip(idx.tolist(), o.item_point, strict=True):
            ip[j] = pc
    parent_of = dict(zip(points["code"], points["parent"], strict=True))
    town_of = dict(zip(vil["code"], vil["township"], strict=True))
    hh_pts = _locations(c)
    vcodes = vil["code"].tolist()
    data = {
        "source": [items.source] * len(item_v),
        "source_id": items.ids,
        "households": items.weights.astype(int),
        "estimated": items.estimated.astype(bool),
        "point": ip,
        "grid": [parent_of.get(p) if p else None for p in ip],
        "village": [vcodes[k] if k >= 0 else None for k in item_v.tolist()],
        "township": [town_of[vcodes[k]] if k >= 0 else None for k in item_v.tolist()],
    }
    for level, col, attr in (("micro_grids", "micro_grid", "item_micro"), ("lanes", "lane", "item_lane")):
        if any(getattr(o, level) for o in outs):  # drawn: each household's micro-grid and lane
            data[col] = _item_codes(c, outs, attr)
    if items.register is not None:
        data.update(carried_columns(items.register, taken=set(data)))
    return gpd.GeoDataFrame(data, geometry=hh_pts, crs=c.out_crs)


def _item_codes(c: _County, outs: list[VillageOut], attr: str) -> list[str | None]:
    """Each item's code at a level below the grids (``attr``: the VillageOut's per-item list), in item order."""
    by_code = {o.code: o for o in outs}
    out: list[str | None] = [None] * len(c.item_v)
    for vi, idx in enumerate(index_by(c.item_v, len(c.vil))):
        codes = getattr(by_code[str(c.vil["code"].iloc[vi])], attr)
        for j, code in zip(idx.tolist(), codes, strict=False):  # a village without the level has none
            out[j] = code
    return out


def _locations(c: _County, chunk: int = 100_000) -> GArray:
    """Each item's written location, a point on its surface, in the output CRS, made ``chunk`` items at a time.

    Moved as ``to_crs`` moves them (:func:`gridgeo.county._job.transformer`), a chunk at a time: a
    province's 3M points are never held in both CRSs.
    """
    forward = transformer(c.metric.to_wkt(), c.out_crs.to_wkt())
    out = np.empty(len(c.item_wkb), dtype=object)
    for lo in range(0, len(out), chunk):
        part = np.arange(lo, min(lo + chunk, len(out)))
        out[part] = shapely.transform(shapely.point_on_surface(item_geoms(c, part)), forward)
    return out


def households_inside(c: _County, layers: dict[str, gpd.GeoDataFrame]) -> int:
    """Move each household's location into its own grid point where it is not strictly inside it.

    Why: a building is assigned by overlap, but its written location (a point
    on its surface) may fall in a neighbouring point, or on a shared edge
    after cleaning; a spatial join by a user must give the assigned point.
    Such a location becomes a point on the part of the building inside its
    grid point (or inside the grid point itself); where micro-grids or lanes
    are drawn, inside its point, micro-grid and lane at once (their atoms nest
    in the point, :mod:`gridgeo.county.micro`). Household points given as
    input are never moved. Returns how many were moved.
    """
    hh, pts = layers["households"], layers["points"]
    if not len(hh) or not len(pts):
        return 0
    targets = _own_units(hh, layers)
    if targets is None:
        return 0
    has, own = targets
    ok = np.ones(len(has), dtype=bool)
    for polys in own:
        ok &= shapely.within(np.asarray(hh.geometry.values, dtype=object)[has], polys)
    bad_pos = np.flatnonzero(~ok)
    bad = has[bad_pos]
    keep = shapely.get_type_id(item_geoms(c, bad)) != 0 if len(bad) else np.zeros(0, dtype=bool)
    bad, bad_pos = bad[keep], bad_pos[keep]
    if not len(bad):
        return 0
    bld = np.asarray(shapely.transform(item_geoms(c, bad), transformer(c.metric.to_wkt(), c.out_crs.to_wkt())),
                     dtype=object)
    target = own[0][bad_pos]
    for polys in own[1:]:
        target = shapely.intersection(target, polys[bad_pos])
    part = shapely.intersection(bld, target)
    where = shapely.point_on_surface(np.where(shapely.area(part) > 0, part, target))
    geo = np.asarray(hh.geometry.values, dtype=object).copy()
    geo[bad] = where
    hh.set_geometry(list(geo), inplace=True, crs=hh.crs)
    log.info("%d household location(s) moved inside their own grid point", len(bad))
    return len(bad)


#: the levels a household's location must lie in: its layer and the households column naming its unit
_OWN_LEVELS = (("points", "point"), ("micro_grids", "micro_grid"), ("lanes", "lane"))


def _own_units(hh: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame]) -> tuple[IArray, list[GArray]] | None:
    """The households with a unit at every level present, and for each level those units' polygons."""
    rows: list[IArray] = []
    polys: list[np.ndarray] = []
    for lvl, col in _OWN_LEVELS:
        g = layers.get(lvl)
        if g is None or not len(g) or col not in hh.columns:
            continue
        row = {str(code): i for i, code in enumerate(g["code"])}
        rows.append(np.asarray([row.get(p, -1) if isinstance(p, str) else -1 for p in hh[col]], dtype=np.int64))
        polys.append(np.asarray(g.geometry.values, dtype=object))
    idx = np.stack(rows)
    has = np.flatnonzero((idx >= 0).all(axis=0))
    if not len(has):
        return None
    return has, [p[i[has]] for p, i in zip(polys, rows, strict=True)]
