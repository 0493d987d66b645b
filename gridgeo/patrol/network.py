"""Street networks for patrol planning: build, snap stops, shortest-path matrices, route geometry.

A grid worker walks (or, on request, drives) along streets, so the distance
between two stops is a shortest path on the street network, not a straight
line. This module turns OSM ``highway`` ways (from an OSM file through
:func:`gridgeo.data.osm.read_osm`, or any line layer with a ``highway`` column) into
a graph in metres and answers the questions the planner asks.

How the graph is made, and why
------------------------------
* **OSM files** (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``) go through osmnx
  (:mod:`gridgeo.patrol._osm_network`): the ways the mode may use (below) are filtered by pyosmium
  into a temporary OSM XML, read by ``osmnx.graph_from_xml`` (all components kept), simplified,
  projected to the metric CRS and consolidated with ``consolidate_intersections`` at
  :data:`CONSOLIDATE_M` (walk 10 m, drive 15 m). OSM topology joins streets only at shared nodes,
  and osmnx splits every consolidation cluster into its connected parts, so a bridge or tunnel never
  merges with the road it crosses.
* **Road layers** (any line layer with a ``highway`` column, such as a build's ``roads``) carry no
  topology, so they are **noded**: wherever two lines cross or touch without a shared vertex, the
  crossing becomes a junction, unless the lines are on different levels (``layer`` when given,
  else +1 for ``bridge``, -1 for ``tunnel``, as OSM reads them).
* **Which ways.** ``walk`` (the default) keeps every class a person can walk
  on (:data:`WALK_HIGHWAYS`: footways, paths, steps, residential streets ...
  up to primary roads) and leaves out motorways, trunk roads and ways tagged
  ``access=private|no`` or ``foot=no`` (``foot=yes`` overrides ``access``).
  ``drive`` keeps the classes a car uses (:data:`DRIVE_HIGHWAYS`), respects
  ``oneway`` (``yes``/``1``/``true``, ``-1``/``reverse``; motorways are one-way
  unless tagged otherwise) and leaves out ``access=private|no``. OSM files also
  leave out ``area=yes`` (squares drawn as closed ways, as osmnx's filters do).
* **Nodes** of a road layer are the ends of lines and every vertex shared by
  two lines (or visited twice by one), matched on their metric coordinates
  rounded to 1 mm; vertices in between stay in the edge geometry.
* **Near misses.** Hand-drawn or generated data sometimes stops a street a metre short of another
  one. Every *dangling* way end within ``tolerance`` metres (default :data:`DEFAULT_TOLERANCE` = 2 m,
  small enough not to join streets that merely pass each other across a lane) of another way is
  joined to it with a short ``connector`` edge.
* **No component is dropped.** A network in pieces (an extract cut at its edge, hamlets whose lanes
  nobody mapped) keeps every piece: the pieces are joined by straight **off-network** edges
  (``highway`` = :data:`OFFNET`), the links of a minimum spanning forest over the components (each
  the shortest straight link between two components; Kruskal on the Delaunay edges of all vertices).
  They are walking legs across fields or yards, flagged so that a plan reports every one it uses
  longer than :data:`OFF_NETWORK_REPORT_M` (50 m: beyond a yard or a gap in the mapping). Stops never
  snap to them. Driving networks first keep, in each piece, its largest strongly connected part (a
  one-way fragment that can be entered but not left would trap a route); what that leaves out is
  logged and in :attr:`Network.dropped`.
* **Lengths** are in metres in a metric CRS chosen once by
  :func:`gridgeo.data.crs.metric_crs`.

Stops are snapped to the nearest point of the nearest street of any component (an STRtree
query over the non-off-network edges), and the edge is split *virtually*: each shortest-path query adds the
snapped stops as temporary nodes on their edges, so a stop in the middle of a
300 m street is reached at its place, not at a street end. Distances between
stops come from one :func:`scipy.sparse.csgraph.dijkstra` call with
``indices`` set to the stops (all sources at once, in C), never pair by pair;
its predecessors give the paths, turned back into street geometry.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely.ops import substring

from gridgeo.data.crs import metric_crs
from gridgeo.errors import InputError, SchemaError, UsageError
from gridgeo.patrol import _noding
from gridgeo.patrol._osm_network import CONSOLIDATE_M, osm_lines

log = logging.getLogger(__name__)

__all__ = [
    "CONSOLIDATE_M",
    "DEFAULT_TOLERANCE",
    "DRIVE_HIGHWAYS",
    "OFFNET",
    "OFF_NETWORK_REPORT_M",
    "WALK_HIGHWAYS",
    "Network",
    "Snap",
    "StopPaths",
    "build_network",
    "load_network",
]

#: Highway classes of the walking network.
WALK_HIGHWAYS: frozenset[str] = frozenset({
    "footway", "path", "steps", "pedestrian", "living_street", "residential", "service", "unclassified",
    "tertiary", "tertiary_link", "secondary", "secondary_link", "primary", "primary_link", "track",
    "cycleway", "bridleway", "road", "corridor", "crossing", "sidewalk",
})
#: Highway classes of the driving network.
DRIVE_HIGHWAYS: frozenset[str] = frozenset({
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
    "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "living_street",
    "service", "road",
})
#: Metres: dangling way ends this close to another way are joined to it.
DEFAULT_TOLERANCE = 2.0
#: ``highway`` of the straight walking links joining the network's components.
OFFNET = "offnet"
#: Metres: a plan reports every off-network leg it walks longer than this.
OFF_NETWORK_REPORT_M = 50.0

_MODES = ("walk", "drive")
_NO = {"no", "private"}
_FOOT_YES = {"yes", "designated", "permissive", "official"}
_FORWARD = {"yes", "1", "true"}
_BACKWARD = {"-1", "reverse"}
_BOTH = {"no", "0", "false"}
_KEY_SCALE = 1000.0  # vertices are matched on coordinates rounded to 1 mm
_MIN_ARC = 1e-6  # metres; csgraph must not see a zero weight as "no arc"

FArray = NDArray[np.float64]
IArray = NDArray[np.int64]


@dataclass(frozen=True)
class Snap:
    """Where stops meet the network (all arrays have one entry per stop).

    Attributes
    ----------
    edge
        Index of the edge each stop is snapped to.
    offset
        Metres from the start of that edge's geometry to the snapped point.
    distance
        Metres from the stop to the snapped point (the walk from the street to the door).
    xy
        The snapped points, ``(k, 2)``, in the network's CRS.
    """

    edge: IArray
    offset: FArray
    distance: FArray
    xy: FArray

    def __len__(self) -> int:
        return len(self.edge)


@dataclass
class StopPaths:
    """Shortest paths between snapped stops, from one multi-source Dijkstra.

    Attributes
    ----------
    distance
        ``(k, k)`` metres along the streets from stop ``i`` to stop ``j``
        (``inf`` where there is no path, or none shorter than the ``limit``
        it was computed with).
    """

    distance: FArray
    _network: Network
    _predecessors: NDArray[np.int32]
    _nodes: IArray  # graph node of each stop in the augmented graph
    _chain: dict[tuple[int, int], tuple[int, float, float]]
    _xy: FArray  # snapped stop coordinates

    def path_coords(self, i: int, j: int) -> FArray:
        """Coordinates of the street path from stop ``i`` to stop ``j`` (network CRS).

        Raises
        ------
        InputError
            When there is no path (``distance[i, j]`` is infinite).
        """
        if i == j:
            return np.array([self._xy[i], self._xy[i]])
        if not np.isfinite(self.distance[i, j]):
            raise InputError(f"no path from stop {i} to stop {j} on the network")
        nodes = self._node_path(i, j)
        parts = [self._arc_coords(a, b) for a, b in itertools.pairwise(nodes)]
        out = [parts[0]]
        for p in parts[1:]:
            out.append(p[1:] if len(p) > 1 and np.allclose(p[0], out[-1][-1]) else p)
        return np.concatenate(out)

    def _node_path(self, i: int, j: int) -> list[int]:
        pred = self._predecessors[i]
        nodes = [int(self._nodes[j])]
        while nodes[-1] != self._nodes[i]:
            nodes.append(int(pred[nodes[-1]]))
        nodes.reverse()
        return nodes

    def off_network_edges(self, i: int, j: int) -> list[int]:
        """The off-network edges (:data:`OFFNET`) on the path from stop ``i`` to stop ``j``, in order.

        Raises
        ------
        InputError
            When there is no path.
        """
        if i == j:
            return []
        if not np.isfinite(self.distance[i, j]):
            raise InputError(f"no path from stop {i} to stop {j} on the network")
        net = self._network
        out: list[int] = []
        for a, b in itertools.pairwise(self._node_path(i, j)):
            if (a, b) in self._chain:
                continue  # part of a stop's own edge: stops never sit on off-network edges
            e, _ = net.arc(a, b)
            if net.edge_highway[e] == OFFNET:
                out.append(e)
        return out

    def _arc_coords(self, a: int, b: int) -> FArray:
        net = self._network
        meta = self._chain.get((a, b))
        if meta is not None:
            e, s, t = meta
            if abs(t - s) <= _MIN_ARC:
                c = shapely.get_coordinates(shapely.line_interpolate_point(net.edge_geom[e], s))
            else:
                c = shapely.get_coordinates(substring(net.edge_geom[e], s, t))
            return c if len(c) > 1 else np.vstack([c, c])
        e, rev = net.arc(a, b)
        c = shapely.get_coordinates(net.edge_geom[e])
        return c[::-1] if rev else c


@dataclass
class Network:
    """A street graph in metres.

    Attributes
    ----------
    mode
        ``"walk"`` or ``"drive"``.
    crs
        The metric CRS of every coordinate and length.
    node_xy
        ``(n, 2)`` node coordinates.
    edge_u, edge_v
        End nodes of each edge, in the direction of its geometry.
    edge_length
        Metres along each edge's geometry.
    edge_forward, edge_backward
        Whether the edge may be travelled ``u -> v`` and ``v -> u``.
    edge_geom
        One LineString per edge, from ``u`` to ``v``.
    edge_highway
        The OSM ``highway`` class of each edge (``connector`` for joins).
    source
        Where the ways came from (file name or a description).
    dropped
        What building the graph left out (driving: one-way fragments), for the log and reports.
    linked
        The components found and the off-network links joining them (``components``, ``links``, ``km``).
    """

    mode: str
    crs: pyproj.CRS
    node_xy: FArray
    edge_u: IArray
    edge_v: IArray
    edge_length: FArray
    edge_forward: NDArray[np.bool_]
    edge_backward: NDArray[np.bool_]
    edge_geom: NDArray[np.object_]
    edge_highway: NDArray[np.object_]
    source: str = ""
    dropped: dict[str, float] = field(default_factory=dict)
    linked: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.node_xy)
        fwd = self.edge_forward
        bwd = self.edge_backward
        eid = np.arange(len(self.edge_u))
        i = np.r_[self.edge_u[fwd], self.edge_v[bwd]]
        j = np.r_[self.edge_v[fwd], self.edge_u[bwd]]
        w = np.maximum(np.r_[self.edge_length[fwd], self.edge_length[bwd]], _MIN_ARC)
        e = np.r_[eid[fwd], eid[bwd]]
        rev = np.r_[np.zeros(int(fwd.sum()), bool), np.ones(int(bwd.sum()), bool)]
        keep_loop = i != j
        i, j, w, e, rev = i[keep_loop], j[keep_loop], w[keep_loop], e[keep_loop], rev[keep_loop]
        order = np.lexsort((w, j, i))
        i, j, w, e, rev = i[order], j[order], w[order], e[order], rev[order]
        first = np.r_[True, (i[1:] != i[:-1]) | (j[1:] != j[:-1])] if len(i) else np.zeros(0, bool)
        i, j, w, e, rev = i[first], j[first], w[first], e[first], rev[first]
        self._arc_i, self._arc_j, self._arc_w = i, j, w
        self._arc_edge, self._arc_rev = e, rev
        indptr = np.searchsorted(i, np.arange(n + 1)).astype(np.int64)
        self.graph = csr_matrix((w, j, indptr), shape=(n, n))
        self.road_edges = np.flatnonzero(self.edge_highway != OFFNET)  # what stops snap to
        self.tree = shapely.STRtree(self.edge_geom[self.road_edges])

    # ------------------------------------------------------------------ basics
    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        """Number of edges (a two-way street is one edge)."""
        return len(self.edge_u)

    @property
    def length_km(self) -> float:
        """Total street length in kilometres."""
        return float(self.edge_length.sum() / 1000.0)

    def arc(self, a: int, b: int) -> tuple[int, bool]:
        """The edge of the shortest arc ``a -> b`` and whether it runs against the geometry."""
        lo, hi = self.graph.indptr[a], self.graph.indptr[a + 1]
        k = lo + int(np.searchsorted(self.graph.indices[lo:hi], b))
        if k >= hi or self.graph.indices[k] != b:
            raise InputError(f"no arc from node {a} to node {b}")
        return int(self._arc_edge[k]), bool(self._arc_rev[k])

    def edges_frame(self) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame (for inspection and tests)."""
        return gpd.GeoDataFrame(
            {
                "u": self.edge_u,
                "v": self.edge_v,
                "length": self.edge_length,
                "forward": self.edge_forward,
                "backward": self.edge_backward,
                "highway": self.edge_highway,
            },
            geometry=self.edge_geom,
            crs=self.crs,
        )

    # ------------------------------------------------------------------ queries
    def node_distances(self, sources: Sequence[int] | IArray, *, limit: float = np.inf) -> FArray:
        """Shortest-path metres from each source node to every node, ``(len(sources), n)``."""
        idx = np.asarray(sources, dtype=np.int64)
        return np.atleast_2d(dijkstra(self.graph, directed=True, indices=idx, limit=limit))

    def to_metric(self, points: gpd.GeoSeries | gpd.GeoDataFrame) -> FArray:
        """``(k, 2)`` metric coordinates of point geometries (representative points of others)."""
        geo = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
        if geo.crs is None:
            raise InputError("stops have no CRS")
        geo = geo.to_crs(self.crs)
        pts = shapely.point_on_surface(geo.values)
        return np.asarray(shapely.get_coordinates(pts), dtype=float).reshape(-1, 2)

    def snap(
        self,
        xy: FArray,
        *,
        names: Sequence[object] | None = None,
        max_distance: float | None = None,
    ) -> Snap:
        """Snap points to the nearest point of the nearest edge.

        Parameters
        ----------
        xy
            ``(k, 2)`` coordinates in the network's CRS.
        names
            Stop names used in the error message.
        max_distance
            Metres; a stop farther than this from every street is an error
            (``None``: no limit; callers that report far stops themselves
            check :attr:`Snap.distance`).

        Raises
        ------
        InputError
            Naming the first stop farther than ``max_distance``.
        """
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        pts = shapely.points(xy)
        if len(xy) == 0:
            return Snap(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros((0, 2)))
        hit, dist = self.tree.query_nearest(pts, return_distance=True, all_matches=False)
        edge = np.empty(len(xy), dtype=np.int64)
        d = np.empty(len(xy))
        edge[hit[0]] = self.road_edges[hit[1]]
        d[hit[0]] = dist
        geoms = self.edge_geom[edge]
        offset = np.asarray(shapely.line_locate_point(geoms, pts), dtype=float)
        snapped = shapely.get_coordinates(shapely.line_interpolate_point(geoms, offset)).reshape(-1, 2)
        if max_distance is not None:
            far = np.flatnonzero(d > max_distance)
            if len(far):
                k = int(far[0])
                who = names[k] if names is not None else k
                raise InputError(
                    f"stop {who} is {d[k]:.0f} m from the nearest {self.mode} street "
                    f"(more than {max_distance:g} m)" + (f"; {len(far) - 1} more stops too far" if len(far) > 1 else "")
                )
        return Snap(edge, offset, d, snapped)

    def stop_paths(self, snap: Snap, *, limit: float = np.inf) -> StopPaths:
        """Shortest paths between snapped stops (one multi-source Dijkstra).

        Each stop becomes a temporary node on its edge (the edge split
        virtually at every stop on it, in order of offset, in each direction
        the edge allows), then ``dijkstra(indices=stops)`` runs once.

        Parameters
        ----------
        snap
            From :meth:`snap`.
        limit
            Metres: paths longer than this are not followed (``inf`` in the
            matrix), which bounds the search to what a day's budget can reach.
        """
        n = self.n_nodes
        k = len(snap)
        chain: dict[tuple[int, int], tuple[int, float, float]] = {}
        weight: dict[tuple[int, int], float] = {}

        def add(a: int, b: int, e: int, s: float, t: float) -> None:
            w = max(abs(t - s), _MIN_ARC)
            if (a, b) not in weight or w < weight[(a, b)]:
                weight[(a, b)] = w
                chain[(a, b)] = (e, s, t)

        order = np.lexsort((snap.offset, snap.edge))
        pos = 0
        while pos < k:
            e = int(snap.edge[order[pos]])
            end = pos
            while end < k and snap.edge[order[end]] == e:
                end += 1
            members = order[pos:end]
            length = float(self.edge_length[e])
            seq = [int(self.edge_u[e]), *[n + int(m) for m in members], int(self.edge_v[e])]
            offs = [0.0, *[float(min(max(snap.offset[m], 0.0), length)) for m in members], length]
            for a, b, s, t in zip(seq[:-1], seq[1:], offs[:-1], offs[1:], strict=True):
                if self.edge_forward[e]:
                    add(a, b, e, s, t)
                if self.edge_backward[e]:
                    add(b, a, e, t, s)
            pos = end
        ci = np.fromiter((p[0] for p in weight), dtype=np.int64, count=len(weight))
        cj = np.fromiter((p[1] for p in weight), dtype=np.int64, count=len(weight))
        cw = np.fromiter(weight.values(), dtype=float, count=len(weight))
        m = n + k
        g = csr_matrix(
            (np.r_[self._arc_w, cw], (np.r_[self._arc_i, ci], np.r_[self._arc_j, cj])), shape=(m, m)
        )
        nodes = np.arange(n, n + k, dtype=np.int64)
        if k == 0:
            return StopPaths(np.zeros((0, 0)), self, np.zeros((0, m), np.int32), nodes, chain, snap.xy)
        dist, pred = dijkstra(g, directed=True, indices=nodes, return_predecessors=True, limit=limit)
        dist = np.atleast_2d(dist)
        pred = np.atleast_2d(pred)
        mat = dist[:, nodes]
        np.fill_diagonal(mat, 0.0)
        return StopPaths(mat, self, pred, nodes, chain, snap.xy)


