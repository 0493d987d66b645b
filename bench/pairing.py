"""Benchmark: pairing 150,000 households with 10,000 members (``gridgeo.people.Pairing``) against greedy nearest.

Households are generated clustered: grids on a jittered lattice over a county in CGCS2000 / 3-degree
Gauss-Krüger CM 114E (EPSG:4547), each grid's size drawn lognormal (a few dozen to several hundred
households), its households in one to four hamlets (normal scatter around hamlet centres) and some
scattered; villages are blocks of grids. Members are apportioned to grids in proportion to their
households (largest remainder, at least one per grid), each living in a random household of their grid
(``home``); one member in ten has a capacity of their own (5-15), the rest none.

The peer, in the same run and on the same distances: greedy nearest, each household in turn (input
order) to the nearest member of its scope with capacity left -- (a) with the members' own capacities
(what a spreadsheet rule does) and (b) with the effective (balanced) capacities gridgeo used, so that
total distance is compared at equal loads. Straight-line metres (the benchmark has no street network).

    .venv/bin/python bench/pairing.py [--households 150000 --members 10000 --scope grid] [--update-readme]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _readme import write_section

from gridgeo.people import Pairing, PairingOptions

log = logging.getLogger("bench_pairing")
CRS = "EPSG:4547"


def generate(n_hh: int, n_mem: int, *, seed: int, grid_size: float = 125.0) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Households clustered in grids, and members per grid in proportion to its households."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(rng.lognormal(np.log(grid_size), 0.6, size=int(n_hh / grid_size * 1.2)).astype(int), 10)
    sizes = sizes[np.cumsum(sizes) <= n_hh]
    sizes[-1] += n_hh - int(sizes.sum())
    n_grid = len(sizes)
    side = int(np.ceil(np.sqrt(n_grid)))
    gx = (np.arange(n_grid) % side) * 1500.0 + 500_000 + rng.uniform(-200, 200, n_grid)
    gy = (np.arange(n_grid) // side) * 1500.0 + 3_300_000 + rng.uniform(-200, 200, n_grid)
    grid_of = np.repeat(np.arange(n_grid), sizes)
    hamlets = rng.integers(1, 5, n_grid)
    hamlet = (rng.random(n_hh) * hamlets[grid_of]).astype(int)
    hx = gx[grid_of] + np.cos(hamlet * 2.1 + grid_of) * 400 * (hamlet > 0)
    hy = gy[grid_of] + np.sin(hamlet * 2.1 + grid_of) * 400 * (hamlet > 0)
    scattered = rng.random(n_hh) < 0.1
    spread = np.where(scattered, 350.0, 80.0)
    x = hx + rng.normal(0, 1, n_hh) * spread
    y = hy + rng.normal(0, 1, n_hh) * spread
    codes = np.array([f"36990{g // 8:04d}{g % 8 + 1:02d}" for g in range(n_grid)], dtype=object)
    village = np.array([c[:-2] for c in codes], dtype=object)
    hh = gpd.GeoDataFrame({"source_id": [f"H{i:06d}" for i in range(n_hh)], "households": 1,
                           "grid": codes[grid_of], "village": village[grid_of]},
                          geometry=shapely.points(x, y), crs=CRS)
    share = sizes / sizes.sum() * (n_mem - n_grid)
    per = 1 + np.floor(share).astype(int)
    per[np.argsort(-(share - np.floor(share)), kind="stable")[: n_mem - int(per.sum())]] += 1
    mgrid = np.repeat(np.arange(n_grid), per)
    start = np.r_[0, np.cumsum(sizes)[:-1]]
    home = start[mgrid] + (rng.random(len(mgrid)) * sizes[mgrid]).astype(int)
    cap = np.where(rng.random(len(mgrid)) < 0.1, rng.integers(5, 16, len(mgrid)), -1)
    members = pd.DataFrame({"person_id": [f"P{i:05d}" for i in range(len(mgrid))],
                            "role": np.where(rng.random(len(mgrid)) < 0.6, "党员", "村民代表"),
                            "grid": codes[mgrid], "home": hh["source_id"].to_numpy()[home],
                            "capacity": pd.array([None if c < 0 else int(c) for c in cap], dtype="Int64")})
    return hh, members


def greedy(pairing: Pairing, capacity: np.ndarray) -> dict[str, float]:
    """Each household in input order to the nearest member of its scope with capacity left (-1: unlimited)."""
    hh, mem = pairing.hh, pairing.mem
    room = np.where(capacity < 0, np.iinfo(np.int64).max, capacity).astype(np.int64)
    load = np.zeros(len(mem.ids), dtype=np.int64)
    total, paired = 0.0, 0
    by_m = pd.Series(np.arange(len(mem.ids))).groupby(mem.scope).indices
    by_h = pd.Series(np.arange(len(hh.ids))).groupby(pairing.hh_scope).indices
    for code, hr in by_h.items():
        mr = by_m.get(code)
        if mr is None:
            continue
        d = np.hypot(hh.xy[hr, None, 0] - mem.xy[None, mr, 0], hh.xy[hr, None, 1] - mem.xy[None, mr, 1])
        r = room[mr].copy()
        for i in range(len(hr)):
            row = np.where(r > 0, d[i], np.inf)
            j = int(np.argmin(row))
            if not np.isfinite(row[j]):
                continue
            r[j] -= 1
            load[mr[j]] += 1
            total += float(d[i, j])
            paired += 1
    return {"total_km": total / 1000, "max_load": int(load.max()), "paired": paired}


def run(args: argparse.Namespace) -> dict[str, object]:
    t0 = time.perf_counter()
    hh, members = generate(args.households, args.members, seed=args.seed)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairing = Pairing(hh, members, options=PairingOptions(scope=args.scope, max_distance_m=None))
    t_check = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = pairing.solve(seed=args.seed)
    t_solve = time.perf_counter() - t0
    again = pairing.solve(seed=args.seed)
    same = res.pairs.equals(again.pairs)
    s = res.summary
    t0 = time.perf_counter()
    g_own = greedy(pairing, pairing.mem.capacity)
    t_greedy = time.perf_counter() - t0
    g_eff = greedy(pairing, res.loads["effective_capacity"].to_numpy())
    ours = {"total_km": s["total_distance_m"] / 1000, "max_load": s["load"]["max"], "paired": s["paired"]}
    t0 = time.perf_counter()
    free = Pairing(hh, members, options=PairingOptions(scope=args.scope, max_distance_m=None, slack=None)).solve(
        seed=args.seed).summary
    t_free = time.perf_counter() - t0
    unbalanced = {"total_km": free["total_distance_m"] / 1000, "max_load": free["load"]["max"],
                  "paired": free["paired"]}
    return {
        "households": len(hh), "members": len(members), "scopes": s["scopes_paired"], "scope": args.scope,
        "seconds": {"generate": round(t_gen, 2), "check": round(t_check, 2), "solve": round(t_solve, 2),
                    "pairing_total": round(t_check + t_solve, 2), "greedy": round(t_greedy, 2),
                    "unbalanced_total": round(t_free, 2)},
        "gridgeo": ours, "gridgeo_unbalanced": unbalanced, "greedy_own_capacity": g_own,
        "greedy_same_capacity": g_eff,
        "load_min": s["load"]["min"], "deterministic": same,
        "host": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
    }


def table(r: dict[str, object]) -> str:
    sec = r["seconds"]
    assert isinstance(sec, dict)
    rows = [("gridgeo `Pairing.solve` (exact, balanced)", r["gridgeo"], sec["pairing_total"]),
            ("gridgeo, no balancing (`slack=None`: own capacities only)", r["gridgeo_unbalanced"],
             sec["unbalanced_total"]),
            ("greedy nearest, own capacities", r["greedy_own_capacity"], sec["greedy"]),
            ("greedy nearest, gridgeo's balanced capacities", r["greedy_same_capacity"], None)]
    out = ["| method | paired | total distance (km) | max load | seconds |", "|---|---:|---:|---:|---:|"]
    for name, v, t in rows:
        assert isinstance(v, dict)
        out.append(f"| {name} | {v['paired']:,} | {v['total_km']:,.1f} | {v['max_load']} | "
                   f"{'' if t is None else f'{t:.2f}'} |")
    return "\n".join(out)


HEADER = """## Pairing: 150,000 households, 10,000 members (`gridgeo.people.Pairing`, issue 12 item 4)

```sh
.venv/bin/python bench/pairing.py --update-readme            # --scope village for the village rule
```

Generated county (`bench/pairing.py`): households clustered in grids (lognormal sizes around 125, one to four
hamlets each), members apportioned to grids by households and living in a household of their grid, one in ten
with a capacity of their own (5-15). Straight-line metres in EPSG:4547. The peer in the same run: greedy
nearest (each household in input order to the nearest member of its grid with capacity left), once with the
members' own capacities and once with the balanced capacities gridgeo used. Target: under 30 s.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=150_000)
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--scope", choices=("grid", "village"), default="grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    r = run(args)
    print(json.dumps(r, indent=1, ensure_ascii=False))
    print(table(r))
    if args.update_readme:
        sec = r["seconds"]
        assert isinstance(sec, dict)
        text = (HEADER + f"\nScope `{r['scope']}`: {r['scopes']} scopes; pairing {sec['pairing_total']:.2f} s "
                f"(checking {sec['check']:.2f} s, solving {sec['solve']:.2f} s); same output on a second solve: "
                f"{r['deterministic']}; least load {r['load_min']}. Host: {r['host']}.\n\n" + table(r))
        write_section(f"pairing-{args.scope}", text)


if __name__ == "__main__":
    main()
