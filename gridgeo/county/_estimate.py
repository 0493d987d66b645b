"""Households spread over their village when a county gives only village totals (a villages-only build).

A boundary file of villages with a household count and nothing else (no
buildings, no household points) still has to give grids and grid points of
a moderate size. The count of each village is spread evenly over its area as
weighted points on a square lattice, so the partition can size grids and
points by households as it does with buildings. Everything below the village
is then an estimate, and the build says so (``estimates`` in the report).
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.county.sources import Items, column

log = logging.getLogger(__name__)

#: most spread points per village (the weights grow beyond it): a city 里 of 5,000 households needs no more
MAX_POINTS = 1_000
#: most lattice points tried for one village
MAX_CANDIDATES = 2_000_000


def spread_households(vgeom: NDArray[np.object_], households: NDArray[np.int64], codes: list[str]) -> Items:
    """Each village's households as points on a lattice over its area (metric CRS), weights summing exactly.

    Deterministic: the lattice is anchored at the village's bounds. A
    village too thin for its lattice gets its points on a finer one (halved
    spacing, up to five times), else at a point on its surface.
    """
    geoms: list[NDArray[np.object_]] = []
    weights: list[NDArray[np.int64]] = []
    ids: list[str] = []
    for g, h, code in zip(vgeom, households.tolist(), codes, strict=True):
        if h <= 0 or g is None or g.is_empty:
            continue
        pts = _lattice(g, min(int(h), MAX_POINTS))
        w = _even(int(h), len(pts))
        geoms.append(pts)
        weights.append(w)
        ids += [f"{code}-e{i + 1}" for i in range(len(pts))]
    if not geoms:
        return Items(source=None, geoms=np.zeros(0, dtype=object), weights=np.zeros(0, dtype=np.int64),
                     estimated=np.zeros(0, dtype=bool), ids=[], labels=None)
    w_all = np.concatenate(weights)
    return Items(source="estimate", geoms=np.concatenate(geoms), weights=w_all,
                 estimated=np.ones(len(w_all), dtype=bool), ids=ids, labels=None)


def _lattice(g: shapely.Geometry, n: int) -> NDArray[np.object_]:
    """About ``n`` lattice points strictly inside ``g`` (at least one)."""
    x0, y0, x1, y1 = (float(v) for v in shapely.bounds(g))
    step = max(float(np.sqrt(shapely.area(g) / max(n, 1))), 1e-3)
    shapely.prepare(g)
    best = np.zeros(0, dtype=object)
    for _ in range(6):
        if ((x1 - x0) / step + 1) * ((y1 - y0) / step + 1) > MAX_CANDIDATES:
            break  # a sliver of a village in a wide bounding box: what the coarser lattice found will do
        xs = np.arange(x0 + step / 2, x1, step)
        ys = np.arange(y0 + step / 2, y1, step)
        xx, yy = np.meshgrid(xs, ys)
        cand = np.asarray(shapely.points(xx.ravel(), yy.ravel()), dtype=object)
        best = cand[np.asarray(shapely.contains_properly(g, cand), dtype=bool)]
        if len(best) >= max(1, n // 2):
            break
        step /= 2
    if not len(best):
        return np.asarray([shapely.point_on_surface(g)], dtype=object)
    if len(best) > n:  # never more points than households: each holds at least one
        best = best[np.linspace(0, len(best) - 1, n).round().astype(int)]
    return best


def _even(total: int, k: int) -> NDArray[np.int64]:
    """``total`` split over ``k`` points as evenly as integers allow (the first ones get the remainder)."""
    base, extra = divmod(total, k)
    w = np.full(k, base, dtype=np.int64)
    w[:extra] += 1
    return w


def villages_only(vil: gpd.GeoDataFrame, vgeom: NDArray[np.object_], report: dict[str, Any]) -> Items:
    """A county of villages alone: their household counts spread over their areas (:func:`spread_households`).

    Said loudly (the report's ``estimates``, the closing summary, the log):
    every level below the village is an estimate.
    """
    given = [0 if v is None else max(int(v), 0) for v in column(vil, "households")]
    if any(given):
        items = spread_households(vgeom, np.asarray(given, dtype=np.int64), vil["code"].astype(str).tolist())
        text = (f"villages only: every level below the village is an estimate: the villages' household counts "
                f"({sum(given):,} in {sum(1 for g in given if g)} villages) are spread evenly over their areas; "
                "give [inputs] buildings or households for grids drawn on where people live")
    else:
        items = Items(source=None, geoms=np.zeros(0, dtype=object), weights=np.zeros(0, dtype=np.int64),
                      estimated=np.zeros(0, dtype=bool), ids=[], labels=None)
        text = ("villages only, without household counts: every level below the village is drawn by area alone "
                "and counts 0 households; give the villages a households column, or [inputs] buildings or "
                "households")
    log.warning("%s", text)
    report["estimates"] = [text]
    return items