# ---------------------------------------------------------------------------------- building
def _text(frame: pd.DataFrame, col: str) -> NDArray[np.object_]:
    if col not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    vals = frame[col].astype("object").where(frame[col].notna(), None)
    return np.array([None if v is None else str(v).strip().lower() for v in vals], dtype=object)


def _usable(roads: gpd.GeoDataFrame, mode: str) -> tuple[NDArray[np.bool_], NDArray[np.int8]]:
    """Which rows the mode may use, and their direction (1 forward, -1 backward, 0 both)."""
    hw = _text(roads, "highway")
    access = _text(roads, "access")
    classes = WALK_HIGHWAYS if mode == "walk" else DRIVE_HIGHWAYS
    ok = np.array([h in classes for h in hw], dtype=bool)
    if mode == "walk":
        foot = _text(roads, "foot")
        closed = np.array([a in _NO for a in access]) & ~np.array([f in _FOOT_YES for f in foot])
        ok &= ~closed & ~np.array([f == "no" for f in foot])
        return ok, np.zeros(len(roads), dtype=np.int8)
    motor = [_text(roads, c) for c in ("motor_vehicle", "motorcar")]
    ok &= ~np.array([a in _NO for a in access], dtype=bool)
    for m in motor:
        ok &= ~np.array([v in _NO for v in m], dtype=bool)
    oneway = _text(roads, "oneway")
    junction = _text(roads, "junction")
    direction = np.zeros(len(roads), dtype=np.int8)
    for r, (o, h, jn) in enumerate(zip(oneway, hw, junction, strict=True)):
        if o in _FORWARD or (o not in _BOTH and o not in _BACKWARD and (h == "motorway" or jn == "roundabout")):
            direction[r] = 1
        elif o in _BACKWARD:
            direction[r] = -1
    return ok, direction


