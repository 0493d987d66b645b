"""``gridgeo blocks``: contiguous blocks of villages within townships (exit 3 when a hard rule cannot hold)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gridgeo.cli._options import add_read_options, positive
from gridgeo.errors import InfeasibleError, UsageError


def register(sub: Any) -> None:
    """Add the ``blocks`` subcommand."""
    b = sub.add_parser("blocks", help="group villages into contiguous blocks within townships (exit 3: infeasible)")
    add_read_options(b)
    b.add_argument("-o", "--output", required=True, help="blocks layer (.geojson or .gpkg)")
    b.add_argument("--group-by", help="column naming each village's township; blocks never cross it")
    b.add_argument("--size-col", help="numeric column the bounds are on (default: number of villages)")
    b.add_argument("--min", dest="min_size", type=positive(), help="minimum block size")
    b.add_argument("--max", dest="max_size", type=positive(), help="maximum block size")
    bc = b.add_mutually_exclusive_group()
    bc.add_argument("--count", type=int, help="blocks per group (default: as many as the bounds allow)")
    bc.add_argument("--count-col", help="column holding each group's number of blocks")
    b.add_argument("--similar", nargs="+", action="extend", help="columns not to mix within a block (e.g. kind)")
    b.add_argument("--lock", help="village -> block file (.json, .csv or a blocks layer) of blocks to keep")
    b.add_argument("--previous", help="an earlier village -> block assignment: move as few villages as possible")
    b.add_argument("--rules", help="rules file (.toml or .json) with the same options")
    b.add_argument("--seed", type=int, help="random seed (default 0)")
    b.add_argument("--time-limit", type=positive(), help="safety stop in seconds")
    b.add_argument("--min-shared", type=positive(), default=5.0, help="minimum shared boundary, m (default 5)")
    b.add_argument("--snap", type=positive(), default=2.0, help="bridge gaps narrower than this, m (default 2)")
    b.add_argument("--report", help="write the JSON report here")
    b.set_defaults(func=run)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The command line over the rules file (``--rules``): what the command line leaves out, the file fills in."""
    from gridgeo.county.rules import WEIGHT_KEYS, load_rules_file
    from gridgeo.partition import Objective

    opts: dict[str, Any] = load_rules_file(args.rules) if getattr(args, "rules", None) else {}

    def pick(name: str, key: str) -> Any:
        v = getattr(args, name, None)
        return v if v not in (None, []) else opts.get(key)

    count, count_col = pick("count", "count"), pick("count_col", "count_col")
    if getattr(args, "count", None) is not None:
        count_col = None
    if getattr(args, "count_col", None) is not None:
        count = None
    weights = opts.get("weights", {})
    objective = Objective(**{k: float(weights[k]) for k in WEIGHT_KEYS if k in weights}) if weights else None  # type: ignore[arg-type]
    return {
        "id_col": pick("id_col", "id"), "group_col": pick("group_by", "group_by"),
        "size_col": pick("size_col", "size_col"), "min_size": pick("min_size", "min"),
        "max_size": pick("max_size", "max"), "count": count, "count_col": count_col,
        "similar": pick("similar", "similar") or (), "seed": int(pick("seed", "seed") or 0),
        "time_limit": pick("time_limit", "time_limit"), "objective": objective,
    }


def run(args: argparse.Namespace) -> int:
    """Read, solve, write the blocks and the report.

    Returns 0 when every hard rule holds; otherwise writes the best partition
    (each block's broken rules in ``violations``) and raises
    :class:`~gridgeo.errors.InfeasibleError` (exit 3) naming them.
    """
    from gridgeo.county.blocks import make_blocks, read_assignment
    from gridgeo.data.io import atomic_path, read_layer, write_layer

    opts = _options(args)
    out_path = Path(args.output)
    if out_path.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        raise UsageError(f"{out_path}: output must be .geojson or .gpkg")
    id_col = opts["id_col"]
    gdf = read_layer(args.path, layer=args.layer, crs=getattr(args, "crs", None), datum=getattr(args, "datum", None),
                     id_col=id_col, encoding=getattr(args, "encoding", None))
    locks = read_assignment(args.lock, id_col=id_col) if getattr(args, "lock", None) else None
    previous = read_assignment(args.previous, id_col=id_col) if getattr(args, "previous", None) else None
    out = make_blocks(gdf, **opts, locks=locks, previous=previous, min_shared=getattr(args, "min_shared", 5.0),
                      snap=getattr(args, "snap", 2.0), progress=sys.stderr.isatty())
    write_layer(out.blocks, out_path, layer="blocks")
    if getattr(args, "report", None):
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(out.report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    rep = out.report
    moved = f"; {rep['moved']} village(s) moved" if rep["moved"] is not None else ""
    print(f"wrote {out_path}: {rep['blocks']} blocks from {rep['units']} villages in {rep['groups']} group(s); "
          f"mean Polsby-Popper {rep['compactness']['mean_polsby_popper']}{moved}")
    if not out.feasible:
        vs = out.result.violations
        raise InfeasibleError(f"{len(vs)} hard rule violation(s) ({', '.join(out.result.failed_rules)}); "
                              f"first: {vs[0].message}; the best partition was written with each block's broken "
                              "rules in its 'violations' column")
    return 0
