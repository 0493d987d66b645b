"""``gridgeo diff OLD.gpkg NEW.gpkg``: the change list between two builds of a county.

Per level: codes retired, created, kept with another shape; the households that now belong to another
unit (from -> to); the people on a unit the rebuild retired; the rules before and after
(:mod:`gridgeo.county.diff`). The summary goes to stdout, the whole list as JSON with ``--json``.
Exit 0 whether or not anything changed; 1 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger("gridgeo")


def register(sub: Any) -> None:
    """Add the ``diff`` subcommand."""
    p = sub.add_parser("diff", help="the change list between two builds of a county (codes, households, people)")
    p.add_argument("old", metavar="OLD", help="the earlier built county (GeoPackage)")
    p.add_argument("new", metavar="NEW", help="the later built county (GeoPackage)")
    p.add_argument("--json", metavar="PATH", help="write the whole change list here as JSON ('-': stdout)")
    p.add_argument("--area-tol", type=float, default=1.0, metavar="M2",
                   help="a kept code whose polygons differ by at most this many m² is unchanged (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare; the summary to stdout, the JSON where asked."""
    from gridgeo.county.diff import diff_counties
    from gridgeo.data.io import atomic_path

    res = diff_counties(args.old, args.new, area_tol=args.area_tol)
    text = json.dumps(res.as_dict(), ensure_ascii=False, indent=1)
    if args.json == "-":
        sys.stdout.write(text + "\n")
        return 0
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(text, encoding="utf-8")
    sys.stdout.write(res.summary() + "\n")
    return 0