_keys = _noding.keys


def build_network(
    roads: gpd.GeoDataFrame,
    *,
    mode: str = "walk",
    tolerance: float = DEFAULT_TOLERANCE,
    crs: pyproj.CRS | None = None,
    source: str | None = None,
) -> Network:
    """Build a walking or driving network from a road layer (noded, all components linked).

    Parameters
    ----------
    roads
        Lines with a ``highway`` column (OSM classes), optionally ``access``,
        ``foot``, ``oneway``, ``junction``, ``motor_vehicle``, ``motorcar``, and
        ``layer``, ``bridge``, ``tunnel`` (lines on different levels cross without a junction).
    mode
        ``"walk"`` (default) or ``"drive"``.
    tolerance
        Metres within which a dangling way end is joined to another way.
    crs
        Metric CRS to work in; by default :func:`gridgeo.data.crs.metric_crs` of ``roads``.
    source
        Name of the input for messages (defaults to ``roads.attrs["source"]``).

    Raises
    ------
    UsageError
        Unknown ``mode`` or negative ``tolerance``.
    SchemaError
        No ``highway`` column.
    InputError
        No way the mode may use, naming the source.
    """
    _check_mode(mode)
    if not tolerance >= 0:
        raise UsageError(f"tolerance must be >= 0 metres, got {tolerance!r}")
    src = source or str(roads.attrs.get("source", "road layer"))
    if "highway" not in roads.columns:
        raise SchemaError(f"road layer has no 'highway' column; columns are {list(roads.columns)}", path=src)
    if roads.crs is None:
        raise InputError("road layer has no CRS", path=src)
    ok, direction = _usable(roads, mode)
    kinds = "walkable" if mode == "walk" else "drivable"
    if not ok.any():
        found = sorted({str(h) for h in roads["highway"].dropna().unique()})[:10]
        raise InputError(f"no {kinds} ways (highway classes found: {', '.join(found) or 'none'})", path=src)
    used = roads.loc[ok, ["highway", roads.geometry.name]].copy()
    used["_dir"] = direction[ok]
    used["_level"] = _noding.levels(roads.loc[ok])
    used = used[~(used.geometry.isna() | used.geometry.is_empty)]
    target = crs if crs is not None else metric_crs(used)
    used = used.to_crs(target).explode(index_parts=False)
    used = used[used.geom_type == "LineString"]
    lines = np.asarray(used.geometry.values, dtype=object)
    if len(lines) == 0:
        raise InputError(f"no {kinds} line geometries", path=src)
    lines, made = _noding.node_crossings(lines, used["_level"].to_numpy(float))
    if made:
        log.info("%s: %d crossings and touches of lines on the same level made junctions", src, made)
    lines, dirs, hw, joined = _noding.join_dangling(
        lines, used["_dir"].to_numpy(np.int8), used["highway"].astype(object).to_numpy(), tolerance
    )
    if joined:
        log.info("%s: joined %d dangling way ends within %g m", src, joined, tolerance)
    return _assemble(lines, dirs, hw, mode=mode, crs=target, src=src, split_shared=True)


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise UsageError(f"network mode must be one of {', '.join(_MODES)}, got {mode!r}")


