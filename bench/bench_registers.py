"""Benchmark: reading a county's household register of persons (CSV and XLSX) into households.

A register as counties keep it: one row per person with a household number (户号), the head marked in
与户主关系, a colour on some households (红/橙/黄), special-care categories, a last visit, lon/lat; 1-5
persons per household. Timed: reading the table (``read_layer(kind="households")``: the CSV through
Python's csv module, the XLSX through openpyxl's read-only reader) and making households of the persons
(:func:`gridgeo.data.registers.prepare_register`). pandas' own readers, in the same run, as the peer for
the reading: gridgeo's read checks the header (merged cells, duplicate names) and keeps row numbers.

    .venv/bin/python bench/bench_registers.py [--households 30000] [--update-readme]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _readme import write_section

from gridgeo.data.io import read_layer
from gridgeo.data.registers import prepare_register


def register(n_households: int, *, seed: int = 0) -> pd.DataFrame:
    """Persons of ``n_households`` households (1-5 persons each), the head first."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_households)
    key = np.repeat([f"3699{h:08d}" for h in range(n_households)], sizes)
    n = len(key)
    head = np.r_[True, key[1:] != key[:-1]]
    return pd.DataFrame({
        "户号": key, "姓名": [f"人{i}" for i in range(n)], "与户主关系": np.where(head, "户主", "子女"),
        "联系电话": [f"138{i:08d}" for i in range(n)], "风险等级": rng.choice(["红", "橙", "黄", "", "", ""], n),
        "类别": rng.choice(["低保户", "", "留守儿童", "", "", "空巢老人"], n),
        "经度": np.round(117.2 + rng.random(n) * 0.2, 6), "纬度": np.round(28.2 + rng.random(n) * 0.2, 6),
        "性别": rng.choice(["男", "女"], n), "最近走访": "2026-11-20",
    })


def _time(fn: object) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - t, out


def run(n_households: int) -> str:
    df = register(n_households)
    lines = [f"{len(df):,} persons in {n_households:,} households ({platform.processor() or platform.machine()}, "
             f"{platform.python_version()}):", "",
             "| file | peer read (pandas) | gridgeo read | persons -> households |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as d:
        for suffix in (".csv", ".xlsx"):
            path = Path(d) / f"register{suffix}"
            if suffix == ".csv":
                df.to_csv(path, index=False)
                peer, _ = _time(lambda p=path: pd.read_csv(p, dtype=str))
            else:
                df.to_excel(path, index=False)
                peer, _ = _time(lambda p=path: pd.read_excel(p, dtype=str))
            read, gdf = _time(lambda p=path: read_layer(p, kind="households"))
            made, reg = _time(lambda g=gdf, p=path: prepare_register(g, source=str(p)))
            assert len(reg.frame) == n_households  # type: ignore[attr-defined]
            lines.append(f"| {suffix[1:].upper()} | {peer:.1f} s | {read:.1f} s ({read / peer:.2f} x) | {made:.1f} s |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=30_000)
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    text = run(args.households)
    print(text)
    if args.update_readme:
        cmd = f"`.venv/bin/python bench/bench_registers.py --households {args.households} --update-readme`"
        write_section("registers", "## Household registers: persons read and made households "
                      "(`gridgeo.data.registers`, issue 12 item 1)\n\n" + cmd + "\n\n" + text)


if __name__ == "__main__":
    main()
