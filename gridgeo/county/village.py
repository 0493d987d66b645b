"""One village: exclusive grids, level-2 grids and level-3 grid points.

Why per village: every grid and point lies inside one village, so a village
is an independent problem. Building it from its own inputs only, with a seed
derived from its code, means a village whose inputs did not change comes out
identical -- geometry and codes -- when the county is rebuilt, and villages
can be built in parallel processes in any order.

Steps (all in the county's metric CRS)
--------------------------------------
1. **Sites.** Schools, hospitals, mines and gated compounds (POIs whose
   category the rules list) become exclusive grids. A polygon site is its own
   footprint clipped to the village; a point site takes the street block it
   stands in when that block is at most ``site_max_block_m2``, else a disc of
   ``site_radius_m`` clipped to the block. Sites are carved smallest first
   and each loses what a smaller one took; a site left under
   ``site_min_m2`` stays in the base grids (reported).
2. **Units.** The village is cut by the barrier lines, the villager-group
   boundaries and the site footprints (:func:`gridgeo.county.units.street_blocks`),
   so every face lies in exactly one group and is wholly inside or outside
   every site. Buildings (or household points) go to faces; a face with more
   households than a grid point may hold is split between its buildings
   (:func:`gridgeo.county.units.split_heavy`), never through one.
3. **Grids.** Where villager groups are given, one grid per group (minus the
   sites); else the partition engine groups the base units into grids
   within the village kind's household bounds.
4. **Points.** The engine splits every grid and every exclusive grid into
   grid points within the point bounds; units follow street faces and
   courtyards, so points do too.
5. **Tiling check.** Grids and exclusive grids must tile the village, points
   their grid, to ``tolerance_m2``; every building or household point lies
   in exactly one point. A village that breaks this raises, named.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.county import codes as _codes
from gridgeo.county import units as _units
from gridgeo.errors import GeometryError
from gridgeo.partition import Model, Objective, Units

log = logging.getLogger(__name__)

__all__ = ["VillageOut", "VillageTask", "build_village"]

GArray = NDArray[np.object_]


@dataclass
class VillageTask:
    """Everything one village needs, in the metric CRS; picklable for a worker process."""

    code: str
    name: str
    kind: str
    geometry: Any
    barriers: GArray
    group_codes: list[str]
    group_names: list[str]
    group_geoms: GArray
    items: GArray  # buildings (polygons) or household points
    weights: NDArray[np.int64]
    item_labels: list[str | None] | None  # villager group of each household point, when given
    site_geoms: GArray
    site_names: list[str]
    site_categories: list[str]
    site_ids: list[str]
    grid_bounds: tuple[float, float]
    point_bounds: tuple[float, float]
    use_groups: bool = True
    points: bool = True
    seed: int = 0
    min_unit_m2: float = 1.0
    site_radius_m: float = 60.0
    site_max_block_m2: float = 40_000.0
    site_min_m2: float = 200.0
    iterations: int = 30
    restarts: int = 4
    tolerance_m2: float = 1.0
    previous: dict[str, tuple[GArray, list[str]]] | None = None  # level -> (geoms, codes) of an earlier build
    group_extra: list[dict[str, Any]] | None = None  # per group: leader fields to carry onto its grid


@dataclass
class VillageOut:
    """The village's grids, exclusive grids and points, and what was measured."""

    code: str
    grids: list[dict[str, Any]] = field(default_factory=list)
    exclusive: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    item_point: list[str | None] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class _Clock:
    def __init__(self, out: dict[str, float]) -> None:
        self.out = out
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.out[name] = self.out.get(name, 0.0) + now - self.t
        self.t = now


