"""Micro-grids (微网格) and lanes (巷): the optional levels below a village's grids.

Why two levels, both below the grid: counties that go below the grid do it in
two ways. Yanggao counts 956 micro-grids under 521 base grids, each a building
or courtyard cluster of a few dozen households led by a building chief
(楼栋长); Jiahe's 巷长制 gives every lane -- the households along one street
segment or alley -- a lane chief (巷长). Neither nests in the other, nor in
the grid points, so each is its own tiling of every grid (base grids and
exclusive grids alike), and every building or household point is in exactly
one micro-grid and one lane (checked by :func:`check_sublevels`).

Micro-grids (:func:`_micro`)
    Units heavier than the micro maximum are split between buildings first
    (:func:`gridgeo.county.split.split_heavy`, for this level only: the grid
    points keep their units), then the partition engine splits every grid into
    contiguous parts within ``[bounds.KIND] micro`` (households), as it does
    grid points. Code: grid code + ``M`` + 2 digits, west to east, north to south.
Lanes (:func:`_lanes`)
    The road lines near the village (the barrier roads, named where the road
    layer has a ``name``) are cut at their junctions into street segments.
    Each building goes to the nearest segment that runs within
    :data:`LANE_REACH_M` of its grid (a grid with no road near it is one
    lane); a segment whose households exceed the lane maximum is cut along the
    street into consecutive stretches (:func:`_along`). Street faces facing
    several segments are split between their buildings by segment
    (:func:`gridgeo.county.split.split_labelled`), so both sides of an alley in
    one grid form one lane; pieces holding no building, then lanes below the
    lane minimum, are merged into the lane of the same grid they share most
    border with. Code: grid code + ``L`` + 2 digits; name: the street's name.

A household's micro-grid and lane are those of the piece that holds it, so it
lies in both by construction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo._geom import containing, polygonal_parts
from gridgeo.county import codes as _codes
from gridgeo.county._faces import _edge_neighbours, _FaceGroups, _merge_small
from gridgeo.county._parts import Adjacency, metric_xy, part_count, sub_units, union
from gridgeo.county.assign import unit_adjacency
from gridgeo.county.rules import CountyRules, LevelBounds, within_bounds
from gridgeo.county.split import _with_vertices, split_heavy, split_labelled
from gridgeo.errors import GeometryError
from gridgeo.partition import Model, Objective

if TYPE_CHECKING:
    from gridgeo.county.village import VillageOut, VillageTask

log = logging.getLogger(__name__)

__all__ = [
    "ITEM_ATTR",
    "LANE_REACH_M",
    "SUB_LEVELS",
    "GridRef",
    "SubLevels",
    "atoms_frame",
    "build_sublevels",
    "check_sublevels",
    "street_segments",
    "sub_lines",
    "sub_summary",
    "village_sub",
]

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]
FArray = NDArray[np.float64]

#: the layers these levels write, and the VillageOut attribute of each
SUB_LEVELS: tuple[str, ...] = ("micro_grids", "lanes")
#: a street segment is a grid's when it runs within this many metres of the grid: the streets on its edge
#: (grids are bounded by streets) and inside it, not the next block's
LANE_REACH_M = 30.0


@dataclass(frozen=True)
class SubLevels:
    """What a village's micro-grids and lanes need: which are drawn, their bounds, the road lines near it."""

    micro: bool
    lanes: bool
    micro_bounds: tuple[float, float]
    lane_bounds: tuple[float, float]
    roads: GArray = field(default_factory=lambda: np.zeros(0, dtype=object))  # metric CRS
    road_names: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class GridRef:
    """One grid or exclusive grid of the village: its code, units (ascending), geometry and kind."""

    code: str
    members: IArray
    geometry: Any
    is_site: bool


@dataclass(frozen=True)
class _Atoms:
    """The village's units as a level cuts them: pieces, the unit each came from, each item's piece."""

    geoms: GArray
    parent: IArray
    item_piece: IArray


