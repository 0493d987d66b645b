"""``gridgeo merge`` (多网合一) on the 150,000-household generated county, beside geopandas' union overlay.

Department 民政 is the generated villager groups, each grown or shrunk by 6 m (seeded), department 党建
the grids and exclusive grids of a ``gridgeo build`` with drawn grids (``use_groups = false``, not
timed): two real-shaped partitions of the same villages that disagree. The peer, in the same run, is
``geopandas.overlay(how="union")`` of the two layers clipped to the villages: the common refinement
alone, which the merge computes per village (and then slivers, households, the partition, codes, the
crosswalk, the coverage check and the write).

    .venv/bin/python bench/bench_merge.py --seed 11 --update-readme
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._readme import write_section  # noqa: E402
from gridgeo.cli.main import main  # noqa: E402
from gridgeo.data.crs import metric_crs  # noqa: E402
from gridgeo.synth import synth_county, write_county  # noqa: E402


def _departments(d: Path, seed: int, households: int) -> tuple[Path, Path, Path]:
    county = d / "county.gpkg"
    write_county(synth_county(seed=seed, townships=23, villages=220, households=households), county)
    rules = d / "rules.toml"
    rules.write_text(f'[county]\nseed = 0\n[inputs]\ncounty = "{county.as_posix()}"\n[grids]\nuse_groups = false\n',
                     encoding="utf-8")
    built = d / "built.gpkg"
    assert main(["build", str(rules), "-o", str(built), "--no-progress", "-q"]) == 0
    g = pyogrio.read_dataframe(built, layer="grids")
    e = pyogrio.read_dataframe(built, layer="exclusive")
    party = gpd.GeoDataFrame(pd.concat([g[["code", "geometry"]], e[["code", "geometry"]]], ignore_index=True),
                             geometry="geometry", crs=g.crs)
    party.to_file(d / "party.gpkg", layer="party", driver="GPKG")
    groups = pyogrio.read_dataframe(county, layer="villager_groups")
    metric = metric_crs(groups)
    rng = np.random.default_rng(seed)
    m = groups.to_crs(metric)
    grown = [geom.buffer(float(rng.choice([-6.0, 6.0]))) for geom in m.geometry]
    gpd.GeoDataFrame({"code": m["code"]}, geometry=grown, crs=metric).to_file(d / "civil.gpkg", layer="civil",
                                                                             driver="GPKG")
    return d / "civil.gpkg", built, d / "party.gpkg"


def run(seed: int, households: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        civil, built, party = _departments(d, seed, households)
        out, rep = d / "merged.gpkg", d / "merged.json"
        t0 = time.perf_counter()
        assert main(["merge", f"{civil}:civil", f"{party}:party", "--name", "民政", "--name", "党建",
                     "--county", str(built), "-o", str(out), "--report", str(rep), "-q"]) == 0
        merge_s = time.perf_counter() - t0
        t2 = time.perf_counter()
        assert main(["merge", f"{civil}:civil", f"{party}:party", "--name", "民政", "--name", "党建",
                     "--county", str(built), "-o", str(d / "merged2.gpkg"), "--workers", "2", "-q"]) == 0
        merge2_s = time.perf_counter() - t2
        report = json.loads(rep.read_text(encoding="utf-8"))
        t1 = time.perf_counter()
        vil = pyogrio.read_dataframe(built, layer="villages")
        metric = report["metric_crs"]
        a = pyogrio.read_dataframe(civil, layer="civil").to_crs(metric)
        b = pyogrio.read_dataframe(party, layer="party").to_crs(metric)
        u = gpd.overlay(gpd.overlay(a[["geometry"]], b[["geometry"]], how="union", keep_geom_type=True),
                        vil[["code", "geometry"]].to_crs(metric), how="intersection", keep_geom_type=True)
        overlay_s = time.perf_counter() - t1
        crosswalk = pyogrio.read_info(out, layer="crosswalk")["features"]
    return {"merge_s": merge_s, "merge2_s": merge2_s, "overlay_s": overlay_s, "overlay_faces": len(u), "report": report,
            "crosswalk": crosswalk, "seed": seed, "households": households}


def section(r: dict[str, object]) -> str:
    rep = r["report"]
    assert isinstance(rep, dict)
    dep = rep["departments"]
    lines = [
        "## Merge: `gridgeo merge` of two departments on 150,000 households (`gridgeo.county.merge`, issue 14 item 6)",
        "",
        "```sh",
        ".venv/bin/python bench/bench_merge.py --seed 11 --update-readme",
        "```",
        "",
        f"`synth_county(seed={r['seed']}, townships=23, villages=220, households={r['households']})`; department "
        "民政 = its villager groups, each grown or shrunk by 6 m (so the layer overlaps itself and leaves gaps, "
        "as a hand-drawn one does), 党建 = the grids and exclusive grids of a build with drawn grids (not timed); "
        "default bounds. Peer in the same run: `geopandas.overlay(how=\"union\")` of the two layers, then clipped to "
        "the villages -- the common refinement only, which the merge does per village before the partition, the "
        "crosswalk, the coverage check and the write.",
        "",
        f"Host: {platform.machine()}, {os.cpu_count()} cores (shared), both in one process, Python "
        f"{platform.python_version()}; {dt.date.today().isoformat()}.",
        "",
        "| | gridgeo merge (whole command) | geopandas union overlay + clip |",
        "|---|---:|---:|",
        f"| seconds | **{r['merge_s']:.1f}** | {r['overlay_s']:.1f} |",
        f"| ratio | {r['merge_s'] / r['overlay_s']:.2f}× the overlay's time | 1 |",
        f"| seconds with `--workers 2` (same output) | {r['merge2_s']:.1f} | |",
        f"| faces | {rep['faces']:,} ({rep['slivers_merged']:,} slivers merged) | {r['overlay_faces']:,} |",
        f"| merged grids / inside bounds | {rep['grids']} / {100 * rep['within_bounds_share']:.1f} % | |",
        f"| mean `follows` | {rep['mean_follows']} | |",
        f"| crosswalk rows | {r['crosswalk']:,} | |",
        "| gaps / overlaps reported (民政; 党建) | "
        f"{dep['民政']['gaps']} / {dep['民政']['overlaps']}; {dep['党建']['gaps']} / {dep['党建']['overlaps']} | |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--households", type=int, default=150_000)
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    res = run(args.seed, args.households)
    text = section(res)
    print(text)
    if args.update_readme:
        write_section("merge", text)
