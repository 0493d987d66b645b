"""Tests for gridgeo.data.inputs: a county's input layers from real and crafted OSM extracts.

Expected values come from the data, checked apart from this code: the Guixi
township and its 社区 place nodes (README of ../shared and a plain containment
test here), the Beijing compounds and schools (grep over the decompressed XML).
"""

from __future__ import annotations

import logging
from itertools import combinations
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgeo.data.crs import metric_crs
from gridgeo.data.inputs import INPUT_LAYERS, county_from_osm, header_bounds
from gridgeo.data.inputs._kinds import village_kind
from gridgeo.data.osm import clear_osm_cache, read_osm_layers
from gridgeo.data.schema import normalize
from gridgeo.errors import FileFormatError, UsageError

GUIXI_COMMUNITIES = {"发电厂社区", "木丝岭社区", "城北社区", "烧箕山社区", "江边社区", "雄石社区", "信江社区"}
BEIJING_COMPOUNDS = {
    "富润家园", "石科院生活区", "农大小区-北区", "清华东路27号院", "静淑苑", "中建壹品·学府公馆",
    "双泉嘉苑", "学士居", "大华花园别墅",
    "双泉堡甲2号院",  # a multipolygon with one of its two outer ways outside the extract
    "中国农业大学图书馆（东区）",  # a node tagged landuse=residential + name
}
BEIJING_BOX = (116.34403, 39.99767, 116.35974, 40.00888)


@pytest.fixture(scope="module")
def guixi(osm_dir: Path) -> dict[str, gpd.GeoDataFrame]:
    return county_from_osm(osm_dir / "guixi_jiangxi.osm.pbf", county_code="360681")


@pytest.fixture(scope="module")
def beijing_xml(osm_dir: Path) -> dict[str, gpd.GeoDataFrame]:
    return county_from_osm(osm_dir / "beijing_haidian_cau.osm.bz2", county_code="110108")


@pytest.fixture(scope="module")
def beijing_pbf(osm_dir: Path) -> dict[str, gpd.GeoDataFrame]:
    return county_from_osm(osm_dir / "beijing_haidian_cau.osm.pbf")


# --------------------------------------------------------------------------- helpers


def _check_layers(layers: dict[str, gpd.GeoDataFrame]) -> None:
    """What every result must satisfy, whatever the extract."""
    assert tuple(layers) == INPUT_LAYERS
    for name, frame in layers.items():
        assert frame.crs is not None and frame.crs.to_epsg() == 4326, name
        assert frame.geometry.is_valid.all(), name
        assert not frame.geometry.is_empty.any(), name
    kinds = {"townships": "townships", "villages": "villages", "buildings": "buildings",
             "roads": "roads", "water": "water", "pois": "pois"}
    for name, kind in kinds.items():
        normalize(layers[name], kind)  # the canonical columns are present
    townships, villages = layers["townships"], layers["villages"]
    assert townships["code"].is_unique and villages["code"].is_unique
    assert villages["code"].str.fullmatch(r"\d{12}").all()
    assert set(villages["township"]) <= set(townships["code"])
    for code in townships["code"]:
        assert villages["code"].str.startswith(code).sum() == (villages["township"] == code).sum()
    assert set(villages["kind"]) <= {"urban", "rural"}
    assert set(townships["kind"]) <= {"subdistrict", "town", "township"}
    known = set(villages["code"])
    for name in ("buildings", "pois"):
        assert set(layers[name]["village"].dropna()) <= known, name
    _check_tiling(townships, villages)


def _check_tiling(townships: gpd.GeoDataFrame, villages: gpd.GeoDataFrame) -> None:
    """Villages tile their township exactly, measured in the metric CRS."""
    crs = metric_crs(townships)
    tm, vm = townships.to_crs(crs), villages.to_crs(crs)
    for code, township in zip(tm["code"], tm.geometry, strict=True):
        mine = vm[vm["township"] == code].geometry.to_numpy()
        union = shapely.union_all(mine)
        assert abs(union.area - township.area) < 1.0, code
        assert shapely.symmetric_difference(union, township).area < 1.0, code
        assert abs(shapely.area(mine).sum() - township.area) < 1.0, code
        for a, b in combinations(mine, 2):
            assert shapely.intersection(a, b).area < 1.0, code