def village_sub(rules: CountyRules, kind: str, geometry: Any, *, bounds: LevelBounds | None = None, roads: GArray,
                names: list[str | None], tree: shapely.STRtree | None) -> SubLevels | None:
    """A village's :class:`SubLevels` (the roads near it from ``tree`` over ``roads``), or None if neither is drawn;
    ``bounds``: the village's own (its overrides applied), else its kind's."""
    micro, lanes = rules.sub_levels_for(kind)
    if not (micro or lanes):
        return None
    b = bounds if bounds is not None else rules.bounds_for(kind)
    near = np.sort(tree.query(geometry, predicate="dwithin", distance=LANE_REACH_M)) \
        if lanes and tree is not None else np.zeros(0, dtype=np.int64)
    return SubLevels(micro=micro, lanes=lanes, micro_bounds=b.micro, lane_bounds=b.lane, roads=roads[near],
                     road_names=tuple(names[i] for i in near.tolist()))


def build_sublevels(t: VillageTask, units: GArray, item_unit: IArray, grids: list[GridRef],
                    out: VillageOut) -> None:
    """Fill ``out.micro_grids``/``out.lanes`` and each item's micro-grid and lane (module notes)."""
    s = t.sub
    if s is None:
        return
    grid_of = np.full(len(units), -1, dtype=np.int64)
    for g, ref in enumerate(grids):
        grid_of[ref.members] = g
    whole = _Atoms(units, np.arange(len(units), dtype=np.int64), item_unit)
    levels: dict[str, tuple[_Atoms, list[str]]] = {}
    if s.micro:
        a, part = _micro(t, s, whole, grid_of, grids)
        codes = _records(t, a, part, grid_of=grid_of, grids=grids, out=out, level="micro_grids")
        levels["micro_grids"] = (a, [codes[p] for p in part.tolist()])
    if s.lanes:
        a, part = _lanes(t, s, whole, grid_of, grids=grids, st=out.stats)
        codes = _records(t, a, part, grid_of=grid_of, grids=grids, out=out, level="lanes")
        levels["lanes"] = (a, [codes[p] for p in part.tolist()])
    out.atoms = _atom_rows(units, levels, out, [grids[g].code for g in grid_of.tolist()])


# --------------------------------------------------------------------------------------
# micro-grids
# --------------------------------------------------------------------------------------
def _micro(t: VillageTask, s: SubLevels, u: _Atoms, grid_of: IArray, grids: list[GridRef]) -> tuple[_Atoms, IArray]:
    """Units split to the micro maximum, and each piece's micro-grid (numbered per village)."""
    w = np.asarray(t.weights, dtype=np.int64)
    lo, hi = s.micro_bounds
    load = np.bincount(u.item_piece[u.item_piece >= 0], weights=w[u.item_piece >= 0], minlength=len(u.geoms))
    a = u
    if len(t.items) and float(load.max(initial=0.0)) > hi:
        geoms, parent, ip = split_heavy(u.geoms, t.items, w, u.item_piece, max_weight=hi)
        a = _Atoms(geoms, parent, ip)
    size = np.bincount(a.item_piece[a.item_piece >= 0], weights=w[a.item_piece >= 0],
                       minlength=len(a.geoms)).astype(float)
    gof = grid_of[a.parent]
    part = np.full(len(a.geoms), -1, dtype=np.int64)
    engine: list[tuple[int, int]] = []
    for g, ref in enumerate(grids):
        mine = np.flatnonzero(gof == g)
        k = min(part_count(float(size[mine].sum()), 0.0 if ref.is_site else lo, hi), len(mine))
        if k <= 1:
            part[mine] = part.max(initial=-1) + 1
        else:
            engine.append((g, k))
    if engine:
        _engine_parts(t, a, size, gof, engine=engine, part=part, grids=grids)
    return a, part


def _engine_parts(t: VillageTask, a: _Atoms, size: FArray, gof: IArray, *, engine: list[tuple[int, int]],
                  part: IArray, grids: list[GridRef]) -> None:
    """One engine run over every grid with more than one micro-grid (``engine``: grid, count); fills ``part``."""
    from gridgeo.county.village import village_seed

    assert t.sub is not None
    lo, hi = t.sub.micro_bounds
    ip, ix, lens = unit_adjacency(a.geoms)
    order = np.concatenate([np.flatnonzero(gof == g) for g, _ in engine])
    codes = [grids[g].code for g, _ in engine]
    model = Model(sub_units(Adjacency(ip, ix, lens), order), size=size[order],
                  min_size={grids[g].code: lo for g, _ in engine if not grids[g].is_site} or None,
                  max_size=hi, group=[grids[int(g)].code for g in gof[order].tolist()],
                  count={c: k for c, (_, k) in zip(codes, engine, strict=True)},
                  objective=Objective(iterations=t.iterations, restarts=t.restarts))
    res = model.solve(seed=village_seed(t.seed, t.code + "/micro"))
    base = int(part.max(initial=-1)) + 1
    for uid, p in res.assignment.items():
        part[int(cast(int, uid))] = base + int(p)


