"""Time a grid redrawn over the API on a county served from its file: the preview and the edit.

Each edit is a PATCH of a grid's geometry taking one grid point of a neighbouring grid of its village,
in process (Flask's client), until ``--edits`` are applied; refused ones (409: the neighbour would be left
empty, ...) are counted. The first applied edit builds the indexes on the codes (``code_index``).

    cp /tmp/X/big.gpkg /tmp/X/edit.gpkg     # it writes: a copy
    .venv/bin/gridgeo users add /tmp/X/edit.gpkg gisadmin --role admin | tail -1 > /tmp/X/edit.token
    .venv/bin/python bench/bench_grid_edit.py /tmp/X/edit.gpkg /tmp/X/edit.token
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from gridgeo.service import create_app
from gridgeo.service.locate import Locator


def _bbox(geom: Any) -> str:
    return ",".join(str(v) for v in shapely.bounds(geom).tolist())


def _outline(c: Any, f: dict[str, Any]) -> Any | None:
    """The grid's outline with one grid point of a neighbouring grid of its village, or None."""
    mine = shapely.geometry.shape(f["geometry"])
    near = c.get(f"/collections/grids/items?limit=1000&bbox={_bbox(mine)}").get_json()["features"]
    village = {g["id"]: g["properties"]["parent"] for g in near}
    pts = c.get(f"/collections/points/items?limit=1000&bbox={_bbox(mine)}").get_json()["features"]
    for p in pts:
        g = p["properties"]["parent"]
        geom = shapely.geometry.shape(p["geometry"])
        if g != f["id"] and village.get(g) == f["properties"]["parent"] and \
                shapely.intersection(mine, geom).length > 1e-5:
            return shapely.union(mine, geom)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("county")
    ap.add_argument("token")
    ap.add_argument("--edits", type=int, default=11)
    args = ap.parse_args()
    with open(args.token, encoding="utf-8") as fh:
        headers = {"Authorization": f"Bearer {fh.read().strip()}", "If-Match": "*"}
    app = create_app({"COUNTY": args.county})
    c = app.test_client()
    c.get("/collections/households/items?limit=1")
    while not isinstance(app.extensions.get("locator"), Locator):
        time.sleep(0.5)
    grids = c.get("/collections/grids/items?limit=1000").get_json()["features"]
    preview: list[float] = []
    applied: list[float] = []
    refused = 0
    for i in np.random.default_rng(7).permutation(len(grids)).tolist():
        outline = _outline(c, grids[i])
        if outline is None:
            continue
        body = {"geometry": shapely.geometry.mapping(outline)}
        t = time.perf_counter()
        c.patch(f"/collections/grids/items/{grids[i]['id']}?preview=true", json=body, headers=headers)
        preview.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = c.patch(f"/collections/grids/items/{grids[i]['id']}", json=body, headers=headers)
        if r.status_code == 200:
            applied.append(time.perf_counter() - t)
        else:
            refused += 1
        if len(applied) >= args.edits:
            break
    print(json.dumps({"applied": len(applied), "refused": refused,
                      "preview_median_ms": round(float(np.median(preview)) * 1000, 1),
                      "first_edit_ms": round(applied[0] * 1000, 1) if applied else None,
                      "edit_median_ms": round(float(np.median(applied[1:])) * 1000, 1) if len(applied) > 1 else None}))


if __name__ == "__main__":
    main()
