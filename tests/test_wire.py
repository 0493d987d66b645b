"""gridgeo.county._wire: village tasks and results cross to worker processes unchanged."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import shapely
from shapely import LineString, Point, Polygon, box

from gridgeo.county import _wire
from gridgeo.county.fingerprint import fingerprint
from gridgeo.county.village import VillageOut, VillageTask
from tests.conftest import garray


def _task() -> VillageTask:
    return VillageTask(
        code="360000000001", name="村", kind="rural", geometry=box(0, 0, 100, 100),
        barriers=garray(LineString([(0, 50), (100, 50)]), shapely.LineString()),
        group_codes=["36000000000101"], group_names=[None], group_geoms=garray(),
        items=garray(box(10, 10, 20, 20), None, Point(1, 2), Point(1, 2, 3), Polygon()),
        weights=np.array([2, 3, 1, 1, 1], dtype=np.int64), item_labels=["a", None, "b", "c", "d"],
        site_geoms=garray(Point(30, 30)), site_names=["school"], site_categories=["school"], site_ids=["osm1"],
        grid_bounds=(30.0, 300.0), point_bounds=(10.0, 40.0),
        previous={"grids": (garray(box(0, 0, 1, 1)), ["g"])}, group_extra=[{"leader": "Wang"}],
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and a.dtype == object:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True))
    if isinstance(a, shapely.Geometry):
        return isinstance(b, shapely.Geometry) and a.equals_exact(b, tolerance=0) and a.has_z == b.has_z
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b)) and a.dtype == b.dtype
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) if a is not None else b is None


def test_task_round_trips_field_by_field() -> None:
    t = _task()
    back = pickle.loads(pickle.dumps(t))
    for f in dataclasses.fields(VillageTask):
        assert _same(getattr(t, f.name), getattr(back, f.name)), f.name
    assert fingerprint(back) == fingerprint(t)
    assert isinstance(_wire.pack(t.__dict__)["items"], _wire.Geometries)  # the geometry arrays travel as WKB


def test_result_rows_round_trip_with_their_key_order() -> None:
    rows = [{"code": "a", "geometry": box(0, 0, 1, 1), "households": 3},
            {"code": "b", "geometry": None, "households": 0}]
    o = VillageOut(code="v", grids=rows, points=[], item_point=["a", None], stats={"faces": 2})
    back = pickle.loads(pickle.dumps(o))
    assert _same(back.grids, rows) and back.points == [] and back.item_point == ["a", None]
    assert list(back.grids[0]) == ["code", "geometry", "households"]
    assert o.grids[0]["geometry"] is not None  # packing copies the rows; the original keeps its geometry


def test_arrays_that_are_not_geometries_travel_as_they_are() -> None:
    mixed = garray(box(0, 0, 1, 1), "x")
    packed = _wire.pack({"a": mixed, "b": np.array([1, 2]), "c": [{"geometry": 1}], "d": []})
    assert packed["a"] is mixed and not isinstance(packed["b"], _wire.Geometries) and packed["d"] == []
