"""``gridgeo audit GRIDS --county COUNTY.gpkg``: where a hand-drawn grid or grid-point layer breaks the rules.

Exit codes (as ``gridgeo check``, one line on stderr naming the file and the first problem):
0 the layer is clean; 3 it breaks rules (gaps, overlaps, parts outside the parent, households in no
unit or in several, sizes outside the bounds, multi-part or invalid units, unknown parents); 1 the
input cannot be read or used (no such file, no code column, duplicate codes, non-polygons); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from gridgeo.cli._options import positive

log = logging.getLogger("gridgeo")

#: exit code of a layer that is read and measured but breaks rules (InfeasibleError's: hard rules not all met)
EXIT_BROKEN = 3


def register(sub: Any) -> None:
    """Add the ``audit`` subcommand."""
    p = sub.add_parser("audit", help="audit a hand-drawn grid or grid-point layer against a county")
    p.add_argument("path", metavar="GRIDS", help="the layer: GeoPackage, GeoJSON, Shapefile (.shp or .zip)")
    p.add_argument("--county", required=True,
                   help="a built county (gridgeo build) or an input county GeoPackage (villages, buildings)")
    p.add_argument("--level", choices=["grids", "points"], default="grids",
                   help="what the layer holds: grids (parents: villages) or points (parents: the built grids)")
    p.add_argument("--layer", help="layer of a multi-layer file (default: the one named after --level)")
    p.add_argument("--code", dest="code_col", help="column with the unit codes (default: found by alias)")
    p.add_argument("--parent", dest="parent_col",
                   help="column with the parent code (village for grids, grid for points); default: found by "
                        "alias, else the parent holding most of each unit")
    p.add_argument("--rules", help="county rules file (.toml): the household bounds (default: the built-in ones)")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--crs", help="declare the layer's CRS (e.g. EPSG:4490, EPSG:4549) when missing or wrong")
    p.add_argument("--datum", choices=["wgs84", "gcj02", "bd09"],
                   help="lon/lat traced off a Chinese web map: GCJ-02 (Amap, Tencent) or BD-09 (Baidu)")
    p.add_argument("--encoding", help="Shapefile text encoding when the .cpg is missing or wrong (e.g. GBK)")
    p.add_argument("--area-tol", type=positive(), default=1.0,
                   help="ignore gaps, overlaps and outside parts at or below this area, m² (default 1)")
    p.add_argument("--snap", type=positive(), default=2.0,
                   help="gaps/overlaps narrower than this, m, are slivers: warnings (default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Audit, write the report atomically, print the summary line; the exit code says clean or not."""
    from gridgeo.county.audit import audit_file
    from gridgeo.county.rules import CountyRules, load_county_rules
    from gridgeo.data.io import atomic_path

    rules = load_county_rules(args.rules) if args.rules else CountyRules()
    rep = audit_file(args.path, args.county, level=args.level, layer=args.layer, code_col=args.code_col,
                     parent_col=args.parent_col, rules=rules, crs=args.crs, datum=args.datum,
                     encoding=args.encoding, area_tol=args.area_tol, snap=args.snap)
    if args.report:
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(rep.to_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    print(rep.summary())
    if not rep.usable:
        message = rep.check.unusable_message(what="unit", hint=False) if rep.check else "not usable"
        print(f"gridgeo: error: {args.path}: {message}", file=sys.stderr)
        return 1
    if not rep.clean:
        broken = ", ".join(f"{n} {k}" for k, n in rep.broken().items())
        print(f"gridgeo: {args.path}: breaks rules: {broken}" + (f" (see {args.report})" if args.report else ""),
              file=sys.stderr)
        return EXIT_BROKEN
    return 0