def _assemble(
    lines: NDArray[np.object_],
    dirs: NDArray[np.int8],
    hw: NDArray[np.object_],
    *,
    mode: str,
    crs: pyproj.CRS,
    src: str,
    split_shared: bool,
) -> Network:
    """The graph of ``lines`` with its components linked by off-network edges (see the module docstring)."""
    net = _graph(lines, dirs, hw, mode=mode, crs=crs, src=src, split_shared=split_shared)
    dropped: dict[str, float] = {}
    if mode == "drive":
        net, dropped = _strong_parts(net)
    ncomp, label = connected_components(net.graph, directed=True, connection="weak")
    linked: dict[str, float] = {"components": float(ncomp), "links": 0.0, "km": 0.0}
    if ncomp > 1:
        lines, dirs, hw = _linked_lines(net, label[net.edge_u], ncomp)
        net = _graph(lines, dirs, hw, mode=mode, crs=crs, src=src, split_shared=split_shared)
        off = net.edge_highway == OFFNET
        linked.update(links=float(off.sum()), km=float(net.edge_length[off].sum() / 1000.0))
        log.info("%s: %d components joined by %d off-network links (%.2f km, longest %.0f m)", src, ncomp,
                 int(off.sum()), linked["km"], float(net.edge_length[off].max(initial=0.0)))
    net.dropped, net.linked = dropped, linked
    log.info("%s: %s network: %d nodes, %d edges, %.1f km", src, mode, net.n_nodes, net.n_edges, net.length_km)
    return net


