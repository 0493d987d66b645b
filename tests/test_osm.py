"""Tests for gridgeo.data.osm: real extracts in both formats, crafted files, broken files.

The expected numbers were checked against the data independently of this reader
(grep over the decompressed XML and a plain pyosmium pass), not copied from it.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from gridgeo.data import _osm_collect, osm
from gridgeo.data.osm import OSM_LAYERS, clear_osm_cache, is_osm_path, read_osm, read_osm_layers
from gridgeo.data.schema import normalize
from gridgeo.errors import FileFormatError, UsageError

FORMATS = ("osm.bz2", "osm.pbf")

#: OSM layer -> schema kind whose canonical columns it must carry.
SCHEMA_KIND = {
    "admin": "townships",
    "places": "places",
    "buildings": "buildings",
    "pois": "pois",
    "roads": "roads",
    "water": "water",
}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_osm_cache()


def _extract(osm_dir: Path, stem: str, fmt: str) -> Path:
    path = osm_dir / f"{stem}.{fmt}"
    assert path.exists(), path
    return path


def _check_invariants(layers: dict[str, gpd.GeoDataFrame]) -> None:
    assert list(layers) == list(OSM_LAYERS)
    for name, frame in layers.items():
        assert isinstance(frame, gpd.GeoDataFrame)
        assert frame.crs is not None and frame.crs.to_epsg() == 4326, name
        assert frame["osm_id"].is_unique, name
        assert frame["osm_id"].str.match(r"^[nwr]\d+$").all(), name
        assert "name" in frame.columns
        assert not frame.geometry.isna().any(), name
        assert not frame.geometry.is_empty.any(), name
        assert frame.geometry.is_valid.all(), name
        if name in SCHEMA_KIND:
            # the canonical columns are already there: normalize must not fail
            normalize(frame, SCHEMA_KIND[name])


def _area_km2(geom: shapely.Geometry) -> float:
    area, _ = pyproj.Geod(ellps="WGS84").geometry_area_perimeter(geom)
    return abs(area) / 1e6


# --------------------------------------------------------------------------- suffixes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.osm", True),
        ("a.osm.bz2", True),
        ("a.osm.gz", True),
        ("a.osm.pbf", True),
        ("a.pbf", True),
        ("A.OSM.PBF", True),
        ("dir/b.osm.bz2", True),
        ("a.geojson", False),
        ("a.gpkg", False),
        ("a.bz2", False),
        ("osm", False),
        (".osm", False),
    ],
)
def test_is_osm_path(name: str, expected: bool) -> None:
    assert is_osm_path(name) is expected
    assert is_osm_path(Path(name)) is expected


# --------------------------------------------------------------------------- Guixi


@pytest.mark.shared
@pytest.mark.parametrize("fmt", FORMATS)
def test_guixi(osm_dir: Path, fmt: str) -> None:
    layers = read_osm_layers(_extract(osm_dir, "guixi_jiangxi", fmt))
    _check_invariants(layers)

    # admin: 12 boundary relations in the file, only 东门街道 is complete
    admin = layers["admin"]
    assert len(admin) == 1
    row = admin.iloc[0]
    assert (row.osm_id, row["name"], row.admin_level, row.code) == (
        "r6662718",
        "东门街道",
        8,
        "r6662718",
    )
    assert str(admin["admin_level"].dtype) == "Int64"
    utm_km2 = admin.to_crs(32650).area.iloc[0] / 1e6  # UTM 50N, central meridian 117°E
    assert utm_km2 == pytest.approx(5.65, abs=0.01)
    assert _area_km2(admin.geometry.iloc[0]) == pytest.approx(5.657, abs=0.005)

    places = layers["places"]
    assert len(places) == 25
    assert (places.geom_type == "Point").all()
    assert places["place"].value_counts().to_dict() == {
        "quarter": 16,
        "village": 4,
        "town": 3,
        "city": 1,
        "locality": 1,
    }
    assert places.loc[places["place"] == "quarter", "name"].str.endswith("社区").all()
    assert set(places.loc[places["place"] == "town", "name"]) == {
        "花园街道",
        "雄石街道",
        "东门街道",
    }

    buildings = layers["buildings"]
    assert len(buildings) == 165
    assert set(buildings.geom_type) == {"Polygon"}
    assert buildings["building"].value_counts().to_dict() == {
        "yes": 125,
        "apartments": 36,
        "industrial": 4,
    }
    assert buildings["households"].isna().all()  # no building:flats in this extract

    pois = layers["pois"]
    assert pois["category"].value_counts().to_dict() == {"school": 4, "townhall": 2}
    school_types = pois.loc[pois["category"] == "school"].geom_type.value_counts().to_dict()
    assert school_types == {"Point": 3, "Polygon": 1}
    assert set(pois.loc[pois["category"] == "townhall", "name"]) == {
        "贵溪市人民政府",
        "东门街道办事处",
    }

    assert layers["landuse"]["landuse"].value_counts().to_dict() == {"railway": 3, "industrial": 1}

    roads = layers["roads"]
    assert len(roads) == 176
    assert set(roads.geom_type) == {"LineString"}
    counts = roads["highway"].value_counts()
    assert (counts["residential"], counts["secondary"], counts["tertiary"]) == (47, 44, 28)

    water = layers["water"]
    assert water.geom_type.value_counts().to_dict() == {"Polygon": 9, "LineString": 5}
    assert water.loc[water.geom_type == "LineString", "waterway"].value_counts().to_dict() == {
        "river": 4,
        "canal": 1,
    }
    assert set(water.loc[water.geom_type == "Polygon", "waterway"]) == {"river", "water"}
    assert (water["name"] == "信江").sum() == 3


# --------------------------------------------------------------------------- Beijing


@pytest.mark.shared
@pytest.mark.parametrize("fmt", FORMATS)
def test_beijing(osm_dir: Path, fmt: str) -> None:
    layers = read_osm_layers(_extract(osm_dir, "beijing_haidian_cau", fmt))
    _check_invariants(layers)

    # the one admin relation (矿业大学社区居委会, level 10) lacks members: empty, not an error
    admin = layers["admin"]
    assert admin.empty
    assert list(admin.columns) == ["osm_id", "code", "name", "admin_level", "geometry"]
    assert admin.crs.to_epsg() == 4326

    # 255 closed ways + 2 multipolygon relations + 1 building node = 258 building objects
    buildings = layers["buildings"]
    assert len(buildings) == 258
    assert buildings.geom_type.value_counts().to_dict() == {"Polygon": 257, "Point": 1}
    assert buildings["osm_id"].str[0].value_counts().to_dict() == {"w": 255, "r": 2, "n": 1}
    assert buildings["levels"].notna().sum() == 6
    assert str(buildings["levels"].dtype) == "Int64"

    pois = layers["pois"]
    cats = pois["category"].value_counts().to_dict()
    assert cats == {
        "gated_compound": 10,
        "school": 9,
        "kindergarten": 2,
        "hospital": 2,
        "police": 2,
    }
    assert cats["school"] + cats["kindergarten"] + cats["hospital"] == 13
    compounds = pois[pois["category"] == "gated_compound"]
    # 11 named landuse=residential objects, but relation 14400092 (双泉堡甲2号院) misses
    # way 960940776 in this extract and cannot be assembled
    assert compounds.geom_type.value_counts().to_dict() == {"Polygon": 9, "Point": 1}
    assert {"富润家园", "静淑苑", "石科院生活区", "双泉嘉苑"} <= set(compounds["name"])
    assert "r14400092" not in set(pois["osm_id"])
    assert compounds["name"].notna().all()
    # a hospital tagged both amenity= and healthcare= is one row
    assert pois["osm_id"].is_unique
    assert set(pois.loc[pois["category"] == "hospital", "healthcare"]) == {"hospital"}
    # place=neighbourhood nodes are labels (former villages), not compounds
    assert not (pois["place"] == "neighbourhood").any()
    assert layers["places"]["place"].value_counts().to_dict() == {"neighbourhood": 3}

    landuse = layers["landuse"]
    assert len(landuse) == 26
    assert (landuse["landuse"] == "residential").sum() == 10

    roads = layers["roads"]
    assert len(roads) == 302
    highway = roads["highway"].value_counts()
    assert (highway["footway"], highway["path"], highway["steps"]) == (64, 24, 2)
    assert highway["service"] == 102
    # a closed footway (a crossing drawn as a ring, no area=yes) stays a road
    assert "w1384352282" in set(roads["osm_id"])
    assert {"footway", "service", "oneway", "access"} <= set(roads.columns)
    assert roads["oneway"].notna().any()

    water = layers["water"]
    assert water.geom_type.value_counts().to_dict() == {"LineString": 1, "Polygon": 1}
    assert set(water["waterway"]) == {"river"}


@pytest.mark.shared
@pytest.mark.parametrize("stem", ["guixi_jiangxi", "beijing_haidian_cau"])
def test_formats_agree(osm_dir: Path, stem: str) -> None:
    xml = read_osm_layers(_extract(osm_dir, stem, "osm.bz2"))
    pbf = read_osm_layers(_extract(osm_dir, stem, "osm.pbf"))
    for name in OSM_LAYERS:
        a, b = xml[name], pbf[name]
        assert len(a) == len(b), name
        assert list(a["osm_id"]) == list(b["osm_id"]), name
        attrs = [c for c in a.columns if c != "geometry"]
        assert a[attrs].equals(b[attrs]), name
        assert a.geometry.geom_equals_exact(b.geometry, tolerance=1e-9).all(), name


@pytest.mark.shared
def test_incomplete_relations_are_logged(osm_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gridgeo.data.osm"):
        read_osm_layers(_extract(osm_dir, "guixi_jiangxi", "osm.pbf"))
    text = caplog.text
    assert "admin: skipped 11 relations not assembled" in text
    assert "water: skipped 1 relations not assembled" in text
    assert any(r.levelno == logging.WARNING and "admin" in r.getMessage() for r in caplog.records)
    assert "1 admin, 25 places, 165 buildings" in text


# --------------------------------------------------------------------------- cache


@pytest.mark.shared
def test_cache_parses_once_and_returns_copies(
    osm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _extract(osm_dir, "guixi_jiangxi", "osm.pbf")
    path = tmp_path / src.name
    path.write_bytes(src.read_bytes())
    calls: list[frozenset[str]] = []
    real_parse = osm._parse

    def counting(p: Path, fmt: str, layers: frozenset[str]) -> dict[str, gpd.GeoDataFrame]:
        calls.append(layers)
        return real_parse(p, fmt, layers)

    monkeypatch.setattr(osm, "_parse", counting)
    first = read_osm(path, "buildings")
    first.loc[:, "name"] = "changed"
    for layer in OSM_LAYERS:  # small files: one parse serves every layer
        read_osm(path, layer)
    assert len(calls) == 1
    assert read_osm(path, "buildings")["name"].ne("changed").all()
    # a rewritten file (new mtime) is parsed again
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    read_osm(path, "places")
    assert len(calls) == 2


# --------------------------------------------------------------------------- crafted files

CRAFTED = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="gridgeo-test">
 <node id="1" lat="28.0000" lon="117.0000"/>
 <node id="2" lat="28.0000" lon="117.0010"/>
 <node id="3" lat="28.0010" lon="117.0010"/>
 <node id="4" lat="28.0010" lon="117.0000"/>
 <node id="5" lat="28.0020" lon="117.0010"/>
 <node id="6" lat="28.0020" lon="117.0000"/>
 <node id="7" lat="28.0005" lon="117.0005">
  <tag k="place" v="village"/><tag k="name" v="Huangkeng"/><tag k="name:zh" v="黄坑村"/>
 </node>
 <node id="8" lat="28.0006" lon="117.0006"><tag k="man_made" v="mineshaft"/></node>
 <node id="9" lat="28.0007" lon="117.0007"><tag k="amenity" v="doctors"/></node>
 <way id="10">
  <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="building" v="residential"/><tag k="building:levels" v="6"/>
  <tag k="building:flats" v="24"/><tag k="name" v="1号楼"/>
 </way>
 <way id="11">
  <nd ref="4"/><nd ref="3"/><nd ref="5"/><nd ref="6"/><nd ref="4"/>
  <tag k="building" v="yes"/><tag k="building:levels" v="3;4"/><tag k="addr:flats" v="8"/>
 </way>
 <way id="12"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="building" v="yes"/></way>
 <way id="13"><nd ref="1"/><nd ref="99"/><nd ref="3"/><tag k="highway" v="footway"/></way>
 <way id="14">
  <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="highway" v="pedestrian"/><tag k="area" v="yes"/>
 </way>
 <way id="15">
  <nd ref="1"/><nd ref="2"/><nd ref="5"/>
  <tag k="highway" v="residential"/><tag k="oneway" v="yes"/><tag k="access" v="private"/>
 </way>
 <way id="16">
  <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="landuse" v="quarry"/>
 </way>
 <way id="17">
  <nd ref="4"/><nd ref="3"/><nd ref="5"/><nd ref="6"/><nd ref="4"/>
  <tag k="natural" v="water"/><tag k="water" v="pond"/>
 </way>
 <way id="18"><nd ref="6"/><nd ref="1"/><tag k="waterway" v="stream"/></way>
 <relation id="20">
  <member type="way" ref="10" role="outer"/><member type="way" ref="777" role="outer"/>
  <tag k="type" v="boundary"/><tag k="boundary" v="administrative"/><tag k="admin_level" v="8"/>
 </relation>
 <relation id="21">
  <member type="way" ref="10" role="outer"/><member type="way" ref="11" role="outer"/>
  <tag k="type" v="multipolygon"/><tag k="boundary" v="administrative"/>
  <tag k="admin_level" v="9"/><tag k="name" v="某村"/><tag k="ref" v="360681001001"/>
 </relation>
 <relation id="22">
  <member type="way" ref="16" role="outer"/>
  <tag k="type" v="multipolygon"/><tag k="place" v="neighbourhood"/><tag k="name" v="某小区"/>
 </relation>
</osm>
"""


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    path = tmp_path / "crafted.osm"
    path.write_text(CRAFTED, encoding="utf-8")
    return path


