"""Benchmark: what micro-grids (微网格) and lanes (巷) cost a county build (issue 14 item 3).

Builds the same county five times in one run -- without the levels below the grids (the peer: today's
build), with micro-grids, with lanes, with both, and without again (the first run also pays the
warm-up) -- and reports the time of each (build + GeoPackage write) beside the last as a ratio, with the
counts and the shares inside bounds.

    .venv/bin/python bench/bench_micro.py --sample [--update-readme]          # the bundled sample county
    .venv/bin/python bench/bench_micro.py --seed 11 [--update-readme]         # 150,000 generated households
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _readme import write_section

from gridgeo.county.build import build_county
from gridgeo.county.rules import CountyRules, load_county_rules
from gridgeo.data.io import write_layers
from gridgeo.synth import synth_county, write_county

ROOT = Path(__file__).resolve().parents[1]
CONFIGS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("without (today's build)", (), ()), ("micro-grids", ("*",), ()), ("lanes", (), ("*",)),
    ("micro-grids and lanes", ("*",), ("*",)), ("without, again", (), ()))


def run_once(rules: CountyRules, out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = build_county(rules)
    write_layers(res.layers, out)
    rep = res.report
    rep["wall"] = time.perf_counter() - t0
    return rep


def table(runs: list[tuple[str, dict[str, Any]]], meta: str) -> str:
    lines = [meta, "", "| | " + " | ".join(n for n, _ in runs) + " |", "|---|" + "---:|" * len(runs)]
    base = runs[-1][1]["wall"]

    def row(label: str, fn: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(str(fn(r)) for _, r in runs) + " |")

    row("**total, s (build + write)**", lambda r: f"**{r['wall']:.1f}**")
    row("ratio to the build without (again)", lambda r: f"{r['wall'] / base:.2f}")
    row("villages (wall), s", lambda r: f"{r['seconds']['villages_wall']:.1f}")
    row("&nbsp;&nbsp;micro-grids and lanes stage, CPU s", lambda r: f"{r['cpu_seconds_by_stage'].get('micro', 0):.1f}")
    row("grids / points", lambda r: f"{r['counts']['grids']} / {r['counts']['points']}")
    for lvl, name in (("micro_grids", "micro-grids"), ("lanes", "lanes")):
        row(f"{name} (inside bounds; where the grid holds the minimum)",
            lambda r, lvl=lvl: "-" if lvl not in r["bounds"] else
            f"{r['counts'][lvl]} ({_pct(r['bounds'][lvl]['within_bounds'])}; "
            f"{_pct(r['bounds'][lvl]['within_bounds_where_possible'])})")
    row("lanes merged / streets cut / named", lambda r: "-" if "lanes" not in r["bounds"] else
        f"{r['bounds']['lanes']['merged']} / {r['bounds']['lanes']['split_segments']} / "
        f"{_pct(r['bounds']['lanes']['named'])}")
    row("tiling errors", lambda r: r["tiling"]["errors"])
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", action="store_true", help="the bundled sample county (boundaries/)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--households", type=int, default=150_000)
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        if args.sample:
            base = load_county_rules(ROOT / "boundaries" / "sample_rules.toml")
            what = "the bundled sample county (220 villages, 60,000 households)"
        else:
            gpkg = Path(tmp) / "county.gpkg"
            write_county(synth_county(seed=args.seed, townships=23, villages=220, households=args.households), gpkg)
            base = CountyRules(county=gpkg)
            what = f"`synth_county(seed={args.seed}, townships=23, villages=220, households={args.households})`"
        runs = [(name, run_once(replace(base, micro_grids=m, lanes=la), Path(tmp) / f"{i}.gpkg"))
                for i, (name, m, la) in enumerate(CONFIGS)]
    meta = (f"{what}, default rules; {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.machine()}; {time.strftime('%Y-%m-%d')}; the five builds in one run, in this order.")
    text = table(runs, meta)
    print(text)
    if args.update_readme:
        flag = "--sample" if args.sample else f"--seed {args.seed}"
        title = "on the sample county" if args.sample else f"on {args.households:,} generated households"
        write_section("bench_micro_sample" if args.sample else "bench_micro",
                      f"### Micro-grids and lanes {title}\n\n```sh\n.venv/bin/python bench/bench_micro.py {flag} "
                      f"--update-readme\n```\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