def fingerprint(t: VillageTask) -> str:
    """A digest of everything a village's build depends on (not ``previous``).

    Equal digests mean the build would come out the same, so a rebuild with
    ``--previous`` can take the village's grids and points from the old file.
    """
    h = hashlib.blake2b(digest_size=16)

    def put(x: object) -> None:
        h.update(repr(x).encode())
        h.update(b"\x00")

    def geoms(a: GArray) -> None:
        put(len(a))
        for g in a:
            h.update(shapely.to_wkb(g) if g is not None else b"-")

    put(FINGERPRINT_VERSION)
    for name in ("code", "name", "kind", "group_codes", "group_names", "item_labels", "site_names",
                 "site_categories", "site_ids", "grid_bounds", "point_bounds", "use_groups", "points", "seed",
                 "min_unit_m2", "site_radius_m", "site_max_block_m2", "site_min_m2", "iterations", "restarts",
                 "tolerance_m2", "group_extra"):
        put(getattr(t, name))
    h.update(shapely.to_wkb(t.geometry))
    for a in (t.barriers, t.group_geoms, t.items, t.site_geoms):
        geoms(np.asarray(a, dtype=object))
    h.update(np.asarray(t.weights, dtype=np.int64).tobytes())
    return h.hexdigest()


#: Bump when the algorithm changes, so an old build's villages are not taken as current.
FINGERPRINT_VERSION = 1


def village_seed(seed: int, code: str) -> int:
    """A village's own seed: its results depend on its code, never on the other villages."""
    return (int(seed) * 1_000_003 + zlib.crc32(code.encode())) & 0x7FFFFFFF


# --------------------------------------------------------------------------------------
def _site_footprints(t: VillageTask, stats: dict[str, Any]) -> tuple[list[int], list[Any]]:
    """Footprints of the village's sites: (site index, polygon), smallest first, disjoint."""
    if len(t.site_geoms) == 0:
        return [], []
    area = t.geometry
    polys: list[Any] = []
    point_sites = [i for i, g in enumerate(t.site_geoms) if shapely.get_type_id(g) in (0, 4)]
    blocks: GArray | None = None
    if point_sites:
        blocks = _units.street_blocks(area, t.barriers, min_area=t.min_unit_m2)
    for g in t.site_geoms:
        if shapely.get_type_id(g) in (0, 4):  # Point / MultiPoint
            pt = shapely.centroid(g)
            assert blocks is not None
            hit = int(_units.assign_items(blocks, [pt])[0])
            block = blocks[hit] if hit >= 0 else area
            if hit >= 0 and shapely.area(block) <= t.site_max_block_m2:
                polys.append(block)
                stats["sites_from_block"] = stats.get("sites_from_block", 0) + 1
            else:
                disc = shapely.intersection(block, shapely.buffer(pt, t.site_radius_m, quad_segs=8))
                polys.append(_snap_to_buildings(disc, block, t.items))
                stats["sites_from_radius"] = stats.get("sites_from_radius", 0) + 1
        else:
            polys.append(shapely.intersection(shapely.make_valid(g), area))
            stats["sites_from_polygon"] = stats.get("sites_from_polygon", 0) + 1
    order = sorted(range(len(polys)), key=lambda i: (shapely.area(polys[i]), t.site_ids[i]))
    taken: Any = None
    keep_idx: list[int] = []
    keep_poly: list[Any] = []
    for i in order:
        p = polys[i] if taken is None else shapely.difference(polys[i], taken)
        p = _polygonal(p)
        if p is None or shapely.area(p) < t.site_min_m2:
            stats.setdefault("sites_dropped", []).append(t.site_names[i] or t.site_ids[i])
            continue
        keep_idx.append(i)
        keep_poly.append(p)
        taken = p if taken is None else shapely.union(taken, p)
    return keep_idx, keep_poly


def _snap_to_buildings(disc: Any, block: Any, items: GArray) -> Any:
    """Move a disc footprint's edge off the buildings it would cut.

    A building mostly inside the disc joins it (within its street block); one
    mostly outside leaves it. Why: an exclusive grid's edge through a house
    would put one household in two grids.
    """
    if len(items) == 0 or shapely.get_type_id(items[0]) not in (3, 6):
        return disc
    rim = shapely.boundary(disc)
    hit = items[shapely.STRtree(items).query(rim, predicate="intersects")]
    if len(hit) == 0:
        return disc
    inside = shapely.area(shapely.intersection(hit, disc)) >= 0.5 * shapely.area(hit)
    add = [shapely.intersection(b, block) for b in hit[inside]]
    out = shapely.union_all([disc, *add]) if add else disc
    if (~inside).any():
        out = shapely.difference(out, shapely.union_all(hit[~inside]))
    return _polygonal(out) or disc


