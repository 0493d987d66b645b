"""``gridgeo synth``: a plausible generated county GeoPackage, deterministic by seed."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``synth`` subcommand."""
    s = sub.add_parser("synth", help="generate a plausible county GeoPackage")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--townships", type=int, default=23)
    s.add_argument("--villages", type=int, default=220)
    s.add_argument("--households", type=int, default=60_000)
    s.add_argument("--county-code", default="369900", help="6-digit county code prefixed to all codes")
    s.add_argument("--center", type=float, nargs=2, metavar=("LON", "LAT"), default=(117.2, 28.25))
    s.add_argument("-o", "--output", required=True, help="output .gpkg")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate and write the county; one summary line."""
    from gridgeo.synth import synth_county, write_county

    layers = synth_county(seed=args.seed, townships=args.townships, villages=args.villages,
                          households=args.households, county_code=args.county_code,
                          center=tuple(args.center), progress=sys.stderr.isatty())
    write_county(layers, args.output)
    counts = ", ".join(f"{len(g)} {name}" for name, g in layers.items())
    print(f"wrote {args.output}: {counts}")
    return 0
