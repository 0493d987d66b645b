"""gridgeo.county._job: a worker's village rows come back in the output CRS exactly as to_crs moves them."""

from __future__ import annotations

import pickle

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gridgeo.county import _job
from gridgeo.county.village import VillageOut

METRIC = pyproj.CRS.from_epsg(4548)  # CGCS2000 / 3-degree Gauss-Kruger CM 117E
OUT = pyproj.CRS.from_epsg(4490)


def _rows(n: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    x = 500_000 + rng.uniform(-20_000, 20_000, n)
    y = 3_130_000 + rng.uniform(-20_000, 20_000, n)
    boxes = shapely.box(x, y, x + rng.uniform(5, 400, n), y + rng.uniform(5, 400, n))
    holed = shapely.Polygon(shapely.get_exterior_ring(shapely.buffer(boxes[0], 50.0)).coords,
                            [shapely.get_exterior_ring(boxes[0]).coords])
    geoms = [*boxes[1:].tolist(), holed, shapely.MultiPolygon([boxes[1], shapely.box(x[2] + 1e3, y[2], x[2] + 1.1e3,
                                                                                     y[2] + 90)])]
    return [{"code": f"c{i}", "geometry": g} for i, g in enumerate(geoms)]


def test_rows_moved_as_to_crs_moves_them_with_their_metric_area() -> None:
    o = VillageOut(code="v", grids=_rows(30, 1), points=_rows(80, 2), exclusive=[])
    want = {name: [dict(r) for r in getattr(o, name)] for name in ("grids", "points")}
    _job.to_output_crs(o, metric=METRIC.to_wkt(), out=OUT.to_wkt())
    for name, rows in want.items():
        geoms = np.asarray([r["geometry"] for r in rows], dtype=object)
        moved = np.asarray(gpd.GeoSeries(geoms, crs=METRIC).to_crs(OUT).values, dtype=object)
        got = getattr(o, name)
        assert shapely.equals_exact(np.asarray([r["geometry"] for r in got], dtype=object), moved, 0.0).all()
        assert [r[_job.AREA_KEY] for r in got] == shapely.area(geoms).tolist()
        assert [r["code"] for r in got] == [r["code"] for r in rows]
    assert o.exclusive == []


def test_job_travels_light_and_transformer_is_made_once() -> None:
    job = _job.VillageJob(metric=METRIC.to_wkt(), out=OUT.to_wkt())
    assert pickle.loads(pickle.dumps(job)) == job and len(pickle.dumps(job)) < 10_000
    _job.transformer.cache_clear()
    for seed in range(3):
        _job.to_output_crs(VillageOut(code="v", points=_rows(5, seed)), metric=job.metric, out=job.out)
    assert _job.transformer.cache_info().misses == 1
