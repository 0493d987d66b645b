"""Regressions of the unit pipeline on fixtures in tests/data/regress/ (see its README for provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from gridgeo.county.units import street_blocks

REGRESS = Path(__file__).resolve().parent / "data" / "regress"


def _load(name: str) -> tuple[shapely.Geometry, np.ndarray]:
    d = json.loads((REGRESS / name).read_text(encoding="utf-8"))
    barriers = np.asarray([shapely.from_wkb(h) for h in d["barriers_wkb"]], dtype=object)
    return shapely.from_wkb(d["village_wkb"]), barriers


@pytest.mark.parametrize("name", ["street_blocks_collinear_sites.json", "street_blocks_collinear_road.json"])
def test_street_blocks_tiling_with_barriers_along_the_village_edge(name: str) -> None:
    """Barriers running along the village's edge (a road, site outlines clipped to it) still cut faces that tile it.

    Floating-point noding of such nearly collinear lines lost a face (cut
    edges instead of a ring) or took in a face outside the village; the
    faces now come from a snap-rounded noding when the floating-point one
    does not tile.
    """
    village, barriers = _load(name)
    faces = street_blocks(village, barriers, min_area=1.0)  # raised GeometryError: pieces cover ... m²
    a = village.area
    assert abs(shapely.area(faces).sum() - a) <= 1e-6 * a
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(faces), village)) <= 1e-6 * a
    assert shapely.is_valid(faces).all()
    assert shapely.coverage_is_valid(faces), "neighbouring faces share their vertices exactly"
    again = street_blocks(village, barriers, min_area=1.0)
    assert [shapely.to_wkb(f) for f in faces] == [shapely.to_wkb(f) for f in again]
