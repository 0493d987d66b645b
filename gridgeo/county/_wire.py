"""How village tasks and results travel to worker processes: geometry arrays as one WKB array each.

Why: pickling a shapely geometry costs a Python call and a WKB conversion
*per geometry* (about 10 µs); a province sends its 3M buildings to the
workers and 300,000 grids and points back, which kept the parent process busy
for a minute of the village stage on a 2-core machine. One vectorised
:func:`shapely.to_wkb` per array (and :func:`shapely.from_wkb` on the other
side) is ten times cheaper and gives back the same coordinates: pickle itself
sends shapely geometries as WKB.

Used by :class:`gridgeo.county.village.VillageTask` and
:class:`~gridgeo.county.village.VillageOut` (``__getstate__`` /
``__setstate__``), so local worker processes and Dask alike benefit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from gridgeo._geom import is_geometry_array

__all__ = ["Geometries", "pack", "unpack"]


class Geometries:
    """An object array of geometries (or None) that pickles as one WKB array."""

    __slots__ = ("geoms",)

    def __init__(self, geoms: np.ndarray) -> None:
        self.geoms = geoms

    def __getstate__(self) -> np.ndarray:
        return shapely.to_wkb(self.geoms)

    def __setstate__(self, wkb: np.ndarray) -> None:
        self.geoms = np.asarray(shapely.from_wkb(wkb), dtype=object)


@dataclass(frozen=True)
class _Rows:
    """Rows (dicts) that each hold a ``geometry``: the rows with ``geometry=None``, and the geometries."""

    rows: list[dict[str, Any]]
    geoms: Geometries


def _geometry_rows(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(r, dict) and "geometry" in r for r in v)


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (an object's ``__dict__``) with geometry arrays and geometry rows as :class:`Geometries`."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if isinstance(v, np.ndarray) and v.ndim == 1 and is_geometry_array(v):
            out[k] = Geometries(v)
        elif _geometry_rows(v):
            geoms = np.empty(len(v), dtype=object)
            geoms[:] = [r["geometry"] for r in v]
            out[k] = _Rows([dict(r, geometry=None) for r in v], Geometries(geoms)) \
                if is_geometry_array(geoms) else v  # keys keep their order
        else:
            out[k] = v
    return out


def unpack(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`pack`."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if isinstance(v, Geometries):
            out[k] = v.geoms
        elif isinstance(v, _Rows):
            for r, g in zip(v.rows, v.geoms.geoms.tolist(), strict=True):
                r["geometry"] = g
            out[k] = v.rows
        else:
            out[k] = v
    return out