def _directions(net: Network) -> NDArray[np.int8]:
    """1 along the geometry only, -1 against it only, 0 both ways."""
    return np.where(net.edge_forward & net.edge_backward, 0, np.where(net.edge_forward, 1, -1)).astype(np.int8)


def _strong_parts(net: Network) -> tuple[Network, dict[str, float]]:
    """Each weak component's largest strongly connected part (driving); what was left out."""
    _, weak = connected_components(net.graph, directed=True, connection="weak")
    _, strong = connected_components(net.graph, directed=True, connection="strong")
    size = np.bincount(strong)
    best = pd.DataFrame({"weak": weak, "strong": strong, "size": size[strong]}).sort_values(
        ["weak", "size", "strong"], ascending=[True, False, True], kind="stable").drop_duplicates("weak")
    keep_n = np.isin(strong, best["strong"].to_numpy())
    keep_e = keep_n[net.edge_u] & keep_n[net.edge_v]
    if keep_e.all():
        return net, {}
    if not keep_e.any():
        raise InputError("no drivable ways left in any strongly connected part (isolated one-way ways?)",
                         path=net.source)
    dropped = {"one_way_edges": float((~keep_e).sum()), "km": float(net.edge_length[~keep_e].sum() / 1000.0)}
    log.warning("%s: left out %d one-way edges (%.2f km) that a car could enter but not leave, or the reverse",
                net.source, int(dropped["one_way_edges"]), dropped["km"])
    out = _graph(net.edge_geom[keep_e], _directions(net)[keep_e], net.edge_highway[keep_e], mode=net.mode,
                 crs=net.crs, src=net.source, split_shared=False)
    return out, dropped


