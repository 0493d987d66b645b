"""One village's stages (``gridgeo.county.village``): typed labels, sites, grids and points."""

from __future__ import annotations

import dataclasses

import numpy as np
import shapely
from shapely import Point, box

from gridgeo.county.village import Label, LabelKind, VillageTask, build_village

X0, Y0 = 39_500_000.0, 3_100_000.0


def _garray(geoms: list[object]) -> np.ndarray:
    out = np.empty(len(geoms), dtype=object)
    out[:] = geoms
    return out


def _task(**kw: object) -> VillageTask:
    houses = [box(X0 + x, Y0 + y, X0 + x + 12, Y0 + y + 10) for x in range(10, 400, 30) for y in range(10, 400, 30)]
    base = VillageTask(
        code="360000000001", name="village", kind="rural", geometry=box(X0, Y0, X0 + 420, Y0 + 420),
        barriers=_garray([shapely.LineString([(X0 - 10, Y0 + 205), (X0 + 430, Y0 + 205)])]),
        group_codes=[], group_names=[], group_geoms=_garray([]),
        items=_garray(houses), weights=np.full(len(houses), 2, dtype=np.int64), item_labels=None,
        site_geoms=_garray([Point(X0 + 100, Y0 + 100)]), site_names=["school"], site_categories=["school"],
        site_ids=["osm1"], grid_bounds=(30.0, 120.0), point_bounds=(10.0, 40.0), site_max_block_m2=1000.0,
    )
    return dataclasses.replace(base, **kw)


def test_labels_sort_by_kind_then_key() -> None:
    labels = [Label(LabelKind.SITE, 0), Label(LabelKind.PARTITION, 10), Label(LabelKind.PARTITION, 2),
              Label(LabelKind.GROUP, 1)]
    assert sorted(labels) == [Label(LabelKind.GROUP, 1), Label(LabelKind.PARTITION, 2),
                              Label(LabelKind.PARTITION, 10), Label(LabelKind.SITE, 0)]
    t = _task(group_codes=["36000000000107"])
    assert Label(LabelKind.GROUP, 0).group_code(t) == "36000000000107"
    assert Label(LabelKind.HOUSEHOLDS, "3").group_code(t) == "3"
    assert Label(LabelKind.PARTITION, 0).group_code(t) is None
    assert Label(LabelKind.SITE, 0).is_site and not Label(LabelKind.GROUP, 0).is_site


def test_drawn_village_tiles_and_places_every_house() -> None:
    out = build_village(_task())
    assert out.stats["grids_from"] == "partition"
    assert len(out.exclusive) == 1 and out.exclusive[0]["code"] == "360000000001Z01"
    assert out.stats["sites_from_radius"] == 1
    assert all(c is not None for c in out.item_point)
    assert sum(r["households"] for r in out.points) == 2 * len(out.item_point)
    assert {r["parent"] for r in out.points} == {r["code"] for r in out.grids + out.exclusive}
    assert all(r["group"] is None and r["source"] == "partition" for r in out.grids)
    assert out.stats["tiling"]["gap_m2"] < 1.0


def test_household_labels_give_one_grid_per_label() -> None:
    t = _task(site_geoms=_garray([]), site_names=[], site_categories=[], site_ids=[])
    labels = ["01" if shapely.get_coordinates(shapely.centroid(h))[0, 1] < Y0 + 205 else "02" for h in t.items]
    out = build_village(dataclasses.replace(t, item_labels=labels))
    assert out.stats["grids_from"] == "household_labels"
    assert sorted(r["group"] for r in out.grids) == ["01", "02"]
    assert out.exclusive == []
