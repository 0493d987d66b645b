"""OSM networks through osmnx: Guixi and Beijing extracts, routes on a grid, bridges kept apart."""

from __future__ import annotations

import bz2
import datetime as dt
from pathlib import Path

import numpy as np
import osmium
import pyproj
import pytest
import shapely
from scipy.sparse.csgraph import connected_components

from gridgeo.patrol import GridStops, Stop, plan_day, prepare
from gridgeo.patrol.network import CONSOLIDATE_M, OFFNET, Network, Snap, load_network

pytestmark = pytest.mark.shared

DAY = dt.date(2024, 5, 6)
FILES = ["guixi_jiangxi.osm.pbf", "beijing_haidian_cau.osm.bz2"]


@pytest.fixture(scope="module", params=FILES)
def osm(request: pytest.FixtureRequest, osm_dir: Path) -> tuple[Path, Network]:
    """Each extract's walking network, built once for the module."""
    p = osm_dir / request.param
    assert p.exists(), p
    return p, load_network(p, mode="walk")


def test_networks_are_whole_and_metric(osm: tuple[Path, Network]) -> None:
    _, net = osm
    assert net.crs.is_projected and net.n_nodes > 100
    n, _ = connected_components(net.graph, directed=False)
    assert n == 1  # every component kept, joined by off-network links
    assert net.linked["links"] == net.linked["components"] - 1
    assert np.allclose(net.edge_length, shapely.length(net.edge_geom))
    assert "motorway" not in set(net.edge_highway)
    # no two nodes closer than the consolidation tolerance unless osmnx kept them apart (see the bridge test)
    assert (net.edge_length > 0).all()


def test_pbf_and_xml_give_the_same_network(osm_dir: Path) -> None:
    a = load_network(osm_dir / "guixi_jiangxi.osm.pbf")
    b = load_network(osm_dir / "guixi_jiangxi.osm.bz2")
    assert (a.n_nodes, a.n_edges) == (b.n_nodes, b.n_edges)
    assert a.length_km == pytest.approx(b.length_km, rel=1e-9)


def test_a_route_on_a_grid_reaches_every_stop(osm: tuple[Path, Network]) -> None:
    """A 1 km square around the network's busiest place; 16 due households in it; a day is enough for all."""
    _, net = osm
    degree = np.bincount(np.r_[net.edge_u, net.edge_v], minlength=net.n_nodes)
    centre = net.node_xy[int(np.argmax(degree))]
    rng = np.random.default_rng(7)
    road = np.flatnonzero(net.edge_highway != OFFNET)
    near = road[shapely.distance(net.edge_geom[road], shapely.Point(centre)) < 500]
    picks = rng.choice(near, 16, replace=len(near) < 16)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(net.edge_geom[picks], rng.random(16),
                                                                 normalized=True))
    stops = [Stop(f"h{i}", "household", "orange", x + 8.0, y, f"h{i}") for i, (x, y) in enumerate(pts)]
    problem = prepare(net, GridStops("g", (float(centre[0]), float(centre[1])), stops), budget_min=480)
    assert np.isfinite(problem.round_trip_min()).all()
    plan = plan_day(problem, DAY, budget_min=480, seed=1, time_limit=2.0)
    assert len(plan.visits) == 16 and not plan.missed
    drawn = np.hypot(*np.diff(plan.coords, axis=0).T).sum()
    assert drawn <= plan.distance_m + 1e-6  # the streets walked (the door legs come on top)


def _bridges(path: Path, crs: pyproj.CRS) -> list[shapely.LineString]:
    """The file's bridge and tunnel ways, in the network's CRS."""
    tr = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    out = []
    fp = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for w in fp:
        levelled = w.is_way() and (w.tags.get("bridge", "no") != "no" or w.tags.get("tunnel", "no") != "no")
        if levelled and "highway" in w.tags:
            xy = [tr.transform(n.lon, n.lat) for n in w.nodes]
            if len(xy) >= 2:
                out.append(shapely.LineString(xy))
    return out


def test_bridges_are_not_merged_with_the_roads_below(osm: tuple[Path, Network]) -> None:
    """Where a bridge (or tunnel) edge crosses another edge, the two places are far apart on foot."""
    _check_bridges(*osm)


