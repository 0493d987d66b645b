"""Benchmark: the walk-time bound (issue 14 item 5): k fitted on real networks, and the route check of a build.

Fit: :func:`gridgeo.patrol.walktime.fit_k` on the sample county's roads and buildings and on the two real OSM
extracts in ``../shared/data/osm`` (buildings as household places). Side by side, the same parts' tours solved by
PyVRP (``pip install pyvrp``; a TSP with one vehicle on the same street matrix, ``--pyvrp-s`` seconds each): the k
each solver's tours give and the ratio of tour lengths. Check: ``gridgeo patrol COUNTY --check-budget`` on the
built sample county against ``gridgeo patrol COUNTY --all`` (the same plans, also writing every route).

    .venv/bin/python bench/bench_walktime.py [--samples 200] [--county built.gpkg] [--update-readme]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from _readme import write_section

from gridgeo.cli import main as gridgeo_main
from gridgeo.patrol import _kfit
from gridgeo.patrol.network import Network, build_network, load_network
from gridgeo.patrol.walktime import Sampling, _least_squares, fit_k

ROOT = Path(__file__).resolve().parents[1]
OSM = ROOT.parent / "shared" / "data" / "osm"
SOURCES = [("sample county (roads, buildings)", ROOT / "boundaries" / "sample_county.gpkg", Sampling()),
           ("Guixi OSM", OSM / "guixi_jiangxi.osm.pbf", Sampling(n_range=(5, 40))),
           ("Beijing Haidian OSM", OSM / "beijing_haidian_cau.osm.pbf", Sampling(n_range=(5, 40), side_m=(100, 1000)))]


def places(src: Path) -> tuple[Network, np.ndarray]:
    if src.suffix == ".gpkg":
        net = build_network(gpd.read_file(src, layer="roads"), mode="walk", source=str(src))
        b = gpd.read_file(src, layer="buildings").to_crs(net.crs)
    else:
        from gridgeo.data.osm import read_osm

        net = load_network(src)
        b = read_osm(src, "buildings").to_crs(net.crs)
    return net, shapely.get_coordinates(shapely.point_on_surface(b.geometry.values))


def pyvrp_tour(d: np.ndarray, seconds: float) -> float:
    """PyVRP's round through every node of the street matrix ``d`` (node 0 the depot), metres (dm-rounded up)."""
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    D = np.ceil(d * 10 - 1e-9).astype(np.int64)
    m = Model()
    locs = [m.add_location(0, 0) for _ in range(len(d))]
    m.add_depot(locs[0])
    for loc in locs[1:]:
        m.add_client(loc)
    m.add_vehicle_type(num_available=1)
    for i, a in enumerate(locs):
        for j, b in enumerate(locs):
            if i != j:
                m.add_edge(a, b, distance=int(D[i, j]))
    res = m.solve(stop=MaxRuntime(seconds), seed=0, display=False)
    route = [0, *[a.idx + 1 for r in res.best.routes() for a in r if a.is_client()], 0]  # clients in order added
    return float(sum(d[a, b] for a, b in itertools.pairwise(route)))


def side_by_side(net: Network, xy: np.ndarray, sp: Sampling, samples: int, seconds: float) -> dict[str, float]:
    """The fit's parts again (same seed), each tour by gridgeo and by PyVRP; both k, the length ratio, times."""
    pts = np.unique(np.round(xy, 1), axis=0)
    rng = np.random.default_rng(0)
    ours, theirs, t_ours, t_theirs = [], [], 0.0, 0.0
    for i in range(samples):
        part = _kfit.draw(pts, _kfit.Windows(sp.n_range, sp.side_m), rng)
        if part is None:
            continue
        t = time.perf_counter()
        s = _kfit.solve(net, part, seed=i)
        t_ours += time.perf_counter() - t
        ours.append(s)
        if not math.isfinite(s.length_m):
            theirs.append(s)
            continue
        d = net.stop_paths(net.snap(part.stops)).distance
        t = time.perf_counter()
        theirs.append(_kfit.Sample(s.n, s.hull_m2, s.window_m2, pyvrp_tour(d, seconds), s.line_m, s.door_m))
        t_theirs += time.perf_counter() - t
    a, b = _least_squares(ours, sp), _least_squares(theirs, sp)
    both = [(o.length_m, p.length_m) for o, p in zip(ours, theirs, strict=True) if math.isfinite(o.length_m)]
    return {"k_ours": a.k, "k_pyvrp": b.k, "ratio": float(np.mean([o / p for o, p in both if p > 0])),
            "solve_ours_s": t_ours, "solve_pyvrp_s": t_theirs}


def fit_rows(args: argparse.Namespace) -> list[dict[str, object]]:
    rows = []
    for name, src, sp in SOURCES:
        t = time.perf_counter()
        net, xy = places(src)
        t_net = time.perf_counter() - t
        t = time.perf_counter()
        fit = fit_k(net, xy, samples=args.samples, seed=0, sampling=sp)
        t_fit = time.perf_counter() - t
        peer = side_by_side(net, xy, sp, args.samples, args.pyvrp_s) if args.pyvrp_s > 0 else {}
        rows.append({"name": name, "places": len(np.unique(np.round(xy, 1), axis=0)), "nodes": net.n_nodes,
                     "network_s": t_net, "fit_s": t_fit, **fit.summary(), **peer})
        print(json.dumps(rows[-1], ensure_ascii=False, default=float), flush=True)
    return rows


