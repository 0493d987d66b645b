"""Adjacency between units that survives real boundary noise.

Two villages are neighbours when they share a stretch of boundary, not when
they merely touch at a corner (rook, not queen, contiguity): a block joined
only through a corner point cannot be walked. Real boundaries do not share
vertices exactly; neighbours are separated by sliver gaps or overlap a little.
So the shared length is measured exactly, and with snapping where that falls short:

* exactly, as the length of the intersection of the two boundaries (clean,
  topologically built data such as a partition gridgeo wrote itself);
* with snapping (only for pairs that do not already share ``min_shared``
  exactly), as the length of A's boundary that lies within ``snap``
  metres of B, less ``2 · snap`` per connected stretch (the ends of a stretch
  pick up about ``snap`` metres each where the boundary turns away, which is
  also exactly what a bare corner contact measures).

Pairs sharing at least ``min_shared`` metres become edges carrying
``length`` (m) and ``bridged`` (True when the pair does not actually touch and
only the snap joined them). Units with no neighbour are islands; the graph
records them and its connected components in ``G.graph``.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo._geom import make_valid_array
from gridgeo.data import crs as _crs
from gridgeo.errors import CRSError, GeometryError, SchemaError

log = logging.getLogger(__name__)


def _shared_lengths(
    ga: np.ndarray, gb: np.ndarray, snap: float, min_shared: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shared boundary length of each pair (ga[k], gb[k]): (best, exact).

    The snapped estimate (a buffer per pair, the costly part) is computed only
    for pairs whose exact shared length falls short of ``min_shared``; pairs
    that already share enough exactly keep their exact length.
    """
    ba, bb = shapely.boundary(ga), shapely.boundary(gb)
    exact = shapely.length(shapely.intersection(ba, bb))
    if snap <= 0:
        return exact, exact
    best = exact.copy()
    todo = np.flatnonzero(exact < min_shared)
    if len(todo) == 0:
        return best, exact
    ba, bb, ga, gb = ba[todo], bb[todo], ga[todo], gb[todo]
    estimates = []
    for src, dst in ((ba, gb), (bb, ga)):
        near = shapely.intersection(src, shapely.buffer(dst, snap, quad_segs=4))
        merged = shapely.line_merge(near)
        pieces = shapely.get_num_geometries(merged)
        pieces = np.where(shapely.get_type_id(merged) == 1, 1, pieces)  # a single LineString
        estimates.append(np.maximum(shapely.length(merged) - 2 * snap * pieces, 0.0))
    snapped = np.minimum(estimates[0], estimates[1])  # both sides must agree
    best[todo] = np.maximum(exact[todo], snapped)
    return best, exact


def build_adjacency(
    gdf: gpd.GeoDataFrame,
    *,
    id_col: str | None = None,
    min_shared: float = 5.0,
    snap: float = 2.0,
    metric: pyproj.CRS | None = None,
    attrs: list[str] | None = None,
) -> nx.Graph:
    """Build the rook adjacency graph of a polygon layer.

    Parameters
    ----------
    gdf
        Polygons (villages, street blocks, ...) in any CRS with a known CRS.
        Geometries should be valid (run :func:`gridgeo.data.check.check_layer` first).
    id_col
        Node ids; default the row number.
    min_shared
        Minimum shared boundary length (m) for an edge. Corner contacts and
        incidental near-misses fall below it.
    snap
        Gaps narrower than this (m) are bridged; ``0`` requires exact contact.
    metric
        Metric CRS to measure in; chosen from the data when omitted.
    attrs
        Columns copied onto the nodes (e.g. ``["households", "kind"]``).

    Returns
    -------
    networkx.Graph
        Nodes carry ``row``, ``area`` (m²) and ``attrs``; edges ``length`` (m)
        and ``bridged``. ``G.graph`` holds ``crs`` (metric, as a string),
        ``islands`` (ids with no neighbour) and ``components`` (lists of ids,
        largest first).
    """
    ids = _checked_ids(gdf, id_col)
    metric = metric or _crs.metric_crs(gdf)
    mg = _metric_geometries(gdf, metric, ids)
    tree = shapely.STRtree(mg)
    a, b = tree.query(mg, predicate="dwithin", distance=max(snap, 0.0))
    keep = a < b
    a, b = a[keep], b[keep]
    G = nx.Graph()
    _add_nodes(G, gdf, ids, shapely.area(mg), attrs or [])
    if len(a):
        best, exact = _shared_lengths(mg[a], mg[b], snap, min_shared)
        for k in np.flatnonzero(best >= min_shared):
            G.add_edge(ids[a[k]], ids[b[k]], length=round(float(best[k]), 3), bridged=bool(exact[k] <= 0))
    comps = sorted((sorted(c) for c in nx.connected_components(G)), key=lambda c: (-len(c), c[0]))
    G.graph.update(
        crs=_crs_str(metric),
        min_shared=min_shared,
        snap=snap,
        islands=sorted(n for n in G.nodes if G.degree(n) == 0),
        components=comps,
    )
    log.info("adjacency: %d nodes, %d edges, %d bridged, %d islands, %d components",
             G.number_of_nodes(), G.number_of_edges(),
             sum(1 for *_, d in G.edges(data=True) if d["bridged"]), len(G.graph["islands"]), len(comps))
    return G


