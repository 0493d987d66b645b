"""Tests of the synthetic county generator (gridgeo.synth).

Small counties keep the file fast; the properties checked are the ones the
rest of gridgeo relies on: exact tiling (also after reprojection), codes,
household totals, buildings inside their village, validity, determinism, and
an atomic GeoPackage writer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridgeo.data.crs import cgcs2000_gk_epsg
from gridgeo.errors import UsageError
from gridgeo.synth import INDUSTRIES, LAYERS, POI_CATEGORIES, synth_county, write_county

METRIC = cgcs2000_gk_epsg(117.2)  # the zone the default centre is generated in (EPSG:4548)
SMALL: dict[str, Any] = {"seed": 11, "townships": 6, "villages": 60, "households": 6000}
ROAD_CLASSES = {"primary", "secondary", "tertiary", "unclassified", "residential", "track", "path"}


@pytest.fixture(scope="module")
def county() -> dict[str, gpd.GeoDataFrame]:
    return synth_county(**SMALL)


@pytest.fixture(scope="module")
def metric(county: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """The three tiling layers back in the metric CRS, where areas are in m2."""
    return {k: county[k].to_crs(METRIC) for k in ("townships", "villages", "villager_groups")}


@pytest.fixture(scope="module")
def sample() -> dict[str, gpd.GeoDataFrame]:
    """A county of the committed sample's size (the default arguments)."""
    return synth_county(seed=7)


def _same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> bool:
    """Equal attributes and bit-identical geometries."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    attrs = a.drop(columns=a.geometry.name).equals(b.drop(columns=b.geometry.name))
    return attrs and shapely.to_wkb(a.geometry.values).tolist() == shapely.to_wkb(b.geometry.values).tolist()


# ---------------------------------------------------------------- layers, CRS, validity


def test_all_layers_in_cgcs2000_geographic(county: dict[str, gpd.GeoDataFrame]) -> None:
    assert tuple(county) == LAYERS
    for name, gdf in county.items():
        assert gdf.crs is not None and gdf.crs.to_epsg() == 4490, name
        assert len(gdf) > 0, name


@pytest.mark.parametrize(
    ("layer", "geom_type"),
    [
        ("townships", "Polygon"),
        ("villages", "Polygon"),
        ("villager_groups", "Polygon"),
        ("buildings", "Polygon"),
        ("roads", "LineString"),
        ("water", "LineString"),
        ("pois", "Point"),
    ],
)
def test_geometries_valid_single_type(county: dict[str, gpd.GeoDataFrame], layer: str, geom_type: str) -> None:
    geoms = county[layer].geometry.values
    assert set(county[layer].geom_type) == {geom_type}
    assert shapely.is_valid(geoms).all()
    assert not shapely.is_empty(geoms).any()


def test_columns(county: dict[str, gpd.GeoDataFrame]) -> None:
    expected = {
        "townships": {"code", "name", "kind", "households", "population"},
        "villages": {"code", "name", "township", "kind", "industry", "population", "households"},
        "villager_groups": {"code", "name", "village", "households"},
        "buildings": {"households", "levels", "village"},
        "roads": {"highway", "name"},
        "water": {"waterway", "name"},
        "pois": {"category", "name", "village"},
    }
    for layer, cols in expected.items():
        assert cols <= set(county[layer].columns), layer


def test_lon_lat_axis_order(county: dict[str, gpd.GeoDataFrame]) -> None:
    """GDAL writes EPSG:4490 as lon/lat: x near the requested longitude."""
    x0, y0, x1, y1 = county["townships"].total_bounds
    assert 116.0 < x0 < x1 < 118.5
    assert 27.0 < y0 < y1 < 29.5


# ---------------------------------------------------------------- determinism


def test_same_seed_same_county(county: dict[str, gpd.GeoDataFrame]) -> None:
    again = synth_county(**SMALL)
    for name in LAYERS:
        assert _same(county[name], again[name]), name


def test_different_seed_different_county(county: dict[str, gpd.GeoDataFrame]) -> None:
    other = synth_county(**{**SMALL, "seed": SMALL["seed"] + 1})
    assert not _same(county["villages"], other["villages"])
    assert not _same(county["buildings"], other["buildings"])


# ---------------------------------------------------------------- exact tiling


def test_villages_tile_townships_exactly(metric: dict[str, gpd.GeoDataFrame]) -> None:
    townships, villages = metric["townships"], metric["villages"]
    summed = villages.area.groupby(villages["township"]).sum()
    area = townships.set_index("code").area
    assert (summed.reindex(area.index) - area).abs().max() < 1.0
    for code, twp in townships.set_index("code").geometry.items():
        union = shapely.coverage_union_all(villages.geometry[villages["township"] == code].values)
        assert shapely.symmetric_difference(union, twp).area < 1.0, code


def test_groups_tile_villages_exactly(metric: dict[str, gpd.GeoDataFrame]) -> None:
    villages, groups = metric["villages"], metric["villager_groups"]
    summed = groups.area.groupby(groups["village"]).sum()
    area = villages.set_index("code").area
    assert (summed.reindex(area.index) - area).abs().max() < 1.0


@pytest.mark.parametrize("layer", ["townships", "villages", "villager_groups"])
def test_no_overlaps(metric: dict[str, gpd.GeoDataFrame], layer: str) -> None:
    geoms = metric[layer].geometry.values
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = i < j
    overlap = shapely.area(shapely.intersection(geoms[i[pairs]], geoms[j[pairs]]))
    assert overlap.max(initial=0.0) < 1e-3


@pytest.mark.parametrize("layer", ["townships", "villages", "villager_groups"])
def test_shared_edges_identical_after_reprojection(county: dict[str, gpd.GeoDataFrame], layer: str) -> None:
    """GEOS' coverage check: no overlaps and every shared edge has the same vertices on both sides."""
    assert shapely.coverage_is_valid(county[layer].geometry.values)


