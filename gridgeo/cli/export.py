"""``gridgeo export COUNTY.gpkg -o DIR``: the county's tables (units, households, people) as XLSX or CSV."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``export`` subcommand."""
    from gridgeo.data.export import FORMATS

    p = sub.add_parser("export", help="every layer of a county GeoPackage as an Excel sheet or a CSV file "
                                      "(no geometry; lon/lat of a representative point)")
    p.add_argument("path", help="a county GeoPackage (what `gridgeo build` writes)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write into")
    p.add_argument("--format", choices=FORMATS, default="xlsx",
                   help="xlsx: one workbook, a sheet per layer (default); csv: one UTF-8 (BOM) file per layer")
    p.add_argument("--chinese-headers", action="store_true",
                   help="Chinese column headers and sheet names (编码, 名称, 上级编码, 户数, ...)")
    p.add_argument("--layers", metavar="A,B,...", help="only these layers, comma-separated (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, atomically; print one line per file written."""
    from gridgeo.data.export import export_tables
    from gridgeo.errors import UsageError

    layers = None
    if args.layers is not None:
        layers = [s.strip() for s in args.layers.split(",") if s.strip()]
        if not layers:
            raise UsageError(f"--layers {args.layers!r} names no layer")
    for path in export_tables(args.path, args.output, fmt=args.format, chinese=args.chinese_headers,
                              layers=layers):
        print(f"wrote {path}")
    return 0