def _rep_points(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(shapely.point_on_surface(frame.geometry.to_numpy()))


# --------------------------------------------------------------------------- Guixi


def test_guixi_township(guixi: dict[str, gpd.GeoDataFrame]) -> None:
    _check_layers(guixi)
    townships = guixi["townships"]
    assert len(townships) == 1
    row = townships.iloc[0]
    assert (row["name"], row["kind"], row["code"], row["admin_level"]) == (
        "东门街道", "subdistrict", "360681001", 8,
    )
    area_km2 = townships.to_crs(metric_crs(townships)).area.iloc[0] / 1e6
    assert area_km2 == pytest.approx(5.65, abs=0.02)


def test_guixi_villages(osm_dir: Path, guixi: dict[str, gpd.GeoDataFrame]) -> None:
    villages = guixi["villages"]
    # Independently: the village-level place nodes inside the admin polygon.
    raw = read_osm_layers(osm_dir / "guixi_jiangxi.osm.pbf", ["admin", "places"])
    admin = raw["admin"].geometry.iloc[0]
    places = raw["places"]
    inside = places[places.within(admin) & places["place"].isin(["quarter", "village"])]
    assert set(inside["name"]) == GUIXI_COMMUNITIES
    assert sorted(villages["name"]) == sorted(GUIXI_COMMUNITIES)
    assert (villages["kind"] == "urban").all()  # all 社区
    assert list(villages["code"]) == [f"360681001{i:03d}" for i in range(1, 8)]
    # every place node lies in its own village
    by_id = places.set_index("osm_id").geometry
    for osm_id, geom in zip(villages["osm_id"], villages.geometry, strict=True):
        assert geom.covers(by_id[osm_id])
    # no OSM households anywhere: households stay unknown, not zero
    assert villages["households"].isna().all()


def test_guixi_buildings_and_pois(guixi: dict[str, gpd.GeoDataFrame]) -> None:
    buildings, pois = guixi["buildings"], guixi["pois"]
    township = guixi["townships"].geometry.iloc[0]
    assert len(buildings) == 165  # kept whole, also outside the township
    inside = shapely.contains(township, _rep_points(buildings))
    assert buildings["village"][inside].notna().all()
    assert buildings["village"][~inside].isna().all()
    assert 0 < inside.sum() < len(buildings)
    assert (pois["category"] == "school").sum() == 4
    assert pois.loc[pois["name"] == "东门街道办事处", "village"].notna().all()
    assert {"highway", "name", "osm_id"} <= set(guixi["roads"].columns)
    assert {"waterway", "name", "osm_id"} <= set(guixi["water"].columns)
    assert len(guixi["roads"]) == 176 and len(guixi["water"]) == 14


# --------------------------------------------------------------------------- Beijing


def test_beijing_bounds_township(beijing_xml: dict[str, gpd.GeoDataFrame]) -> None:
    _check_layers(beijing_xml)
    townships = beijing_xml["townships"]
    assert len(townships) == 1
    row = townships.iloc[0]
    assert row["name"] == "beijing_haidian_cau"
    assert row["code"] == "110108001"
    assert pd.isna(row["admin_level"])
    # the header's <bounds> box, with the road crossings as extra vertices
    assert np.allclose(row.geometry.bounds, BEIJING_BOX, atol=1e-9)
    assert row.geometry.area == pytest.approx(shapely.box(*BEIJING_BOX).area, rel=1e-9)
    # three place=neighbourhood nodes -> urban villages -> a subdistrict
    assert row["kind"] == "subdistrict"
    villages = beijing_xml["villages"]
    assert sorted(villages["name"]) == sorted(["石板房", "双泉堡", "娘娘庙"])
    assert (villages["kind"] == "urban").all()


def test_beijing_pois_and_roads(beijing_xml: dict[str, gpd.GeoDataFrame]) -> None:
    pois = beijing_xml["pois"]
    compounds = pois[pois["category"] == "gated_compound"]
    assert set(compounds["name"]) == BEIJING_COMPOUNDS
    assert len(compounds) == 11
    salvaged = compounds[compounds["osm_id"] == "r14400092"]
    assert len(salvaged) == 1 and salvaged.geometry.iloc[0].geom_type == "Polygon"
    counts = pois["category"].value_counts()
    assert counts["school"] == 9 and counts["kindergarten"] == 2 and counts["hospital"] == 2
    highways = set(beijing_xml["roads"]["highway"])
    assert {"footway", "path", "steps", "service", "primary"} <= highways
    assert len(beijing_xml["buildings"]) == 258


def test_beijing_pbf_hull(beijing_pbf: dict[str, gpd.GeoDataFrame], osm_dir: Path) -> None:
    """The PBF has no header box: the buffered hull of points and areas holds them all."""
    _check_layers(beijing_pbf)
    assert header_bounds(osm_dir / "beijing_haidian_cau.osm.pbf") is None
    assert header_bounds(osm_dir / "beijing_haidian_cau.osm.bz2") == pytest.approx(BEIJING_BOX)
    township = beijing_pbf["townships"].geometry.iloc[0]
    assert township.contains(shapely.box(*BEIJING_BOX))
    assert beijing_pbf["buildings"]["village"].notna().all()
    assert beijing_pbf["pois"]["village"].notna().all()
    assert beijing_pbf["townships"]["code"].iloc[0] == "000000001"


def test_no_admin_is_logged(osm_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gridgeo.data.inputs"):
        out = county_from_osm(osm_dir / "beijing_haidian_cau.osm.bz2", county_name="学院路")
    assert "no admin boundary" in caplog.text and "using the extract's bounds" in caplog.text
    assert out["townships"]["name"].iloc[0] == "学院路"


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize(
    ("name", "place", "kind"),
    [
        ("花园社区", "quarter", "urban"),
        ("花园村", "village", "rural"),
        ("黄坑村", "neighbourhood", "rural"),  # the name wins over the tag
        ("城东居委会", "village", "urban"),
        ("石板房", "neighbourhood", "urban"),
        ("大岩苏家", "village", "rural"),
        ("苏家", "isolated_dwelling", "rural"),
        (None, "suburb", "urban"),
    ],
)
def test_village_kind(name: str | None, place: str, kind: str) -> None:
    assert village_kind(name, place) == kind


# --------------------------------------------------------------------------- determinism, errors


def test_deterministic(osm_dir: Path, guixi: dict[str, gpd.GeoDataFrame]) -> None:
    clear_osm_cache()  # a fresh parse, not the cached frames
    again = county_from_osm(osm_dir / "guixi_jiangxi.osm.pbf", county_code="360681")
    for name in INPUT_LAYERS:
        a, b = guixi[name], again[name]
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert list(shapely.to_wkb(a.geometry.to_numpy())) == list(
            shapely.to_wkb(b.geometry.to_numpy())
        ), name


def test_bad_inputs(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.osm.pbf"
    with pytest.raises(FileFormatError, match="nowhere.osm.pbf"):
        county_from_osm(missing)
    not_osm = tmp_path / "county.gpkg"
    not_osm.write_bytes(b"x")
    with pytest.raises(FileFormatError, match="county.gpkg"):
        county_from_osm(not_osm)
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><node id='1' lat='28' lon=")
    with pytest.raises(FileFormatError, match="broken.osm"):
        county_from_osm(broken)
    with pytest.raises(UsageError, match="six digits"):
        county_from_osm(missing, county_code="36")
    with pytest.raises(UsageError, match="admin_levels"):
        county_from_osm(missing, admin_levels=())


# --------------------------------------------------------------------------- crafted extract

# Two townships side by side, 0.01° square each. 甲镇 (west) is cut in two by a
# residential street at 117.005; its west half holds 东村, its east half two
# place nodes both named 河村 (split between them by their Voronoi cells). A
# footway does not cut. 乙乡 (east) has no place node: one village of its name.
_CRAFTED = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
 <node id="1" lat="28.00" lon="117.00"/>
 <node id="2" lat="28.00" lon="117.01"/>
 <node id="3" lat="28.01" lon="117.01"/>
 <node id="4" lat="28.01" lon="117.00"/>
 <node id="5" lat="28.00" lon="117.02"/>
 <node id="6" lat="28.01" lon="117.02"/>
 <node id="10" lat="27.995" lon="117.005"/>
 <node id="11" lat="28.015" lon="117.005"/>
 <node id="12" lat="28.001" lon="117.001"/>
 <node id="13" lat="28.009" lon="117.003"/>
 <node id="20" lat="28.005" lon="117.002">
  <tag k="place" v="village"/><tag k="name" v="东村"/><tag k="population" v="1200"/>
 </node>
 <node id="21" lat="28.003" lon="117.007"><tag k="place" v="village"/><tag k="name" v="河村"/></node>
 <node id="22" lat="28.008" lon="117.007"><tag k="place" v="hamlet"/><tag k="name" v="河村"/></node>
 <node id="23" lat="28.004" lon="117.004"><tag k="place" v="town"/><tag k="name" v="甲镇"/></node>
 <node id="30" lat="28.0015" lon="117.0015"/>
 <node id="31" lat="28.0015" lon="117.0025"/>
 <node id="32" lat="28.0025" lon="117.0025"/>
 <node id="33" lat="28.0025" lon="117.0015"/>
 <node id="34" lat="28.0045" lon="117.0145"/>
 <node id="35" lat="28.0045" lon="117.0155"/>
 <node id="36" lat="28.0055" lon="117.0155"/>
 <node id="37" lat="28.0055" lon="117.0145"/>
 <node id="40" lat="28.009" lon="117.008"><tag k="amenity" v="school"/><tag k="name" v="甲镇中学"/></node>
 <way id="100">
  <nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="boundary" v="administrative"/><tag k="admin_level" v="8"/><tag k="name" v="甲镇"/>
 </way>
 <way id="101">
  <nd ref="2"/><nd ref="5"/><nd ref="6"/><nd ref="3"/><nd ref="2"/>
  <tag k="boundary" v="administrative"/><tag k="admin_level" v="8"/><tag k="name" v="乙乡"/>
 </way>
 <way id="110"><nd ref="10"/><nd ref="11"/><tag k="highway" v="residential"/></way>
 <way id="111"><nd ref="12"/><nd ref="13"/><tag k="highway" v="footway"/></way>
 <way id="120">
  <nd ref="30"/><nd ref="31"/><nd ref="32"/><nd ref="33"/><nd ref="30"/>
  <tag k="building" v="residential"/><tag k="building:flats" v="12"/><tag k="building:levels" v="6"/>
 </way>
 <way id="121">
  <nd ref="34"/><nd ref="35"/><nd ref="36"/><nd ref="37"/><nd ref="34"/><tag k="building" v="yes"/>
 </way>
</osm>
"""


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, gpd.GeoDataFrame]:
    path = tmp_path_factory.mktemp("osm") / "crafted.osm"
    path.write_text(_CRAFTED, encoding="utf-8")
    return county_from_osm(path, county_code="360000")


def test_crafted_townships(crafted: dict[str, gpd.GeoDataFrame]) -> None:
    _check_layers(crafted)
    townships = crafted["townships"]
    assert list(townships["name"]) == ["甲镇", "乙乡"]  # west to east
    assert list(townships["code"]) == ["360000001", "360000002"]
    assert list(townships["kind"]) == ["town", "township"]


def test_crafted_villages(crafted: dict[str, gpd.GeoDataFrame]) -> None:
    villages = crafted["villages"].set_index("osm_id", drop=False)
    assert sorted(villages["name"]) == ["东村", "乙乡", "河村", "河村"]
    east = villages.loc["n20"]
    assert east["kind"] == "rural" and east["population"] == 1200 and east["households"] == 12
    # the street, not the footway, is the border of 东村: it is the west half of 甲镇
    west_half = shapely.box(117.0, 28.0, 117.005, 28.01)
    assert shapely.symmetric_difference(east.geometry, west_half).area < 1e-12
    # two places in one face: split at the perpendicular bisector (lat 28.0055)
    south, north = villages.loc["n21"], villages.loc["n22"]
    assert south["code"] != north["code"] and south["name"] == north["name"] == "河村"
    assert south.geometry.bounds == pytest.approx((117.005, 28.0, 117.01, 28.0055), abs=1e-9)
    assert north.geometry.bounds == pytest.approx((117.005, 28.0055, 117.01, 28.01), abs=1e-9)
    assert pd.isna(south["households"]) and pd.isna(south["population"])
    # a township without place nodes is one village of its own name
    yi = crafted["villages"][crafted["villages"]["township"] == "360000002"]
    assert list(yi["name"]) == ["乙乡"] and list(yi["code"]) == ["360000002001"]
    assert pd.isna(yi["osm_id"].iloc[0]) and yi["kind"].iloc[0] == "rural"


def test_crafted_joins(crafted: dict[str, gpd.GeoDataFrame]) -> None:
    villages = crafted["villages"].set_index("osm_id")
    buildings = crafted["buildings"].set_index("osm_id")
    assert buildings.loc["w120", "village"] == villages.loc["n20", "code"]
    assert buildings.loc["w120", "households"] == 12 and buildings.loc["w120", "levels"] == 6
    yi = crafted["villages"].loc[crafted["villages"]["township"] == "360000002", "code"].iloc[0]
    assert buildings.loc["w121", "village"] == yi
    school = crafted["pois"].set_index("osm_id").loc["n40"]
    assert school["category"] == "school" and school["village"] == villages.loc["n22", "code"]
    assert set(crafted["roads"]["highway"]) == {"residential", "footway"}


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_village_kinds_from_names_when_no_kind_is_known(dtype: object) -> None:
    """A kind column with no known value at all is filled from the names, whatever the column's string storage.

    (With pyarrow installed, pandas stores text in Arrow; a column of only unknown kinds then mapped to Arrow's
    null type and refused the kinds from the names: "Converting strings to null is not implemented".)
    """
    from gridgeo.data.schema import village_kinds

    kind = pd.Series(["?", None, "其他", "unknown"], dtype=dtype)  # type: ignore[call-overload]
    name = pd.Series(["城北社区", "东岭村", "石科院生活区", None], dtype=dtype)  # type: ignore[call-overload]
    got = village_kinds(kind, name)
    assert got.tolist()[:2] == ["urban", "rural"] and got.isna().tolist() == [False, False, True, True]
