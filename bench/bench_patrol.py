"""Benchmark: a daily patrol plan for every grid of a generated county (~500 grids).

Generates a county with :func:`gridgeo.synth.synth_county` (``--villages 80`` gives about 500
villager groups, each taken as a grid), opens it with :class:`gridgeo.patrol.County` (network from
its ``roads`` layer), then plans one day per grid (stops, snapping, one multi-source Dijkstra,
orienteering, route geometry) and reports total and per-grid times and the share of red visits met.
The issue's target: every grid in under 60 s.

    /tmp/v/bin/python bench/bench_patrol.py --villages 80 [--update-readme]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _readme import write_section
from tqdm import tqdm

from gridgeo.cli import main as gridgeo_main
from gridgeo.errors import InfeasibleError
from gridgeo.patrol import County, check_budget, parse_budget, plan_day, prepare
from gridgeo.synth import synth_county, write_county

log = logging.getLogger("bench_patrol")
HEADER = """## Patrol: a daily plan for every grid of a generated county (`gridgeo.patrol`)

```sh
/tmp/v/bin/python bench/bench_patrol.py --villages 80 --update-readme   # or .venv/bin/python
```

A county from `synth_county(seed=1, townships=8, villages=80, households=20000)` (503 villager groups, each
taken as a grid; no `grids` layer), walking network from its `roads` layer, budget 4 h at 4.5 km/h, one day.
Per grid: synthetic stops (households drawn red/orange/yellow 3/7/15 %, grid points, POIs as risk points),
snapping, one multi-source Dijkstra, `gridgeo.routing.orienteering`, route geometry. Target: under 60 s.
The network is the `roads` layer noded at every same-level crossing with every component kept and joined by
off-network links (README "### Patrol routes"). "A due visit cannot fit the budget": grids with a due visit
missed for a reason other than other visits taking the budget (round trip alone over budget, unreachable, too
far from the streets). "Off-network legs": legs of the day's routes walked off the streets, longer than 50 m
(links between network components and walks to doors far from any street), counted over all routes.

