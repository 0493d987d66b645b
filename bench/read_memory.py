"""The read stage of a build alone: its seconds and the process's peak resident memory.

Why: the read holds the largest input (a province's 3M building footprints); this measures that stage
without the minutes of the rest of the build.

    python bench/read_memory.py province.gpkg [boundaries/sample_rules.toml]
"""

from __future__ import annotations

import resource
import sys
import time

from gridgeo.county import build as _build
from gridgeo.county.rules import load_county_rules


def main(argv: list[str]) -> int:
    county = argv[0]
    rules = load_county_rules(argv[1] if len(argv) > 1 else "boundaries/sample_rules.toml")
    t0 = time.perf_counter()
    c = _build._read_county(rules, county, {})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"read {time.perf_counter() - t0:.1f} s; peak RSS {peak:.2f} GiB; {len(c.item_wkb):,} items; "
          f"{len(c.vil):,} villages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
