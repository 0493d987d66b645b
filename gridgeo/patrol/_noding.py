"""Topology of road lines before they become a graph: crossings noded by level, components linked.

Private to :mod:`gridgeo.patrol.network`, which documents the rules; this module holds the geometry.

* :func:`levels` reads ``layer``, ``bridge`` and ``tunnel`` into one level per line (OSM's convention:
  ``layer`` when given, else ``+1`` on a bridge and ``-1`` in a tunnel, else 0).
* :func:`node_crossings` inserts a shared vertex wherever two lines of the same level cross or touch,
  so that the graph gets a junction there; lines on different levels cross without one.
* :func:`insert_vertices` is the one place that puts a point into a line as a vertex (used by the
  crossings and by the joins of dangling ends).
* :func:`component_links` finds, for a graph in pieces, the straight links of a minimum spanning forest
  over its components (Kruskal on the Delaunay edges of all vertices, lines segmentized every 25 m: the
  closest pair of points across any cut of a point set is a Delaunay edge, so this is the forest the
  complete graph of components gives on those points).
"""

from __future__ import annotations

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
            flag = frame[col].astype("object").map(lambda v: v is not None and v == v and str(v).strip().lower()
                                                   not in _NOT)
            out[flag.to_numpy(bool)] = value
    if "layer" in frame.columns:
        layer = pd.to_numeric(frame["layer"], errors="coerce").to_numpy(float)
        given = np.isfinite(layer)
        out[given] = layer[given]
    return out


def insert_vertices(lines: NDArray[np.object_], inserts: dict[int, list[FArray]]) -> NDArray[np.object_]:
    """Copy of ``lines`` with each point of ``inserts[i]`` made a vertex of line ``i`` (where it lies on it).

    A point within 1 mm of an existing vertex is not inserted again (the vertex already is the junction).
    """
    out = lines.copy()
    for w, qs in inserts.items():
        c = shapely.get_coordinates(lines[w])
        for q in qs:
            if (np.abs(keys(c) - keys(q[None, :])).max(axis=1) == 0).any():
                continue
            line = shapely.LineString(c)
            at = float(shapely.line_locate_point(line, shapely.Point(q)))
            cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(c, axis=0).T))]
            k = int(np.searchsorted(cum, at, side="right"))
            k = min(max(k, 1), len(c) - 1)
            c = np.vstack([c[:k], q, c[k:]])
        out[w] = shapely.LineString(c)
    return out


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