def test_townships_tile_one_county(county: dict[str, gpd.GeoDataFrame]) -> None:
    """The townships' union is one polygon without holes: no gaps inside the county."""
    outline = shapely.coverage_union_all(county["townships"].geometry.values)
    assert outline.geom_type == "Polygon" and len(outline.interiors) == 0


def test_no_slivers(metric: dict[str, gpd.GeoDataFrame]) -> None:
    assert metric["villages"].area.min() > 100_000  # 10 ha
    assert metric["villager_groups"].area.min() > 1_000


# ---------------------------------------------------------------- codes and names


def test_codes(county: dict[str, gpd.GeoDataFrame]) -> None:
    t, v, g = county["townships"], county["villages"], county["villager_groups"]
    assert t["code"].str.fullmatch(r"369900\d{3}").all()
    assert v["code"].str.fullmatch(r"\d{12}").all()
    assert g["code"].str.fullmatch(r"\d{14}").all()
    for gdf in (t, v, g):
        assert gdf["code"].is_unique
    assert (v["code"].str[:9] == v["township"]).all()
    assert set(v["township"]) == set(t["code"])
    assert (g["code"].str[:12] == g["village"]).all()
    assert set(g["village"]) == set(v["code"])
    # communities (居委会) 001-199, villages (村委会) from 200, as in statistical codes
    num = v["code"].str[9:].astype(int)
    assert (num[v["kind"] == "urban"] < 200).all()
    assert (num[v["kind"] == "rural"] >= 200).all()