def _linked_lines(
    net: Network, edge_comp: NDArray[np.int64], ncomp: int
) -> tuple[NDArray[np.object_], NDArray[np.int8], NDArray[np.object_]]:
    """The network's edges, split where links land, plus the links themselves (two-way, :data:`OFFNET`)."""
    links = _noding.component_links(net.edge_geom, edge_comp, ncomp)
    at: dict[int, list[float]] = {}
    for ea, p, eb, q in links:
        for e, pt in ((ea, p), (eb, q)):
            at.setdefault(e, []).append(float(shapely.line_locate_point(net.edge_geom[e], shapely.Point(pt))))
    dirs = _directions(net)
    lines: list[object] = []
    out_dirs: list[int] = []
    out_hw: list[object] = []
    for e in range(net.n_edges):
        g = net.edge_geom[e]
        cuts = sorted({0.0, float(net.edge_length[e]), *(min(max(t, 0.0), float(net.edge_length[e]))
                                                          for t in at.get(e, []))})
        for s, t in itertools.pairwise(cuts):
            if t - s > 1.0 / _KEY_SCALE or len(cuts) == 2:
                lines.append(substring(g, s, t) if len(cuts) > 2 else g)
                out_dirs.append(int(dirs[e]))
                out_hw.append(net.edge_highway[e])
    for ea, p, eb, q in links:
        pa = _on_line(net.edge_geom[ea], p)
        qb = _on_line(net.edge_geom[eb], q)
        lines.append(shapely.LineString([pa, qb]))
        out_dirs.append(0)
        out_hw.append(OFFNET)
    return np.array(lines, dtype=object), np.array(out_dirs, dtype=np.int8), np.array(out_hw, dtype=object)


