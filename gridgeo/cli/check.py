"""``gridgeo check``: read a boundary layer, report and repair its problems."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from gridgeo.cli._options import add_read_options, positive

log = logging.getLogger("gridgeo")


def register(sub: Any) -> None:
    """Add the ``check`` subcommand."""
    c = sub.add_parser("check", help="check and repair a boundary layer")
    add_read_options(c)
    c.add_argument("--parent", dest="parent_col", help="column naming each feature's parent (e.g. township)")
    c.add_argument("--area-tol", type=positive(), default=1.0,
                   help="ignore overlaps/gaps/parts at or below this area, m² (default 1)")
    c.add_argument("--snap", type=positive(), default=2.0,
                   help="gaps/overlaps narrower than this, m, are slivers (default 2)")
    c.add_argument("--repair-slivers", action="store_true",
                   help="also resolve sliver overlaps and fill sliver gaps (moves shared boundaries)")
    c.add_argument("--json", action="store_true", help="one JSON object on stdout")
    c.add_argument("-o", "--output", help="write the repaired layer (.gpkg or .geojson)")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report (table or JSON); exit 1 when the layer is not usable."""
    from gridgeo.data.check import check_file
    from gridgeo.data.io import write_layer

    result = check_file(args.path, layer=args.layer, id_col=args.id_col, parent_col=args.parent_col,
                        crs=args.crs, datum=args.datum, encoding=args.encoding, area_tol=args.area_tol, snap=args.snap,
                        repair_slivers=args.repair_slivers)
    report = result.report
    if args.output:
        if not report.usable:
            log.error("not writing %s: the layer has errors", args.output)
        else:
            write_layer(result.gdf, args.output, layer=report.layer or Path(args.path).stem)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(report.table())
    message = report.unusable_message(hint=False)
    if message is not None:
        print(f"gridgeo: error: {args.path}: {message}", file=sys.stderr)
        return 1
    return 0