def test_township_codes_roll_over_past_999() -> None:
    from gridgeo.synth._names import division_codes
    from gridgeo.synth._tiling import GroupTiles, Tiling, TownshipTiles, VillageTiles

    n = 1001
    xy = np.c_[np.arange(n, dtype=float), np.zeros(n)]
    square = shapely.box(0, 0, 1, 1)
    polys = np.array([square] * n, dtype=object)
    tiling = Tiling(
        townships=TownshipTiles(kind=np.zeros(n, dtype=np.int64), seat=xy, poly=polys),
        villages=VillageTiles(
            centre=xy, urban=np.ones(n, bool), town=np.arange(n), poly=polys, main_group=np.arange(n)
        ),
        groups=GroupTiles(xy=xy, village=np.arange(n), poly=polys),
        county=square,
    )
    codes = division_codes("369900", tiling)
    assert codes.township[0] == "369900001"
    assert codes.township[998] == "369900999"
    assert codes.township[999] == "369901001"
    assert len(set(codes.township)) == n


def test_names(county: dict[str, gpd.GeoDataFrame]) -> None:
    t, v, g = county["townships"], county["villages"], county["villager_groups"]
    assert t["name"].is_unique and v["name"].is_unique
    assert t["name"].str.contains(r"(?:街道|镇|乡)$").all()
    assert (t["name"].str.endswith("街道") == (t["kind"] == "subdistrict")).all()
    assert v.loc[v["kind"] == "urban", "name"].str.endswith("社区").all()
    assert v.loc[v["kind"] == "rural", "name"].str.endswith("村").all()
    assert g["name"].str.fullmatch(r"第[一二三四五六七八九十]+(村民|居民)小组").all()


# ---------------------------------------------------------------- households and attributes


def test_households_add_up(county: dict[str, gpd.GeoDataFrame]) -> None:
    t, v, g, b = (county[k] for k in ("townships", "villages", "villager_groups", "buildings"))
    assert int(b["households"].sum()) == SMALL["households"]
    per_village = b.groupby("village")["households"].sum().reindex(v["code"]).fillna(0)
    assert (per_village.to_numpy() == v["households"].to_numpy()).all()
    assert (g.groupby("village")["households"].sum().reindex(v["code"]).to_numpy() == v["households"].to_numpy()).all()
    assert (v.groupby("township")["households"].sum().reindex(t["code"]).to_numpy() == t["households"].to_numpy()).all()
    assert (v["households"] >= 1).all()
    ratio = v["population"] / v["households"]
    assert ratio.between(2.4, 3.6).all()


def test_buildings_inside_their_village(county: dict[str, gpd.GeoDataFrame]) -> None:
    villages = county["villages"].set_index("code").geometry
    b = county["buildings"]
    assert shapely.within(b.geometry.values, villages.loc[b["village"]].values).all()


def test_buildings_do_not_overlap(county: dict[str, gpd.GeoDataFrame]) -> None:
    geoms = county["buildings"].geometry.values
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    assert (i == j).all()


def test_building_attributes(county: dict[str, gpd.GeoDataFrame]) -> None:
    b = county["buildings"].merge(county["villages"][["code", "kind"]], left_on="village", right_on="code")
    rural, urban = b[b["kind"] == "rural"], b[b["kind"] == "urban"]
    assert rural["levels"].between(1, 3).all()
    assert (rural["households"] <= 3).all() and rural["households"].median() == 1
    assert urban["levels"].between(2, 18).all()
    assert urban["households"].max() >= 20  # apartment blocks among the shophouses


def test_village_attributes(county: dict[str, gpd.GeoDataFrame], metric: dict[str, gpd.GeoDataFrame]) -> None:
    v, g = county["villages"], county["villager_groups"]
    assert set(v["kind"]) == {"urban", "rural"}
    assert set(v["industry"]) <= set(INDUSTRIES)
    n_groups = g.groupby("village").size().reindex(v["code"]).to_numpy()
    assert (n_groups[(v["kind"] == "rural").to_numpy()] >= 3).all()
    assert (n_groups[(v["kind"] == "rural").to_numpy()] <= 12).all()
    assert (n_groups[(v["kind"] == "urban").to_numpy()] >= 2).all()
    assert (n_groups[(v["kind"] == "urban").to_numpy()] <= 6).all()
    per_township = v.groupby("township").size()
    assert per_township.nunique() > 1  # not all townships equal
    area = metric["villages"].area.to_numpy()
    urban = (metric["villages"]["kind"] == "urban").to_numpy()
    assert np.median(area[urban]) * 3 < np.median(area[~urban])