def _polygonal(g: Any) -> Any:
    """The polygonal part of ``g`` (or None): intersections may leave lines and points."""
    if g is None or shapely.is_empty(g):
        return None
    parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) == 3 and shapely.area(p) > 0]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def _nearest(tree_geoms: GArray, pts: GArray) -> NDArray[np.int64]:
    """Index of the geometry nearest to each point (ties: lowest index)."""
    tree = shapely.STRtree(tree_geoms)
    idx = tree.query_nearest(pts, all_matches=True)
    out = np.full(len(pts), -1, dtype=np.int64)
    for a, b in zip(idx[0].tolist(), idx[1].tolist(), strict=True):
        if out[a] < 0 or b < out[a]:
            out[a] = b
    return out


def part_count(total: float, lo: float, hi: float) -> int:
    """How many parts a set of ``total`` households is split into: moderate sizes.

    Aim at the middle of the bounds, ``round(total / ((lo + hi) / 2))``, but
    never so few that a part must exceed ``hi`` nor so many that a part must
    fall below ``lo``; at least one. Why not "as many as the bounds allow"
    (max-p): that drives every point down to the minimum, which a county
    reads as too fine, and a fixed count is far quicker to solve.
    """
    if total <= 0:
        return 1
    k = round(total / ((lo + hi) / 2.0)) if math.isfinite(hi) else 1
    if math.isfinite(hi) and hi > 0:
        k = max(k, math.ceil(total / hi - 1e-9))
    if lo > 0:
        k = min(k, math.floor(total / lo + 1e-9))
    return max(int(k), 1)


def _sub_units(indptr: NDArray[np.int64], indices: NDArray[np.int64], lengths: NDArray[np.float64],
               keep: NDArray[np.int64], ids: Sequence[Any]) -> Units:
    """The adjacency restricted to ``keep`` (in that order), as engine Units."""
    n = len(indptr) - 1
    pos = np.full(n, -1, dtype=np.int64)
    pos[keep] = np.arange(len(keep))
    rows: list[int] = []
    cols: list[int] = []
    lens: list[float] = []
    for new_i, old_i in enumerate(keep.tolist()):
        for k in range(int(indptr[old_i]), int(indptr[old_i + 1])):
            j = int(pos[indices[k]])
            if j > new_i:
                rows.append(new_i)
                cols.append(j)
                lens.append(float(lengths[k]))
    m = len(keep)
    order = np.lexsort((np.asarray(cols, dtype=np.int64), np.asarray(rows, dtype=np.int64)))
    r = np.asarray(rows, dtype=np.int64)[order]
    c = np.asarray(cols, dtype=np.int64)[order]
    L = np.asarray(lens, dtype=float)[order]
    ip = np.zeros(m + 1, dtype=np.int64)
    np.add.at(ip, r + 1, 1)
    ip = np.cumsum(ip)
    return Units.from_arrays(ip, c, ids=list(ids), lengths=L)


def _union(geoms: GArray) -> Any:
    """Union of units that share exact edges (a coverage), robust fallback otherwise."""
    if len(geoms) == 1:
        return geoms[0]
    try:
        out = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        out = shapely.union_all(geoms)
    if not shapely.is_valid(out):
        out = shapely.make_valid(out)
    return out


def _previous_labels(t: VillageTask, level: str, units: NDArray[np.int64], rep: GArray) -> dict[int, str] | None:
    """Unit -> the code of the earlier build's part it lies in (``--previous``), so the engine
    re-draws a changed village moving as few units as it can (dynamic adjustment)."""
    prev = (t.previous or {}).get(level)
    if prev is None or len(prev[0]) == 0 or len(units) == 0:
        return None
    where = _units.assign_items(np.asarray(prev[0], dtype=object), rep[units])
    return {int(u): prev[1][w] for u, w in zip(units.tolist(), where.tolist(), strict=True) if w >= 0} or None


