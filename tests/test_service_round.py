"""Coordinates rounded for GeoJSON stay valid polygons (service/store.py round_coords)."""

from __future__ import annotations

import numpy as np
import shapely
from gridgeo.service.store import round_coords


def test_a_polygon_that_rounding_would_make_self_intersect_is_snapped_valid() -> None:
    # a neck 3e-8 degrees wide (3 mm): rounded to 1e-7 its two sides cross
    neck = shapely.Polygon([(0, 0), (1e-5, 0), (1e-5, 4.6e-7), (5e-6, 4.6e-7), (5e-6, 4.9e-7), (1e-5, 4.9e-7),
                            (1e-5, 1e-6), (0, 1e-6)])
    assert neck.is_valid
    plain = shapely.transform(neck, lambda c: np.round(c, 7))
    assert not plain.is_valid  # what rounding alone serves
    out = round_coords(np.array([neck, shapely.Point(1.23456789, 2.0), None], dtype=object))
    assert out[0].is_valid and abs(out[0].area - neck.area) < 0.05 * neck.area
    assert out[1].equals(shapely.Point(1.2345679, 2.0)) and out[2] is None
