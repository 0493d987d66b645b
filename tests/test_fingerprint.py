"""The village fingerprint (``build_hash``): every input field counts, by construction."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import shapely
from shapely import Point, box

from gridgeo.county.fingerprint import EXCLUDED, FINGERPRINT_VERSION, LATER, fingerprint, hashed_fields
from gridgeo.county.micro import SubLevels
from gridgeo.county.rules import Limits
from gridgeo.county.village import VillageTask
from tests.conftest import garray


def _task() -> VillageTask:
    return VillageTask(
        code="360000000001", name="village", kind="rural", geometry=box(0, 0, 100, 100),
        barriers=garray(shapely.LineString([(0, 50), (100, 50)])),
        group_codes=["36000000000101"], group_names=["group 1"], group_geoms=garray(box(0, 0, 100, 100)),
        items=garray(box(10, 10, 20, 20), box(60, 60, 70, 70)), weights=np.array([2, 3], dtype=np.int64),
        item_labels=None, site_geoms=garray(Point(30, 30)), site_names=["school"], site_categories=["school"],
        site_ids=["osm1"], grid_bounds=(30.0, 300.0), point_bounds=(10.0, 40.0),
        group_extra=[{"leader": "Wang"}],
    )


#: For each hashed field, a different value (every field must have one: a new field fails here until added).
CHANGED: dict[str, Any] = {
    "code": "360000000002",
    "name": "other",
    "kind": "urban",
    "geometry": box(0, 0, 100, 101),
    "barriers": garray(shapely.LineString([(0, 51), (100, 51)])),
    "group_codes": ["36000000000102"],
    "group_names": ["group 2"],
    "group_geoms": garray(box(0, 0, 100, 99)),
    "items": garray(box(10, 10, 20, 21), box(60, 60, 70, 70)),
    "weights": np.array([2, 4], dtype=np.int64),
    "item_labels": ["a", None],
    "site_geoms": garray(Point(30, 31)),
    "site_names": ["hospital"],
    "site_categories": ["hospital"],
    "site_ids": ["osm2"],
    "grid_bounds": (30.0, 301.0),
    "point_bounds": (11.0, 40.0),
    "use_groups": False,
    "points": False,
    "seed": 1,
    "min_unit_m2": 2.0,
    "site_radius_m": 61.0,
    "site_max_block_m2": 40_001.0,
    "site_min_m2": 201.0,
    "iterations": 31,
    "restarts": 5,
    "tolerance_m2": 1.5,
    "group_extra": [{"leader": "Li"}],
    "merge_groups": True,
    "grid_limits": Limits(area_m2=(0.0, 1e6)),
    "point_limits": Limits(population=(0.0, 90.0)),
    "persons_per_household": 3.0,
    "engine_grid_bounds": (30.0, 200.0),
    "engine_point_bounds": (10.0, 30.0),
    "grid_count": 2,
    "point_count": 7,
    "sub": SubLevels(micro=True, lanes=False, micro_bounds=(20.0, 60.0), lane_bounds=(5.0, 80.0)),
}


def test_every_field_but_the_documented_exclusions_is_hashed() -> None:
    names = [f.name for f in dataclasses.fields(VillageTask)]
    assert set(EXCLUDED) <= set(names)
    assert hashed_fields() == tuple(n for n in names if n not in EXCLUDED)
    assert set(CHANGED) == set(hashed_fields())
    assert FINGERPRINT_VERSION >= 2


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_changing_a_field_changes_the_fingerprint(name: str) -> None:
    t = _task()
    before = fingerprint(t)
    assert fingerprint(_task()) == before  # deterministic
    assert fingerprint(dataclasses.replace(t, **{name: CHANGED[name]})) != before, name


def test_later_fields_at_their_default_keep_older_fingerprints() -> None:
    # the digest pinned below predates the policy fields: a village that does not use them keeps it
    t = _task()
    assert all(getattr(t, n) == getattr(VillageTask, n, getattr(t, n)) for n in LATER)
    assert fingerprint(dataclasses.replace(t, persons_per_household=2.62)) == fingerprint(t)


def test_previous_does_not_change_the_fingerprint() -> None:
    t = _task()
    prev = {"grids": (garray(box(0, 0, 100, 100)), ["36000000000101"])}
    assert fingerprint(dataclasses.replace(t, previous=prev)) == fingerprint(t)


def test_values_are_told_apart_by_type_and_length() -> None:
    t = _task()
    # the same characters split differently, or the same number as another type, must not collide
    a = dataclasses.replace(t, group_codes=["ab", "c"], group_names=["x", "y"])
    b = dataclasses.replace(t, group_codes=["a", "bc"], group_names=["x", "y"])
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(dataclasses.replace(t, weights=np.array([2, 3], dtype=np.int32))) != fingerprint(t)
    assert fingerprint(dataclasses.replace(t, item_labels=[])) != fingerprint(t)


def test_an_optional_level_switched_off_leaves_the_digest_as_it_was() -> None:
    # a county that does not draw micro-grids or lanes keeps every build_hash (the pinned digest below);
    # switching either on, or changing its bounds, is a change of the village's inputs
    t = _task()
    assert "sub" in LATER and t.sub is None
    on = dataclasses.replace(t, sub=CHANGED["sub"])
    assert fingerprint(on) != fingerprint(t)
    wider = dataclasses.replace(t, sub=dataclasses.replace(CHANGED["sub"], lane_bounds=(5.0, 81.0)))
    assert fingerprint(wider) not in {fingerprint(on), fingerprint(t)}


def test_digest_is_stable_across_releases() -> None:
    # a build's build_hash must match the next release's, or --previous re-draws every village;
    # change these only together with FINGERPRINT_VERSION
    t = _task()
    assert fingerprint(t) == "38c238b9360e5639203da8560e70b1bf"
    with_missing = dataclasses.replace(t, items=garray(None, box(1, 1, 2, 2), Point(3, 3)))
    assert fingerprint(with_missing) == "68771707d4653b4b5cd5e6ab99fde3c4"


@pytest.mark.parametrize("values", [
    [box(0, 0, 1, 1), None, Point(1, 2), shapely.Polygon(), shapely.MultiPoint([(0, 0), (1, 1)])],
    [None, None],
    [box(0, 0, 1, 1), "not a geometry", 3],  # mixed: hashed element by element
    [],
])
def test_geometry_arrays_hash_as_their_elements_one_by_one(values: list[Any]) -> None:
    import hashlib

    from gridgeo.county import fingerprint as fp

    a, b = hashlib.blake2b(digest_size=16), hashlib.blake2b(digest_size=16)
    fp._put(a, garray(*values))
    fp._tag(b, b"O", len(values))
    for v in values:
        fp._put(b, v)
    assert a.hexdigest() == b.hexdigest()