def _within(h: float, lo: float, hi: float) -> bool:
    return lo <= h <= hi


# --------------------------------------------------------------------------------------
def build_village(t: VillageTask) -> VillageOut:
    """Build one village's exclusive grids, grids and points (see the module notes).

    Raises
    ------
    GeometryError
        The grids do not tile the village, or the points their grid, within
        ``tolerance_m2``, or a household is in no point: the message names the
        village.
    """
    out = VillageOut(code=t.code)
    clock = _Clock(out.seconds)
    st = out.stats
    area = t.geometry
    # 1. sites
    site_idx, site_polys = _site_footprints(t, st)
    clock.lap("exclusive")
    # 2. units
    cut = [*t.barriers.tolist()]
    if t.use_groups and len(t.group_geoms):
        cut += [shapely.boundary(g) for g in t.group_geoms]
    cut += [shapely.boundary(p) for p in site_polys]
    faces = _units.street_blocks(area, np.asarray(cut, dtype=object), min_area=t.min_unit_m2)
    item_face = _units.assign_items(faces, t.items) if len(t.items) else np.zeros(0, dtype=np.int64)
    lost = item_face < 0
    if lost.any():  # numerically on the village rim: the nearest face
        item_face[lost] = _nearest(faces, shapely.point_on_surface(t.items[lost]))
    w_items = np.asarray(t.weights, dtype=np.int64)
    lo_p, hi_p = t.point_bounds
    if t.points:
        units, parent, item_unit = _units.split_heavy(faces, t.items, w_items, item_face, max_weight=hi_p)
    else:
        units, parent, item_unit = faces, np.arange(len(faces), dtype=np.int64), item_face
    n = len(units)
    uw = np.bincount(item_unit[item_unit >= 0], weights=w_items[item_unit >= 0], minlength=n).astype(float)
    rep = shapely.point_on_surface(units)
    st.update(faces=len(faces), units=n, split_faces=int(np.sum(np.bincount(parent, minlength=len(faces)) > 1)))
    ip, ix, lens = _units.unit_adjacency(units)
    clock.lap("units")
    # classify units: site, else group label
    site_of = _units.assign_items(np.asarray(site_polys, dtype=object), rep) if site_polys else np.full(n, -1)
    label = np.array([""] * n, dtype=object)
    for u in np.flatnonzero(site_of >= 0).tolist():
        label[u] = f"Z{int(site_of[u]):04d}"
    base = np.flatnonzero(site_of < 0)
    lo_g, hi_g = t.grid_bounds
    if len(base):
        if t.use_groups and len(t.group_geoms):
            g = _units.assign_items(t.group_geoms, rep[base])
            miss = g < 0
            if miss.any():
                g[miss] = _nearest(t.group_geoms, rep[base][miss])
            for u, gi in zip(base.tolist(), g.tolist(), strict=True):
                label[u] = f"G{gi:04d}"
            st["grids_from"] = "villager_groups"
        elif t.item_labels is not None and any(lab is not None for lab in t.item_labels):
            _label_by_households(base, item_unit, t.item_labels, w_items, ip, ix, label)
            st["grids_from"] = "household_labels"
        else:
            k = min(part_count(float(uw[base].sum()), lo_g, hi_g), len(base))
            model = Model(_sub_units(ip, ix, lens, base, base.tolist()), size=uw[base], min_size=lo_g or None,
                          max_size=hi_g, count=k, objective=Objective(iterations=t.iterations, restarts=t.restarts),
                          previous=_previous_labels(t, "grids", base, rep))
            res = model.solve(seed=village_seed(t.seed, t.code + "/grids"))
            for uid, part in res.assignment.items():
                label[int(cast(int, uid))] = f"P{int(part):04d}"
            st["grids_from"] = "partition"
            st["grid_violations"] = [v.rule for v in res.violations]
    clock.lap("grids")
    # 3. grids: one per base label, exclusive per site
    labels = sorted(set(label.tolist()))
    members = {lab: np.flatnonzero(label == lab) for lab in labels}
    gpoly = {lab: _union(units[members[lab]]) for lab in labels}
    ghh = {lab: float(uw[members[lab]].sum()) for lab in labels}
    base_labels = [lab for lab in labels if not lab.startswith("Z")]
    site_labels = [lab for lab in labels if lab.startswith("Z")]
    code_of = _grid_codes(t, base_labels, site_labels, gpoly, site_idx)
    # 4. points
    point_of_unit = np.full(n, -1, dtype=np.int64)
    point_rows: list[tuple[str, NDArray[np.int64]]] = []
    if t.points:
        engine: list[tuple[str, int]] = []
        for lab in labels:
            lo_x = 0.0 if lab.startswith("Z") else lo_p
            k = min(part_count(ghh[lab], lo_x, hi_p), len(members[lab]))
            if k <= 1:
                point_rows.append((code_of[lab], members[lab]))
            else:
                engine.append((lab, k))
        if engine:
            order = np.concatenate([members[lab] for lab, _ in engine])
            groups = [code_of[lab] for lab, _ in engine for _ in range(len(members[lab]))]
            model = Model(_sub_units(ip, ix, lens, order, order.tolist()), size=uw[order],
                          min_size={code_of[lab]: lo_p for lab, _ in engine if not lab.startswith("Z")} or None,
                          max_size=hi_p, group=groups, count={code_of[lab]: k for lab, k in engine},
                          objective=Objective(iterations=t.iterations, restarts=t.restarts),
                          previous=_previous_labels(t, "points", order, rep))
            res = model.solve(seed=village_seed(t.seed, t.code + "/points"))
            by_part: dict[int, list[int]] = {}
            for uid, part in res.assignment.items():
                by_part.setdefault(int(part), []).append(int(cast(int, uid)))
            for part in sorted(by_part):
                point_rows.append((res.parts[part].group, np.asarray(sorted(by_part[part]), dtype=np.int64)))
            st["point_violations"] = [v.rule for v in res.violations]
        point_rows.sort(key=lambda r: (r[0], int(r[1][0])))
    else:
        for lab in labels:
            point_rows.append((code_of[lab], members[lab]))
    clock.lap("points")
    # geometry and codes of points
    ppoly = [_union(units[m]) for _, m in point_rows]
    pcodes = _point_codes(t, point_rows, ppoly)
    for p, (_, m) in enumerate(point_rows):
        point_of_unit[m] = p
    parent_total = {code_of[lab]: ghh[lab] for lab in labels}
    for p, ((parent_code, m), poly) in enumerate(zip(point_rows, ppoly, strict=True)):
        h = float(uw[m].sum())
        is_z = "Z" in parent_code[len(t.code):]
        out.points.append({"code": pcodes[p], "parent": parent_code, "village": t.code, "households": int(h),
                           "n_units": len(m), "kind": "exclusive" if is_z else t.kind,
                           "within_bounds": _within(h, 0.0 if is_z else lo_p, hi_p),
                           "grid_below_min": (not is_z) and parent_total[parent_code] < lo_p,
                           "geometry": poly})
    npts = {c: 0 for c in code_of.values()}
    for parent_code, _ in point_rows:
        npts[parent_code] += 1
    for lab in base_labels:
        h = ghh[lab]
        gi = int(lab[1:]) if lab.startswith("G") else None
        extra = dict(t.group_extra[gi]) if gi is not None and t.group_extra else {}
        out.grids.append({
            **extra,
            "code": code_of[lab],
            "name": t.group_names[gi] if gi is not None else None,
            "parent": t.code, "households": int(h), "kind": t.kind,
            "source": "villager_group" if gi is not None else st.get("grids_from", "partition"),
            "group": t.group_codes[gi] if gi is not None else (lab[1:] if lab.startswith("H") else None),
            "n_points": npts[code_of[lab]], "within_bounds": _within(h, lo_g, hi_g), "geometry": gpoly[lab]})
    for lab in site_labels:
        si = site_idx[int(lab[1:])]
        out.exclusive.append({
            "code": code_of[lab], "name": t.site_names[si], "parent": t.code, "category": t.site_categories[si],
            "households": int(ghh[lab]), "kind": "exclusive", "source_id": t.site_ids[si],
            "n_points": npts[code_of[lab]], "geometry": gpoly[lab]})
    out.item_point = [pcodes[point_of_unit[u]] if u >= 0 else None for u in item_unit.tolist()]
    for rows in (out.grids, out.exclusive, out.points):  # code order is reading order
        rows.sort(key=lambda r: r["code"])
    clock.lap("geometry")
    check_village(t, out)
    clock.lap("check")
    return out


