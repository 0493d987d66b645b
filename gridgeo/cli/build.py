"""``gridgeo build RULES.toml -o county.gpkg``: the whole county in one command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gridgeo.errors import UsageError

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``build`` subcommand."""
    p = sub.add_parser("build", help="build blocks, grids, points and exclusive grids for a county (RULES.toml)")
    p.add_argument("rules", help="county rules file (.toml)")
    p.add_argument("-o", "--output", required=True, help="output GeoPackage")
    p.add_argument("--input", help="a county GeoPackage as `gridgeo synth` writes it (overrides [inputs] county)")
    p.add_argument("--previous", help="an earlier build: continuing grids and points keep their codes")
    p.add_argument("-m", "--message", help="why this rebuild: kept with its version when the county has a store "
                                         "(default: 'gridgeo build RULES')")
    p.add_argument("--start-from", metavar="GRIDS",
                   help="hand-drawn grids (any format) to re-draw from as from --previous: each household stays "
                        "in its hand-drawn grid where the bounds allow (villager groups then unused)")
    p.add_argument("--start-layer", help="layer of a multi-layer --start-from file (default: grids)")
    p.add_argument("--start-code", help="code column of --start-from (default: found by alias)")
    p.add_argument("--seed", type=int, help="override [county] seed")
    p.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="build the villages on the Dask cluster of this scheduler (tcp://HOST:PORT) instead of "
                        "local worker processes; needs pip install 'gridgeo[dask]' here and gridgeo on the workers")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--progress", action="store_true", help="progress bar even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the rules, build, write the GeoPackage atomically, print the closing report."""
    from gridgeo.county.audit import StartFrom
    from gridgeo.county.build import build_county
    from gridgeo.county.report import format_report
    from gridgeo.county.rules import load_county_rules
    from gridgeo.data.io import atomic_path, write_layers

    rules = load_county_rules(args.rules)
    if args.seed is not None:
        rules = replace(rules, seed=args.seed)
    out = Path(args.output)
    if out.suffix.lower() != ".gpkg":
        raise UsageError(f"{out}: the build writes a GeoPackage (.gpkg)")
    if args.scheduler is not None and args.workers is not None:
        raise UsageError("--workers and --scheduler exclude each other: the scheduler's workers build the villages")
    res = build_county(rules, county=args.input, previous=args.previous, workers=args.workers,
                       progress=(not args.no_progress and sys.stderr.isatty()) or args.progress,
                       scheduler=args.scheduler, start_from=None if args.start_from is None else StartFrom(
                           args.start_from, layer=args.start_layer, code_col=args.start_code))
    t0 = time.perf_counter()
    carried = _carry_store(out, rules=str(args.rules), message=args.message)
    write_layers(res.layers, out, finish=carried)
    args.written = True  # an interrupt from here on says so (gridgeo.cli.main)
    res.report["seconds"]["write"] = round(time.perf_counter() - t0, 2)
    if args.report:
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(res.report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(format_report(res.report))
    print(f"wrote {out}" + (" (its store carried over: users, visits, statuses, audit trail)" if carried else ""))
    return 0


def _carry_store(out: Path, *, rules: str = "", message: str | None = None) -> Callable[[Path], object] | None:
    """What copies the store of the county being replaced into its rebuild, or None when it has none.

    Why: the embedded store lives in the county file, so writing the rebuild over it would drop every user,
    visit and audit row (:mod:`gridgeo.store.carry`). The rebuild is then recorded as a version, with its
    change list (:func:`record_build`).
    """
    from gridgeo.store.carry import carry_store, has_store

    from .users import _actor

    if not has_store(out):
        return None

    def finish(tmp: Path) -> object:
        carried = carry_store(out, tmp)
        record_build(out, tmp, author=_actor(), message=message or f"gridgeo build {rules}")
        return carried

    return finish


def record_build(old: Path, new: Path, *, author: str, message: str) -> dict[str, object]:
    """The rebuild ``new`` (its store already carried from ``old``) as a version of the county
    (:mod:`gridgeo.store.versions`), its change list against ``old`` (:func:`gridgeo.county.diff.diff_counties`).

    Why here: both files exist only now, before ``new`` replaces ``old``. The change list names the files by
    their base names (the server's directories are nobody's business over HTTP).
    """
    import datetime as dt

    from gridgeo.county.diff import diff_counties
    from gridgeo.store import Versions, open_store

    changes = diff_counties(old, new).as_dict()
    changes["old"] = changes["new"] = old.name
    store = open_store(new)  # its tables made where the old store lacked any (gg_versions itself, at first)
    try:
        versions = Versions(store)
        if not versions.list():
            when = dt.datetime.fromtimestamp(old.stat().st_mtime, dt.timezone.utc)
            versions.add(kind="build", author="unknown", changes=None,
                         message=f"{old.name} as built before versions were kept",
                         time=when.isoformat(timespec="microseconds").replace("+00:00", "Z"))
        row = versions.add(kind="build", author=author, message=message, changes=changes)
    finally:
        store.close()
    log.info("version %d of %s: %s", row["id"], old.name, message)
    return row
