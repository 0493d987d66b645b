"""Benchmark: ``gridgeo build`` time with each level and policy of issue 14 on the 150,000-household county.

The same generated county (``synth_county(seed, townships=23, villages=220, households=150000)``) is
built once per variant, in the same run, each variant's rules the defaults plus one section: the
default build is the peer, every other row is a ratio to it. A variant is a rules-file fragment, read by
the same parser ``gridgeo build`` uses.

    .venv/bin/python bench/bench_levels.py [--seed 11] [--only NAME ...] [--update-readme]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _readme import write_section

from gridgeo.county.build import build_county
from gridgeo.county.rules import load_county_rules
from gridgeo.data.io import write_layers
from gridgeo.synth import synth_county, write_county

log = logging.getLogger("bench_levels")

#: variant -> rules fragment (on top of [inputs] county = the generated file)
VARIANTS: dict[str, str] = {
    "default (one grid per group)": "",
    "areas: [areas] count = 7": "[areas]\ncount = 7\n",
    "grids from merged groups": "[grids]\ngroups = \"merge\"\n",
    "micro-grids and lanes": "[levels]\nmicro_grids = true\nlanes = true\n",
    "policy: kinds, overrides, limits, targets": (
        "[grids]\ngroups = \"merge\"\n[kinds.sparse]\ndensity_below = 40\n"
        "[bounds.sparse]\ngrid = { households = [20, 200], area_km2 = [0, 4] }\n"
        "[bounds.rural]\ngrid = { households = [30, 300], population = [0, 800] }\n"
        "[bounds.township.\"369900001\"]\ngrid = [40, 250]\n[targets]\ngrids = 1500\npoints = 6000\n"),
    "walk bound 4 h, route check, re-draws": (
        "[grids]\ngroups = \"merge\"\nwalk_check = true\n[patrol]\nbudget = \"4h\"\n"
        "[bounds.rural]\ngrid = { households = [30, 300], walk = \"4h\" }\n"
        "[bounds.urban]\ngrid = { households = [100, 500], walk = \"4h\" }\n"),
}

HEADER = """## Build time per level and policy (issue 14): `gridgeo build` on 220 villages and 150,000 households

```sh
.venv/bin/python bench/bench_levels.py --seed 11 --update-readme
```

One generated county, built once per variant in the same run; each variant is the default rules plus
the rules fragment named (see `VARIANTS` in the script). The default build is the peer: "x default" is
the variant's total time over the default's. All CPU cores as worker processes.
"""


def run_once(rules_text: str, gpkg: Path, out: Path) -> dict[str, Any]:
    """Build and write one variant; its report with the wall time."""
    rules_path = out.with_suffix(".toml")
    rules_path.write_text(f'[inputs]\ncounty = "{gpkg.as_posix()}"\n{rules_text}', encoding="utf-8")
    t0 = time.perf_counter()
    res = build_county(load_county_rules(rules_path))
    write_layers(res.layers, out)
    rep = res.report
    rep["wall"] = time.perf_counter() - t0
    rep["layers"] = {k: len(v) for k, v in res.layers.items()}
    return rep


def _row(name: str, r: dict[str, Any], base: float) -> str:
    counts = r["layers"]
    levels = " / ".join(f"{counts.get(k, 0):,}" for k in ("areas", "blocks", "grids", "points"))
    extra = [f"{k} {counts[k]:,}" for k in ("micro_grids", "lanes", "walk_check") if k in counts]
    t = r.get("targets", {})
    targets = "; ".join(f"{k} {v['target']} → {v['made']}" for k, v in t.items()) or "-"
    if "walk_check" in r:
        w = r["walk_check"]
        first = r.get("walk_repair", [{}])[0].get("walk_check", w)
        targets += (f"; walk: {first['fit']}/{first['grids']} fit 4 h from the estimate, {w['fit']}/{w['grids']} "
                    f"after {len(r.get('walk_repair', []))} re-draw(s)")
    return (f"| {name} | {r['wall']:.1f} | {r['wall'] / base:.2f} | {r['seconds'].get('villages_wall', 0):.1f} | "
            f"{levels}{'; ' + ', '.join(extra) if extra else ''} | "
            f"{100 * r['bounds']['grids']['within_bounds']:.1f} % | {targets} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--households", type=int, default=150_000)
    ap.add_argument("--only", nargs="*", help="variants to run (substring of their names); the default always runs")
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = [n for n in VARIANTS if not args.only or n.startswith("default") or any(o in n for o in args.only)]
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = Path(tmp) / "county.gpkg"
        write_county(synth_county(seed=args.seed, townships=23, villages=220, households=args.households), gpkg)
        runs = {n: run_once(VARIANTS[n], gpkg, Path(tmp) / f"v{i}.gpkg") for i, n in enumerate(names)}
    base = runs[names[0]]["wall"]
    lines = [f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}; "
             f"county seed {args.seed}, {args.households:,} households.", "",
             "| variant | total s (build + write) | x default | villages (wall) s | areas / blocks / grids / points "
             "| grids inside bounds | targets (aimed → made), walk |", "|---|---:|---:|---:|---|---:|---|"]
    lines += [_row(n, runs[n], base) for n in names]
    text = "\n".join(lines)
    print(text)
    if args.update_readme:
        write_section("bench_levels", f"{HEADER}\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