# --------------------------------------------------------------------------------------
# lanes
# --------------------------------------------------------------------------------------
def street_segments(roads: GArray, names: tuple[str | None, ...]) -> tuple[GArray, list[str | None]]:
    """The road lines cut at every junction and crossing, and the name of the road each segment lies on."""
    lines = roads[np.isin(shapely.get_type_id(roads), (1, 5))] if len(roads) else roads
    if not len(lines):
        return np.zeros(0, dtype=object), []
    merged = shapely.line_merge(shapely.union_all(lines))  # noded at crossings, merged through degree-2 vertices
    segs = np.asarray([g for g in shapely.get_parts(merged) if shapely.length(g) > 0], dtype=object)
    if not len(segs):
        return segs, []
    keep = np.flatnonzero(np.isin(shapely.get_type_id(roads), (1, 5)))
    mid = shapely.line_interpolate_point(segs, 0.5, normalized=True)
    near = shapely.STRtree(lines).query_nearest(mid, all_matches=False)[1]
    return segs, [names[int(keep[j])] if len(names) else None for j in near.tolist()]


def _lanes(t: VillageTask, s: SubLevels, u: _Atoms, grid_of: IArray, *, grids: list[GridRef],
           st: dict[str, Any]) -> tuple[_Atoms, IArray]:
    """Each item's lane label, faces split between labels, then empty pieces and small lanes merged."""
    segs, seg_names = street_segments(s.roads, s.road_names)
    label, street = _item_lanes(t, s, u, grid_of, grids=grids, segs=segs, st=st)
    geoms, parent, ip = split_labelled(u.geoms, t.items, u.item_piece, label) if len(t.items) else (
        u.geoms, u.parent, u.item_piece)
    a = _Atoms(geoms, parent, ip)
    st["lane_faces_uncut"] = _uncut(u.item_piece, label, parent)
    gof = grid_of[a.parent]
    w = np.asarray(t.weights, dtype=float)
    part = np.full(len(geoms), -1, dtype=np.int64)
    names: dict[int, str | None] = {}
    absorbed: dict[int, int] = {}
    merged = 0
    for g in range(len(grids)):
        mine = np.flatnonzero(gof == g)
        groups, n_merged = _grid_lanes(mine, a, label, w, s.lane_bounds)
        merged += n_merged
        for grp, took in groups:
            p = int(part.max(initial=-1)) + 1
            part[grp] = p
            names[p] = _lane_name(grp, a, w, street=street, seg_names=seg_names)
            absorbed[p] = took
    st["lanes_merged"] = merged
    st["lane_names"] = names
    st["lane_absorbed"] = absorbed
    return a, part


def _uncut(item_unit: IArray, label: IArray, parent: IArray) -> int:
    """Faces whose buildings face several lanes but that could not be cut between them (one lane takes all)."""
    ok = item_unit >= 0
    pairs = np.unique(np.stack([item_unit[ok], label[ok]], axis=1), axis=0) if ok.any() else np.zeros((0, 2))
    mixed = np.flatnonzero(np.bincount(pairs[:, 0].astype(np.int64), minlength=len(parent)) > 1) \
        if len(pairs) else np.zeros(0, dtype=np.int64)
    pieces = np.bincount(parent, minlength=int(parent.max(initial=-1)) + 1)
    return int(np.sum(pieces[mixed] < 2))


