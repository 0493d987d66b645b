"""The fine levels' candidates for /locate: gridgeo.data.cell_index against shapely's STRtree (same run).

    .venv/bin/python bench/bench_cells.py /tmp/X/big.gpkg   # the tiled 5M county of bench_big_serve.py

Both give the pieces whose box holds each of 100,000 random places (the same pairs); the STRtree needs a
GEOS point per place first. The exact point-in-polygon test after it (``intersects_xy``) is timed too.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pyogrio
import shapely

from gridgeo.data.cell_index import CellIndex


def main(path: str) -> None:
    df = pyogrio.read_dataframe(path, layer="points", columns=[]).to_crs("OGC:CRS84")
    pieces = np.asarray(df.geometry.values, dtype=object)
    shapely.prepare(pieces)
    w, s, e, n = df.total_bounds
    rng = np.random.default_rng(1)
    x, y = rng.uniform(w, e, 100_000), rng.uniform(s, n, 100_000)
    t = time.perf_counter()
    tree = shapely.STRtree(pieces)
    tb = time.perf_counter() - t
    t = time.perf_counter()
    cells = CellIndex(shapely.bounds(pieces))
    cb = time.perf_counter() - t
    print(f"build: STRtree {tb:.2f} s, cells {cb:.2f} s ({len(cells.entries)} entries for {len(pieces)} pieces)")
    for _ in range(3):
        t = time.perf_counter()
        pi, gi = tree.query(shapely.points(x, y))
        a = time.perf_counter() - t
        t = time.perf_counter()
        pj, _gj = cells.query_xy(x, y)
        b = time.perf_counter() - t
        t = time.perf_counter()
        shapely.intersects_xy(pieces[gi], x[pi], y[pi])
        c = time.perf_counter() - t
        print(f"points + STRtree {a:.3f} s ({len(pi)} candidates), cells {b:.3f} s ({len(pj)}), "
              f"ratio {a / b:.1f}x; intersects_xy {c:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/X/big.gpkg")
