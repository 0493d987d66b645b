"""``gridgeo merge``: one network from many (多网合一): departmental grid layers into one grid layer and a crosswalk."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gridgeo.cli._options import positive
from gridgeo.errors import UsageError


def register(sub: Any) -> None:
    """Add the ``merge`` subcommand."""
    m = sub.add_parser("merge", help="merge departmental grid layers into one grid layer within the rules, "
                                     "with a crosswalk (多网合一)")
    m.add_argument("layers", nargs="+", metavar="LAYER",
                   help="departmental grid layers, each FILE or FILE:LAYER (two or more)")
    m.add_argument("-o", "--output", required=True,
                   help="output .gpkg: grids, villages, crosswalk table, merge_problems (gaps and overlaps)")
    m.add_argument("--name", dest="names", action="append",
                   help="a department's name, once per LAYER in order (default: the layer name)")
    m.add_argument("--county", help="a county GeoPackage (input of gridgeo build, or one it wrote): villages and "
                                    "households or buildings from it")
    m.add_argument("--villages", help="villages FILE[:LAYER] (default: the --county file's villages)")
    m.add_argument("--households", help="household points FILE[:LAYER] (with a households column where known)")
    m.add_argument("--buildings", help="buildings FILE[:LAYER] (households given or estimated from the footprint)")
    m.add_argument("--rules", help="county rules file (.toml): [bounds.KIND] grid = [min, max], seed, search")
    m.add_argument("--id", dest="id_col", action="append",
                   help="column of the departmental grid ids: once for every LAYER, or once per LAYER in order "
                        "(default: code where a layer has it, else the row number)")
    m.add_argument("--seed", type=int, help="random seed (default: the rules' seed, else 0)")
    m.add_argument("--sliver", type=positive(), default=2.0,
                   help="faces of the overlay thinner than this, m, join a neighbour (default 2)")
    m.add_argument("--workers", type=int, help="worker processes for the villages (default: the rules' workers, "
                                               "else 1; the result does not depend on it)")
    m.add_argument("--report", help="write the JSON report here")
    m.set_defaults(func=run)


def _workers(given: int | None, rules: int | None) -> int:
    """The command line's, else the rules', else one process.

    Why not every CPU by default, as the build: a village's merge is small, and on the 150,000-household
    county two workers on a shared two-core machine took 19.8 s against 15.7 s in one process (the tasks'
    pickling and the workers' imports cost more than they saved; ``bench/README.md``).
    """
    n = given if given is not None else rules if rules is not None else 1
    if n < 1:
        raise UsageError(f"--workers must be at least 1, not {n}")
    return int(n)


def run(args: argparse.Namespace) -> int:
    """Read, merge, write the layers and the report; print one summary line."""
    from gridgeo.county.merge import MergeOptions, merge_files, write_merge
    from gridgeo.county.rules import CountyRules, load_county_rules
    from gridgeo.data.io import atomic_path

    out = Path(args.output)
    if out.suffix.lower() != ".gpkg":
        raise UsageError(f"{out}: the merge writes several layers and a table: the output must be .gpkg")
    rules = load_county_rules(args.rules) if args.rules else CountyRules()
    opts = MergeOptions(sliver_m=args.sliver, min_unit_m2=rules.min_unit_m2, iterations=rules.iterations,
                        restarts=rules.restarts)
    result = merge_files(args.layers, names=args.names, villages=args.villages, households=args.households,
                         buildings=args.buildings, county=args.county, rules=rules, id_col=args.id_col,
                         seed=args.seed, options=opts, workers=_workers(args.workers, rules.workers))
    write_merge(result, out)
    if args.report:
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(result.report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    rep = result.report
    found = "; ".join(f"{n}: {d['gaps']} gap(s), {d['overlaps']} overlap(s)" for n, d in rep["departments"].items())
    share = rep["within_bounds_share"]
    print(f"wrote {out}: {rep['grids']} grids in {rep['villages']} villages from {len(rep['departments'])} "
          f"departments, {100 * share if share is not None else 0:.1f} % inside the bounds, "
          f"{len(result.crosswalk)} crosswalk rows; {found}")
    return 0
