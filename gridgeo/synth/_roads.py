"""Roads of every OSM class, from provincial roads between seats to hamlet lanes.

primary/secondary: a minimum spanning tree of the Delaunay graph of the township seats (trunk
edges primary) plus some short extra edges, so the network has loops; tertiary/unclassified: a
spanning tree of the village centres of each township rooted at its seat; track: a spanning tree
of the hamlets of each village; residential/path: hamlet lanes, mountain paths, and a street grid
per town clipped to its communities. :func:`draw_roads` runs the classes in that order (each
draws from the generator) and clips the lot to the county.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree
from scipy.spatial import Delaunay, QhullError

from gridgeo.synth._arrays import group_starts, ragged_lines
from gridgeo.synth._buildings import Buildings
from gridgeo.synth._constants import STREET, Array, GArray, IArray
from gridgeo.synth._lines import Lines, clip_lines, wiggly
from gridgeo.synth._names import STREET_STEMS
from gridgeo.synth._tiling import Tiling


@dataclass
class _Network:
    """Road pieces collected class after class: geometries with their ``highway`` and ``name``."""

    geoms: list[GArray] = field(default_factory=list)
    highway: list[NDArray[np.object_]] = field(default_factory=list)
    name: list[NDArray[np.object_]] = field(default_factory=list)

    def add(self, geoms: GArray, highway: NDArray[np.object_], name: NDArray[np.object_]) -> None:
        self.geoms.append(geoms)
        self.highway.append(highway)
        self.name.append(name)


def _tree_edges(n: int, i: IArray, j: IArray, w: Array) -> tuple[IArray, IArray]:
    """Minimum spanning forest over the given candidate edges."""
    if len(i) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    g = coo_matrix((np.maximum(w, 1e-6), (i, j)), shape=(n, n)).tocsr()
    t = minimum_spanning_tree(g).tocoo()
    order = np.lexsort((t.col, t.row))
    return t.row[order].astype(np.int64), t.col[order].astype(np.int64)


def _subtree_sizes(n: int, a: IArray, b: IArray, roots: IArray) -> tuple[IArray, IArray]:
    """Orient tree edges away from ``roots``; return (child of each edge, subtree size per node)."""
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr()
    g = g + g.T
    parent = np.full(n, -1, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    for r in roots:
        order, pred = breadth_first_order(g, int(r), directed=False, return_predecessors=True)
        for node in order[::-1]:
            p = pred[node]
            if p >= 0:
                size[p] += size[node]
                parent[node] = p
    child = np.where(parent[b] == a, b, a)
    return child, size


def _pairs_within(labels: IArray, members_of: IArray | None = None) -> tuple[list[IArray], list[IArray]]:
    """All pairs of items that share a label (the candidate edges of a per-label spanning tree).

    ``members_of`` maps positions in ``labels`` to the item ids returned (default: the positions).
    """
    order = np.argsort(labels, kind="stable")
    starts = np.r_[group_starts(labels[order]), len(order)]
    pi_list: list[IArray] = []
    pj_list: list[IArray] = []
    for k in range(len(starts) - 1):
        members = order[starts[k] : starts[k + 1]]
        if members_of is not None:
            members = members_of[members]
        if len(members) < 2:
            continue
        a_, b_ = np.triu_indices(len(members), 1)
        pi_list.append(members[a_])
        pj_list.append(members[b_])
    return pi_list, pj_list


# ---------------------------------------------------------------- primary / secondary


def _seat_pairs(seat_xy: Array) -> tuple[IArray, IArray]:
    """Candidate edges between seats: the Delaunay graph (all pairs if the seats are collinear)."""
    t = len(seat_xy)
    if t >= 3:
        try:
            tri = Delaunay(seat_xy)
            s = tri.simplices
            ei = np.r_[s[:, 0], s[:, 1], s[:, 2]]
            ej = np.r_[s[:, 1], s[:, 2], s[:, 0]]
        except QhullError:
            ei, ej = np.triu_indices(t, 1)
    else:
        ei, ej = np.array([0]), np.array([1])
    lo, hi = np.minimum(ei, ej), np.maximum(ei, ej)
    pairs = np.unique(np.c_[lo, hi], axis=0)
    return pairs[:, 0], pairs[:, 1]


def _trunk_roads(rng: np.random.Generator, seat_xy: Array, net: _Network) -> None:
    """MST of the Delaunay graph of seats (trunk edges primary), plus a few short extra edges."""
    t = len(seat_xy)
    lo, hi = _seat_pairs(seat_xy)
    length = np.hypot(*(seat_xy[lo] - seat_xy[hi]).T)
    a, b = _tree_edges(t, lo, hi, length)
    child, size = _subtree_sizes(t, a, b, np.array([0]))
    primary = size[child] >= max(2, math.ceil(0.12 * t))
    in_tree = np.zeros(len(lo), bool)
    tree_keys = set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))
    for k, (p, q) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        in_tree[k] = (p, q) in tree_keys
    mst_len = np.hypot(*(seat_xy[a] - seat_xy[b]).T)
    extra = (~in_tree) & (length <= 1.25 * float(np.median(mst_len))) & (rng.uniform(size=len(lo)) < 0.35)
    ea, eb = np.r_[a, lo[extra]], np.r_[b, hi[extra]]
    cls = np.r_[np.where(primary, "primary", "secondary"), np.full(int(extra.sum()), "secondary")].astype(object)
    geoms = wiggly(rng, seat_xy[ea], seat_xy[eb], 250.0, 0.05)
    n_p = int((cls == "primary").sum())
    ref = np.empty(len(cls), dtype=object)
    ref[cls == "primary"] = [f"S{201 + i}" for i in range(n_p)]
    ref[cls == "secondary"] = [f"X{i + 1:03d}" for i in range(len(cls) - n_p)]
    net.add(geoms, cls, ref)


# ---------------------------------------------------------------- tertiary / unclassified, tracks


def _village_roads(rng: np.random.Generator, tiling: Tiling, net: _Network) -> None:
    """Per-township MST of village centres, rooted at the seat."""
    vc, v_town = tiling.villages.centre, tiling.villages.town
    t, nv = len(tiling.townships.seat), len(vc)
    pi_list, pj_list = _pairs_within(v_town)
    if not pi_list:
        return
    pi, pj = np.concatenate(pi_list), np.concatenate(pj_list)
    # the tree also runs through towns (their main roads), so every village reaches its seat
    a, b = _tree_edges(nv, pi, pj, np.hypot(*(vc[pi] - vc[pj]).T))
    child, size = _subtree_sizes(nv, a, b, np.arange(t))
    cls = np.where(size[child] >= 3, "tertiary", "unclassified").astype(object)
    geoms = wiggly(rng, vc[a], vc[b], 150.0, 0.06)
    ref = np.full(len(cls), None, dtype=object)
    n_t = int((cls == "tertiary").sum())
    ref[cls == "tertiary"] = [f"Y{i + 1:03d}" for i in range(n_t)]
    net.add(geoms, cls, ref)


def _tracks(rng: np.random.Generator, tiling: Tiling, rural_groups: IArray, net: _Network) -> None:
    """A spanning tree over the hamlets of each village (the main hamlet is the centre)."""
    gxy, g_village = tiling.groups.xy, tiling.groups.village
    ti, tj = _pairs_within(g_village[rural_groups], rural_groups)
    if not ti:
        return
    pi_, pj_ = np.concatenate(ti), np.concatenate(tj)
    a, b = _tree_edges(len(gxy), pi_, pj_, np.hypot(*(gxy[pi_] - gxy[pj_]).T))
    net.add(
        wiggly(rng, gxy[a], gxy[b], 100.0, 0.05), np.full(len(a), "track", dtype=object),
        np.full(len(a), None, dtype=object),
    )


# ---------------------------------------------------------------- hamlet lanes and mountain paths


def _hamlet_lanes(gxy: Array, bld: Buildings, net: _Network) -> None:
    """One lane per hamlet through its centre, as long as its houses reach along it."""
    rural_b = np.flatnonzero(~bld.urban & (bld.group >= 0))
    if not len(rural_b):
        return
    ng = len(gxy)
    ext = np.zeros(ng)
    np.maximum.at(ext, bld.group[rural_b], np.abs(bld.along[rural_b]))
    cnt = np.bincount(bld.group[rural_b], minlength=ng)
    # lane direction: from the hamlet's first house through the hamlet centre
    first = np.full(ng, -1, dtype=np.int64)
    first[bld.group[rural_b][::-1]] = rural_b[::-1]
    has = np.flatnonzero(cnt > 0)
    ang = bld.angle[first[has]]
    e = ext[has] + 12.0
    d = np.c_[np.cos(ang), np.sin(ang)] * e[:, None]
    # through the hamlet centre as a vertex, where the tracks and mountain paths end
    net.add(
        ragged_lines(np.concatenate([gxy[has] - d, gxy[has], gxy[has] + d], axis=1).reshape(-1, 2),
                     np.arange(0, 3 * len(has) + 1, 3)),
        np.where(cnt[has] >= 30, "residential", "path").astype(object),
        np.full(len(has), None, dtype=object),
    )


def _mountain_paths(rng: np.random.Generator, tiling: Tiling, rural_groups: IArray, net: _Network) -> None:
    """Paths from some hamlets into the hills, kept inside the village."""
    gxy, g_village, v_poly = tiling.groups.xy, tiling.groups.village, tiling.villages.poly
    pick = rural_groups[rng.uniform(size=len(rural_groups)) < 0.35]
    if not len(pick):
        return
    ang = rng.uniform(0, 2 * np.pi, len(pick))
    ln = rng.uniform(400.0, 1500.0, len(pick))
    end = gxy[pick] + np.c_[np.cos(ang), np.sin(ang)] * ln[:, None]
    paths = wiggly(rng, gxy[pick], end, 60.0, 0.08)
    clipped = shapely.intersection(paths, v_poly[g_village[pick]])
    parts, pidx = shapely.get_parts(clipped, return_index=True)
    # keep the piece that leaves the hamlet (a path cut by the village border stops there)
    start = shapely.get_coordinates(shapely.get_point(parts, 0))
    at_home = np.hypot(*(start - gxy[pick][pidx]).T) < 1e-6
    parts = parts[(shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 50.0) & at_home]
    net.add(parts, np.full(len(parts), "path", dtype=object), np.full(len(parts), None, dtype=object))


# ---------------------------------------------------------------- urban street grids


def _street_grids(rng: np.random.Generator, tiling: Tiling, street_theta: Array, net: _Network) -> None:
    """A street grid per town (orientation and origin at the seat), clipped to each community."""
    seat_xy, v_town, v_poly = tiling.townships.seat, tiling.villages.town, tiling.villages.poly
    urban_v = np.flatnonzero(tiling.villages.urban)
    if not len(urban_v):
        return
    perm = np.stack([rng.permutation(len(STREET_STEMS)) for _ in range(len(seat_xy))])
    town = v_town[urban_v]
    th = street_theta[town]
    c, s = np.cos(th), np.sin(th)
    circ = shapely.minimum_bounding_circle(v_poly[urban_v])
    cc = shapely.get_coordinates(shapely.centroid(circ))
    rad = shapely.minimum_bounding_radius(v_poly[urban_v]) + STREET
    rel = cc - seat_xy[town]
    u0 = rel[:, 0] * c + rel[:, 1] * s
    w0 = -rel[:, 0] * s + rel[:, 1] * c
    nl = 2 * np.ceil(rad / STREET).astype(np.int64) + 1
    owner = np.repeat(np.arange(len(urban_v)), 2 * nl)
    k = np.arange(len(owner)) - np.repeat(np.r_[0, np.cumsum(2 * nl)[:-1]], 2 * nl)
    axis, idx = np.divmod(k, nl[owner])
    lo = np.where(axis == 0, np.floor((w0 - rad) / STREET)[owner], np.floor((u0 - rad) / STREET)[owner])
    line_no = (lo + idx).astype(np.int64)
    pos = line_no * STREET
    # axis 0: constant w (runs along u, "路"); axis 1: constant u (runs along w, "街")
    ua = np.where(axis == 0, u0[owner] - rad[owner], pos)
    ub = np.where(axis == 0, u0[owner] + rad[owner], pos)
    wa = np.where(axis == 0, pos, w0[owner] - rad[owner])
    wb = np.where(axis == 0, pos, w0[owner] + rad[owner])
    co, so = c[owner], s[owner]
    o = seat_xy[town[owner]]
    pa = np.c_[o[:, 0] + ua * co - wa * so, o[:, 1] + ua * so + wa * co]
    pb = np.c_[o[:, 0] + ub * co - wb * so, o[:, 1] + ub * so + wb * co]
    lines = ragged_lines(np.concatenate([pa, pb], axis=1).reshape(-1, 2), np.arange(0, 2 * len(owner) + 1, 2))
    clipped = shapely.intersection(lines, v_poly[urban_v[owner]])
    parts, pidx = shapely.get_parts(clipped, return_index=True)
    good = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 20.0)
    parts, pidx = parts[good], pidx[good]
    stem = np.array(STREET_STEMS, dtype=object)[perm[town[owner[pidx]], line_no[pidx] % len(STREET_STEMS)]]
    suffix = np.where(axis[pidx] == 0, "路", "街").astype(object)
    net.add(parts, np.full(len(parts), "residential", dtype=object), stem + suffix)


# ---------------------------------------------------------------- the driver


def draw_roads(rng: np.random.Generator, tiling: Tiling, bld: Buildings, *, street_theta: Array) -> Lines:
    """Every road class in draw order (see the module docstring), clipped to the county."""
    net = _Network()
    if len(tiling.townships.seat) >= 2:
        _trunk_roads(rng, tiling.townships.seat, net)
    _village_roads(rng, tiling, net)
    rural_groups = np.flatnonzero(~tiling.villages.urban[tiling.groups.village])
    if len(rural_groups):
        _tracks(rng, tiling, rural_groups, net)
    _hamlet_lanes(tiling.groups.xy, bld, net)
    if len(rural_groups):
        _mountain_paths(rng, tiling, rural_groups, net)
    _street_grids(rng, tiling, street_theta, net)
    g = np.concatenate(net.geoms) if net.geoms else np.empty(0, dtype=object)
    attrs = {"highway": np.concatenate(net.highway), "name": np.concatenate(net.name)}
    g, attrs = clip_lines(g, attrs, tiling.county)
    return Lines(g, attrs)