def _item_lanes(t: VillageTask, s: SubLevels, u: _Atoms, grid_of: IArray, *, grids: list[GridRef],
                segs: GArray, st: dict[str, Any]) -> tuple[IArray, IArray]:
    """Each item's lane label (unique per grid, segment and stretch) and its segment (-1: none near its grid)."""
    n = len(t.items)
    label = np.full(n, -1, dtype=np.int64)
    street = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return label, street
    rep = shapely.point_on_surface(t.items)
    igrid = np.where(u.item_piece >= 0, grid_of[np.maximum(u.item_piece, 0)], -1)
    tree = shapely.STRtree(segs) if len(segs) else None
    w = np.asarray(t.weights, dtype=float)
    nxt = split = 0
    for g, ref in enumerate(grids):
        mine = np.flatnonzero(igrid == g)
        if not len(mine):
            continue
        cand = np.sort(tree.query(ref.geometry, predicate="dwithin", distance=LANE_REACH_M)) \
            if tree is not None else np.zeros(0, dtype=np.int64)
        if len(cand):
            d = shapely.distance(rep[mine][:, None], segs[cand][None, :])
            street[mine] = cand[np.argmin(d, axis=1)]
        for seg in np.unique(street[mine]).tolist():
            on = mine[street[mine] == seg]
            stretch = _along(rep[on], w[on], segs[seg] if seg >= 0 else None, s.lane_bounds)
            label[on] = nxt + stretch
            nxt += int(stretch.max()) + 1
            split += int(stretch.max() > 0)
    st["lanes_split"] = split
    return label, street


def _along(pts: GArray, w: FArray, seg: Any, bounds: tuple[float, float]) -> IArray:
    """Stretch of each item along its street: consecutive runs within the lane bounds (0 for all if it fits)."""
    total = float(w.sum())
    lo, hi = bounds
    if total <= hi or len(pts) < 2:
        return np.zeros(len(pts), dtype=np.int64)
    k = min(part_count(total, lo, hi), len(pts))
    if seg is not None:
        pos = shapely.line_locate_point(seg, pts)
    else:  # no street near: along the longer side of the houses' extent
        xy = shapely.get_coordinates(pts)
        span = xy.max(axis=0) - xy.min(axis=0)
        pos = xy[:, 0] if span[0] >= span[1] else xy[:, 1]
    order = np.lexsort((np.arange(len(pts)), pos))
    mid = np.cumsum(w[order]) - w[order] / 2.0
    out = np.empty(len(pts), dtype=np.int64)
    out[order] = np.minimum((mid * k / max(total, 1e-9)).astype(np.int64), k - 1)
    _, out = np.unique(out, return_inverse=True)  # no empty stretch numbers
    return out.astype(np.int64)


def _grid_lanes(mine: IArray, a: _Atoms, label: IArray, w: FArray, bounds: tuple[float, float]) -> tuple[
        list[tuple[IArray, int]], int]:
    """One grid's pieces grouped into lanes: by their items' label, empty pieces and small lanes merged.

    Returns the lanes (piece indices, and how many small lanes each took in) and how many lanes below the
    minimum were merged away into a neighbour.
    """
    if not len(mine):
        return [], 0
    lo, hi = bounds
    pos = np.full(len(a.geoms), -1, dtype=np.int64)
    pos[mine] = np.arange(len(mine))
    items = np.flatnonzero((a.item_piece >= 0) & (pos[np.maximum(a.item_piece, 0)] >= 0))
    ipos = pos[a.item_piece[items]]
    tally: dict[int, dict[int, float]] = {}
    for p, lab, h in zip(ipos.tolist(), label[items].tolist(), w[items].tolist(), strict=True):
        tally.setdefault(p, {})
        tally[p][lab] = tally[p].get(lab, 0.0) + h
    # a piece's lane: its items' label with the most households (a face that could not be cut)
    lab_of = np.full(len(mine), -1, dtype=np.int64)
    for p, by in tally.items():
        lab_of[p] = max(by, key=lambda k: (by[k], -k))
    groups = [np.flatnonzero(lab_of == v) for v in np.unique(lab_of[lab_of >= 0]).tolist()]
    groups += [np.asarray([p], dtype=np.int64) for p in np.flatnonzero(lab_of < 0).tolist()]
    hh = np.bincount(ipos, weights=w[items], minlength=len(mine))
    n_items = np.bincount(ipos, minlength=len(mine)).astype(float)
    polys = np.empty(len(groups), dtype=object)
    polys[:] = [union(a.geoms[mine[gr]]) for gr in groups]
    polys, where = _merge_small(polys, np.asarray([n_items[gr].sum() for gr in groups], dtype=float), 1.0, "lanes")
    g_hh = np.bincount(where, weights=np.asarray([hh[gr].sum() for gr in groups]), minlength=len(polys)).astype(float)
    merged, where2 = _merge_lanes(polys, g_hh, lo, hi) if lo > 0 else (polys, np.arange(len(polys), dtype=np.int64))
    final = where2[where]
    lanes = [(np.sort(mine[np.concatenate([groups[i] for i in np.flatnonzero(final == k).tolist()])]),
              int(np.sum(where2 == k)) - 1) for k in range(len(merged))]
    return [ln for ln in lanes if len(ln[0])], len(polys) - len(merged)