def test_roads_water_pois(county: dict[str, gpd.GeoDataFrame]) -> None:
    roads, water, pois = county["roads"], county["water"], county["pois"]
    assert set(roads["highway"]) <= ROAD_CLASSES
    assert {"primary", "tertiary", "residential", "track"} <= set(roads["highway"])
    assert set(water["waterway"]) == {"river", "stream"}
    assert set(pois["category"]) <= set(POI_CATEGORIES)
    assert {"school", "kindergarten", "hospital", "clinic", "gated_compound"} <= set(pois["category"])
    hospitals = pois.loc[pois["category"] == "hospital", "village"].str[:9]
    assert set(hospitals) == set(county["townships"]["code"])  # a hospital per township seat
    villages = county["villages"].set_index("code").geometry
    assert shapely.within(pois.geometry.values, villages.loc[pois["village"]].values).all()
    compounds = pois.loc[pois["category"] == "gated_compound", "village"]
    kinds = county["villages"].set_index("code")["kind"]
    assert (kinds.loc[compounds] == "urban").all()


def test_road_network_connected(county: dict[str, gpd.GeoDataFrame]) -> None:
    """Apart from town street grids, roads meet at shared vertices: seats, village centres, hamlets."""
    import networkx as nx

    roads = county["roads"]
    streets = roads["highway"].eq("residential") & roads["name"].notna()
    graph = nx.Graph()
    for geom in roads.geometry[~streets].values:
        nx.add_path(graph, map(tuple, shapely.get_coordinates(geom)))
    largest = max(nx.connected_components(graph), key=len)
    assert len(largest) >= 0.99 * graph.number_of_nodes()


def test_sample_size_county_is_plausible(sample: dict[str, gpd.GeoDataFrame]) -> None:
    v = sample["villages"].to_crs(METRIC)
    per_village_km2 = v.area.sum() / 1e6 / len(v)
    assert 8.0 <= per_village_km2 <= 12.0
    assert len(sample["townships"]) == 23 and len(v) == 220
    assert int(sample["buildings"]["households"].sum()) == 60_000
    assert (sample["townships"]["kind"] == "subdistrict").sum() == 1
    seat = sample["villages"][sample["villages"]["township"] == sample["townships"]["code"].iloc[0]]
    assert (seat["kind"] == "urban").mean() > 0.5  # the county seat is mostly urban communities
    assert "mine" in set(sample["pois"]["category"])


@pytest.mark.parametrize(
    "args",
    [
        {"seed": 1, "townships": 1, "villages": 1, "households": 1},
        {"seed": 2, "townships": 3, "villages": 3, "households": 3},
        {"seed": 3, "townships": 1, "villages": 12, "households": 5000},
    ],
)
def test_tiny_counties(args: dict[str, Any]) -> None:
    layers = synth_county(**args)
    assert len(layers["townships"]) == args["townships"]
    assert len(layers["villages"]) == args["villages"]
    assert int(layers["buildings"]["households"].sum()) == args["households"]
    for gdf in layers.values():
        assert shapely.is_valid(gdf.geometry.values).all()
    assert shapely.coverage_is_valid(layers["villager_groups"].geometry.values)


