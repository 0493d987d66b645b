"""Benchmark gridgeo.routing.orienteering on the classic OP and TOP instances, beside peers.

Data: ``../shared/bench/routing`` (Tsiligirides OP sets 1-3 with certified optima, Chao's OP sets
64/66, Chao-Golden-Wasil TOP sets 1-7 with the reference scores in ``bks/``).

Peers (optional, ``--peers pyvrp,vroom,ortools``; install with ``pip install pyvrp pyvroom ortools``,
never a runtime dependency of gridgeo): every peer gets the same matrix scaled by ``--scale`` and
rounded *up* to integers, so that an integer-feasible route is also feasible in exact Euclidean
distances; every route a peer returns is re-checked with exact distances, and an infeasible answer
counts as a failure (score 0).

Examples::

    python bench/bench_routing.py --sets tsiligirides --time-limit 1
    python bench/bench_routing.py --sets top --time-limit 2 --sample 5 --peers pyvrp,vroom,ortools
    python bench/bench_routing.py --sets tsiligirides,chao,top --time-limit 2 --update-readme
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import logging
import math
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridgeo.errors import UsageError  # noqa: E402
from gridgeo.routing import orienteering  # noqa: E402

log = logging.getLogger("bench_routing")

SHARED = Path(os.environ.get("GRIDGEO_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "bench" / "routing"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- bench_routing:begin -->", "<!-- bench_routing:end -->"

# Certified optima of the Tsiligirides sets (../shared/README.md), Tmax -> score.
TSILIGIRIDES_OPT: dict[int, dict[int, float]] = {
    1: dict(zip([5, 10, 15, 20, 25, 30, 35, 40, 46, 50, 55, 60, 65, 70, 73, 75, 80, 85],
                [10, 15, 45, 65, 90, 110, 135, 155, 175, 190, 205, 225, 240, 260, 265, 270, 280, 285],
                strict=True)),
    2: dict(zip([15, 20, 23, 25, 27, 30, 32, 35, 38, 40, 45],
                [120, 200, 210, 230, 230, 265, 300, 320, 360, 395, 450], strict=True)),
    3: dict(zip([15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 105, 110],
                [170, 200, 260, 320, 390, 430, 470, 520, 550, 580, 610, 640, 670, 710, 740, 770, 790, 800,
                 800, 800], strict=True)),
}


@dataclass
class Instance:
    name: str
    group: str
    xy: np.ndarray
    prize: np.ndarray
    budget: float
    routes: int
    start: int
    end: int
    reference: float | None

    @property
    def distance(self) -> np.ndarray:
        diff = self.xy[:, None, :] - self.xy[None, :, :]
        return np.sqrt((diff**2).sum(axis=2))


def _numbers(line: str) -> list[float]:
    return [float(t) for t in line.split()]


def load_op(path: Path, group: str, reference: float | None) -> Instance:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    tmax, paths = _numbers(lines[0])[:2]
    rows = np.array([_numbers(ln)[:3] for ln in lines[1:]])
    return Instance(path.stem, group, rows[:, :2], rows[:, 2], tmax, int(paths), 0, 1, reference)


def load_top(path: Path, reference: float | None) -> Instance:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    n = int(lines[0].split()[1])
    m = int(lines[1].split()[1])
    tmax = float(lines[2].split()[1])
    rows = np.array([_numbers(ln)[:3] for ln in lines[3: 3 + n]])
    group = "TOP " + path.parent.name
    return Instance(path.name, group, rows[:, :2], rows[:, 2], tmax, m, 0, n - 1, reference)


def load(sets: list[str]) -> list[Instance]:
    out: list[Instance] = []
    if "tsiligirides" in sets:
        for k in (1, 2, 3):
            for f in sorted((DATA / "op" / f"Tsiligirides_{k}").glob("*.txt")):
                tmax = int(re.search(r"budget_(\d+)", f.name).group(1))  # type: ignore[union-attr]
                out.append(load_op(f, f"Tsiligirides {k}", TSILIGIRIDES_OPT[k].get(tmax)))
    if "chao" in sets:
        for k in (64, 66):
            files = sorted((DATA / "op" / f"ChaoSet_{k}").glob("*.txt"),
                           key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.name)])
            out.extend(load_op(f, f"Chao OP {k}", None) for f in files)
    if "top" in sets:
        ref = {}
        for ln in (DATA / "bks" / "top_chao_results_ASS_TOP.txt").read_text().splitlines():
            if ln.strip():
                name, val = ln.split()[:2]
                ref[name] = float(val)
        for k in range(1, 8):
            for f in sorted((DATA / "top" / f"Set{k}").glob("*.txt")):
                out.append(load_top(f, ref.get(f.name)))
    return out


# --------------------------------------------------------------------------- solvers


def check(inst: Instance, routes: list[list[int]], dist: np.ndarray) -> float | None:
    """Score of ``routes`` if they are feasible in exact distances, else None."""
    seen: set[int] = set()
    if len(routes) > inst.routes:
        return None
    for r in routes:
        if r[0] != inst.start or r[-1] != inst.end:
            return None
        length = float(sum(dist[a, b] for a, b in itertools.pairwise(r)))
        if length > inst.budget + 1e-7:
            return None
        inner = r[1:-1]
        if seen & set(inner) or len(set(inner)) != len(inner):
            return None
        seen |= set(inner)
    seen -= {inst.start, inst.end}
    return float(inst.prize[list(seen)].sum()) if seen else 0.0


def solve_ours(inst: Instance, dist: np.ndarray, tl: float, seed: int, scale: int) -> list[list[int]]:
    if dist[inst.start, inst.end] > inst.budget:
        # orienteering() rejects this with UsageError (no route is possible); the benchmark's answer is
        # "no route", score 0, which is what the reference says too (e.g. p6.3.c).
        with contextlib.suppress(UsageError):
            orienteering(dist, inst.prize, inst.budget, start=inst.start, end=inst.end, routes=inst.routes)
        return []
    res = orienteering(dist, inst.prize, inst.budget, start=inst.start, end=inst.end, routes=inst.routes,
                       time_limit=tl, seed=seed)
    return res.routes


def _int_matrix(dist: np.ndarray, scale: int) -> np.ndarray:
    return np.ceil(dist * scale - 1e-9).astype(np.int64)


def solve_pyvrp(inst: Instance, dist: np.ndarray, tl: float, seed: int, scale: int) -> list[list[int]]:
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    D = _int_matrix(dist, scale)
    model = Model()
    locs = [model.add_location(float(x), float(y)) for x, y in inst.xy]
    d0 = model.add_depot(locs[inst.start])
    d1 = d0 if inst.end == inst.start else model.add_depot(locs[inst.end])
    clients = [i for i in range(len(locs)) if i not in (inst.start, inst.end)]
    for i in clients:
        model.add_client(locs[i], prize=round(inst.prize[i] * 1000), required=False)
    model.add_vehicle_type(num_available=inst.routes, start_depot=d0, end_depot=d1,
                           max_distance=math.floor(inst.budget * scale + 1e-9))
    for i, a in enumerate(locs):
        for j, b in enumerate(locs):
            if i != j:
                model.add_edge(a, b, distance=int(D[i, j]))
    res = model.solve(stop=MaxRuntime(tl), seed=seed, display=False)
    # A client activity's idx is the index of the client, in the order the clients were added.
    out = []
    for route in res.best.routes():
        out.append([inst.start] + [clients[a.idx] for a in route if a.is_client()] + [inst.end])
    return out


def solve_vroom(inst: Instance, dist: np.ndarray, tl: float, seed: int, scale: int) -> list[list[int]]:
    import datetime

    import vroom

    D = _int_matrix(dist, scale)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=D.astype(np.uint32))
    top = float(inst.prize.max()) or 1.0
    for v in range(inst.routes):
        problem.add_vehicle(vroom.Vehicle(v, start=inst.start, end=inst.end,
                                          max_travel_time=math.floor(inst.budget * scale + 1e-9)))
    for i in range(len(inst.prize)):
        if i in (inst.start, inst.end):
            continue
        # VROOM priorities are integers in [0, 100]: prizes are scaled into that range.
        problem.add_job(vroom.Job(i, location=i, priority=round(100 * inst.prize[i] / top)))
    sol = problem.solve(exploration_level=5, nb_threads=1, timeout=datetime.timedelta(seconds=tl))
    routes_df = sol.routes
    out = []
    for _, grp in routes_df.groupby("vehicle_id"):
        jobs = [int(j) for t, j in zip(grp["type"], grp["id"], strict=True) if t == "job"]
        out.append([inst.start, *jobs, inst.end])
    return out


def solve_ortools(inst: Instance, dist: np.ndarray, tl: float, seed: int, scale: int) -> list[list[int]]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    D = _int_matrix(dist, scale).tolist()
    n = len(D)
    manager = pywrapcp.RoutingIndexManager(n, inst.routes, [inst.start] * inst.routes, [inst.end] * inst.routes)
    routing = pywrapcp.RoutingModel(manager)

    def cost(i: int, j: int) -> int:
        return D[manager.IndexToNode(i)][manager.IndexToNode(j)]

    cb = routing.RegisterTransitCallback(cost)
    routing.SetArcCostEvaluatorOfAllVehicles(cb)
    routing.AddDimension(cb, 0, math.floor(inst.budget * scale + 1e-9), True, "dist")
    # A dropped node costs its prize, scaled far above any route length: prize first, length second.
    big = 10 * inst.routes * int(inst.budget * scale + 1)
    for i in range(n):
        if i in (inst.start, inst.end):
            continue
        routing.AddDisjunction([manager.NodeToIndex(i)], round(inst.prize[i]) * big)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(tl * 1000))
    sol = routing.SolveWithParameters(params)
    out: list[list[int]] = []
    if sol is None:
        return out
    for v in range(inst.routes):
        idx = routing.Start(v)
        r = []
        while not routing.IsEnd(idx):
            r.append(manager.IndexToNode(idx))
            idx = sol.Value(routing.NextVar(idx))
        r.append(manager.IndexToNode(idx))
        out.append(r)
    return out


SOLVERS: dict[str, Callable[[Instance, np.ndarray, float, int, int], list[list[int]]]] = {
    "gridgeo": solve_ours,
    "pyvrp": solve_pyvrp,
    "vroom": solve_vroom,
    "ortools": solve_ortools,
}


# --------------------------------------------------------------------------- run and report


def gap(score: float, ref: float | None) -> float | None:
    if ref is None:
        return None
    if ref <= 0:
        return 0.0 if score >= ref else 100.0
    return 100.0 * (ref - score) / ref


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="tsiligirides,chao,top",
                    help="comma-separated: tsiligirides, chao, top, or top:Set1 ... (default all)")
    ap.add_argument("--time-limit", type=float, default=2.0, help="seconds per instance and solver (default 2)")
    ap.add_argument("--sample", type=int, default=0, help="N instances per set, drawn with --seed (0 = all)")
    ap.add_argument("--peers", default="", help="comma-separated peers: pyvrp, vroom, ortools")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=int, default=1000, help="integer scaling of distances for peers")
    ap.add_argument("--csv", type=Path, help="write one row per instance and solver")
    ap.add_argument("--update-readme", action="store_true", help="write the tables into bench/README.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    only_top = {s.split(":", 1)[1] for s in names if s.startswith("top:")}
    kinds = {s.split(":", 1)[0] for s in names}
    instances = load(sorted(kinds))
    if only_top:
        instances = [i for i in instances if not i.group.startswith("TOP") or i.group.split()[1] in only_top]
    if args.sample:
        rnd = random.Random(args.seed)
        groups: dict[str, list[Instance]] = {}
        for inst in instances:
            groups.setdefault(inst.group, []).append(inst)
        instances = [i for g in groups.values() for i in sorted(rnd.sample(g, min(args.sample, len(g))),
                                                               key=g.index)]
    solvers = ["gridgeo"] + [p.strip() for p in args.peers.split(",") if p.strip()]
    for s in solvers:
        if s not in SOLVERS:
            ap.error(f"unknown peer {s!r}; choose from {', '.join(SOLVERS)}")
    log.info("%d instances, solvers %s, %.3g s each", len(instances), solvers, args.time_limit)

    rows: list[dict[str, object]] = []
    for inst in instances:
        dist = inst.distance
        line = [f"{inst.group:15s} {inst.name:40s} ref={inst.reference}"]
        for s in solvers:
            t = time.perf_counter()
            try:
                routes = SOLVERS[s](inst, dist, args.time_limit, args.seed, args.scale)
                score = check(inst, routes, dist)
            except Exception as exc:  # a peer crashing is a failure, not the end of the run
                log.warning("%s failed on %s: %s", s, inst.name, exc)
                score = None
            secs = time.perf_counter() - t
            feasible = score is not None
            value = score if score is not None else 0.0
            rows.append({"group": inst.group, "instance": inst.name, "solver": s, "score": value,
                         "feasible": feasible, "reference": inst.reference, "gap": gap(value, inst.reference),
                         "seconds": round(secs, 3)})
            line.append(f"{s}={value:g}{'' if feasible else '(INFEASIBLE)'} {secs:.2f}s")
        log.info("  ".join(line))

    if args.csv:
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    table = summarise(rows, solvers)
    print(table)
    if args.update_readme:
        cmd = "python bench/bench_routing.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_readme(table, cmd, args.time_limit)
    return 0


def summarise(rows: list[dict[str, object]], solvers: list[str]) -> str:
    groups: list[str] = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(str(r["group"]))
    out = ["| set | solver | instances | at/above ref | mean gap % | worst gap % | mean score | infeasible "
           "| mean s | max s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for g in [*groups, "TOP all"]:
        for s in solvers:
            rs = [r for r in rows if r["solver"] == s and (r["group"] == g or
                                                            (g == "TOP all" and str(r["group"]).startswith("TOP")))]
            if not rs or (g == "TOP all" and len({r["group"] for r in rs}) < 2):
                continue
            gaps = [float(r["gap"]) for r in rs if r["gap"] is not None]  # type: ignore[arg-type]
            secs = [float(r["seconds"]) for r in rs]  # type: ignore[arg-type]
            scores = [float(r["score"]) for r in rs]  # type: ignore[arg-type]
            hit = sum(1 for x in gaps if x <= 1e-9)
            out.append(
                f"| {g} | {s} | {len(rs)} | {hit if gaps else '-'} | "
                f"{f'{statistics.mean(gaps):.3f}' if gaps else '-'} | {f'{max(gaps):.3f}' if gaps else '-'} | "
                f"{statistics.mean(scores):.1f} | {sum(1 for r in rs if not r['feasible'])} | "
                f"{statistics.mean(secs):.2f} | {max(secs):.2f} |")
    return "\n".join(out)


def write_readme(table: str, cmd: str, tl: float) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    body = (f"{BEGIN}\nMachine: {os.cpu_count()} cores, Python {platform.python_version()}; {date.today()}; "
            f"time limit {tl:g} s per instance and solver.\n\n`{cmd}`\n\n{table}\n{END}")
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + body + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Routing: orienteering and team orienteering\n\n" + body + "\n"
    README.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