def check_row(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        county = Path(args.county) if args.county else Path(tmp) / "sample.gpkg"
        if not args.county:
            assert gridgeo_main(["build", str(ROOT / "boundaries" / "sample_rules.toml"), "-o", str(county),
                                 "--no-progress", "-q"]) == 0
        t = time.perf_counter()
        rc = gridgeo_main(["patrol", str(county), "--check-budget", "--date", args.date, "--budget", "4h",
                           "-o", str(Path(tmp) / "check.json")])
        t_check = time.perf_counter() - t
        body = json.loads((Path(tmp) / "check.json").read_text(encoding="utf-8"))
        t = time.perf_counter()
        rc_all = gridgeo_main(["patrol", str(county), "--all", "--date", args.date, "--budget", "4h",
                               "-o", str(Path(tmp) / "routes")])
        t_all = time.perf_counter() - t
    return {"check_s": t_check, "rc": rc, "all_s": t_all, "rc_all": rc_all, "grids": body["grids"],
            "fit": body["fit"], "share": body["fit_share"], "by_reason": body["by_reason"],
            "not_fitting": [(r["grid"], r["reason"], r["detail"]) for r in body["not_fitting"]]}


def table(fits: list[dict[str, object]], chk: dict[str, object], args: argparse.Namespace) -> str:
    lines = [f"Machine: {platform.machine()}, Python {platform.python_version()}; {dt.date.today().isoformat()}. "
             f"`bench/bench_walktime.py --samples {args.samples} --pyvrp-s {args.pyvrp_s}` (2 cores shared with "
             "other engineers' runs)", "",
             "| places (network) | distinct places / nodes | network s | fit_k s | k | k std / se | rel. error | "
             "samples fitted / detours > 3x / no path | n / hull m² | median detour | door m | k from PyVRP's tours | "
             "gridgeo / PyVRP tour length | solve s gridgeo / PyVRP |",
             "|---|---|---:|---:|---:|---|---:|---|---|---:|---:|---:|---:|---|"]
    for r in fits:
        peer = (f"{r['k_pyvrp']:.3f} | {r['ratio']:.3f} | {r['solve_ours_s']:.1f} / {r['solve_pyvrp_s']:.1f}"
                if "k_pyvrp" in r else "- | - | -")
        lines.append(f"| {r['name']} | {r['places']} / {r['nodes']} | {r['network_s']:.1f} | {r['fit_s']:.1f} | "
                     f"{r['k']:.3f} | {r['k_std']:.3f} / {r['k_se']:.3f} | {r['rel_error']:.3f} | "
                     f"{r['samples']} / {r['detours']} / {r['disconnected']} | {r['n_range'][0]}-{r['n_range'][1]} / "
                     f"{r['area_range_m2'][0]:,}-{r['area_range_m2'][1]:,} | {r['detour']:.3f} | {r['door_m']:.1f} | "
                     f"{peer} |")
    lines += ["", f"Check on the built sample county (`gridgeo build boundaries/sample_rules.toml`): `gridgeo patrol "
              f"county.gpkg --check-budget --date {args.date} --budget 4h -o check.json`: {chk['check_s']:.1f} s "
              f"(exit {chk['rc']}), against `gridgeo patrol county.gpkg --all` (the same plans, writing every route) "
              f"{chk['all_s']:.1f} s (exit {chk['rc_all']}): ratio {chk['check_s'] / chk['all_s']:.2f}. "
              f"{chk['fit']}/{chk['grids']} grids and exclusive grids fit 4 h ({100 * chk['share']:.2f} %); not "
              f"fitting: {chk['by_reason'] or 'none'}: " + "; ".join(f"{g} {r} ({d})" for g, r, d in
                                                                     chk["not_fitting"])]
    return "\n".join(lines)


HEADER = """## Walk-time bound: k fitted on real networks, the route check of a build (issue 14 item 5)

```sh
.venv/bin/python bench/bench_walktime.py --samples 200 --update-readme   # PyVRP side by side: pip install pyvrp
```

`fit_k` draws parts (every building in a random square of side 150-2,000 m, 100-1,000 m in the Beijing extract,
`A` the convex hull of those places), a random 5-60 (OSM: 5-40) of their places as the day's stops, solves each
round on the walking network with gridgeo's solver and fits `L = k √(n A)` by least squares; rounds longer than 3x
their straight line (a network gap) are counted, not fitted. "rel. error": RMS of `(L - k√(nA)) / (k√(nA))`, how
far one part's round typically is from the estimate. PyVRP solves the same rounds (a TSP, one vehicle, the same
street matrix in decimetres) for the ratio of tour lengths and the k its rounds give.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--pyvrp-s", type=float, default=0.2, help="PyVRP seconds per round (0: no peer)")
    ap.add_argument("--county", help="a built county (default: build the sample into a temp dir)")
    ap.add_argument("--date", default="2026-12-02")
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    fits = fit_rows(args)
    chk = check_row(args)
    text = table(fits, chk, args)
    print(text)
    if args.update_readme:
        write_section("bench_walktime", f"{HEADER}\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
