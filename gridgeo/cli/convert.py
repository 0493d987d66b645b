"""``gridgeo convert``: any supported layer (OSM included) to GeoPackage or RFC 7946 GeoJSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gridgeo.cli._options import add_read_options


def register(sub: Any) -> None:
    """Add the ``convert`` subcommand."""
    v = sub.add_parser("convert", help="read any supported layer (OSM included) and write .gpkg/.geojson")
    add_read_options(v)
    v.add_argument("--kind", help="layer kind to normalise columns to (villages, buildings, roads, ...)")
    v.add_argument("-o", "--output", required=True)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, normalise to the kind's schema, write atomically."""
    from gridgeo.data.io import read_layer, write_layer

    gdf = read_layer(args.path, layer=args.layer, kind=args.kind, crs=args.crs, datum=args.datum,
                     id_col=args.id_col, encoding=args.encoding)
    write_layer(gdf, args.output, layer=args.kind or gdf.attrs.get("layer") or Path(args.path).stem)
    print(f"wrote {args.output}: {len(gdf)} features")
    return 0