def _pieces_per_label(labels: np.ndarray, i: np.ndarray, j: np.ndarray) -> dict[int, int]:
    """How many connected pieces each label has, in the parcel graph with edges ``i``-``j``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    same = labels[i] == labels[j]
    n = len(labels)
    _, comp = connected_components(coo_matrix((np.ones(int(same.sum())), (i[same], j[same])), shape=(n, n)))
    return {int(lab): len(np.unique(comp[labels == lab])) for lab in np.unique(labels)}


@pytest.mark.parametrize("domain", [False, True])
def test_contiguity_repair_ends_when_strays_trade_labels(domain: bool) -> None:
    """Two stray pieces that border each other more than anything else must not trade labels forever.

    The shape behind ``synth --seed 10 --townships 100 --villages 2000 --households 560000`` failing in
    the warp (``invalid shape`` in ``_smooth_shared``): in one village, a stray parcel of group A and a
    stray piece of group B bordered each other most, so every round of the repair swapped their labels
    and after 100 rounds both groups were still in two pieces -- a MultiPolygon group reached the warp.
    Here: parcels 0-1 are A's main piece, 2-3 B's, 6-7 C's; parcel 4 (A) and parcel 5 (B) are strays
    that touch each other (length 10) and C (length 1), never their own main piece.
    """
    from gridgeo.synth._tiling import _Edges, _fix_contiguity

    pairs = np.array([[0, 1], [2, 3], [6, 7], [1, 6], [3, 7], [4, 5], [4, 6], [5, 6]])
    length = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 1.0, 1.0])
    edges = _Edges(i=pairs[:, 0], j=pairs[:, 1], length=length)
    labels = np.array([0, 0, 1, 1, 0, 1, 2, 2])
    fixed = _fix_contiguity(labels, edges, 3, domain=np.zeros(8, dtype=np.int64) if domain else None)
    assert set(_pieces_per_label(fixed, pairs[:, 0], pairs[:, 1]).values()) == {1}
    assert fixed[[0, 1, 2, 3, 6, 7]].tolist() == [0, 0, 1, 1, 2, 2]  # main pieces never move
    assert fixed[[4, 5]].tolist() == [2, 2]  # the strays join the main piece they touch


def test_county_whose_group_strays_traded_labels() -> None:
    """The smallest county found with the trading strays of the test above: it used to die in the warp."""
    layers = synth_county(seed=19, townships=10, villages=200, households=200)
    groups = layers["villager_groups"].geometry.values
    assert (shapely.get_type_id(groups) == shapely.GeometryType.POLYGON).all()
    assert shapely.coverage_is_valid(groups)
    assert len(layers["villages"]) == 200


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "override",
    [
        {"townships": 0},
        {"villages": 5, "townships": 6},
        {"households": 59, "villages": 60},
        {"seed": -1},
        {"seed": 1.5},
        {"townships": True},
        {"villages": "60"},
        {"county_code": "36990"},
        {"county_code": 369900},
        {"county_code": "36990A"},
        {"center": (10.0, 28.0)},
        {"center": (117.0, 70.0)},
        {"center": "117,28"},
        {"center": (73.5, 39.0)},  # passes the centre check, but rounds to the 72E meridian: no zone
        {"villages": 4000, "townships": 6},
        {"households": 10**8},
        {"county_code": "999999", "townships": 1000, "villages": 1000, "households": 1000},
    ],
)
def test_bad_arguments_raise_usage_error(override: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        synth_county(**{**SMALL, **override})  # type: ignore[arg-type]


def test_drawn_in_the_packages_gauss_krueger_zone(county: dict[str, gpd.GeoDataFrame]) -> None:
    """synth draws in the zone gridgeo.data.crs picks (one rule for the CGCS2000 3-degree zones)."""
    assert county["villages"].attrs["GRIDGEO_METRIC_CRS"] == f"EPSG {METRIC}"
    assert METRIC == 4548
    assert cgcs2000_gk_epsg(75.0) == 4534
    assert cgcs2000_gk_epsg(135.0) == 4554
    assert cgcs2000_gk_epsg(118.6) == 4549
    with pytest.raises(ValueError, match="outside"):
        cgcs2000_gk_epsg(20.0)


def test_metadata(county: dict[str, gpd.GeoDataFrame]) -> None:
    meta = county["townships"].attrs
    assert meta["GRIDGEO_SYNTHETIC"] == "yes"
    assert meta["GRIDGEO_GENERATOR"] == "gridgeo.synth.synth_county"
    assert meta["GRIDGEO_ARGUMENTS"] == (
        "seed 11, townships 6, villages 60, households 6000, county_code 369900, center 117.2 28.25"
    )
    assert meta["GRIDGEO_COUNTY"].endswith("县")
    assert all(gdf.attrs == meta for gdf in county.values())


# ---------------------------------------------------------------- write_county


def test_write_county_round_trip(county: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    out = tmp_path / "county.gpkg"
    write_county(county, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["county.gpkg"]  # no temp file left
    listed = pyogrio.list_layers(out)
    assert [str(name) for name in listed[:, 0]] == list(LAYERS)
    for name in LAYERS:
        back = gpd.read_file(out, layer=name, engine="pyogrio")
        assert len(back) == len(county[name]), name
        assert back.crs.to_epsg() == 4490, name
        cols = [c for c in county[name].columns if c != "geometry"]
        pd.testing.assert_frame_equal(
            back[cols].reset_index(drop=True), county[name][cols].reset_index(drop=True),
            check_dtype=False,
        )
        assert shapely.equals_exact(back.geometry.values, county[name].geometry.values, tolerance=1e-9).all()
    meta = pyogrio.read_info(out, layer="villages")["layer_metadata"]
    assert meta["GRIDGEO_SYNTHETIC"] == "yes"


def test_write_county_replaces_existing_file(county: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    out = tmp_path / "county.gpkg"
    out.write_bytes(b"old and broken")
    write_county({"villages": county["villages"]}, out)
    assert [str(n) for n in pyogrio.list_layers(out)[:, 0]] == ["villages"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["county.gpkg"]


def test_write_county_is_atomic(
    county: dict[str, gpd.GeoDataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "county.gpkg"
    write_county({"townships": county["townships"]}, out)
    before = out.read_bytes()
    real = pyogrio.write_dataframe
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    with pytest.raises(OSError, match="disk full"):
        write_county(county, out)
    assert out.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["county.gpkg"]  # and no half-written file


def test_write_county_bad_arguments(county: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        write_county({}, tmp_path / "x.gpkg")
    with pytest.raises(UsageError):
        write_county(county, tmp_path / "missing" / "x.gpkg")
    with pytest.raises(UsageError):
        write_county({"villages": pd.DataFrame({"a": [1]})}, tmp_path / "x.gpkg")  # type: ignore[dict-item]
    assert not any(tmp_path.iterdir())
    (tmp_path / "adir").mkdir()
    with pytest.raises(UsageError):
        write_county(county, tmp_path / "adir")
    assert [p.name for p in tmp_path.iterdir()] == ["adir"]


def test_progress_bar_can_be_shown(capsys: pytest.CaptureFixture[str]) -> None:
    synth_county(seed=5, townships=1, villages=2, households=10, progress=True)
    assert re.search(r"synth", capsys.readouterr().err)


def test_bundled_sample_is_what_make_sample_regenerates() -> None:
    """``boundaries/sample_county.gpkg`` equals ``synth --seed 7 ... --households 60000`` to the byte.

    Guards against an innocent-looking change to the generator (a buffer's default segment count)
    silently drifting the sample that ``make run`` and the tests build on.
    """
    sample = Path(__file__).resolve().parents[1] / "boundaries" / "sample_county.gpkg"
    fresh = synth_county(seed=7, townships=23, villages=220, households=60_000)
    for name, _ in pyogrio.list_layers(sample):
        old = gpd.read_file(sample, layer=name)
        new = fresh[name].to_crs(old.crs)
        assert len(old) == len(new), name
        assert all(a.wkb == b.wkb for a, b in zip(old.geometry, new.geometry, strict=True)), name
