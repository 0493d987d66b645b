"""Topology of road lines before they become a graph: crossings noded by level, components linked.

Private to :mod:`gridgeo.patrol.network`, which documents the rules; this module holds the geometry.

* :func:`levels` reads ``layer``, ``bridge`` and ``tunnel`` into one level per line (OSM's convention:
  ``layer`` when given, else ``+1`` on a bridge and ``-1`` in a tunnel, else 0).
* :func:`node_crossings` inserts a shared vertex wherever two lines of the same level cross or touch,
  so that the graph gets a junction there; lines on different levels cross without one.
* :func:`insert_vertices` is the one place that puts a point into a line as a vertex (used by the
  crossings and by :func:`join_dangling`, which joins way ends that stop just short of another way).
* :func:`component_links` finds, for a graph in pieces, the straight links of a minimum spanning forest
  over its components (Kruskal on the Delaunay edges of all vertices, lines segmentized every 25 m: the
  closest pair of points across any cut of a point set is a Delaunay edge, so this is the forest the
  complete graph of components gives on those points).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import Delaunay, QhullError

FArray = NDArray[np.float64]
IArray = NDArray[np.int64]

_KEY_SCALE = 1000.0  # as in network.py: vertices are matched on coordinates rounded to 1 mm
_NOT = {"no", "false", "0", ""}
#: Metres: lines are segmentized to this spacing before the component forest is chosen on vertices.
LINK_SPACING_M = 25.0
_MIN_LINK_M = 0.01  # metres: parts this close that the noding left apart lie on different levels


def keys(xy: FArray) -> NDArray[np.int64]:
    """Integer keys of coordinates rounded to 1 mm."""
    return np.round(xy * _KEY_SCALE).astype(np.int64)


def levels(frame: pd.DataFrame) -> NDArray[np.float64]:
    """Level of each row: ``layer`` if it parses as a number, else +1 on a bridge, -1 in a tunnel, else 0."""
    n = len(frame)
    out = np.zeros(n)
    for col, value in (("bridge", 1.0), ("tunnel", -1.0)):
        if col in frame.columns:
            flag = frame[col].astype("object").map(lambda v: not pd.isna(v) and str(v).strip().lower() not in _NOT)
            out[flag.to_numpy(bool)] = value
    if "layer" in frame.columns:
        layer = pd.to_numeric(frame["layer"], errors="coerce").to_numpy(float)
        given = np.isfinite(layer)
        out[given] = layer[given]
    return out


def insert_vertices(lines: NDArray[np.object_], inserts: dict[int, list[FArray]]) -> NDArray[np.object_]:
    """Copy of ``lines`` with each point of ``inserts[i]`` made a vertex of line ``i`` (where it lies on it).

    A point within 1 mm of an existing vertex (or of another point inserted) is not inserted again: the
    vertex already is the junction. Offsets along the lines come from one vectorised
    ``line_locate_point``; each line's vertices and new points are then merged in order of offset.
    """
    out = lines.copy()
    if not inserts:
        return out
    idx = np.fromiter((w for w, qs in inserts.items() for _ in qs), dtype=np.int64)
    pts = np.array([q for qs in inserts.values() for q in qs], dtype=float).reshape(-1, 2)
    at = np.asarray(shapely.line_locate_point(lines[idx], shapely.points(pts)), dtype=float)
    order = np.argsort(idx, kind="stable")
    idx, pts, at = idx[order], pts[order], at[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(idx)) + 1, len(idx)]
    for s, e in itertools.pairwise(bounds.tolist()):
        w = int(idx[s])
        c = shapely.get_coordinates(lines[w])
        cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(c, axis=0).T))]
        q, t = pts[s:e], at[s:e]
        seen = {tuple(k) for k in keys(c).tolist()}
        new = np.zeros(len(q), dtype=bool)
        for n, k in enumerate(keys(q).tolist()):
            if tuple(k) not in seen:
                seen.add(tuple(k))
                new[n] = True
        if not new.any():
            continue
        allc = np.r_[c, q[new]]
        o = np.lexsort((np.r_[np.zeros(len(c)), np.ones(int(new.sum()))], np.r_[cum, t[new]]))
        out[w] = shapely.LineString(allc[o])
    return out


def join_dangling(
    lines: NDArray[np.object_], direction: NDArray[np.int8], highway: NDArray[np.object_], tol: float
) -> tuple[NDArray[np.object_], NDArray[np.int8], NDArray[np.object_], int]:
    """Join way ends that stop within ``tol`` metres of another way (:mod:`gridgeo.patrol.network` says why).

    Returns the lines (the ways joined to get a vertex where the end meets them), their directions and
    classes with one ``connector`` line per gap wider than 1 mm appended, and how many ends were joined.
    """
    if tol <= 0 or len(lines) < 2:
        return lines, direction, highway, 0
    xy, li = shapely.get_coordinates(lines, return_index=True)
    _, inv, cnt = np.unique(keys(xy), axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    starts = np.r_[0, np.flatnonzero(li[1:] != li[:-1]) + 1]
    ends = np.r_[starts[1:] - 1, len(li) - 1]
    occ = np.unique(np.r_[starts, ends])
    dangling = occ[cnt[inv[occ]] == 1]
    if len(dangling) == 0:
        return lines, direction, highway, 0
    pts = shapely.points(xy[dangling])
    tree = shapely.STRtree(lines)
    pi, wi = tree.query(pts, predicate="dwithin", distance=tol)
    other = wi != li[dangling[pi]]
    pi, wi = pi[other], wi[other]
    if len(pi) == 0:
        return lines, direction, highway, 0
    d = shapely.distance(pts[pi], lines[wi])
    order = np.lexsort((wi, d, pi))
    pi, wi, d = pi[order], wi[order], d[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    pi, wi = pi[first], wi[first]
    inserts: dict[int, list[FArray]] = {}
    connectors: list[shapely.LineString] = []
    for p, w in zip(pi, wi, strict=True):
        at = float(shapely.line_locate_point(lines[w], pts[p]))
        q = np.asarray(shapely.get_coordinates(shapely.line_interpolate_point(lines[w], at)))[0]
        pxy = xy[dangling[p]]
        if float(np.hypot(*(q - pxy))) < 1.0 / _KEY_SCALE:
            q = pxy
        else:
            connectors.append(shapely.LineString([pxy, q]))
        inserts.setdefault(int(w), []).append(q)
    out = insert_vertices(lines, inserts)
    n_conn = len(connectors)
    if n_conn:
        out = np.r_[out, np.array(connectors, dtype=object)]
        direction = np.r_[direction, np.zeros(n_conn, dtype=np.int8)]
        highway = np.r_[highway, np.full(n_conn, "connector", dtype=object)]
    return out, direction, highway, len(pi)


def _crossing_points(geom: shapely.Geometry) -> FArray:
    """Points of an intersection: its points, and the ends of shared stretches."""
    parts = shapely.get_parts(geom)
    pts = [shapely.get_coordinates(p) if shapely.get_type_id(p) == 0
           else shapely.get_coordinates(shapely.boundary(p)) for p in parts]
    pts = [p for p in pts if len(p)]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def node_crossings(lines: NDArray[np.object_], level: NDArray[np.float64]) -> tuple[NDArray[np.object_], int]:
    """Make every crossing or touch of two same-level lines a shared vertex; the number of points made."""
    if len(lines) < 2:
        return lines, 0
    tree = shapely.STRtree(lines)
    a, b = tree.query(lines, predicate="intersects")
    keep = (a < b) & (level[a] == level[b])
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return lines, 0
    inter = shapely.intersection(lines[a], lines[b])
    inserts: dict[int, list[FArray]] = {}
    made = 0
    for i, j, g in zip(a, b, inter, strict=True):
        for q in _crossing_points(g):
            inserts.setdefault(int(i), []).append(q)
            inserts.setdefault(int(j), []).append(q)
            made += 1
    return insert_vertices(lines, inserts), made


def _component_pairs(xy: FArray, comp: IArray, n_comp: int) -> list[tuple[int, int, FArray, FArray]]:
    """The minimum spanning forest over components on vertex-to-vertex distances: ``(ca, cb, pa, pb)``."""
    _, first = np.unique(np.c_[keys(xy), comp], axis=0, return_index=True)
    pts, pc = xy[first], comp[first]
    if len(pts) >= 3:
        try:
            s = Delaunay(pts).simplices
            ea = np.r_[s[:, 0], s[:, 1], s[:, 2]]
            eb = np.r_[s[:, 1], s[:, 2], s[:, 0]]
        except QhullError:  # all points on one line: neighbours along it
            order = np.lexsort((pts[:, 1], pts[:, 0]))
            ea, eb = order[:-1], order[1:]
    else:
        ea, eb = np.array([0]), np.array([len(pts) - 1])
    swap = pc[ea] > pc[eb]
    ea, eb = np.where(swap, eb, ea), np.where(swap, ea, eb)
    w = np.hypot(*(pts[ea] - pts[eb]).T)
    cross = (pc[ea] != pc[eb]) & (w >= _MIN_LINK_M)  # coincident points of two parts: levels apart
    ea, eb, w = ea[cross], eb[cross], w[cross]
    frame = pd.DataFrame({"a": pc[ea], "b": pc[eb], "w": w, "pa": ea, "pb": eb})
    frame = frame.sort_values(["a", "b", "w"], kind="stable").drop_duplicates(["a", "b"])
    g = coo_matrix((frame["w"], (frame["a"], frame["b"])), shape=(n_comp, n_comp)).tocsr()
    forest = minimum_spanning_tree(g).tocoo()
    best = {(int(a), int(b)): (int(i), int(j)) for a, b, i, j in
            zip(frame["a"], frame["b"], frame["pa"], frame["pb"], strict=True)}
    out: list[tuple[int, int, FArray, FArray]] = []
    for k in np.lexsort((forest.col, forest.row)):
        ca, cb = int(forest.row[k]), int(forest.col[k])
        i, j = best[(ca, cb)]
        out.append((ca, cb, pts[i], pts[j]))
    return out


def component_links(
    geoms: NDArray[np.object_], edge_comp: IArray, n_comp: int
) -> list[tuple[int, FArray, int, FArray]]:
    """The straight links of a minimum spanning forest over components.

    Each link is ``(edge_a, point_a, edge_b, point_b)``: the edges it starts and ends on and the points
    on them. Pairs of components come from the forest on vertex-to-vertex distances, the lines
    segmentized to :data:`LINK_SPACING_M` first so that a long straight street offers points along it.
    Each link then runs from the forest's vertex on one side to the nearest point of the other
    component's lines (whichever side gives the shorter link): from a lane's dead end to the street
    it stops short of. A link is never shorter than 1 cm: parts that touch without being joined are on
    different levels (a bridge over a road is not linked to it where they cross).
    """
    if n_comp < 2:
        return []
    dense = shapely.segmentize(geoms, LINK_SPACING_M)
    xy, li = shapely.get_coordinates(dense, return_index=True)
    pairs = _component_pairs(xy, edge_comp[li], n_comp)
    members = [np.flatnonzero(edge_comp == c) for c in range(n_comp)]
    multi = [shapely.multilinestrings(geoms[m]) for m in members]
    links: list[tuple[int, FArray, int, FArray]] = []
    for ca, cb, pa, pb in pairs:
        to_a = shapely.get_coordinates(shapely.shortest_line(shapely.Point(pb), multi[ca]))[1]
        to_b = shapely.get_coordinates(shapely.shortest_line(shapely.Point(pa), multi[cb]))[1]
        da, db = float(np.hypot(*(to_a - pb))), float(np.hypot(*(to_b - pa)))
        if min(da, db) < _MIN_LINK_M:  # a crossing of two levels: keep the vertex pair
            p, q = pa, pb
        elif da <= db:
            p, q = to_a, pb
        else:
            p, q = pa, to_b
        ea = members[ca][int(np.argmin(shapely.distance(geoms[members[ca]], shapely.Point(p))))]
        eb = members[cb][int(np.argmin(shapely.distance(geoms[members[cb]], shapely.Point(q))))]
        links.append((int(ea), p, int(eb), q))
    return links