Before issue 13 item 1 (main at 75d6357: largest component only, crossings without a shared vertex not noded;
the same command, 2026-12-02): network 1556 nodes, 1580 edges, 873 km; visits made / missed 1527 / 92; red
visits met 574/592 (97.0 %); grids with budget < every round trip 9; grids where a due visit cannot fit the
budget 9.
"""


def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = Path(tmp) / "county.gpkg"
        t0 = time.perf_counter()
        write_county(synth_county(seed=args.seed, townships=args.townships, villages=args.villages,
                                  households=args.households), gpkg)
        t_synth = time.perf_counter() - t0
        t0 = time.perf_counter()
        county = County(gpkg, seed=args.seed)
        t_open = time.perf_counter() - t0
        budget = parse_budget(args.budget)
        day = dt.date.fromisoformat(args.date)
        per_grid: list[float] = []
        stops: list[int] = []
        red_due = red_met = visits = missed = 0
        over_budget = infeasible = cannot_fit = 0
        off_legs: list[float] = []
        t_plan = time.perf_counter()
        for code in tqdm(county.codes, desc="patrol", unit="grid", disable=not sys.stderr.isatty()):
            t = time.perf_counter()
            gs = county.grid_stops(code, day)
            problem = prepare(county.network, gs, budget_min=budget)
            try:
                check_budget(problem, budget)
            except InfeasibleError as err:
                log.info("%s", err)
                infeasible += 1
            plan = plan_day(problem, day, budget_min=budget, seed=args.seed, time_limit=args.time_limit)
            per_grid.append(time.perf_counter() - t)
            s = plan.summary()
            stops.append(len(gs.stops))
            red_due += s["red_due"]
            red_met += s["red_met"]
            visits += s["visits_made"]
            missed += s["visits_missed"]
            over_budget += plan.duration_min > budget + 1e-6
            cannot_fit += any(not _budget_only(m.reason) for m in plan.missed)
            off_legs += [leg["length_m"] for leg in s.get("off_network", [])]
        t_plan = time.perf_counter() - t_plan
        # the same through the CLI, writing one GeoJSON and one GPX per grid
        t0 = time.perf_counter()
        rc = gridgeo_main(["patrol", str(gpkg), "--all", "--date", args.date, "--budget", args.budget,
                           "--seed", str(args.seed), "-o", str(Path(tmp) / "routes"), "--gpx", str(Path(tmp) / "gpx")])
        t_cli = time.perf_counter() - t0
    arr = np.array(per_grid)
    return {
        "grids": len(per_grid), "synth_s": t_synth, "cli_s": t_cli, "cli_rc": rc, "open_s": t_open, "plan_s": t_plan,
        "mean_ms": 1000 * arr.mean(), "max_ms": 1000 * arr.max(), "p95_ms": 1000 * np.percentile(arr, 95),
        "stops_mean": float(np.mean(stops)), "stops_max": int(np.max(stops)),
        "red_due": red_due, "red_met": red_met, "visits": visits, "missed": missed, "over_budget": over_budget,
        "infeasible": infeasible, "cannot_fit": cannot_fit,
        "off_legs": len(off_legs), "off_km": sum(off_legs) / 1000.0,
        "network": f"{county.network.n_nodes} nodes, {county.network.n_edges} edges, "
                   f"{county.network.length_km:.0f} km",
    }


def _budget_only(reason: str) -> bool:
    """A visit missed only because other visits took the budget (it would fit alone)."""
    return "budget exhausted" in reason


def table(r: dict[str, object], args: argparse.Namespace) -> str:
    share = (r["red_met"] / r["red_due"]) if r["red_due"] else 1.0  # type: ignore[operator]
    cmd = (f"bench/bench_patrol.py --seed {args.seed} --townships {args.townships} --villages {args.villages} "
           f"--households {args.households} --budget {args.budget}")
    cli = (f"`gridgeo patrol county.gpkg --all --date {args.date} --budget {args.budget} -o routes/ --gpx gpx/` "
           f"(open, plan, write {r['grids']} GeoJSON + GPX): {r['cli_s']:.1f} s wall, exit {r['cli_rc']} "
           "(exit 3 = some grid's budget is below every round trip; those grids are listed in summary.json).")
    return "\n".join([
        f"Machine: {platform.machine()}, Python {platform.python_version()}; {dt.date.today().isoformat()}. "
        f"`{cmd}`",
        "",
        "| grids | network | open county s | plan all grids s | per grid mean / p95 / max ms | stops per grid "
        "mean / max | visits made / missed | red visits met | routes over budget | grids: budget < every round trip "
        "| grids: a due visit cannot fit the budget | off-network legs > 50 m (km) |",
        "|---:|---|---:|---:|---|---|---|---|---:|---:|---:|---|",
        f"| {r['grids']} | {r['network']} | {r['open_s']:.2f} | {r['plan_s']:.2f} | "
        f"{r['mean_ms']:.1f} / {r['p95_ms']:.1f} / {r['max_ms']:.1f} | {r['stops_mean']:.1f} / {r['stops_max']} | "
        f"{r['visits']} / {r['missed']} | {r['red_met']}/{r['red_due']} ({share:.1%}) | {r['over_budget']} | "
        f"{r['infeasible']} | {r['cannot_fit']} | {r['off_legs']} ({r['off_km']:.1f}) |",
        "",
        cli,
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--townships", type=int, default=8)
    ap.add_argument("--villages", type=int, default=80)
    ap.add_argument("--households", type=int, default=20_000)
    ap.add_argument("--budget", default="4h")
    ap.add_argument("--date", default="2024-05-06")
    ap.add_argument("--time-limit", type=float, default=1.0)
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    r = run(args)
    text = table(r, args)
    print(text)
    if args.update_readme:
        write_section("bench_patrol", f"{HEADER}\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
