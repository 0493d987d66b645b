"""OSM files to street lines through osmnx: filter, graph, simplify, project, consolidate.

Private to :mod:`gridgeo.patrol.network` (whose docstring states the rules). Steps, and why:

1. **Filter with pyosmium into a temporary OSM XML.** ``osmnx.graph_from_xml`` turns *every* way of a
   file into edges (buildings and rivers too) and reads XML only, so each input, XML or PBF alike, is
   read once by libosmium: the ways the mode may use (the same highway/access rules as road layers,
   :func:`gridgeo.patrol.network._usable`, plus osmnx's ``area=yes`` exclusion) are written with the
   nodes they reference to a temporary ``.osm`` (a PBF is never read as its XML twin: the twin may
   not be the same extract).
2. **``graph_from_xml``** with ``bidirectional`` for walking (a one-way street is walked both ways),
   ``retain_all=True`` (no component is dropped: :mod:`gridgeo.patrol.network` links them) and
   osmnx's simplification (nodes only at junctions and dead ends).
3. **Projected** to :func:`gridgeo.data.crs.metric_crs` of the nodes.
4. **``consolidate_intersections``** at :data:`CONSOLIDATE_M` (walk 10 m, drive 15 m), dead ends left
   alone, and ``max_length`` = twice the tolerance: osmnx merges nodes whose buffers overlap but then
   splits each cluster into its weakly connected parts, counting only edges up to ``max_length``. So
   a bridge node and the road node under it stay apart unless a short edge truly joins them, and a
   ramp that leaves the cluster and comes back does not count as joining them.
5. **Edges to lines.** A two-way street is two opposite edges in osmnx; they become one two-way line.
   Each line starts and ends at its nodes' coordinates, so lines meet only at graph nodes.
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo.data.crs import metric_crs
from gridgeo.errors import InputError

log = logging.getLogger(__name__)

#: Metres within which osmnx consolidates intersection nodes, per mode. 10 m walking: the nodes of one
#: crossing mapped as several (sidewalks, dual carriageways, a skewed junction) lie within a street's
#: width, while separate village alleys are 15 m and more apart. 15 m driving: junctions of wide roads.
CONSOLIDATE_M: dict[str, float] = {"walk": 10.0, "drive": 15.0}

_TAGS = ("highway", "access", "foot", "motor_vehicle", "motorcar", "area")
Lines = tuple[np.ndarray, np.ndarray, np.ndarray]


def _way_tags(path: Path) -> pd.DataFrame:
    """The tags that decide use, one row per highway way (index: way id)."""
    import osmium

    rows: dict[int, dict[str, str | None]] = {}
    fp = osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(osmium.filter.KeyFilter("highway"))
    for w in fp:
        rows[w.id] = {k: w.tags.get(k) for k in _TAGS}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(_TAGS))


def _filtered_xml(path: Path, out: Path, mode: str) -> int:
    """Write the ways ``mode`` may use and their nodes to ``out`` (OSM XML); how many ways."""
    import osmium

    from gridgeo.patrol.network import _usable

    tags = _way_tags(path)
    if tags.empty:
        return 0
    ok, _ = _usable(tags, mode)
    ok &= ~(tags["area"].fillna("").str.lower() == "yes").to_numpy(bool)
    keep = set(tags.index[ok].tolist())
    if not keep:
        return 0
    with osmium.BackReferenceWriter(str(out), ref_src=str(path), overwrite=True) as writer:
        for w in osmium.FileProcessor(str(path), osmium.osm.WAY):
            if w.id in keep:
                writer.add(w)
    return len(keep)


def _first(value: Any) -> str:
    """An osmnx attribute as one text (simplification makes lists where merged ways differ)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return "road" if value is None else str(value)


def _edge_lines(graph: Any, bidirectional: bool) -> Lines:
    """Lines, directions (0 two-way, 1 along the line) and highway classes of the graph's edges."""
    xy = {n: (float(d["x"]), float(d["y"])) for n, d in graph.nodes(data=True)}
    groups: dict[tuple[Any, Any, float], list[tuple[Any, np.ndarray, str]]] = defaultdict(list)
    for u, v, data in graph.edges(data=True):
        g = data.get("geometry")
        c = np.array(shapely.get_coordinates(g)) if g is not None else np.array([xy[u], xy[v]])
        c[0], c[-1] = xy[u], xy[v]
        length = float(np.hypot(*np.diff(c, axis=0).T).sum())
        lo, hi = sorted((u, v), key=str)
        groups[(lo, hi, round(length, 1))].append((u, c, _first(data.get("highway"))))
    lines: list[shapely.LineString] = []
    dirs: list[int] = []
    hws: list[str] = []
    for (lo, _hi, _len), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        fwd = [m for m in members if m[0] == lo]
        bwd = [m for m in members if m[0] != lo]
        if lo == _hi:  # a loop: its two directions look alike
            fwd, bwd = members[: (len(members) + 1) // 2], members[(len(members) + 1) // 2:]
        pairs = min(len(fwd), len(bwd))
        for m in fwd[:pairs]:
            lines.append(shapely.LineString(m[1]))
            dirs.append(0)
            hws.append(m[2])
        for m in fwd[pairs:] + bwd[pairs:]:
            lines.append(shapely.LineString(m[1]))
            dirs.append(0 if bidirectional else 1)
            hws.append(m[2])
    return np.array(lines, dtype=object), np.array(dirs, dtype=np.int8), np.array(hws, dtype=object)


def osm_lines(path: Path, mode: str, crs: pyproj.CRS | None = None) -> tuple[Lines, pyproj.CRS]:
    """The street lines of an OSM file for ``mode`` (see the module docstring) and their metric CRS.

    Raises
    ------
    InputError
        The file has no way the mode may use (naming the file).
    """
    import osmnx as ox

    kinds = "walkable" if mode == "walk" else "drivable"
    with tempfile.TemporaryDirectory(prefix="gridgeo-osm-") as tmp:
        xml = Path(tmp) / "ways.osm"
        n_ways = _filtered_xml(path, xml, mode)
        if n_ways == 0:
            raise InputError(f"no {kinds} ways in the OSM file", path=path)
        graph = ox.graph_from_xml(xml, bidirectional=(mode == "walk"), simplify=True, retain_all=True)
    nodes = gpd.GeoDataFrame(geometry=gpd.points_from_xy(
        [d["x"] for _, d in graph.nodes(data=True)], [d["y"] for _, d in graph.nodes(data=True)]), crs=4326)
    target = crs if crs is not None else metric_crs(nodes)
    graph = ox.project_graph(graph, to_crs=target)
    tol = CONSOLIDATE_M[mode]
    before = len(graph)
    graph = ox.consolidate_intersections(graph, tolerance=tol, rebuild_graph=True, dead_ends=False,
                                         reconnect_edges=True, max_length=2 * tol)
    log.info("%s: %d %s ways; osmnx graph %d nodes, %d after consolidating intersections within %g m",
             path, n_ways, mode, before, len(graph), tol)
    return _edge_lines(graph, mode == "walk"), target
