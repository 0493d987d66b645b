"""gridgeo._geom: the small geometry helpers every module shares."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from shapely import GeometryCollection, LineString, MultiPolygon, Point, Polygon, box

from gridgeo._geom import polygonal, polygonal_array

#: awkward inputs of polygonal(): what intersections and repairs leave behind
CATALOGUE: list[Any] = [
    box(0, 0, 1, 1),
    Polygon([(0, 0), (1, 0), (1, 1), (0, 1)], [[(0.2, 0.2), (0.4, 0.2), (0.4, 0.4)]]),  # with a hole
    MultiPolygon([box(0, 0, 1, 1), box(2, 2, 3, 3)]),
    GeometryCollection([box(0, 0, 1, 1), LineString([(1, 1), (2, 2)]), Point(5, 5)]),
    Polygon([(0, 0), (1, 0), (2, 0)]),  # zero area
    GeometryCollection([Polygon([(0, 0), (1, 0), (2, 0)]), box(3, 3, 4, 4)]),
    LineString([(0, 0), (1, 1)]),
    Point(0, 0),
    Polygon(),
    None,
]


@pytest.mark.parametrize("geom", CATALOGUE, ids=lambda g: "None" if g is None else g.geom_type)
def test_polygonal_array_is_polygonal_of_each(geom: Any) -> None:
    arr = np.empty(3, dtype=object)
    arr[:] = [geom, box(5, 5, 6, 6), geom]
    got = polygonal_array(arr)
    for g, want in zip(got.tolist(), [polygonal(geom), box(5, 5, 6, 6), polygonal(geom)], strict=True):
        assert (g is None and want is None) or shapely.equals_exact(g, want, tolerance=0)


def test_polygonal_array_of_nothing() -> None:
    assert len(polygonal_array(np.zeros(0, dtype=object))) == 0
