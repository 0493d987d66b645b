"""Small geometry helpers shared by several modules."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely


def polygonal_parts(geom: Any) -> list[Any]:
    """The Polygon parts of any geometry (collections flattened, lines and points dropped)."""
    if geom is None or shapely.is_empty(geom):
        return []
    return [p for p in shapely.get_parts(shapely.get_parts(geom)) if shapely.get_type_id(p) == 3]


def make_valid_polygonal(geom: Any) -> Any:
    """Repair ``geom`` and keep its area: a Polygon, a MultiPolygon, or None if nothing is left.

    ``method="structure"`` rebuilds rings by their role (shell or hole) rather
    than tracing linework, which is what a digitised boundary means; collapsed
    parts (zero-area spikes) are dropped.
    """
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    polys = polygonal_parts(fixed)
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def make_valid_array(geoms: np.ndarray) -> np.ndarray:
    """Vectorised :func:`make_valid_polygonal` on the invalid entries only."""
    out = np.asarray(geoms, dtype=object).copy()
    bad = np.flatnonzero(~shapely.is_valid(out) & ~shapely.is_missing(out))
    for i in bad:
        out[i] = make_valid_polygonal(out[i])
    return out
