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

__all__ = ["Geometries", "pack", "unpack"]


@dataclass(frozen=True)
class _Geoms:
    """An object array of geometries (or None), as WKB."""

    wkb: np.ndarray


@dataclass(frozen=True)
class _Rows:
    """Rows (dicts) that each hold a ``geometry``: the rows with ``geometry=None``, and the geometries as WKB."""

    rows: list[dict[str, Any]]
    wkb: np.ndarray


def _geometry_array(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 1 and bool(
        np.all(shapely.is_valid_input(v)))


def _geometry_rows(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(r, dict) and "geometry" in r for r in v)


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (an object's ``__dict__``) with geometry arrays and geometry rows as WKB."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if _geometry_array(v):
            out[k] = _Geoms(shapely.to_wkb(v))
        elif _geometry_rows(v):
            geoms = np.empty(len(v), dtype=object)
            geoms[:] = [r["geometry"] for r in v]
            out[k] = _Rows([dict(r, geometry=None) for r in v], shapely.to_wkb(geoms)) \
                if _geometry_array(geoms) else v  # keys keep their order
        else:
            out[k] = v
    return out


def unpack(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`pack`."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if isinstance(v, _Geoms):
            out[k] = np.asarray(shapely.from_wkb(v.wkb), dtype=object)
        elif isinstance(v, _Rows):
            rows = v.rows
            for r, g in zip(rows, shapely.from_wkb(v.wkb).tolist(), strict=True):
                r["geometry"] = g
            out[k] = rows
        else:
            out[k] = v
    return out


class Geometries:
    """An object array of geometries that pickles as one WKB array (for pool tasks and their results)."""

    __slots__ = ("geoms",)

    def __init__(self, geoms: np.ndarray) -> None:
        self.geoms = geoms

    def __getstate__(self) -> np.ndarray:
        return shapely.to_wkb(self.geoms)

    def __setstate__(self, wkb: np.ndarray) -> None:
        self.geoms = np.asarray(shapely.from_wkb(wkb), dtype=object)
