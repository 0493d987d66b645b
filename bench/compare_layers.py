"""Compare two GeoPackages layer by layer: the same layers, rows, columns, values and geometries.

Why: a refactoring (or a dependency upgrade) must not change what a build writes. This names every
difference: a layer only on one side, a different row count, a column only on one side, and per
column the first rows whose values differ; geometries are compared exactly (WKB bytes) and, where
they differ, by the symmetric-difference area.

Usage::

    python bench/compare_layers.py before.gpkg after.gpkg [--layer L ...]

Exit 0 when identical, 1 when anything differs. Also prints a digest per layer (row count and a
SHA-256 of every value and geometry in order), the same numbers ``tests/county/test_sample_build``
pins for the bundled sample county.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely


def layer_digest(gdf: gpd.GeoDataFrame) -> str:
    """SHA-256 over the columns, every value and every geometry's WKB, in row order."""
    h = hashlib.sha256()
    h.update(repr(list(gdf.columns)).encode())
    for col in gdf.columns:
        if col == gdf.geometry.name:
            for wkb in shapely.to_wkb(gdf.geometry.values, hex=False):
                h.update(b"\x00" if wkb is None else wkb)
        else:
            h.update(pd.util.hash_pandas_object(gdf[col].astype("string"), index=False).values.tobytes())
    return h.hexdigest()


def read_all(path: Path, layers: list[str] | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Every data layer (gridgeo's list: QGIS's ``layer_styles`` is no layer of the county)."""
    from gridgeo.data.io import list_layers

    names = list_layers(path)
    return {n: gpd.read_file(path, layer=n) for n in names if layers is None or n in layers}


def compare_layer(name: str, a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> list[str]:
    """Every difference between two versions of one layer, one line each."""
    if len(a) != len(b):
        return [f"{name}: {len(a)} rows vs {len(b)}"]
    out = [f"{name}: column {c!r} only in the first" for c in a.columns if c not in b.columns]
    out += [f"{name}: column {c!r} only in the second" for c in b.columns if c not in a.columns]
    for col in (c for c in a.columns if c in b.columns):
        if col == a.geometry.name:
            wa, wb = shapely.to_wkb(a.geometry.values), shapely.to_wkb(b.geometry.values)
            bad = [i for i in range(len(a)) if wa[i] != wb[i]]
            if bad:
                diff = shapely.area(shapely.symmetric_difference(a.geometry.values[bad], b.geometry.values[bad]))
                out.append(f"{name}: {len(bad)} geometries differ (first rows {bad[:5]}; max sym-diff "
                           f"{float(diff.max()):.3g} in layer units²)")
            continue
        va, vb = a[col].astype("string").fillna("<NA>"), b[col].astype("string").fillna("<NA>")
        bad = [i for i, (x, y) in enumerate(zip(va, vb, strict=True)) if x != y]
        if bad:
            i = bad[0]
            out.append(f"{name}.{col}: {len(bad)} values differ (row {i}: {va.iloc[i]!r} vs {vb.iloc[i]!r})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--layer", action="append", help="compare only these layers")
    args = ap.parse_args(argv)
    a, b = read_all(args.first, args.layer), read_all(args.second, args.layer)
    problems = [f"layer {n!r} only in {args.first}" for n in a if n not in b]
    problems += [f"layer {n!r} only in {args.second}" for n in b if n not in a]
    for name in (n for n in a if n in b):
        found = compare_layer(name, a[name], b[name])
        problems += found
        verdict = "DIFFERENT" if found else "same"
        print(f"{name:18s} {len(a[name]):7d} rows  {verdict}  {layer_digest(b[name])[:16]}")
    for line in problems:
        print(line, file=sys.stderr)
    print(f"{'identical' if not problems else f'{len(problems)} differences'}: {args.first} vs {args.second}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
