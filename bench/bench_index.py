"""/locate and bbox queries on the live rtree index (gridgeo.data.live_index) against shapely's STRtree, same run.

Why: the service moved its /locate levels and the households' bbox queries from STRtree (read-only) to
LiveIndex (rtree, takes inserts and deletes). This measures what that costs on the built sample county:

- /locate: the service's own :class:`Locator` (LiveIndex per level) against the same algorithm on
  STRtrees over the very same pieces (main's: a tree of the polygons' pieces, and for a batch of 2,048
  places or more a tree of the places queried by the prepared pieces); answers checked equal.
- bbox: 1,000 boxes of about 100 households each, LiveIndex.query_bbox against
  STRtree.query(box, predicate="intersects"); answers checked equal.

    .venv/bin/gridgeo build boundaries/sample_rules.toml -o /tmp/X/county.gpkg
    .venv/bin/python bench/bench_index.py /tmp/X/county.gpkg
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from gridgeo.service.locate import _QUERY_ORDER, PIECE_BITS, Locator
from gridgeo.service.store import load_county
from numpy.typing import NDArray

from gridgeo.data.live_index import LiveIndex

log = logging.getLogger("bench_index")

#: main's threshold for indexing the places instead of the pieces
_REVERSE_AT = 2048


class RtreeLocator:
    """The locator with every piece of every level in a LiveIndex (rtree): what a live-only index costs."""

    def __init__(self, loc: Locator) -> None:
        self.loc = loc
        self.index: dict[str, LiveIndex] = {}
        for key, level in loc.levels.items():
            n = np.zeros(len(level.owner), dtype=np.int64)
            seen: dict[int, int] = {}
            for i, o in enumerate(level.owner.tolist()):  # piece number within its row
                n[i] = seen.get(o, 0)
                seen[o] = n[i] + 1
            keys = (level.owner << PIECE_BITS) | n
            self.index[key] = LiveIndex(keys.tolist(), level.pieces, name=key)

    def locate(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> dict[str, NDArray[np.int64]]:
        rows = {key: np.full(len(lon), -1, dtype=np.int64) for key in self.loc.levels}
        for key in _QUERY_ORDER:
            if key not in self.index:
                continue
            need = np.flatnonzero(rows[key] < 0)
            if not len(need):
                continue
            pi, pk = self.index[key].hits_xy(lon[need], lat[need])
            if len(pi):
                gi = np.asarray(pk, dtype=np.int64) >> PIECE_BITS
                best = np.full(len(need), np.iinfo(np.int64).max, dtype=np.int64)
                np.minimum.at(best, pi, gi)
                hit = best != np.iinfo(np.int64).max
                rows[key][need[hit]] = best[hit]
                self.loc._propagate(key, need[hit], rows)  # the same parent lookups
        return rows


def _median_s(fn: Any, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(county_path: Path, points: int, boxes: int, repeat: int) -> dict[str, Any]:
    county = load_county(county_path)
    shipped = Locator(county)  # STRtree of the start-up pieces + LiveIndex of the changed ones
    rtree_only = RtreeLocator(shipped)
    w, s, e, n = county.collections["villages"].bbox
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(w, e, points), rng.uniform(s, n, points)
    a, b = shipped.locate(lon, lat), rtree_only.locate(lon, lat)
    assert all((a[k] == b[k]).all() for k in a), "the two indexes disagree"
    out: dict[str, Any] = {"points": points, "pieces": {k: len(v.pieces) for k, v in shipped.levels.items()}}
    small_lon, small_lat = lon[:100], lat[:100]
    for name, loc in (("strtree", shipped), ("rtree", rtree_only)):
        t = _median_s(lambda loc=loc: loc.locate(lon, lat), repeat)  # type: ignore[misc]
        out[f"locate_{name}_points_per_s"] = round(points / t)
        t = _median_s(lambda loc=loc: loc.locate(small_lon, small_lat), repeat * 10)  # type: ignore[misc]
        out[f"locate_100_{name}_ms"] = round(t * 1e3, 3)
    # the shipped locator after 1 % of the grid points were redrawn (their pieces now in the rtree)
    pts_coll = county.collections["points"]
    changed = rng.choice(len(pts_coll), max(1, len(pts_coll) // 100), replace=False)
    t0 = time.perf_counter()
    for i in changed.tolist():
        shipped.replace("points", pts_coll.key_at(i), pts_coll.geometries()[i])
    out["replace_ms_each"] = round((time.perf_counter() - t0) / len(changed) * 1e3, 3)
    c = shipped.locate(lon, lat)
    assert all((a[k] == c[k]).all() for k in a), "a feature replaced by itself changed an answer"
    out["locate_strtree_1pct_changed_points_per_s"] = round(points / _median_s(lambda: shipped.locate(lon, lat),
                                                                                repeat))

    hh = county.collections["households"]
    geoms = hh.geometries()
    tree = shapely.STRtree(geoms)
    index = hh.live if hh.live is not None else LiveIndex(hh.keys.tolist(), geoms, name="households")
    hw, hs, he, hn = hh.bbox
    side = float(np.sqrt((he - hw) * (hn - hs) * 100 / len(hh)))  # ~100 households a box on average
    x0, y0 = rng.uniform(hw, he - side, boxes), rng.uniform(hs, hn - side, boxes)
    qboxes = [(float(x), float(y), float(x) + side, float(y) + side) for x, y in zip(x0, y0, strict=True)]
    keys = hh.keys
    for q in qboxes[:50]:
        assert index.query_bbox(q) == sorted(keys[tree.query(shapely.box(*q), predicate="intersects")].tolist())
    t_live = _median_s(lambda: [index.query_bbox(q) for q in qboxes], repeat)
    t_str = _median_s(lambda: [tree.query(shapely.box(*q), predicate="intersects") for q in qboxes], repeat)
    hits = sum(len(index.query_bbox(q)) for q in qboxes)
    out.update(bbox_boxes=boxes, bbox_mean_hits=round(hits / boxes, 1), bbox_live_us=round(t_live / boxes * 1e6, 1),
               bbox_strtree_us=round(t_str / boxes * 1e6, 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("county", type=Path)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--boxes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    res = run(args.county, args.points, args.boxes, args.repeat)
    res["python"] = platform.python_version()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