def test_crafted_columns(crafted: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gridgeo.data.osm"):
        layers = read_osm_layers(crafted)
    _check_invariants(layers)

    admin = layers["admin"]
    assert admin[["osm_id", "code", "name", "admin_level"]].values.tolist() == [
        ["r21", "360681001001", "某村", 9]
    ]
    # two adjacent squares, assembled into one 0.001° x 0.002° rectangle
    assert admin.geometry.iloc[0].geom_type == "Polygon"
    assert admin.geometry.iloc[0].area == pytest.approx(2e-6)

    places = layers["places"]
    assert places[["osm_id", "place", "name"]].values.tolist() == [["n7", "village", "黄坑村"]]

    b = layers["buildings"].set_index("osm_id")
    assert list(b.index) == ["w10", "w11"]  # w12 is open
    assert b.loc["w10", "levels"] == 6 and b.loc["w10", "households"] == 24
    assert b.loc["w10", "name"] == "1号楼"
    assert b["levels"].isna()["w11"]  # "3;4" is not a count
    assert b.loc["w11", "households"] == 8  # from addr:flats
    assert b["village"].isna().all()

    pois = layers["pois"].set_index("osm_id")
    assert pois["category"].to_dict() == {
        "n8": "mine",
        "n9": "clinic",
        "w16": "mine",
        "r22": "gated_compound",
    }
    assert pois.loc["w16", "landuse"] == "quarry"

    roads = layers["roads"].set_index("osm_id")
    assert list(roads.index) == ["w15"]  # w13 misses node 99, w14 is an area
    assert (roads.loc["w15", "oneway"], roads.loc["w15", "access"]) == ("yes", "private")
    assert roads["footway"].isna().all()

    water = layers["water"].set_index("osm_id")
    assert water["waterway"].to_dict() == {"w17": "pond", "w18": "stream"}

    text = caplog.text
    assert "admin: skipped 1 relations not assembled" in text
    assert "buildings: skipped 1 ways tagged as areas but not closed" in text
    assert "roads: skipped 1 ways with missing nodes" in text


def test_gzip_and_plain_xml_agree(crafted: Path, tmp_path: Path) -> None:
    gz = tmp_path / "crafted.osm.gz"
    gz.write_bytes(gzip.compress(crafted.read_bytes()))
    bz = tmp_path / "crafted.osm.bz2"
    bz.write_bytes(bz2.compress(crafted.read_bytes()))
    plain = read_osm_layers(crafted)
    for other in (read_osm_layers(gz), read_osm_layers(bz)):
        for name in OSM_LAYERS:
            assert list(plain[name]["osm_id"]) == list(other[name]["osm_id"])


def test_layer_subset_keeps_order(crafted: Path) -> None:
    layers = read_osm_layers(crafted, ["roads", "admin"])
    assert list(layers) == ["roads", "admin"]


def test_empty_osm_document_gives_empty_layers(tmp_path: Path) -> None:
    path = tmp_path / "empty.osm"
    path.write_text('<?xml version="1.0"?>\n<osm version="0.6"></osm>\n', encoding="utf-8")
    layers = read_osm_layers(path)
    assert all(frame.empty for frame in layers.values())
    assert list(layers["buildings"].columns) == [
        "osm_id",
        "building",
        "levels",
        "households",
        "village",
        "name",
        "geometry",
    ]


def test_invalid_polygons_are_repaired(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # libosmium refuses most broken rings itself, so feed a bow-tie straight to the frame builder
    collector = _osm_collect.Collector(frozenset({"buildings"}))
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    assert not bowtie.is_valid
    row = {"osm_id": "w1", "building": "yes", "levels": None, "households": None}
    collector._add(
        "buildings", shapely.to_wkb(bowtie, hex=True), {**row, "village": None, "name": None}
    )
    collector._add(
        "buildings",
        shapely.to_wkb(shapely.MultiPolygon([shapely.box(0, 0, 1, 1)]), hex=True),
        {**row, "osm_id": "w2", "village": None, "name": None},
    )
    with caplog.at_level(logging.INFO, logger="gridgeo.data.osm"):
        frame = osm._frame("buildings", collector, tmp_path / "x.osm")
    assert "repaired 1 invalid geometries" in caplog.text
    assert frame.geometry.is_valid.all()
    assert set(frame.geom_type) <= {"Polygon", "MultiPolygon"}
    assert frame.geometry.iloc[0].area == pytest.approx(0.5)
    assert frame.geometry.iloc[1].geom_type == "Polygon"  # single-part multipolygons unwrapped
    assert np.array_equal(frame["osm_id"].to_numpy(), np.array(["w1", "w2"], dtype=object))


# --------------------------------------------------------------------------- errors


def _assert_names(err: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    text = str(err.value)
    assert str(path) in text
    assert "\n" not in text


@pytest.mark.shared
def test_truncated_bz2(osm_dir: Path, tmp_path: Path) -> None:
    data = _extract(osm_dir, "guixi_jiangxi", "osm.bz2").read_bytes()
    path = tmp_path / "half.osm.bz2"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError) as err:
        read_osm(path, "buildings")
    _assert_names(err, path)
    assert "bzip2" in str(err.value)


@pytest.mark.shared
def test_truncated_pbf(osm_dir: Path, tmp_path: Path) -> None:
    data = _extract(osm_dir, "guixi_jiangxi", "osm.pbf").read_bytes()
    path = tmp_path / "half.osm.pbf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError) as err:
        read_osm_layers(path)
    _assert_names(err, path)


def test_truncated_plain_xml(crafted: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.osm"
    path.write_text(CRAFTED[: len(CRAFTED) // 2], encoding="utf-8")
    with pytest.raises(FileFormatError) as err:
        read_osm(path, "roads")
    _assert_names(err, path)


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("garbage.osm", b"hello <garbage> &&& not xml"),
        ("html.osm", b"<html><body>not osm</body></html>"),
        ("empty.osm.pbf", b""),
        ("empty.osm", b""),
        ("empty.osm.bz2", b""),
        ("random.pbf", bytes(range(256)) * 8),
        ("notgzip.osm.gz", b"this is not gzip"),
        ("xml_in_pbf.osm.pbf", CRAFTED.encode()),
    ],
)
def test_malformed_files(tmp_path: Path, filename: str, content: bytes) -> None:
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(FileFormatError) as err:
        read_osm_layers(path)
    _assert_names(err, path)
    assert isinstance(err.value.__cause__, RuntimeError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.osm.pbf"
    with pytest.raises(FileFormatError) as err:
        read_osm(path, "buildings")
    _assert_names(err, path)
    assert "no such file" in str(err.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.osm"
    path.mkdir()
    with pytest.raises(FileFormatError) as err:
        read_osm(path, "buildings")
    _assert_names(err, path)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.geojson"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(FileFormatError) as err:
        read_osm(path, "buildings")
    _assert_names(err, path)


def test_unknown_layer(crafted: Path) -> None:
    with pytest.raises(UsageError) as err:
        read_osm(crafted, "villages")
    assert "villages" in str(err.value) and "buildings" in str(err.value)
    _assert_names(err, crafted)
    with pytest.raises(UsageError):
        read_osm_layers(crafted, "roads")  # a bare string is not a list of layers
    # the layer name is checked before the file: a bad layer on a missing file is a usage error
    with pytest.raises(UsageError):
        read_osm(crafted.with_name("missing.osm"), "nope")
