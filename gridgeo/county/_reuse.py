"""Taking villages from an earlier build (``--previous``): what is read from it, and which villages are kept.

Why a module of its own: reading an old county file back into village results (rows in the metric CRS,
each item's point and unit by position) is one job, separate from running the build's stages
(:mod:`gridgeo.county.build`).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray

from gridgeo.county.coverage import ROUNDING_M
from gridgeo.county.sources import metric_geoms
from gridgeo.county.village import VillageOut, VillageTask, check_village
from gridgeo.data.io import list_layers, read_layer
from gridgeo.errors import GeometryError

log = logging.getLogger(__name__)

__all__ = ["Previous", "previous_of", "read_previous", "reuse"]

GArray = NDArray[np.object_]
#: level -> (geometries in the metric CRS, codes) of an earlier build
Previous = dict[str, tuple[GArray, list[str]]]
#: the layers an earlier build must hold for any of its villages to be taken unchanged
NEEDED: frozenset[str] = frozenset({"villages", "grids", "points", "exclusive", "units", "households"})


def read_previous(path: str | Path, metric: pyproj.CRS) -> Previous:
    """The grids, exclusive grids, points and units of an earlier build (metric CRS, with their codes)."""
    have = set(list_layers(path))
    out: Previous = {}
    for lvl in ("grids", "exclusive", "points", "units"):
        if lvl in have:
            g = read_layer(path, layer=lvl)
            out[lvl] = (metric_geoms(g, metric), [str(c) for c in g["code"]])
    return out


def previous_of(prev: Previous | None, code: str) -> Previous | None:
    """The part of an earlier build inside one village: the parts whose codes start with the village's."""
    if prev is None:
        return None
    return {lvl: (geoms[[c.startswith(code) for c in cs]], [c for c in cs if c.startswith(code)])
            for lvl, (geoms, cs) in prev.items()}


def reuse(previous: str | Path, metric: pyproj.CRS, tasks: list[VillageTask], fps: list[str]) -> dict[
        int, VillageOut]:
    """Villages whose inputs are unchanged since ``previous`` was built, taken from it (and re-checked).

    An earlier build without a ``units`` layer (made before units were written) gives none: its villages
    are drawn again, so that every village of the new build has its units.

    Why: re-drawing one village of a county should not cost the whole county.
    A village is taken only when its fingerprint (:func:`gridgeo.county.fingerprint.fingerprint`:
    every input field of its task) equals the one the old build recorded and
    every building of it has its old assignment; everything taken goes through
    the same tiling check, and a village that fails it is re-drawn instead.
    """
    want = _unchanged(previous, tasks, fps)
    if not want:
        return {}
    rows = _previous_rows(previous, metric)
    assign = _previous_assignment(previous)
    out: dict[int, VillageOut] = {}
    for i in want:
        t = tasks[i]
        mine, units = assign.get(t.code, ([], []))
        if len(mine) != len(t.items) or t.sub is not None:  # micro-grids and lanes: drawn again with their atoms
            continue
        o = VillageOut(code=t.code, grids=rows.get("grids", {}).get(t.code, []),
                       exclusive=rows.get("exclusive", {}).get(t.code, []),
                       points=rows.get("points", {}).get(t.code, []), item_point=list(mine),
                       units=rows.get("units", {}).get(t.code, []), item_unit=list(units),
                       stats={"reused": True})
        t0 = time.perf_counter()
        try:
            check_village(t, o, slack_m=ROUNDING_M)
        except GeometryError as err:  # its old grids were edited since, or no longer fit: draw it again
            log.info("%s: not taken from %s (%s); re-drawn", t.code, previous, err)
            continue
        o.seconds["check"] = time.perf_counter() - t0
        out[i] = o
    log.info("%d of %d villages unchanged since %s: taken from it", len(out), len(tasks), previous)
    return out


def _unchanged(previous: str | Path, tasks: list[VillageTask], fps: list[str]) -> list[int]:
    """The tasks whose fingerprint equals the ``build_hash`` the earlier build recorded for the village."""
    have = set(list_layers(previous))
    if not have >= NEEDED:
        if "units" not in have and NEEDED - {"units"} <= have:
            log.info("%s has no units layer (an older build): every village is drawn again", previous)
        return []
    old_v = read_layer(previous, layer="villages")
    if "build_hash" not in old_v.columns:
        return []
    old_hash = dict(zip(old_v["code"].astype(str), old_v["build_hash"].astype(str), strict=True))
    return [i for i, (t, fp) in enumerate(zip(tasks, fps, strict=True)) if old_hash.get(t.code) == fp]


def _previous_rows(previous: str | Path, metric: pyproj.CRS) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """level -> village code -> the earlier build's rows of that level (metric CRS, NaN as None)."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for lvl, key in (("grids", "parent"), ("exclusive", "parent"), ("points", "village"), ("units", "village")):
        g = read_layer(previous, layer=lvl)
        g = g.to_crs(metric) if len(g) else g
        recs = g.drop(columns=[g.geometry.name, "township"], errors="ignore").to_dict("records")
        for r, geom in zip(recs, g.geometry.values, strict=True):
            clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            clean["geometry"] = geom
            rows.setdefault(lvl, {}).setdefault(str(r[key]), []).append(clean)
    return rows


def _previous_assignment(previous: str | Path) -> dict[str, tuple[list[str | None], list[str | None]]]:
    """village code -> the grid point and the unit of each of its items in the earlier build, in the items' order.

    The assignment rows of a village are in its items' order (the build writes
    them so), and an equal fingerprint means equal items in equal order: match
    by position (row-number ids of a file without an id column shift when
    another village's buildings change; positions do not).
    """
    hh = read_layer(previous, layer="households")
    assign: dict[str, tuple[list[str | None], list[str | None]]] = {}
    units = hh["unit"] if "unit" in hh.columns else [None] * len(hh)
    for v, pt, u in zip(hh["village"], hh["point"], units, strict=True):
        if isinstance(v, str):
            mine = assign.setdefault(v, ([], []))
            mine[0].append(pt if isinstance(pt, str) else None)
            mine[1].append(u if isinstance(u, str) else None)
    return assign


