"""A big built county for serving benchmarks, made cheaply: one built county tiled N times side by side.

Why tile instead of building: building a 5M-household county takes most of an hour and gigabytes;
serving only needs its shape (levels, households, roads at that scale, codes that link each unit to
its parent). Each copy is shifted east and north by whole county widths and every code column gets
the copy's number as a prefix, so codes stay unique and every ``parent`` still names a unit of the
same copy. Written layer by layer, one copy at a time (pyogrio appends), so memory stays at one copy.

    .venv/bin/python bench/tile_county.py /tmp/X/county.gpkg -o /tmp/X/big.gpkg --copies 156
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

log = logging.getLogger("tile_county")

#: columns that hold a unit code (the unit's own or a parent's): prefixed per copy
CODE_COLUMNS = ("code", "parent", "block", "township", "village", "grid", "point", "area", "micro_grid",
                "lane", "unit")


def _shifted(gdf: gpd.GeoDataFrame, copy: int, dx: float, dy: float) -> gpd.GeoDataFrame:
    """Copy ``copy`` of ``gdf``: geometry moved by (dx, dy), code columns prefixed with the copy's number."""
    out = gdf.copy()
    prefix = f"{copy:03d}"
    for col in CODE_COLUMNS:
        if col in out.columns:
            vals = out[col]
            out[col] = np.where(vals.isna(), None, prefix + vals.astype(str))
    if "members" in out.columns:  # a block's villages, comma separated
        out["members"] = [None if m is None else ",".join(prefix + v for v in str(m).split(","))
                          for m in out["members"]]
    geoms = np.asarray(out.geometry.values, dtype=object)
    out = out.set_geometry(shapely.transform(geoms, lambda c: c + np.array([dx, dy])), crs=gdf.crs)
    return out


def tile(src: Path, dst: Path, copies: int) -> dict[str, int]:
    """Write ``copies`` shifted copies of every layer of ``src`` into ``dst``; features per layer."""
    layers = [(str(n), g) for n, g in pyogrio.list_layers(src) if str(n) != "layer_styles"]
    frames = {n: pyogrio.read_dataframe(src, layer=n, read_geometry=g is not None) for n, g in layers}
    w, s, e, n = (float(v) for v in frames["villages"].total_bounds)
    side = math.ceil(math.sqrt(copies))
    width, height = (e - w) * 1.02, (n - s) * 1.02
    counts: dict[str, int] = {}
    if dst.exists():
        dst.unlink()
    for name, _ in layers:
        t0 = time.perf_counter()
        for c in range(copies):
            dx, dy = (c % side) * width, (c // side) * height
            part = _shifted(frames[name], c, dx, dy) if isinstance(frames[name], gpd.GeoDataFrame) else None
            if part is None:  # attribute table
                part = frames[name].copy()
                for col in CODE_COLUMNS:
                    if col in part.columns:
                        part[col] = f"{c:03d}" + part[col].astype(str)
            pyogrio.write_dataframe(part, dst, layer=name, append=c > 0, promote_to_multi=False)
        counts[name] = len(frames[name]) * copies
        log.info("%s: %d features in %.1f s", name, counts[name], time.perf_counter() - t0)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("county", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=156)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    counts = tile(args.county, args.out, args.copies)
    log.info("wrote %s: %s", args.out, counts)


if __name__ == "__main__":
    main()