class _LaneGroups(_FaceGroups):
    """:class:`~gridgeo.county._faces._FaceGroups` that merge a small lane into a neighbour it fits beside.

    Among the neighbours whose lane stays within the maximum with it, the longest shared border wins; only
    where none does is the maximum given up (the longest border then).
    """

    def __init__(self, size: FArray, nbrs: dict[int, dict[int, float]], hi: float) -> None:
        super().__init__(size, nbrs)
        self.hi = hi

    def grow(self, s: int, threshold: float) -> None:
        g = self.find(s)
        while self.size[g] < threshold:
            around = self._around(g)
            if not around:
                break
            h = min(around, key=lambda r: (self.size[g] + self.size[r] > self.hi, -around[r],
                                           min(self.members.get(r, [r]))))
            self.root[g] = h
            self.members[h] = self.members.get(h, [h]) + self.members.pop(g, [g])
            self.size[h] += self.size.pop(g)
            g = h


def _merge_lanes(polys: GArray, hh: FArray, lo: float, hi: float) -> tuple[GArray, IArray]:
    """Lanes below ``lo`` households merged into a neighbouring lane of the grid (smallest first), as
    :func:`~gridgeo.county._faces._merge_small` merges faces, preferring a neighbour that stays within ``hi``."""
    small = np.flatnonzero(hh < lo)
    if len(small) == 0 or len(polys) < 2:
        return polys, np.arange(len(polys), dtype=np.int64)
    groups = _LaneGroups(hh, _edge_neighbours(polys, small), hi)
    for k in sorted(small.tolist(), key=lambda k: (hh[k], k)):
        groups.grow(k, lo)
    return groups.merged(polys)


def _lane_name(grp: IArray, a: _Atoms, w: FArray, *, street: IArray, seg_names: list[str | None]) -> str | None:
    """The name of the street most of the lane's households live along, if that road has one."""
    inside = np.isin(a.item_piece, grp)
    segs = street[inside]
    named = [(float(w[inside][segs == s].sum()), seg_names[s]) for s in np.unique(segs).tolist()
             if s >= 0 and seg_names[s]]
    return max(named, key=lambda x: (x[0], str(x[1])))[1] if named else None


# --------------------------------------------------------------------------------------
# records and the check
# --------------------------------------------------------------------------------------
#: the code letter of each level (grid code + letter + 2 digits) and its VillageOut item attribute
_LETTER = {"micro_grids": "M", "lanes": "L"}
ITEM_ATTR = {"micro_grids": "item_micro", "lanes": "item_lane"}
#: the column naming a household's (or an atom's) unit of each level
COLUMN = {"micro_grids": "micro_grid", "lanes": "lane"}


