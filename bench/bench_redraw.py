"""Time redraws on request on a served county: propose, accept, restore (in process, Flask's client).

For ``--villages`` villages with at least three grids (a seeded sample), ``POST /villages/{code}/redraw``
with bounds a little tighter than the village's grids meet today (so the engine has to move points), then
``POST /proposals/{id}/accept`` when the proposal moves anything and is within its rules, then the restore
of the version before it. The county is written: give it a copy with an admin's token.

    rm -f /tmp/X/redraw.gpkg* && cp /tmp/X/big.gpkg /tmp/X/redraw.gpkg
    /usr/bin/time -f "%e s" .venv/bin/gridgeo users add /tmp/X/redraw.gpkg gisadmin --role admin | tail -1 \\
        > /tmp/X/redraw.token
    .venv/bin/python bench/bench_redraw.py /tmp/X/redraw.gpkg /tmp/X/redraw.token
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
from gridgeo.service import create_app
from gridgeo.service.locate import Locator


def _timed(call: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    resp = call()
    return (time.perf_counter() - t) * 1000, resp


def _candidates(c: Any, n: int, seed: int) -> list[tuple[str, list[float]]]:
    """Villages with three or more grids, and bounds 0.6-1.05 x their mean grid's households."""
    grids = c.get("/collections/grids/items?limit=10000").get_json()["features"]
    by: dict[str, list[int]] = {}
    for f in grids:
        by.setdefault(f["properties"]["parent"], []).append(int(f["properties"].get("households") or 0))
    ok = sorted(v for v, hh in by.items() if len(hh) >= 3 and sum(hh) > 0)
    rng = np.random.default_rng(seed)
    chosen = [ok[i] for i in sorted(rng.choice(len(ok), size=min(n, len(ok)), replace=False).tolist())]
    return [(v, [round(0.6 * np.mean(by[v])), round(1.05 * np.mean(by[v]))]) for v in chosen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("county")
    ap.add_argument("token")
    ap.add_argument("--villages", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with open(args.token, encoding="utf-8") as fh:
        h = {"Authorization": f"Bearer {fh.read().strip()}"}
    app = create_app({"COUNTY": args.county})
    c = app.test_client()
    c.get("/collections/households/items?limit=1")
    while not isinstance(app.extensions.get("locator"), Locator):
        time.sleep(0.5)
    times: dict[str, list[float]] = {"propose": [], "accept": [], "restore": []}
    moved: list[int] = []
    for village, bounds in _candidates(c, args.villages, args.seed):
        ms, resp = _timed(lambda v=village, b=bounds: c.post(f"/villages/{v}/redraw", json={"bounds": b},
                                                             headers=h))
        doc = resp.get_json()
        if resp.status_code != 201:
            raise SystemExit(f"{village}: {resp.status_code} {doc}")
        times["propose"].append(ms)
        if not doc["moves"] or doc["rules"]["broken"]:
            continue
        moved.append(len(doc["moves"]))
        ms, resp = _timed(lambda d=doc: c.post(f"/proposals/{d['id']}/accept", headers=h))
        if resp.status_code != 201:
            raise SystemExit(f"{village} accept: {resp.status_code} {resp.get_json()}")
        times["accept"].append(ms)
        prev = resp.get_json()["version"]["previous"]
        ms, resp = _timed(lambda p=prev: c.post(f"/versions/{p}/restore", headers=h))
        if resp.status_code != 201:
            raise SystemExit(f"{village} restore: {resp.status_code} {resp.get_json()}")
        times["restore"].append(ms)
    out = {k: {"median_ms": round(statistics.median(v), 1), "max_ms": round(max(v), 1), "n": len(v)}
           for k, v in times.items() if v}
    out["points_moved_median"] = statistics.median(moved) if moved else 0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
