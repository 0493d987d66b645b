"""Run a command and report its peak memory over the whole process tree: RSS summed, PSS summed, per process.

Why: a build's worker processes are forked from a parent that holds the county; RSS counts the pages they
share with it once per process, PSS divides each shared page among its sharers. The sum of PSS is the
memory the machine really gives the tree.

    python bench/memwatch.py -- gridgeo build rules.toml -o out.gpkg
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            out += [int(k) for k in kids]
    except OSError:
        return out
    return out


def _tree(root: int) -> list[int]:
    seen, todo = [], [root]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def _kib(pid: int, field: str, fname: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{fname}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def main(argv: list[str]) -> int:
    cmd = argv[argv.index("--") + 1:] if "--" in argv else argv
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak_rss = peak_pss = 0
    per: dict[int, int] = {}
    n_max = 0
    while proc.poll() is None:
        pids = _tree(proc.pid)
        rss = {p: _kib(p, "VmRSS", "status") for p in pids}
        pss = sum(_kib(p, "Pss", "smaps_rollup") for p in pids)
        peak_rss = max(peak_rss, sum(rss.values()))
        peak_pss = max(peak_pss, pss)
        n_max = max(n_max, len(pids))
        for p, v in rss.items():
            per[p] = max(per.get(p, 0), v)
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    res = {"exit": proc.returncode, "wall_s": round(wall, 1), "peak_rss_sum_gib": round(peak_rss / 2**20, 2),
           "peak_pss_sum_gib": round(peak_pss / 2**20, 2), "processes": n_max,
           "peak_rss_per_process_gib": sorted((round(v / 2**20, 2) for v in per.values()), reverse=True)[:6]}
    print(json.dumps(res), file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
