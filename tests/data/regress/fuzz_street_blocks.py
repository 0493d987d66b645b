"""Random street_blocks inputs that stress the noding: where the regression fixtures beside this file came from.

Each case is a star-shaped village (5-29 vertices, radius 300-700 m) around
(X0, Y0) with 1-11 barriers of seven kinds: a road through it, a road along a
village edge (overlapping it, possibly past its corners), a road from a
village corner inwards, a box site clipped to the village, the outline of a
60 m disc site clipped to it, a stretch of the village edge a hair off
(1 nm .. 5 cm), and a chord between two edges. Cases whose faces do not tile
the village are printed (and, with ``--dump DIR``, pickled as (village,
barriers)).

    python tests/data/regress/fuzz_street_blocks.py --seed 1 --cases 3000

With the floating-point-only noding (before the snap-rounding fallback of
``gridgeo.county._faces``) seed 1 failed on cases 63 and 2276.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from gridgeo.county.units import street_blocks


def _barrier(rng: np.random.Generator, area: Polygon, x0: float, y0: float) -> Any:
    ring = np.asarray(area.exterior.coords)
    kind = rng.integers(0, 7)
    if kind == 0:  # a road through
        a, b = rng.uniform(-800, 800, 2), rng.uniform(-800, 800, 2)
        return LineString([(x0 + a[0], y0 + a[1]), (x0 + b[0], y0 + b[1])])
    if kind == 1:  # along a village edge: part of it, possibly on past its ends
        i = rng.integers(0, len(ring) - 1)
        p, q = ring[i], ring[i + 1]
        s, t = rng.uniform(-0.5, 0.7), rng.uniform(0.3, 1.5)
        return LineString([p + s * (q - p), p + t * (q - p)])
    if kind == 2:  # from a village corner inwards
        i = rng.integers(0, len(ring) - 1)
        return LineString([ring[i], np.array([x0, y0]) + rng.uniform(-200, 200, 2)])
    if kind == 3:  # a box site clipped to the village
        c, w = rng.uniform(-600, 600, 2), rng.uniform(20, 300, 2)
        return shapely.intersection(shapely.box(x0 + c[0], y0 + c[1], x0 + c[0] + w[0], y0 + c[1] + w[1]), area)
    if kind == 4:  # the outline of a disc site clipped to the village
        c = np.array([x0, y0]) + rng.uniform(-700, 700, 2)
        return shapely.boundary(shapely.intersection(shapely.buffer(shapely.Point(c), 60, quad_segs=8), area))
    if kind == 5:  # a stretch of the village edge, a hair off
        i = rng.integers(0, len(ring) - 1)
        j = min(len(ring), i + rng.integers(2, 6))
        d = rng.choice([1e-9, 1e-6, 1e-3, 0.05])
        seg = ring[i:j] + rng.normal(0, d, (j - i, 2))
        return LineString(seg) if len(seg) >= 2 else None
    i, j = rng.integers(0, len(ring) - 1, 2)  # a chord between two edges
    p = ring[i] + rng.uniform() * (ring[i + 1] - ring[i])
    q = ring[j] + rng.uniform() * (ring[j + 1] - ring[j])
    return None if np.allclose(p, q) else LineString([p, q])


def cases(seed: int, n: int, x0: float, y0: float) -> Any:
    """Yield (index, village, barriers) for ``n`` random draws (invalid villages skipped)."""
    rng = np.random.default_rng(seed)
    for it in range(n):
        k = rng.integers(5, 30)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(300, 700, k)
        area = Polygon(np.c_[x0 + r * np.cos(ang), y0 + r * np.sin(ang)])
        if not area.is_valid:
            continue
        bars = [_barrier(rng, area, x0, y0) for _ in range(rng.integers(1, 12))]
        yield it, area, [b for b in bars if b is not None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--origin", type=float, nargs=2, default=(500_000.0, 3_000_000.0), metavar=("X0", "Y0"))
    ap.add_argument("--dump", type=Path, help="pickle each failing case here")
    args = ap.parse_args()
    fails = 0
    for it, area, bars in cases(args.seed, args.cases, *args.origin):
        try:
            street_blocks(area, np.asarray(bars, dtype=object), min_area=1.0)
        except Exception as err:  # report every failure and go on
            fails += 1
            print(it, type(err).__name__, str(err)[:150], flush=True)
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                with open(args.dump / f"case_{args.seed}_{it}.pkl", "wb") as f:
                    pickle.dump((area, bars), f)
    print(f"{args.cases} cases, {fails} failed")


if __name__ == "__main__":
    main()
