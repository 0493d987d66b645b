"""Street networks: OSM and road layers, components, joins, snapping, matrices against networkx."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from scipy.sparse.csgraph import connected_components

from gridgeo.errors import InputError, SchemaError, UsageError
from gridgeo.patrol import GridStops, Stop, plan_day, prepare
from gridgeo.patrol.network import OFF_NETWORK_REPORT_M, OFFNET, build_network, load_network

pytestmark = pytest.mark.shared

UTM50 = "EPSG:32650"


@pytest.fixture(scope="module", params=["guixi_jiangxi.osm.pbf", "beijing_haidian_cau.osm.bz2"])
def osm_file(request: pytest.FixtureRequest, osm_dir: Path) -> Path:
    p = osm_dir / request.param
    assert p.exists(), p
    return p


def _nx(net) -> nx.DiGraph:  # type: ignore[no-untyped-def]
    g = nx.DiGraph()
    for u, v, w, f, b in zip(net.edge_u, net.edge_v, net.edge_length, net.edge_forward, net.edge_backward,
                             strict=True):
        for a, c, ok in ((u, v, f), (v, u, b)):
            if ok and a != c and (not g.has_edge(a, c) or g[a][c]["weight"] > w):
                g.add_edge(int(a), int(c), weight=float(w))
    return g


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_osm_network_is_one_component(osm_file: Path, mode: str) -> None:
    net = load_network(osm_file, mode=mode)
    assert net.n_nodes > 100 and net.n_edges > 100
    assert net.crs.is_projected
    n, _ = connected_components(net.graph, directed=(mode == "drive"), connection="strong")
    assert n == 1
    assert (net.edge_length > 0).all()
    # lengths are metres: an edge's length equals its geometry's length in the metric CRS
    assert np.allclose(net.edge_length, shapely.length(net.edge_geom))
    if mode == "walk":
        assert net.edge_forward.all() and net.edge_backward.all()


def test_beijing_footways_walk_not_drive(osm_dir: Path) -> None:
    walk = load_network(osm_dir / "beijing_haidian_cau.osm.pbf", mode="walk")
    drive = load_network(osm_dir / "beijing_haidian_cau.osm.pbf", mode="drive")
    assert {"footway", "steps"} <= set(walk.edge_highway)
    assert not {"footway", "steps", "path"} & set(drive.edge_highway)
    assert "motorway" not in set(walk.edge_highway)
    # one-way streets make the driving network asymmetric somewhere
    assert (drive.edge_forward != drive.edge_backward).any()


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_node_matrix_equals_networkx(osm_file: Path, mode: str) -> None:
    net = load_network(osm_file, mode=mode)
    g = _nx(net)
    rng = np.random.default_rng(3)
    src = rng.choice(net.n_nodes, 6, replace=False)
    d = net.node_distances(src)
    for row, s in zip(d, src, strict=True):
        ref = nx.single_source_dijkstra_path_length(g, int(s))
        targets = rng.choice(net.n_nodes, 40, replace=False)
        for t in targets:
            assert row[t] == pytest.approx(ref.get(int(t), np.inf), abs=1e-6)


def test_stop_matrix_against_split_graph(osm_file: Path) -> None:
    """Stops split their edges virtually: compare with networkx on a graph where they really split them."""
    net = load_network(osm_file, mode="walk")
    rng = np.random.default_rng(5)
    lo, hi = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    xy = lo + rng.random((25, 2)) * (hi - lo)
    snap = net.snap(xy)
    assert np.allclose(np.hypot(*(snap.xy - xy).T), snap.distance, atol=1e-6)
    paths = net.stop_paths(snap)
    g = _nx(net).to_undirected()
    n = net.n_nodes
    for e in np.unique(snap.edge):
        members = np.flatnonzero(snap.edge == e)
        members = members[np.argsort(snap.offset[members], kind="stable")]
        u, v, length = int(net.edge_u[e]), int(net.edge_v[e]), float(net.edge_length[e])
        seq = [u, *[n + int(m) for m in members], v]
        offs = [0.0, *snap.offset[members].tolist(), length]
        for a, b, s, t in zip(seq[:-1], seq[1:], offs[:-1], offs[1:], strict=True):
            w = max(t - s, 1e-6)
            if not g.has_edge(a, b) or g[a][b]["weight"] > w:
                g.add_edge(a, b, weight=w)
    for i in range(0, 25, 4):
        ref = nx.single_source_dijkstra_path_length(g, n + i)
        for j in range(25):
            assert paths.distance[i, j] == pytest.approx(ref[n + j], abs=1e-3)
    # the reconstructed street path has the matrix's length and runs between the snapped points
    for i, j in [(0, 1), (2, 7), (5, 3)]:
        c = paths.path_coords(i, j)
        assert np.hypot(*np.diff(c, axis=0).T).sum() == pytest.approx(paths.distance[i, j], abs=1e-3)
        assert np.allclose(c[0], snap.xy[i], atol=1e-6) and np.allclose(c[-1], snap.xy[j], atol=1e-6)


def _layer(lines: list[list[tuple[float, float]]], **cols: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=[shapely.LineString(c) for c in lines], crs=UTM50)


def test_near_coincident_ends_are_joined() -> None:
    base = [[(500000, 3000000), (500100, 3000000)], [(500050, 3000001.5), (500050, 3000100)]]
    roads = _layer(base, highway=["residential", "residential"])
    net = build_network(roads, tolerance=2.0)
    assert net.n_edges == 4  # the first street split at the join + connector + the second street
    assert "connector" in set(net.edge_highway)
    assert net.dropped.get("edges", 0) == 0
    apart = build_network(roads, tolerance=0.0)  # no join: two components, linked off the network
    assert apart.linked["components"] == 2 and apart.linked["links"] == 1
    off = apart.edge_highway == OFFNET
    assert off.sum() == 1 and apart.edge_length[off][0] == pytest.approx(1.5)


def test_drive_respects_oneway_and_access() -> None:
    sq = [(0, 0), (100, 0), (100, 100), (0, 100)]
    pts = [(500000 + x, 3000000 + y) for x, y in sq]
    lines = [[pts[k], pts[(k + 1) % 4]] for k in range(4)] + [[pts[0], pts[2]]]
    roads = _layer(lines, highway=["residential"] * 5, oneway=["yes", "yes", "yes", "yes", None],
                   access=[None, None, None, None, "private"])
    drive = build_network(roads, mode="drive")
    snap = drive.snap(np.array([pts[0], pts[1]], dtype=float))
    d = drive.stop_paths(snap).distance
    assert d[0, 1] == pytest.approx(100) and d[1, 0] == pytest.approx(300)
    walk = build_network(roads, mode="walk")
    d = walk.stop_paths(walk.snap(np.array([pts[0], pts[1]], dtype=float))).distance
    assert d[1, 0] == pytest.approx(100)
    assert walk.n_edges == 4  # access=private left out


def test_bad_inputs(tmp_path: Path) -> None:
    roads = _layer([[(500000, 3000000), (501000, 3000000)]], highway=["motorway"], oneway=["no"])
    path = tmp_path / "motorway.geojson"
    roads.to_crs(4326).to_file(path, driver="GeoJSON")
    with pytest.raises(InputError, match=r"motorway\.geojson.*no walkable ways"):
        load_network(path)
    with pytest.raises(SchemaError):
        build_network(roads.drop(columns="highway"))
    with pytest.raises(UsageError):
        build_network(roads, mode="fly")
    with pytest.raises(InputError, match="no drivable ways left"):
        build_network(roads.assign(oneway=[None]), mode="drive")
    net = load_network(path, mode="drive")
    with pytest.raises(InputError, match="stop house-7 is 600 m"):
        net.snap(np.array([[500500.0, 3000600.0]]), names=["house-7"], max_distance=300)


# ------------------------------------------------------------------ noding and components (issue 13)
X0, Y0 = 500000.0, 3000000.0
DAY = dt.date(2024, 5, 6)


def _stops(points: list[tuple[float, float]], priority: str = "yellow") -> list[Stop]:
    """Due stops (never visited) a few metres beside the given street points."""
    return [Stop(f"s{i}", "household", priority, x + 6.0, y + 6.0, f"s{i}") for i, (x, y) in enumerate(points)]


def _plan(net, station: tuple[float, float], stops: list[Stop], budget: float = 240.0):  # type: ignore[no-untyped-def]
    problem = prepare(net, GridStops("g", station, stops), budget_min=budget)
    return plan_day(problem, DAY, budget_min=budget, seed=1, time_limit=1.0)


def test_crossing_roads_without_a_shared_vertex_are_noded() -> None:
    """A 2 km village: an east-west road and a north-south road cross mid-way, drawn without a shared vertex."""
    roads = _layer([[(X0, Y0), (X0 + 2000, Y0)], [(X0 + 1000, Y0 - 1000), (X0 + 1000, Y0 + 1000)],
                    [(X0 + 1500, Y0 - 800), (X0 + 1500, Y0 + 800)]],
                   highway=["residential", "residential", "track"])
    net = build_network(roads)
    assert net.linked["components"] == 1 and net.linked["links"] == 0  # noded: one component, no link needed
    on_road = [(X0 + x, Y0) for x in (100, 400, 700, 1300, 1700, 1900)]
    on_road += [(X0 + 1000, Y0 + y) for y in (-900, -500, -200, 300, 600, 950)]
    on_road += [(X0 + 1500, Y0 + y) for y in (-700, -300, -50, 250, 500, 750)]
    plan = _plan(net, (X0, Y0), _stops(on_road))
    assert plan.due == 18 and len(plan.visits) == 18 and not plan.missed
    # along the streets: out and back on each arm, never a cross-country line
    assert plan.distance_m < 2 * (2000 + 2000 + 1600) + 2 * 18 * 6 * np.sqrt(2) + 1
    assert not plan.off_network
    # the crossing is a node: from the west end to the north end is 1000 + 1000 m
    snap = net.snap(np.array([[X0, Y0], [X0 + 1000, Y0 + 1000]]))
    assert net.stop_paths(snap).distance[0, 1] == pytest.approx(2000.0)


@pytest.mark.parametrize("cols", [{"bridge": [None, "yes", None, None]}, {"layer": [0, 1, 0, 0]},
                                  {"tunnel": ["yes", None, None, None]}])
def test_bridge_tunnel_layer_cross_without_a_junction(cols: dict[str, list[object]]) -> None:
    """A bridge (or tunnel, or line on another layer) over a road meets it only where its ramps land."""
    lines = [[(X0, Y0), (X0 + 1000, Y0)],  # the road below
             [(X0 + 500, Y0 - 300), (X0 + 500, Y0 + 300)],  # the bridge across it
             [(X0 + 500, Y0 + 300), (X0 + 1000, Y0 + 300), (X0 + 1000, Y0)],  # its ramps, down to the road
             [(X0 + 500, Y0 - 300), (X0, Y0 - 300), (X0, Y0)]]
    net = build_network(_layer(lines, highway=["residential"] * 4, **cols))
    assert net.linked["components"] == 1
    # just beside the crossing on the bridge and on the road: 300 + 500 + 300 + 500 m apart on foot
    snap = net.snap(np.array([[X0 + 502, Y0 + 10], [X0 + 510, Y0 - 2]]))
    assert net.edge_u[snap.edge[0]] != net.edge_u[snap.edge[1]]
    d = net.stop_paths(snap).distance[0, 1]
    assert d > 1000
    same_level = build_network(_layer(lines, highway=["residential"] * 4))
    d0 = same_level.stop_paths(same_level.snap(np.array([[X0 + 502, Y0 + 10], [X0 + 510, Y0 - 2]]))).distance[0, 1]
    assert d0 == pytest.approx(20.0, abs=0.1)  # without a level the crossing is a junction


def test_disconnected_components_keep_every_stop_and_report_off_network_legs() -> None:
    """A village street, a hamlet lane 120 m beyond its end, and a house 300 m from any road."""
    lines = [[(X0, Y0), (X0 + 800, Y0)], [(X0 + 920, Y0), (X0 + 1400, Y0)],
             [(X0 + 1000, Y0 + 40), (X0 + 1000, Y0 + 400)]]  # a side lane 40 m off the hamlet lane
    net = build_network(_layer(lines, highway=["residential", "track", "path"]))
    assert net.linked["components"] == 3 and net.linked["links"] == 2
    off = np.sort(net.edge_length[net.edge_highway == OFFNET])
    assert off == pytest.approx([40.0, 120.0])
    assert net.n_edges == len(lines) + 2 + 1  # the hamlet lane split where the side lane's link lands
    houses = [(X0 + 200, Y0), (X0 + 1300, Y0), (X0 + 1000, Y0 + 390)]
    stops = [*_stops(houses), Stop("far", "household", "yellow", X0 + 1100, Y0 - 300, "far")]
    plan = _plan(net, (X0, Y0), stops)
    assert plan.due == 4 and len(plan.visits) == 4 and not plan.missed  # no stop lost
    legs = plan.summary()["off_network"]
    kinds = sorted((leg["kind"], round(leg["length_m"])) for leg in legs)
    # the 120 m link twice (out and back); the 40 m link is under the threshold; the far house's door leg
    assert kinds == [("door", 300), ("link", 120), ("link", 120)]
    assert OFF_NETWORK_REPORT_M == 50.0
    for leg in legs:
        lon, lat = leg["from"]
        assert 116 < lon < 118 and 26 < lat < 28  # WGS84 lon/lat (RFC 7946 order)
    far = next(leg for leg in legs if leg["kind"] == "door")
    assert far["stop"] == "far"