def _records(t: VillageTask, a: _Atoms, part: IArray, *, grid_of: IArray, grids: list[GridRef],
             out: VillageOut, level: str) -> list[str]:
    """The level's rows (code order) and each item's code, from each piece's part; returns each part's code."""
    assert t.sub is not None
    lo, hi = t.sub.micro_bounds if level == "micro_grids" else t.sub.lane_bounds
    w = np.asarray(t.weights, dtype=float)
    ok = a.item_piece >= 0
    n = int(part.max(initial=-1)) + 1
    hh = np.bincount(part[a.item_piece[ok]], weights=w[ok], minlength=n)
    n_items = np.bincount(part[a.item_piece[ok]], minlength=n)
    members = [np.flatnonzero(part == p) for p in range(n)]
    gidx = [int(grid_of[a.parent[m[0]]]) for m in members]
    grid_hh = np.bincount(gidx, weights=hh, minlength=len(grids)) if n else np.zeros(len(grids))
    polys = [union(a.geoms[m]) for m in members]
    codes = [""] * n
    for g, ref in enumerate(grids):
        mine = [p for p in range(n) if gidx[p] == g]
        if mine:
            x, y, ar = metric_xy([polys[p] for p in mine])
            for p, c in zip(mine, _codes.number(ref.code, x, y, ar, width=2, letter=_LETTER[level]), strict=True):
                codes[p] = c
    names = out.stats.pop("lane_names", {}) if level == "lanes" else {}
    absorbed = out.stats.pop("lane_absorbed", {}) if level == "lanes" else {}
    rows = [{"code": codes[p], "parent": grids[gidx[p]].code, "village": t.code, "households": int(hh[p]),
             "n_items": int(n_items[p]), "kind": "exclusive" if grids[gidx[p]].is_site else t.kind,
             "within_bounds": within_bounds(float(hh[p]), (0.0 if grids[gidx[p]].is_site else lo, hi)),
             "grid_below_min": (not grids[gidx[p]].is_site) and float(grid_hh[gidx[p]]) < lo,
             **({"street": names.get(p), "merged": absorbed.get(p, 0)} if level == "lanes" else {}),
             "geometry": polys[p]} for p in range(n)]
    if level == "lanes":
        _lane_names(rows)
    rows.sort(key=lambda r: r["code"])
    setattr(out, level, rows)
    setattr(out, ITEM_ATTR[level], [codes[part[i]] if i >= 0 else None for i in a.item_piece.tolist()])
    return codes


# --------------------------------------------------------------------------------------
# atoms: the common refinement the output is cleaned on
# --------------------------------------------------------------------------------------
def _atom_rows(units: GArray, levels: dict[str, tuple[_Atoms, list[str]]], out: VillageOut,
               unit_grid: list[str]) -> list[dict[str, Any]]:
    """The village's atoms: every unit, or its pieces where a level split it, cut by the other level.

    Every atom gets the vertices of its unit's pieces at every level that lie on
    its edge (each level's split put new vertices into the neighbouring units of
    its own copy), so the atoms of neighbouring units share their vertices.

    Why: points, micro-grids and lanes each tile the grid but none nests in
    another, so the written layers can only nest exactly (the cleaning moves
    vertices) if they are made of common pieces. Each atom carries its grid
    point, micro-grid and lane; :func:`gridgeo.county.coverage.clean_levels`
    cleans the atoms as the finest pieces and unites each level from them.
    """
    pcode = [r["code"] for r in out.points]
    where = containing(np.asarray([r["geometry"] for r in out.points], dtype=object),
                       shapely.point_on_surface(units), boundary=False)
    by_level = {lvl: _by_parent(a.parent, len(units)) for lvl, (a, _) in levels.items()}
    rows: list[dict[str, Any]] = []
    for i in range(len(units)):
        base = {"point": pcode[where[i]] if where[i] >= 0 else None, "grid": unit_grid[i]}
        pieces: list[tuple[Any, dict[str, str]]] = [(units[i], {})]
        for lvl, (a, codes) in levels.items():
            mine = by_level[lvl][i]
            if len(mine) == 1:
                pieces = [(g, {**k, COLUMN[lvl]: codes[int(mine[0])]}) for g, k in pieces]
            else:
                pieces = _cut(pieces, a.geoms[mine], [codes[j] for j in mine.tolist()], COLUMN[lvl])
        xy = np.unique(np.concatenate([shapely.get_coordinates(a.geoms[by_level[lvl][i]])
                                       for lvl, (a, _) in levels.items()]), axis=0)
        rows += [{**base, **k, "geometry": _with_vertices(g, xy) or g} for g, k in _without_slivers(pieces)]
    return rows


#: an atom narrower than this on average (m), or smaller (m²), is a sliver of two levels' cuts meeting: it
#: joins its neighbour (it would collapse in the output's rounding, ~1 cm)
SLIVER_WIDTH_M = 1e-3
SLIVER_M2 = 1e-2


