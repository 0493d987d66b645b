"""What a worker does for one village: the fallback ladder, then its rows in the output CRS.

Why the rows leave the worker in the output CRS: the written layers are in
the villages' geographic CRS, and converting a province's 340,000 grids,
exclusive grids and points was ten seconds of the single build process,
plus as long again to reproject them back for the area each unit had before
the cleaning. A worker converts its own village's rows (the same pointwise
transform, so the same coordinates) and keeps each unit's area measured in
the metric CRS, where the unit was drawn, under :data:`AREA_KEY`.

The CRSs travel as WKT strings: pickling a :class:`pyproj.CRS` with every
task would parse it again per village. Each worker makes its transformer
once (:func:`transformer`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import shapely

from gridgeo.county.ladder import build_with_fallbacks
from gridgeo.county.village import VillageOut, VillageTask

__all__ = ["AREA_KEY", "VillageJob", "to_output_crs", "transformer"]

#: the row key holding the unit's area (m²) in the metric CRS, as drawn (not a written column)
AREA_KEY = "_area_m2"
#: the levels of a :class:`VillageOut`, as attribute names
LEVEL_ROWS: tuple[str, ...] = ("grids", "exclusive", "points", "micro_grids", "lanes", "atoms")


@dataclass(frozen=True)
class VillageJob:
    """The workers' function: ``build_with_fallbacks(task)``, its rows then in the output CRS.

    Attributes
    ----------
    metric, out
        The county's metric CRS and the output CRS, as WKT.
    """

    metric: str
    out: str

    def __call__(self, task: VillageTask) -> VillageOut:
        return to_output_crs(build_with_fallbacks(task), metric=self.metric, out=self.out)


def to_output_crs(o: VillageOut, *, metric: str, out: str) -> VillageOut:
    """``o`` with every row's geometry moved from ``metric`` to ``out`` and its metric area under :data:`AREA_KEY`.

    In place (and returned). Rows whose geometry is None keep it.
    """
    forward = transformer(metric, out)
    for name in LEVEL_ROWS:
        rows = getattr(o, name)
        if not rows:
            continue
        geoms = np.empty(len(rows), dtype=object)
        geoms[:] = [r["geometry"] for r in rows]
        areas = shapely.area(geoms)
        moved = shapely.transform(geoms, forward)
        for r, g, a in zip(rows, moved.tolist(), areas.tolist(), strict=True):
            r["geometry"] = g
            r[AREA_KEY] = a
    return o


@functools.lru_cache(maxsize=8)
def transformer(source: str, target: str) -> Callable[[Any], Any]:
    """Coordinates (n, 2) from ``source`` to ``target`` as geopandas' ``to_crs`` moves them (always x, y)."""
    tr = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(source), pyproj.CRS.from_wkt(target), always_xy=True)

    def forward(xy: Any) -> Any:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return forward
