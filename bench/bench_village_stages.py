"""Benchmark: per-village stages of ``gridgeo build``, the reference way against the current one, side by side.

The inputs are the real ones: the units every village of a county hands to
:func:`gridgeo.county.assign.unit_adjacency` (street blocks and split pieces),
recorded by building the villages (every ``--every``-th village of the county)
once with the recording wrappers in place; they are cached under the system temp
directory, keyed by the county file and the selection, so reruns time only.

Stages timed, each reference against current on the same inputs in the same run
(best of ``--repeat`` rounds, the two alternating), the results compared exactly:

* **adjacency** -- the shared-length pairs: one snapped GEOS intersection per
  pair of intersecting unit boundaries (``_overlay_lengths``, the former
  implementation) against :func:`gridgeo.county.assign.shared_lengths` (matched
  segments in numpy, the overlay only for pairs with a vertex near a segment it
  does not end);
* **fingerprint** -- :func:`gridgeo.county.fingerprint.fingerprint` of the village
  tasks, object arrays of geometries fed element by element (the former way)
  against one vectorised ``to_wkb`` call; the digests must be equal.

    .venv/bin/python bench/bench_village_stages.py boundaries/sample_county.gpkg
    .venv/bin/python bench/bench_village_stages.py /tmp/p5/c.gpkg --every 20
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridgeo.county import assign, village  # noqa: E402
from gridgeo.county import build as _build  # noqa: E402
from gridgeo.county import fingerprint as fp  # noqa: E402
from gridgeo.county.ladder import build_with_fallbacks  # noqa: E402
from gridgeo.county.rules import load_county_rules  # noqa: E402

log = logging.getLogger("bench_village_stages")
CACHE = Path(tempfile.gettempdir()) / "gridgeo-bench-cache"
RULES = ROOT / "boundaries" / "sample_rules.toml"


def record(county: Path, every: int) -> tuple[list[Any], list[Any]]:
    """The tasks of every ``every``-th village of ``county`` and the units the build hands to the adjacency."""
    stat = county.stat()
    key = hashlib.sha1(f"{county.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{every}:v2".encode()).hexdigest()[:16]
    path = CACHE / f"village-units-{key}.pkl"
    if path.exists():
        with path.open("rb") as f:
            tasks, units = pickle.load(f)
            return list(tasks), list(units)
    rules = load_county_rules(RULES)
    c = _build._read_county(rules, county, {})
    blocks = _build._county_blocks(c.vil, rules)
    c.vil["block"] = [blocks.block_of.get(v) for v in c.vil["code"]]
    tasks = list(_build._tasks(c, rules, None))[::every]
    units: list[Any] = []
    real = village.unit_adjacency

    def keep(u: Any, **kw: Any) -> Any:
        units.append(np.asarray(u, dtype=object).copy())
        return real(u, **kw)

    village.unit_adjacency = keep  # type: ignore[assignment]
    try:
        for t in tasks:
            build_with_fallbacks(t)
    finally:
        village.unit_adjacency = real
    CACHE.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump((tasks, units), f)
    return tasks, units


def side_by_side(ref: Callable[[], Any], cur: Callable[[], Any], repeat: int) -> tuple[float, float, Any, Any]:
    """Best wall times of ``repeat`` rounds, reference and current alternating (the machine is shared,
    so neither gets the quiet moments alone), and the last results."""
    t_ref = t_cur = float("inf")
    out_ref = out_cur = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out_ref = ref()
        t1 = time.perf_counter()
        out_cur = cur()
        t2 = time.perf_counter()
        t_ref, t_cur = min(t_ref, t1 - t0), min(t_cur, t2 - t1)
    return t_ref, t_cur, out_ref, out_cur


def bench_adjacency(units: list[Any], repeat: int) -> dict[str, Any]:
    """Reference and current shared lengths on every village's units: times, and how far they differ."""
    t_ref, t_new, ref, new = side_by_side(lambda: [assign._overlay_lengths(u) for u in units],
                                          lambda: [assign.shared_lengths(u) for u in units], repeat)
    pairs_differ, max_abs = 0, 0.0
    for (ra, rb, rl), (na, nb, nl) in zip(ref, new, strict=True):
        if not (np.array_equal(ra, na) and np.array_equal(rb, nb)):
            pairs_differ += 1
            continue
        if len(rl):
            max_abs = max(max_abs, float(np.max(np.abs(rl - nl))))
    n_pairs = sum(len(r[0]) for r in ref)
    bitwise = sum(int(np.array_equal(r[2], n[2])) for r, n in zip(ref, new, strict=True))
    return {"villages": len(units), "units": sum(len(u) for u in units), "pairs": n_pairs,
            "reference_s": t_ref, "current_s": t_new, "ratio": t_ref / t_new if t_new else float("inf"),
            "villages_pairs_differ": pairs_differ, "villages_lengths_bitwise": bitwise,
            "max_abs_length_diff_m": max_abs}


def bench_fingerprint(tasks: list[Any], repeat: int) -> dict[str, Any]:
    """Fingerprints with geometry arrays hashed element by element (reference) and in one call (current)."""
    current = fp._put_geometries

    def one_by_one(h: Any, geoms: Any) -> None:
        for v in geoms:
            fp._put(h, v)

    def reference() -> list[str]:
        fp._put_geometries = one_by_one  # type: ignore[assignment]
        try:
            return [fp.fingerprint(t) for t in tasks]
        finally:
            fp._put_geometries = current

    t_ref, t_new, ref, new = side_by_side(reference, lambda: [fp.fingerprint(t) for t in tasks], repeat)
    return {"villages": len(tasks), "reference_s": t_ref, "current_s": t_new,
            "ratio": t_ref / t_new if t_new else float("inf"), "equal": ref == new}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("county", type=Path, help="a county GeoPackage (gridgeo synth output or the sample county)")
    ap.add_argument("--every", type=int, default=1, help="take every N-th village (default 1: all)")
    ap.add_argument("--repeat", type=int, default=5, help="best of N rounds (default 5)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tasks, units = record(args.county, args.every)
    res = bench_adjacency(units, args.repeat)
    print(f"adjacency  {args.county.name}: {res['villages']} villages, {res['units']} units, {res['pairs']} pairs; "
          f"reference {res['reference_s']:.3f} s, current {res['current_s']:.3f} s, ratio {res['ratio']:.1f}x; "
          f"villages whose pairs differ {res['villages_pairs_differ']}, lengths bitwise equal in "
          f"{res['villages_lengths_bitwise']}/{res['villages']}, max |diff| {res['max_abs_length_diff_m']:.3g} m")
    f = bench_fingerprint(tasks, args.repeat)
    print(f"fingerprint {args.county.name}: {f['villages']} villages; reference {f['reference_s']:.3f} s, "
          f"current {f['current_s']:.3f} s, ratio {f['ratio']:.1f}x; digests equal {f['equal']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