def test_bridges_of_a_roads_layer_are_not_noded(osm_dir: Path) -> None:
    """The same from the ``roads`` layer gridgeo reads from OSM (and a build passes through): its ``bridge``,
    ``tunnel`` and ``layer`` columns keep the levels apart when the lines are noded."""
    from gridgeo.data.io import read_layer
    from gridgeo.patrol.network import build_network

    path = osm_dir / FILES[0]
    roads = read_layer(path, layer="roads")
    assert {"bridge", "tunnel", "layer"} <= set(roads.columns) and roads["bridge"].notna().any()
    _check_bridges(path, build_network(roads, mode="walk", source=str(path)))


def _check_bridges(path: Path, net: Network) -> None:
    bridges = _bridges(path, net.crs)
    assert bridges
    geoms = net.edge_geom
    on_bridge = np.array([any(shapely.length(shapely.intersection(g, shapely.buffer(b, 1.0))) > 0.8 * g.length
                              for b in bridges) for g in geoms])
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms[on_bridge], predicate="crosses")
    a = np.flatnonzero(on_bridge)[a]
    pairs = [(int(i), int(j)) for i, j in zip(a, b, strict=True) if not on_bridge[j]]
    assert pairs, "no bridge crosses a road in the extract"
    checked = 0
    for i, j in pairs:
        x = shapely.intersection(geoms[i], geoms[j])
        p = shapely.get_coordinates(x)[0]
        if np.hypot(*(net.node_xy - p).T).min() < 1.0:
            continue  # they meet at a node: a real junction (a ramp), not a crossing
        off = [float(shapely.line_locate_point(geoms[e], shapely.Point(p))) for e in (i, j)]
        snap = Snap(np.array([i, j]), np.array(off), np.zeros(2), np.array([p, p]))
        d = net.stop_paths(snap).distance[0, 1]
        assert d > 2 * CONSOLIDATE_M["walk"], (i, j, d)
        checked += 1
    assert checked


OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
{nodes}
 <way id="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
 <way id="2"><nd ref="2"/><nd ref="4"/><tag k="highway" v="residential"/></way>
 <way id="3"><nd ref="5"/><nd ref="6"/><tag k="highway" v="primary"/></way>
 <way id="4"><nd ref="6"/><nd ref="7"/><tag k="highway" v="primary"/><tag k="bridge" v="yes"/>
  <tag k="layer" v="1"/></way>
 <way id="5"><nd ref="7"/><nd ref="8"/><tag k="highway" v="primary"/></way>
 <way id="6"><nd ref="6"/><nd ref="9"/><tag k="highway" v="service"/><tag k="bridge" v="yes"/></way>
 <way id="7"><nd ref="1"/><nd ref="10"/><nd ref="5"/><tag k="highway" v="residential"/></way>
 <way id="8"><nd ref="3"/><nd ref="11"/><nd ref="8"/><tag k="highway" v="residential"/></way>
</osm>
"""


def test_consolidation_keeps_a_bridge_node_apart_from_the_junction_below(tmp_path: Path) -> None:
    """A junction on a bridge 4 m beside a junction on the road below: within 10 m, yet two nodes."""
    lon0, lat0 = 117.0, 28.2
    m_lon, m_lat = 1 / (111320 * np.cos(np.radians(lat0))), 1 / 110574
    xy = {1: (0, 0), 2: (300, 0), 3: (600, 0), 4: (300, -200),  # the road below, a side street at node 2
          5: (303, 300), 6: (303, 4), 7: (303, -300), 8: (303, -600),  # the flyover, a junction (6) 4 m away
          9: (400, 60), 10: (0, 300), 11: (600, -600)}
    nodes = "\n".join(f' <node id="{k}" lat="{lat0 + y * m_lat:.8f}" lon="{lon0 + x * m_lon:.8f}"/>'
                      for k, (x, y) in xy.items())
    f = tmp_path / "flyover.osm.bz2"
    f.write_bytes(bz2.compress(OSM_XML.format(nodes=nodes).encode()))
    net = load_network(f)
    assert net.linked["components"] == 1
    tr = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
    below = np.array(tr.transform(lon0 + 300 * m_lon, lat0))
    above = np.array(tr.transform(lon0 + 303 * m_lon, lat0 + 4 * m_lat))
    d_below = np.hypot(*(net.node_xy - below).T)
    d_above = np.hypot(*(net.node_xy - above).T)
    assert d_below.min() < 1.0 and d_above.min() < 1.0
    assert int(np.argmin(d_below)) != int(np.argmin(d_above))  # two nodes, not one consolidated
    snap = net.snap(np.array([below, above]))
    assert net.stop_paths(snap).distance[0, 1] > 1000  # from the road up to the flyover: round by its ends