def _without_slivers(pieces: list[tuple[Any, dict[str, str]]]) -> list[tuple[Any, dict[str, str]]]:
    """One unit's atoms, slivers merged into the atom they share most border with (its codes kept)."""
    if len(pieces) < 2:
        return pieces
    geoms = np.empty(len(pieces), dtype=object)
    geoms[:] = [g for g, _ in pieces]
    area, length = shapely.area(geoms), shapely.length(geoms)
    thin = (area < SLIVER_M2) | (2.0 * area < SLIVER_WIDTH_M * length)
    if not thin.any() or thin.all():
        return pieces
    merged, where = _merge_small(geoms, np.where(thin, 0.0, 1.0), 0.5, "atoms")
    keys: dict[int, dict[str, str]] = {}
    for i in np.flatnonzero(~thin).tolist():  # a merged atom keeps the codes of its real member
        keys.setdefault(int(where[i]), pieces[i][1])
    return [(g, keys.get(k, pieces[int(np.flatnonzero(where == k)[0])][1])) for k, g in enumerate(merged.tolist())]


def _by_parent(parent: IArray, n: int) -> list[IArray]:
    order = np.argsort(parent, kind="stable")
    cuts = np.searchsorted(parent[order], np.arange(n + 1))
    return [order[cuts[i]:cuts[i + 1]] for i in range(n)]


def _cut(pieces: list[tuple[Any, dict[str, str]]], parts: GArray, codes: list[str],
         col: str) -> list[tuple[Any, dict[str, str]]]:
    """Every piece intersected with every part of one level (polygonal, non-empty results only)."""
    out: list[tuple[Any, dict[str, str]]] = []
    for g, k in pieces:
        if len(pieces) == 1:  # the unit itself: its parts are the pieces
            out += [(p, {**k, col: c}) for p, c in zip(parts.tolist(), codes, strict=True)]
            continue
        hit = np.flatnonzero(shapely.intersects(g, parts))
        for j in hit.tolist():
            for piece in polygonal_parts(shapely.intersection(g, parts[j])):
                if shapely.area(piece) > 0:
                    out.append((piece, {**k, col: codes[j]}))
    return out


def _lane_names(rows: list[dict[str, Any]]) -> None:
    """A lane's name: its street's, numbered (1), (2), ... in code order where a grid has that street twice."""
    seen: dict[tuple[str, str], int] = {}
    for r in sorted(rows, key=lambda r: r["code"]):
        s = r["street"]
        if s:
            seen[(r["parent"], s)] = seen.get((r["parent"], s), 0) + 1
    count: dict[tuple[str, str], int] = {}
    for r in sorted(rows, key=lambda r: r["code"]):
        s = r["street"]
        if not s:
            r["name"] = None
            continue
        key = (r["parent"], s)
        count[key] = count.get(key, 0) + 1
        r["name"] = s if seen[key] == 1 else f"{s}({count[key]})"


def check_sublevels(t: VillageTask, out: VillageOut) -> None:
    """Micro-grids and lanes each tile their grid (to ``tolerance_m2``); every item lies in its own one.

    Raises
    ------
    GeometryError
        Naming the village, the level and what does not hold.
    """
    s = t.sub
    if s is None:
        return
    parents = {r["code"]: r["geometry"] for r in out.grids + out.exclusive}
    for level, on in (("micro_grids", s.micro), ("lanes", s.lanes)):
        if on:
            _check_level(t, out, level, parents)


