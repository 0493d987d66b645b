"""Benchmark: `gridgeo synth`, `gridgeo check` and `gridgeo adjacency` on a generated province.

Runs the real console commands (what a GIS engineer runs) on a generated
county of N villages and prints a Markdown table; `--update-readme` writes it
into bench/README.md between the markers.

    .venv/bin/python bench/bench_boundaries.py --villages 20000 --townships 1000 \
        --households 5000000 --update-readme
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench_boundaries:begin -->", "<!-- bench_boundaries:end -->"


def run(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gridgeo.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"gridgeo {' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return dt, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--villages", type=int, default=20_000)
    ap.add_argument("--townships", type=int, default=1_000)
    ap.add_argument("--households", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = Path(tmp) / "province.gpkg"
        t_synth, out = run(["synth", "--seed", str(args.seed), "--townships", str(args.townships),
                            "--villages", str(args.villages), "--households", str(args.households),
                            "-o", str(gpkg)])
        size = gpkg.stat().st_size / 2**20
        t_check, out_check = run(["check", str(gpkg), "--layer", "villages", "--id", "code",
                                  "--parent", "township", "--json"])
        rep = json.loads(out_check)
        t_adj, out_adj = run(["adjacency", str(gpkg), "--layer", "villages", "--id", "code"])
    rows = [
        ("synth", f"gridgeo synth --seed {args.seed} --townships {args.townships} --villages {args.villages} "
                  f"--households {args.households} -o province.gpkg", t_synth,
         f"{size:.0f} MiB GeoPackage; {out.strip().removeprefix('wrote ').split(': ', 1)[-1]}"),
        ("check", "gridgeo check province.gpkg --layer villages --id code --parent township --json", t_check,
         f"{rep['features']} features, usable={rep['usable']}, problems={rep['summary'] or 'none'}"),
        ("adjacency", "gridgeo adjacency province.gpkg --layer villages --id code", t_adj, out_adj.strip()),
    ]
    table = [f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"{time.strftime('%Y-%m-%d')}. Wall time of the whole command (start-up and file I/O included).",
             "", "| step | command | seconds | result |", "|---|---|---:|---|"]
    table += [f"| {name} | `{cmd}` | {dt:.1f} | {res} |" for name, cmd, dt, res in rows]
    text = "\n".join(table)
    print(text)
    if args.update_readme:
        readme = ROOT / "bench" / "README.md"
        body = readme.read_text(encoding="utf-8") if readme.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
        if BEGIN not in body:
            body += f"\n{BEGIN}\n{END}\n"
        head, rest = body.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