def _label_by_households(base: NDArray[np.int64], item_unit: NDArray[np.int64], item_labels: Sequence[str | None],
                         w: NDArray[np.int64], ip: NDArray[np.int64], ix: NDArray[np.int64],
                         label: NDArray[np.object_]) -> None:
    """Grids from household group labels: each unit takes its households' majority label;
    units without labelled households take their neighbours' (breadth first, deterministic)."""
    votes: dict[int, dict[str, int]] = {}
    inbase = set(base.tolist())
    for j, u in enumerate(item_unit.tolist()):
        lab = item_labels[j]
        if u in inbase and lab is not None:
            votes.setdefault(u, {})
            votes[u][lab] = votes[u].get(lab, 0) + int(w[j])
    for u, tally in votes.items():
        label[u] = "H" + max(sorted(tally), key=lambda k: tally[k])
    frontier = sorted(votes)
    while frontier:
        nxt: list[int] = []
        for u in frontier:
            for k in range(int(ip[u]), int(ip[u + 1])):
                v = int(ix[k])
                if v in inbase and not label[v]:
                    label[v] = label[u]
                    nxt.append(v)
        frontier = sorted(nxt)
    for u in base.tolist():  # an island with no labelled household anywhere
        if not label[u]:
            label[u] = "H?"