def _checked_ids(gdf: gpd.GeoDataFrame, id_col: str | None) -> list[str]:
    """The node ids, once the layer is known to have a CRS, the id column, no empties, unique ids."""
    if gdf.crs is None:
        raise CRSError("adjacency needs a CRS to measure lengths in metres", path=gdf.attrs.get("source"))
    if id_col is not None and id_col not in gdf.columns:
        raise SchemaError(f"id column {id_col!r} not found", path=gdf.attrs.get("source"))
    geoms = np.asarray(gdf.geometry.values)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GeometryError("empty geometry; run `gridgeo check` first", path=gdf.attrs.get("source"),
                            feature=_ids(gdf, id_col)[i])
    ids = _ids(gdf, id_col)
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids).loc[pd.Series(ids).duplicated()].iloc[0]
        raise SchemaError(f"duplicate id {dup!r}; adjacency needs unique ids", path=gdf.attrs.get("source"))
    return ids


def _metric_geometries(gdf: gpd.GeoDataFrame, metric: pyproj.CRS, ids: list[str]) -> np.ndarray:
    """The geometries in ``metric``, repaired where projecting made them invalid."""
    mg = np.asarray(gdf.geometry.to_crs(metric).values)
    invalid = ~shapely.is_valid(mg)
    if invalid.any():
        log.warning("adjacency: %d invalid geometries repaired with make_valid", int(invalid.sum()))
        mg = make_valid_array(mg)
        lost = shapely.is_missing(mg)
        if lost.any():
            raise GeometryError("geometry collapses when projected and repaired", path=gdf.attrs.get("source"),
                                feature=ids[int(np.flatnonzero(lost)[0])])
    return mg


def _add_nodes(G: nx.Graph, gdf: gpd.GeoDataFrame, ids: list[str], areas: np.ndarray, cols: list[str]) -> None:
    """One node per feature: its row, area (m²) and the ``cols`` values (missing -> None)."""
    for col in cols:
        if col not in gdf.columns:
            raise SchemaError(f"attribute column {col!r} not found", path=gdf.attrs.get("source"))
    for i, node in enumerate(ids):
        data: dict[str, Any] = {"row": i, "area": float(areas[i])}
        for col in cols:
            v = gdf[col].iloc[i]
            data[col] = None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)
        G.add_node(node, **data)


def _ids(gdf: gpd.GeoDataFrame, id_col: str | None) -> list[str]:
    if id_col is None:
        return [str(i) for i in range(len(gdf))]
    return [str(v) for v in gdf[id_col]]


def _crs_str(crs: pyproj.CRS) -> str:
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_string()


def to_json(G: nx.Graph) -> dict[str, Any]:
    """A JSON-ready description: nodes, edges with lengths, islands, components."""
    return {
        "crs": G.graph.get("crs"),
        "min_shared_m": G.graph.get("min_shared"),
        "snap_m": G.graph.get("snap"),
        "nodes": G.number_of_nodes(),
        "edges": [
            {"a": u, "b": v, "length_m": d["length"], "bridged": d["bridged"]}
            for u, v, d in sorted(G.edges(data=True), key=lambda e: (str(e[0]), str(e[1])))
        ],
        "islands": G.graph.get("islands", []),
        "components": [len(c) for c in G.graph.get("components", [])],
    }


def edges_frame(G: nx.Graph) -> pd.DataFrame:
    """Edges as a DataFrame (a, b, length, bridged), e.g. to join onto units."""
    rows = [(u, v, d["length"], d["bridged"]) for u, v, d in G.edges(data=True)]
    return pd.DataFrame(rows, columns=["a", "b", "length", "bridged"])