def _check_level(t: VillageTask, out: VillageOut, level: str, parents: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = getattr(out, level)
    by_parent: dict[str, list[Any]] = {}
    for r in rows:
        by_parent.setdefault(r["parent"], []).append(r["geometry"])
    worst_gap = worst_overlap = 0.0
    for code, geom in parents.items():
        mine = np.asarray(by_parent.get(code, []), dtype=object)
        covered = union(mine) if len(mine) else shapely.Polygon()
        worst_gap = max(worst_gap, float(shapely.area(shapely.symmetric_difference(covered, geom))))
        worst_overlap = max(worst_overlap, float(np.sum(shapely.area(mine))) - float(shapely.area(covered)))
    out.stats.setdefault("tiling", {})[level] = {"gap_m2": round(worst_gap, 6), "overlap_m2": round(worst_overlap, 6)}
    if worst_gap > t.tolerance_m2 or worst_overlap > t.tolerance_m2 or set(by_parent) - set(parents):
        raise GeometryError(f"village {t.code} {t.name}: {level} do not tile their grid (worst gap {worst_gap:.3f} "
                            f"m², overlap {worst_overlap:.3f} m², tolerance {t.tolerance_m2:g} m²)")
    item_codes: list[str | None] = getattr(out, ITEM_ATTR[level])
    if len(item_codes) != len(t.items) or any(c is None for c in item_codes):
        raise GeometryError(f"village {t.code} {t.name}: {sum(c is None for c in item_codes)} building(s)/"
                            f"household(s) in no {level} unit")
    if len(t.items):
        by_code = {r["code"]: r["geometry"] for r in rows}
        mine = np.asarray([by_code[c] for c in item_codes], dtype=object)
        bad = int(np.sum(~shapely.intersects(mine, t.items)))
        if bad:
            raise GeometryError(f"village {t.code} {t.name}: {bad} building(s)/household(s) lie outside the "
                                f"{level} unit they were assigned to")


def sub_summary(layers: Mapping[str, Any], outs: list[VillageOut]) -> dict[str, Any]:
    """The report's section per level below the grids: count, share inside bounds, tiling, merges and splits.

    ``base_within_bounds`` leaves out the exclusive grids' units (whose minimum is 0, as for points);
    ``lanes_merged`` counts lanes below the minimum merged into a neighbour, ``lanes_split`` the street
    segments whose households were cut into stretches along the street for exceeding the maximum.
    """
    out: dict[str, Any] = {}
    for level in SUB_LEVELS:
        g = layers.get(level)
        if g is None:
            continue
        base = g[g["kind"] != "exclusive"]
        tiles = [o.stats.get("tiling", {}).get(level, {}) for o in outs]
        sec: dict[str, Any] = {
            "n": len(g), "within_bounds": round(float(g["within_bounds"].astype(bool).mean()), 4) if len(g) else 1.0,
            "base_within_bounds": round(float(base["within_bounds"].astype(bool).mean()), 4) if len(base) else 1.0,
            "within_bounds_where_possible": _share(g["within_bounds"][~g["grid_below_min"].astype(bool)]),
            "in_grid_below_min": int(g["grid_below_min"].astype(bool).sum()),
            "households": int(g["households"].sum()),
            "worst_gap_m2": max((t.get("gap_m2", 0.0) for t in tiles), default=0.0),
            "worst_overlap_m2": max((t.get("overlap_m2", 0.0) for t in tiles), default=0.0)}
        if level == "lanes":
            sec["merged"] = sum(int(o.stats.get("lanes_merged", 0)) for o in outs)
            sec["split_segments"] = sum(int(o.stats.get("lanes_split", 0)) for o in outs)
            sec["faces_uncut"] = sum(int(o.stats.get("lane_faces_uncut", 0)) for o in outs)
            sec["named"] = round(float(g["name"].notna().mean()), 4) if len(g) else 1.0
        out[level] = sec
    return out


def _share(flags: Any) -> float:
    return round(float(flags.astype(bool).mean()), 4) if len(flags) else 1.0


def sub_lines(bounds: Mapping[str, Any], counts: Mapping[str, int]) -> list[str]:
    """The terminal report's lines for micro-grids and lanes (none when neither is drawn)."""
    lines = []
    for level, label in (("micro_grids", "micro"), ("lanes", "lanes")):
        b = bounds.get(level)
        if b is None:
            continue
        extra = (f"; {b['merged']} small lanes merged, {b['split_segments']} long streets cut, "
                 f"{100 * b['named']:.0f} % named") if level == "lanes" else ""
        lines.append(f"{label:<9} {counts.get(level, 0):>7}   {100 * b['within_bounds']:.1f} %  "
                     f"({100 * b['within_bounds_where_possible']:.1f} % of those whose grid holds the minimum; "
                     f"{b['in_grid_below_min']} sit in a grid smaller than that){extra}")
    return lines


def atoms_frame(outs: list[VillageOut], crs: Any) -> gpd.GeoDataFrame | None:
    """The villages' atoms (output CRS, as the workers sent them) as one frame for the cleaning; None if none."""
    rows = [dict(r, village=o.code) for o in outs for r in o.atoms]
    if not rows:
        return None
    cols = ["point", "micro_grid", "lane", "grid", "village"]
    data = {k: [r.get(k) for r in rows] for k in cols}
    return gpd.GeoDataFrame(data, geometry=[r["geometry"] for r in rows], crs=crs)
