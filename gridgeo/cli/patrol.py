"""``gridgeo patrol``: a day's (or N days') prioritized patrol routes on the street network.

Options left out take the ``[patrol]`` section of ``--rules`` where given, else the library's defaults
(:class:`gridgeo.patrol.PatrolOptions`, shared with the ``/patrol/{grid}`` service); the help texts quote them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from gridgeo.cli._options import date, lonlat, time
from gridgeo.errors import GridgeoError, UsageError, exit_code

log = logging.getLogger("gridgeo.patrol")


def register(sub: Any) -> None:
    """Add the ``patrol`` subcommand."""
    p = sub.add_parser(
        "patrol",
        help="daily / periodic patrol routes on the street network (GeoJSON, GPX)",
        description="Plan grid workers' patrol rounds: the most priority-weighted due visits within a "
        "daily time budget, on the street network. Exit 1 bad input, 2 usage, 3 infeasible budget.",
    )
    p.add_argument("county", help="county GeoPackage (grids or villager_groups, buildings, roads, pois)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--grid", help="grid code; A,B,...: one round across several small grids (one worker's)")
    which.add_argument("--worker", metavar="PERSON_ID",
                       help="the grids this person serves in the county's people table, in one round")
    which.add_argument("--all", action="store_true", help="every grid (-o is then a directory)")
    which.add_argument("--check-budget", action="store_true",
                       help="check every grid's due visits of --date against the budget with the route solver: "
                            "-o is a JSON report of the grids that do not fit and why; exit 3 when some do not")
    p.add_argument("--date", type=date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--days", type=int, default=1, help="days to plan (periodic plan), default 1")
    p.add_argument("--budget", help="daily budget: 4h, 90min, 3h30m, 240 (minutes); default 4h")
    p.add_argument("--network", help="OSM file or road layer (default: the county's roads layer)")
    p.add_argument("--mode", choices=("walk", "drive"), default="walk", help="network, default walk")
    p.add_argument("--speed", type=float, default=None, help="km/h (default 4.5 walking, 25 driving)")
    p.add_argument("--rules", help="county rules file (TOML): its [patrol] section (budget, speed, visit rules per "
                   "colour and special-care category, campaign, start/end); options given here override it")
    p.add_argument("--start-time", type=time, help="start time HH:MM, default 08:30 (UTC+8)")
    p.add_argument("--start", help="where each round starts: station (default), home (needs --home) or LON,LAT "
                   "(HH:MM is still read as --start-time)")
    p.add_argument("--end", help="where each round ends: station, home or LON,LAT (default: where it starts)")
    p.add_argument("--home", type=lonlat, help="LON,LAT of the worker's home (for --start/--end home)")
    p.add_argument("--campaign", type=int, metavar="N",
                   help="campaign (扫楼敲门): visit every household of the grid once over N days")
    p.add_argument("--workers", metavar="N|roster",
                   help="workers on the grid: one round each, together covering the day's due visits (default 1; "
                        "roster: the grid's 网格员 in the county's people table)")
    p.add_argument("--station", type=lonlat,
                   help="LON,LAT of the station (default: the street point nearest the grid's inner point)")
    p.add_argument("--max-snap", type=float,
                   help="metres from a stop to the street; farther stops are missed (default 1000)")
    p.add_argument("--store", help="the store whose logged visits and household statuses the plan starts from: "
                   "a postgresql:// URL (default: the county GeoPackage's own, where it has one; 'none': ignore it)")
    p.add_argument("--seed", type=int, help="seed of synthetic stops and of the solver (default 0)")
    p.add_argument("--time-limit", type=float, help="solver safety cap per day, seconds (default 1)")
    p.add_argument("-o", "--output", required=True, help="route GeoJSON (with --all: a directory)")
    p.add_argument("--gpx", help="also write GPX 1.1 (with --all: a directory)")
    p.set_defaults(func=run)


def _start(args: argparse.Namespace) -> None:
    """``--start HH:MM`` (the start time, as before ``--start-time``) read as the time, and said so."""
    import datetime as dt

    if args.start is None or ":" not in args.start:
        return
    try:
        at = dt.time.fromisoformat(args.start)
    except ValueError:
        return
    log.warning("--start %s is a time: read as --start-time (--start now names the start place)", args.start)
    args.start_time, args.start = args.start_time or at, None


def _options(args: argparse.Namespace) -> Any:
    """The :class:`gridgeo.patrol.PatrolOptions`: the library's defaults, then the rules file's ``[patrol]``,
    then the command line."""
    from dataclasses import replace

    from gridgeo.county.rules import load_county_rules
    from gridgeo.data.quantities import parse_place
    from gridgeo.patrol import PatrolOptions, options_from_rules, parse_budget
    from gridgeo.patrol.team import MAX_WORKERS

    _start(args)
    opts = PatrolOptions()
    if args.rules is not None:
        opts = options_from_rules(load_county_rules(args.rules).patrol, opts)
    if args.campaign is not None and args.campaign < 1:
        raise UsageError(f"--campaign must be >= 1 days, got {args.campaign}")
    workers = _workers(args.workers, MAX_WORKERS)
    given = {"speed_kmh": args.speed, "start_time": args.start_time, "max_snap": args.max_snap, "seed": args.seed,
             "time_limit": args.time_limit, "campaign_days": args.campaign, "home": args.home,
             "start": None if args.start is None else parse_place(args.start, "--start"),
             "end": None if args.end is None else parse_place(args.end, "--end")}
    if args.budget is not None:
        given["budget_min"] = parse_budget(args.budget)
    opts = replace(opts, **{k: v for k, v in given.items() if v is not None})
    return opts if args.workers is None else replace(opts, workers=workers)


def _workers(text: str | None, most: int) -> int | None:
    """``--workers``: a count from 1 to ``most``, or ``roster`` (None: the county's people table says)."""
    if text is None or text == "roster":
        return None
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise UsageError(f"--workers must be 1 to {most} or roster, got {text!r}")
    return int(text)


def _one_grid(county: Any, args: argparse.Namespace, options: Any) -> int:
    from gridgeo.patrol import plan_grid, route_geojson, write_geojson, write_gpx

    if args.worker is not None:
        args.grid = county.units_of(args.worker)
    plans = plan_grid(county, args.grid, day=args.date, days=args.days, options=options,
                      station_lonlat=args.station)
    if options.campaign_days is not None:
        s = route_geojson(plans)["properties"]
        print(f"grid {args.grid}: campaign of {len(plans)} days, {s['visits_made']}/{s['visits_due']} households "
              f"visited once, {s['visits_missed']} do not fit")
    write_geojson(plans, args.output)
    if args.gpx:
        write_gpx(plans, args.gpx)
    s = route_geojson(plans)["properties"]
    print(f"grid {args.grid}: {s['visits_made']}/{s['visits_due']} due visits over {len(plans)} day(s), "
          f"{s['distance_m'] / 1000:.1f} km, {s['visits_missed']} missed; wrote {args.output}"
          + (f" and {args.gpx}" if args.gpx else ""))
    if s.get("synthetic_priorities"):
        print("note: household priorities are synthetic (the county has none)")
    return 0


def _output_dirs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    out = Path(args.output)
    if out.suffix.lower() in (".geojson", ".json"):
        raise UsageError(f"{out}: with --all, -o is a directory (one GeoJSON per grid and summary.json)")
    out.mkdir(parents=True, exist_ok=True)
    gpx_dir = Path(args.gpx) if args.gpx else None
    if gpx_dir is not None:
        gpx_dir.mkdir(parents=True, exist_ok=True)
    return out, gpx_dir


def _summary(county: Any, summaries: list[dict[str, Any]], failed: list[dict[str, Any]]) -> dict[str, Any]:
    red_due = sum(s["red_due"] for s in summaries)
    red_met = sum(s["red_met"] for s in summaries)
    return {
        "grids": len(county.codes), "planned": len(summaries), "failed": failed,
        "red_met_share": round(red_met / red_due, 4) if red_due else 1.0,
        "visits_made": sum(s["visits_made"] for s in summaries),
        "visits_missed": sum(s["visits_missed"] for s in summaries),
        "synthetic_priorities": any(s["synthetic_priorities"] for s in summaries),
        "per_grid": [{k: v for k, v in s.items() if k not in ("missed", "days_detail")} for s in summaries],
    }


def _all_grids(county: Any, args: argparse.Namespace, options: Any) -> int:
    from tqdm import tqdm

    from gridgeo.data.io import atomic_path
    from gridgeo.patrol import period_summary, plan_grid, write_geojson, write_gpx

    out, gpx_dir = _output_dirs(args)
    summaries: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for code in tqdm(county.codes, desc="patrol", unit="grid", disable=not sys.stderr.isatty()):
        try:
            plans = plan_grid(county, code, day=args.date, days=args.days, options=options,
                              station_lonlat=args.station)
        except GridgeoError as err:
            log.error("grid %s: %s", code, err)
            failed.append({"grid": code, "error": str(err), "exit_code": exit_code(err)})
            continue
        write_geojson(plans, out / f"{code}.geojson")
        if gpx_dir is not None:
            write_gpx(plans, gpx_dir / f"{code}.gpx")
        summaries.append(period_summary(plans))
    total = _summary(county, summaries, failed)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(total, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{len(summaries)}/{len(county.codes)} grids planned, red visits met {total['red_met_share']:.1%}; "
          f"wrote {out}/")
    if failed:
        print(f"gridgeo: error: {len(failed)} grids failed, first: {failed[0]['error']}", file=sys.stderr)
        return max(int(f["exit_code"]) for f in failed)
    return 0


def _check_budget(county: Any, args: argparse.Namespace, options: Any) -> int:
    """``--check-budget``: every grid's day planned (:func:`gridgeo.patrol.walkcheck.check_walk`); the JSON report."""
    from gridgeo.data.io import atomic_path
    from gridgeo.patrol.walkcheck import check_walk

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        raise UsageError(f"{out}: with --check-budget, -o is the JSON report (.json)")
    res = check_walk(county, day=args.date, options=options)
    s = res.summary()
    body = {**s, "not_fitting": [g.row() for g in res.grids if not g.fits]}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    reasons = ", ".join(f"{n} {r}" for r, n in s["by_reason"].items())
    print(f"{s['fit']}/{s['grids']} grids' due visits of {s['date']} fit {options.budget_min:g} min "
          f"({s['fit_share']:.1%})" + (f"; not fitting: {reasons}" if reasons else "") + f"; wrote {out}")
    return 3 if s["fit"] < s["grids"] else 0


def _records(target: str) -> Any:
    """The real last visits and statuses of the store at ``target`` (None where it has none), read and closed
    before the county is read: GDAL's SQLite must not open the file while Python's holds it (WAL)."""
    from gridgeo.patrol.records import Records
    from gridgeo.store import is_url, open_store

    if not is_url(target) and not _is_sqlite(Path(target)):
        return None  # a GeoJSON or Shapefile county keeps no store
    store = open_store(target, create=False)
    try:
        if not store.ready():
            return None
        records = Records(store.last_visits(), store.statuses())
    finally:
        store.close()
    log.info("%s: planning from %d logged last visits and %d household statuses", target,
             len(records.last_visits), len(records.statuses))
    return records


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    """Plan one grid (``--grid``) or every grid (``--all``) and write GeoJSON (and GPX)."""
    from gridgeo.patrol import County
    from gridgeo.patrol.options import check_plan_dates

    options = _options(args)
    if args.days < 1:
        raise UsageError(f"--days must be >= 1, got {args.days}")
    check_plan_dates(args.date, options.campaign_days or args.days)
    records = _records(args.store or args.county) if args.store != "none" else None
    county = County(args.county, network=args.network, mode=args.mode, seed=options.seed)
    if records:
        county.use_records(records)
    if args.check_budget:
        return _check_budget(county, args, options)
    if not args.all:
        return _one_grid(county, args, options)
    return _all_grids(county, args, options)
