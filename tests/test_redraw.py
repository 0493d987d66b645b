"""A village's grids re-drawn from their grid points (gridgeo/county/redraw.py)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gridgeo.county.redraw import RedrawRequest, propose_grids
from gridgeo.errors import InputError

#: households of the 4 x 3 grid points, row by row: grid A (row 0), B (row 1), C (row 2)
HOUSEHOLDS = ((10, 10, 10, 10), (30, 30, 30, 30), (5, 5, 5, 5))


def _village() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Three grids of four 100 m square points each (CGCS2000 GK zone 39, served as CRS84): A 40, B 120, C 20
    households."""
    rows, grids = [], []
    for r, hh in enumerate(HOUSEHOLDS):
        code = "V01" + "ABC"[r]
        for c, h in enumerate(hh):
            x, y = 39_500_000 + c * 100.0, 3_100_000 + r * 100.0
            rows.append({"code": f"{code}{c}", "parent": code, "households": h,
                         "geometry": shapely.box(x, y, x + 100, y + 100)})
        grids.append({"code": code, "parent": "V01",
                      "geometry": shapely.box(39_500_000, 3_100_000 + r * 100.0, 39_500_400, 3_100_100 + r * 100.0)})
    pts = gpd.GeoDataFrame(rows, crs="EPSG:4527").to_crs("OGC:CRS84")
    return gpd.GeoDataFrame(grids, crs="EPSG:4527").to_crs("OGC:CRS84"), pts


def _owner(p, pts: gpd.GeoDataFrame) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c: p.targets.get(c, g) for c, g in zip(pts["code"], pts["parent"], strict=True)}


def test_grids_brought_within_bounds_moving_few_points() -> None:
    grids, pts = _village()
    p = propose_grids("V01", grids=grids, points=pts, request=RedrawRequest(bounds=(40, 100)))
    assert [g["within_bounds"] for g in p.before] == [True, False, False]
    assert p.engine["feasible"] and not p.reassignment.broken
    assert all(g["within_bounds"] and g["pieces"] == 1 for g in p.after), p.after
    assert sorted(g["code"] for g in p.after) == ["V01A", "V01B", "V01C"]  # every code kept, none made
    assert sum(g["households"] for g in p.after) == 180 and 1 <= len(p.targets) <= 2
    owner = _owner(p, pts)
    for g, geom in p.reassignment.grids.items():  # each changed grid the union of its points
        mine = shapely.union_all(pts.geometry.values[[owner[c] == g for c in pts["code"]]])
        assert shapely.symmetric_difference(mine, geom).area < 1e-9 * geom.area, g


def test_locked_grid_keeps_its_points_and_seed_repeats() -> None:
    grids, pts = _village()
    req = RedrawRequest(bounds=(40, 100), locks=("V01A",), seed=7)
    p = propose_grids("V01", grids=grids, points=pts, request=req)
    assert not any(c.startswith("V01A") or g == "V01A" for c, g in p.targets.items())
    assert all(g["within_bounds"] for g in p.after)
    again = propose_grids("V01", grids=grids, points=pts, request=req)
    assert again.targets == p.targets and again.after == p.after


def test_nothing_to_fix_moves_nothing_far() -> None:
    grids, pts = _village()
    p = propose_grids("V01", grids=grids, points=pts, request=RedrawRequest(bounds=(0, 1000)))
    assert all(g["within_bounds"] for g in p.before + p.after)
    assert len(p.targets) <= 2  # staying put is paid for; balance may still move a point


def test_infeasible_bounds_are_reported_not_hidden() -> None:
    grids, pts = _village()
    p = propose_grids("V01", grids=grids, points=pts, request=RedrawRequest(bounds=(70, 80)))  # 180 in 3 grids
    assert not p.engine["feasible"] and p.engine["failed_rules"]
    assert not all(g["within_bounds"] for g in p.after)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"bounds": (40, 100), "locks": ("V01Z",)}, "V01Z"),
    ({"bounds": (100, 40)}, "bounds"),
    ({"bounds": (0, 0)}, "bounds"),
    ({"bounds": (40, 100), "iterations": -1}, "iterations"),
])
def test_bad_requests_are_named(kwargs: dict, words: str) -> None:
    grids, pts = _village()
    with pytest.raises(InputError, match=words):
        propose_grids("V01", grids=grids, points=pts, request=RedrawRequest(**kwargs))
