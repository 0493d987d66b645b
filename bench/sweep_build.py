"""Sweep ``gridgeo build`` over generated counties and the OSM extracts; check every written file.

Why: the build must work on counties nobody tuned it for (issue 11, item 5).
Each case is the real command in a subprocess (``gridgeo synth`` then
``gridgeo build``); the GeoPackage it writes is then checked independently of
the build's own check: every polygon of every level valid as written and
after rounding to 1e-7 degree, ``shapely.coverage_is_valid`` per level (grids
with the exclusive grids), every household in exactly one grid point (by
location) and that point the one it is assigned to, and the villages that
needed a fallback (``fallbacks`` in the report, when the build records them).

    .venv/bin/python bench/sweep_build.py --update-readme
    .venv/bin/python bench/sweep_build.py --seeds 1-3 --villages 50,200 --no-osm   # a quick look

Generated cases: seed ``s`` of ``--seeds`` takes the ``s``-th size of
``--villages`` (cycling), ``townships = max(3, villages // 20)``,
``households = villages * 280``; odd seeds draw grids (``use_groups =
false``), even seeds take villager groups. OSM cases: the Guixi and Beijing
extracts of ``../shared/data/osm`` with default rules.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._readme import write_section  # noqa: E402

log = logging.getLogger("sweep")
OSM = ROOT.parent / "shared" / "data" / "osm"
LEVELS = ("townships", "blocks", "villages", "grids", "points", "exclusive")
DEFAULT_SIZES = "50,80,120,200,300,450,700,1000,1500,2000"


@dataclass(frozen=True)
class Case:
    """One build of the sweep."""

    label: str
    rules: str  # the rules file's text
    input: Path | None  # a county GeoPackage (None: the rules name an OSM file)
    villages: int = 0
    households: int = 0
    synth: tuple[str, ...] = ()  # ``gridgeo synth`` arguments that make ``input``, when it is generated


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _rules(*, drawn: bool, osm: Path | None = None, code: str = "369900") -> str:
    txt = f'[county]\ncode = "{code}"\n'
    if osm is not None:
        txt += f'[inputs]\nosm = "{osm.as_posix()}"\n'
    if drawn:
        txt += "[grids]\nuse_groups = false\n"
    return txt


def _sizes(spec: str) -> list[int]:
    return [int(s) for s in spec.split(",") if s.strip()]


def _seeds(spec: str) -> list[int]:
    if "-" in spec:
        a, b = spec.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in spec.split(",")]


def generated_cases(seeds: list[int], sizes: list[int], work: Path) -> list[Case]:
    """One county per seed (sizes cycling), made by the real ``gridgeo synth`` command when it is built."""
    out = []
    for k, seed in enumerate(seeds):
        v = sizes[k % len(sizes)]
        t, hh = max(3, v // 20), v * 280
        path = work / f"synth_s{seed}_v{v}.gpkg"
        drawn = seed % 2 == 1
        out.append(Case(f"seed {seed}, {v} villages, {hh:,} households, {'drawn' if drawn else 'groups'}",
                        _rules(drawn=drawn), path, v, hh,
                        synth=("--seed", str(seed), "--townships", str(t), "--villages", str(v),
                               "--households", str(hh))))
    return out


def osm_cases() -> list[Case]:
    return [Case("Guixi OSM (guixi_jiangxi.osm.pbf)", _rules(drawn=False, osm=OSM / "guixi_jiangxi.osm.pbf",
                                                               code="360681"), None),
            Case("Beijing OSM (beijing_haidian_cau.osm.bz2)",
                 _rules(drawn=False, osm=OSM / "beijing_haidian_cau.osm.bz2", code="110108"), None)]


def run_case(case: Case, work: Path) -> dict[str, Any]:
    """Build one case with the CLI and check what it wrote."""
    if case.synth and case.input is not None and not case.input.exists():
        made = subprocess.run([_bin("gridgeo"), "synth", *case.synth, "-o", str(case.input), "-q"],
                              capture_output=True, text=True)
        if made.returncode != 0:  # the generator's failure is the row's failure, not the sweep's
            return {"case": case.label, "exit": made.returncode, "wall_s": 0.0, "cpu_s": 0.0,
                    "error": "gridgeo synth: " + (made.stderr.strip().splitlines() or ["?"])[-1][:300]}
    rules = work / "rules.toml"
    rules.write_text(case.rules, encoding="utf-8")
    out, rep = work / "out.gpkg", work / "report.json"
    for p in (out, rep):
        p.unlink(missing_ok=True)
    cmd = [_bin("gridgeo"), "build", str(rules), "-o", str(out), "--report", str(rep), "-q"]
    if case.input is not None:
        cmd += ["--input", str(case.input)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row: dict[str, Any] = {"case": case.label, "exit": proc.returncode, "wall_s": round(wall, 1),
                           "cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1)}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1][:300]
        return row
    report = json.loads(rep.read_text(encoding="utf-8"))
    row.update(check_output(out))
    row["fallbacks"] = len(report.get("fallbacks") or [])
    row["villages"] = row.pop("n_villages")
    return row


def check_output(path: Path) -> dict[str, Any]:
    """Validity, clean coverage per level and household placement of a written build."""
    layers = {n: gpd.read_file(path, layer=n) for n in (*LEVELS, "households")}
    invalid = 0
    for name in LEVELS:
        g = np.asarray(layers[name].geometry.values, dtype=object)
        rounded = shapely.transform(g, lambda c: np.round(c, 7))
        invalid += int((~shapely.is_valid(g)).sum() + (~shapely.is_valid(rounded)).sum())
    misnoded = {}
    for name in ("townships", "blocks", "villages", "points"):
        misnoded[name] = _misnoded(layers[name].geometry.values)
    misnoded["grids"] = _misnoded(np.concatenate([layers["grids"].geometry.values,
                                                  layers["exclusive"].geometry.values]))
    pts, hh = layers["points"], layers["households"]
    inside = hh[hh["point"].notna()]
    tree = shapely.STRtree(pts.geometry.values)
    a, b = tree.query(inside.geometry.values, predicate="intersects")
    count = np.bincount(a, minlength=len(inside))
    codes = pts["code"].to_numpy()
    one = count == 1
    first = np.full(len(inside), -1)
    first[a[::-1]] = b[::-1]
    right = one & (codes[np.maximum(first, 0)] == inside["point"].to_numpy())
    return {"n_villages": len(layers["villages"]), "grids": len(layers["grids"]), "points": len(pts),
            "invalid": invalid, "misnoded": sum(misnoded.values()),
            "households_not_in_one_point": int((~right).sum())}


def _misnoded(geoms: Any) -> int:
    return int((~shapely.is_empty(shapely.coverage_invalid_edges(np.asarray(geoms, dtype=object)))).sum())


def table(rows: list[dict[str, Any]], argv: list[str]) -> str:
    head = ("| case | exit | wall s | CPU s | villages | grids | points | invalid polygons | mis-noded units | "
            "households not in their one point | villages on a fallback |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        if r["exit"] != 0:
            lines.append(f"| {r['case']} | {r['exit']} | {r['wall_s']} | {r['cpu_s']} | failed: "
                         f"{r.get('error', '')} | | | | | | |")
            continue
        lines.append(f"| {r['case']} | 0 | {r['wall_s']} | {r['cpu_s']} | {r['villages']} | {r['grids']} | "
                     f"{r['points']} | {r['invalid']} | {r['misnoded']} | {r['households_not_in_one_point']} | "
                     f"{r['fallbacks']} |")
    ok = sum(r["exit"] == 0 and r["invalid"] == 0 and r["misnoded"] == 0 for r in rows)
    cmd = "python bench/sweep_build.py " + " ".join(argv)
    return (f"## Build sweep: generated counties and OSM extracts (`bench/sweep_build.py`)\n\n"
            f"```sh\n.venv/bin/{cmd.strip()}\n```\n\n"
            f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; {date.today()}. Each row is "
            "`gridgeo build` in a subprocess (all cores); the written GeoPackage is then checked on its own: "
            "polygons valid as written and after rounding to 1e-7 degree, `coverage_is_valid` per level "
            "(grids with the exclusive grids), every household (by its location) in exactly one grid point, "
            "the one it is assigned to.\n\n" + "\n".join(lines)
            + f"\n\n{ok} of {len(rows)} builds exited 0 with no invalid polygon and no mis-noded unit.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-10", help="seeds: 1-10 or 1,4,7")
    ap.add_argument("--villages", default=DEFAULT_SIZES, help="village counts, cycled over the seeds")
    ap.add_argument("--no-osm", action="store_true", help="skip the OSM extracts")
    ap.add_argument("--work", type=Path, default=None, help="where the generated counties go (kept)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work = args.work or Path(tempfile.mkdtemp(prefix="gridgeo-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    cases = generated_cases(_seeds(args.seeds), _sizes(args.villages), work)
    if not args.no_osm:
        cases += osm_cases()
    rows = []
    for case in cases:
        row = run_case(case, work)
        log.info("%s", json.dumps(row, ensure_ascii=False))
        rows.append(row)
    text = table(rows, [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--update-readme"])
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.update_readme:
        write_section("sweep_build", text)
    bad = [r for r in rows if r["exit"] != 0 or r.get("invalid") or r.get("misnoded")]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