def _metric_xy(polys: Sequence[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    arr = np.asarray(polys, dtype=object)
    c = shapely.centroid(arr)
    return shapely.get_x(c), shapely.get_y(c), shapely.area(arr)


def _grid_codes(t: VillageTask, base_labels: list[str], site_labels: list[str], gpoly: dict[str, Any],
                site_idx: list[int]) -> dict[str, str]:
    """Village code + 2 digits for grids (a group's own code when it has that form), ``Z`` + 2 for sites."""
    out: dict[str, str] = {}
    prev = t.previous or {}
    if base_labels:
        keep: list[str | None] = []
        for lab in base_labels:
            gc = t.group_codes[int(lab[1:])] if lab.startswith("G") else (lab[1:] if lab.startswith("H") else None)
            ok = gc is not None and gc.startswith(t.code) and len(gc) == len(t.code) + 2 and gc[-2:].isdigit()
            keep.append(gc if ok else None)
        polys = [gpoly[lab] for lab in base_labels]
        if "grids" in prev and not all(keep):
            matched = _codes.match_previous(polys, *prev["grids"])
            keep = [k if k is not None else m for k, m in zip(keep, matched, strict=True)]
        x, y, a = _metric_xy(polys)
        for lab, c in zip(base_labels, _codes.number(t.code, x, y, a, width=2, keep=keep), strict=True):
            out[lab] = c
    if site_labels:
        polys = [gpoly[lab] for lab in site_labels]
        keep2: list[str | None] = [None] * len(polys)
        if "exclusive" in prev:
            keep2 = _codes.match_previous(polys, *prev["exclusive"])
        x, y, a = _metric_xy(polys)
        for lab, c in zip(site_labels, _codes.number(t.code, x, y, a, width=2, letter="Z", keep=keep2), strict=True):
            out[lab] = c
    return out


def _point_codes(t: VillageTask, rows: list[tuple[str, NDArray[np.int64]]], polys: list[Any]) -> list[str]:
    """Grid code + 3 digits, in reading order within each grid (previous codes kept where matched)."""
    codes: list[str] = [""] * len(rows)
    by_parent: dict[str, list[int]] = {}
    for i, (pc, _) in enumerate(rows):
        by_parent.setdefault(pc, []).append(i)
    prev = (t.previous or {}).get("points")
    for pc, idx in by_parent.items():
        sub = [polys[i] for i in idx]
        keep: list[str | None] | None = None
        if prev is not None:
            mask = [c.startswith(pc) for c in prev[1]]
            if any(mask):
                og = np.asarray(prev[0], dtype=object)[np.asarray(mask)]
                oc = [c for c, m in zip(prev[1], mask, strict=True) if m]
                keep = _codes.match_previous(sub, og, oc)
        x, y, a = _metric_xy(sub)
        for i, c in zip(idx, _codes.number(pc, x, y, a, width=3, keep=keep), strict=True):
            codes[i] = c
    return codes


def check_village(t: VillageTask, out: VillageOut) -> None:
    """Grids + exclusive grids tile the village; points tile their grid; every item in one point.

    Raises
    ------
    GeometryError
        Naming the village and what does not hold.
    """
    tol = t.tolerance_m2
    area = float(shapely.area(t.geometry))
    level2 = [r["geometry"] for r in out.grids] + [r["geometry"] for r in out.exclusive]
    total = float(np.sum(shapely.area(np.asarray(level2, dtype=object)))) if level2 else 0.0
    union = _union(np.asarray(level2, dtype=object)) if level2 else shapely.Polygon()
    sym = float(shapely.area(shapely.symmetric_difference(union, t.geometry)))
    overlap = max(total - float(shapely.area(union)), 0.0)
    out.stats["tiling"] = {"village_m2": round(area, 3), "grids_m2": round(total, 3), "gap_m2": round(sym, 6),
                           "overlap_m2": round(overlap, 6)}
    if sym > tol or overlap > tol:
        raise GeometryError(f"village {t.code} {t.name}: grids do not tile the village "
                            f"(gap {sym:.3f} m², overlap {overlap:.3f} m², tolerance {tol:g} m²)")
    pt_area: dict[str, float] = {}
    for r in out.points:
        pt_area[r["parent"]] = pt_area.get(r["parent"], 0.0) + float(shapely.area(r["geometry"]))
    worst = 0.0
    for r in out.grids + out.exclusive:
        worst = max(worst, abs(pt_area.get(r["code"], 0.0) - float(shapely.area(r["geometry"]))))
    out.stats["tiling"]["points_worst_m2"] = round(worst, 6)
    if worst > tol:
        raise GeometryError(f"village {t.code} {t.name}: grid points do not tile their grid "
                            f"(worst difference {worst:.3f} m², tolerance {tol:g} m²)")
    orphans = sum(c is None for c in out.item_point)
    if orphans:
        raise GeometryError(f"village {t.code} {t.name}: {orphans} building(s)/household(s) in no grid point")
    if len(t.items):
        by_code = {r["code"]: r["geometry"] for r in out.points}
        mine = np.asarray([by_code[c] for c in out.item_point], dtype=object)
        bad = int(np.sum(~shapely.intersects(t.items, mine)))
        if bad:
            raise GeometryError(f"village {t.code} {t.name}: {bad} building(s)/household(s) lie outside the grid "
                                "point they were assigned to")
        out.stats["items"] = len(t.items)
        if shapely.get_type_id(t.items[0]) in (3, 6):
            ia = shapely.area(t.items)
            inside = shapely.area(shapely.intersection(t.items, mine))
            out.stats["items_cut"] = int(np.sum(inside < 0.999 * ia - 1e-9))
        else:
            out.stats["items_cut"] = 0