def _on_line(line: shapely.LineString, p: FArray) -> FArray:
    """The point of ``line`` at ``p``'s offset, as the split above makes it (so that the ends coincide)."""
    t = min(max(float(shapely.line_locate_point(line, shapely.Point(p))), 0.0), float(line.length))
    return np.asarray(shapely.get_coordinates(shapely.line_interpolate_point(line, t)))[0]


def _graph(
    lines: NDArray[np.object_],
    dirs: NDArray[np.int8],
    hw: NDArray[np.object_],
    *,
    mode: str,
    crs: pyproj.CRS,
    src: str,
    split_shared: bool = True,
) -> Network:
    """The graph of ``lines``: nodes at line ends (and, with ``split_shared``, at every shared vertex)."""
    xy, li = shapely.get_coordinates(lines, return_index=True)
    _, vid, cnt = np.unique(_keys(xy), axis=0, return_inverse=True, return_counts=True)
    vid = vid.ravel()
    new_line = np.r_[True, li[1:] != li[:-1]]
    last = np.r_[li[1:] != li[:-1], True]
    occ = np.flatnonzero(new_line | last | ((cnt[vid] >= 2) if split_shared else False))
    a, b = occ[:-1], occ[1:]
    same = li[a] == li[b]
    a, b = a[same], b[same]
    seg = np.r_[0.0, np.hypot(*np.diff(xy, axis=0).T)]
    seg[new_line] = 0.0
    cum = np.cumsum(seg)
    length = cum[b] - cum[a]
    keep = ~((vid[a] == vid[b]) & (length <= 1.0 / _KEY_SCALE))
    a, b = a[keep], b[keep]
    if len(a) == 0:
        raise InputError(f"no {'walkable' if mode == 'walk' else 'drivable'} ways of any length", path=src)
    # nodes: the vertices at edge ends, renumbered
    node_vid, node_of = np.unique(np.r_[vid[a], vid[b]], return_inverse=True)
    u, v = node_of[: len(a)], node_of[len(a):]
    first_occ = np.full(int(vid.max()) + 1, -1, dtype=np.int64)
    first_occ[vid[::-1]] = np.arange(len(vid))[::-1]
    node_xy = xy[first_occ[node_vid]]
    counts = b - a + 1
    take = np.repeat(a - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(int(counts.sum()))
    geoms = np.asarray(shapely.linestrings(xy[take], indices=np.repeat(np.arange(len(a)), counts)), dtype=object)
    d = dirs[li[a]]
    fwd, bwd = d >= 0, d <= 0
    if mode == "walk":
        fwd[:] = True
        bwd[:] = True
    return Network(
        mode=mode,
        crs=crs,
        node_xy=np.asarray(node_xy, dtype=float),
        edge_u=np.asarray(u, dtype=np.int64),
        edge_v=np.asarray(v, dtype=np.int64),
        edge_length=np.asarray(shapely.length(geoms), dtype=float),
        edge_forward=np.asarray(fwd, dtype=bool),
        edge_backward=np.asarray(bwd, dtype=bool),
        edge_geom=geoms,
        edge_highway=np.asarray(hw[li[a]], dtype=object),
        source=src,
    )


def load_network(
    path: str | Path,
    *,
    mode: str = "walk",
    layer: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    crs: pyproj.CRS | None = None,
) -> Network:
    """Build a network from a file: an OSM extract (XML or PBF, through osmnx) or a road layer.

    Parameters
    ----------
    path
        ``.osm``/``.osm.bz2``/``.osm.gz``/``.osm.pbf`` (read through osmnx: see the module docstring;
        ``tolerance`` does not apply, osmnx consolidates at :data:`CONSOLIDATE_M`), or any vector file
        :func:`gridgeo.data.io.read_layer` reads (a GeoPackage is read at ``layer``,
        by default its ``roads`` layer).
    mode, tolerance, crs
        As in :func:`build_network`.

    Raises
    ------
    InputError
        The file has no ways the mode may use (the message names the file).
    """
    from gridgeo.data import io
    from gridgeo.data.osm import is_osm_path

    _check_mode(mode)
    p = Path(path)
    kinds = "walkable" if mode == "walk" else "drivable"
    if is_osm_path(p):
        if not p.exists():
            raise InputError("no such OSM file", path=p)
        (lines, dirs, hw), target = osm_lines(p, mode, crs)
        return _assemble(lines, dirs, hw, mode=mode, crs=target, src=str(p), split_shared=False)
    if layer is None and p.suffix.lower() == ".gpkg":
        names = io.list_layers(p)
        layer = "roads" if "roads" in names else None
    roads = io.read_layer(p, layer=layer)
    if len(roads) == 0 or "highway" not in roads.columns:
        raise InputError(f"no {kinds} ways: no highway lines in the file", path=p)
    return build_network(roads, mode=mode, tolerance=tolerance, crs=crs, source=str(p))
