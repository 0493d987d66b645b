"""gpkg_styles (and io's GeoPackage writer): version 1.3, QGIS ``layer_styles``, Chinese field aliases.

A small generated county is built with ``gridgeo build`` (the CLI, as a county runs it) and the file is read
back with :mod:`sqlite3`: the version pragmas, one default style per level whose QML parses and labels a
column the layer has, the aliases in ``gpkg_data_columns`` registered as ``gpkg_schema``, and GDAL opening
the file without a warning (pyogrio's GDAL and, where installed, the system's ``ogrinfo``, GDAL 3.6 on
Debian 12: the version that warns on a 1.4 file). QGIS is not installed here: this checks the structure
QGIS reads, not how QGIS draws it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box

from gridgeo.county.build import LEVELS
from gridgeo.data.aliases import FIELD_ALIASES, chinese_headers
from gridgeo.data.gpkg_styles import LEVEL_STYLES, STYLES_TABLE, add_styles
from gridgeo.data.io import list_layers, read_layer, write_layer
from tests.conftest import built_synth

GPKG_APPLICATION_ID = 0x47504B47  # 'GPKG'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("styled")
    out = built_synth(d, seed=11, townships=2, villages=4, households=1500)
    return out


def _rows(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return list(con.execute(sql, params))
    finally:
        con.close()


def test_written_as_geopackage_1_3(built: Path, tmp_path: Path) -> None:
    assert _rows(built, "PRAGMA application_id") == [(GPKG_APPLICATION_ID,)]
    assert _rows(built, "PRAGMA user_version") == [(10300,)]
    one = tmp_path / "one.gpkg"  # write_layer too, and a layer that is no level
    write_layer(gpd.GeoDataFrame({"code": ["a"]}, geometry=[box(0, 0, 1, 1)], crs=4490), one, layer="parcels")
    assert _rows(one, "PRAGMA user_version") == [(10300,)]
    assert _rows(one, f"SELECT name FROM sqlite_master WHERE name = '{STYLES_TABLE}'") == []
    assert _rows(one, "SELECT column_name, name FROM gpkg_data_columns") == [("code", "编码")]


def test_one_default_style_per_level(built: Path) -> None:
    cols = [r[1] for r in _rows(built, f"PRAGMA table_info({STYLES_TABLE})")]
    assert cols == ["id", "f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
                    "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time"]
    rows = _rows(built, f"SELECT f_table_name, f_geometry_column, styleName, useAsDefault, styleQML, styleSLD "
                        f"FROM {STYLES_TABLE} ORDER BY id")
    assert [r[0] for r in rows] == list(LEVELS)  # every level, once, in the build's order; not roads or pois
    geom_cols = dict(_rows(built, "SELECT table_name, column_name FROM gpkg_geometry_columns"))
    widths = []
    for table, geom, style_name, default, qml, sld in rows:
        assert geom == geom_cols[table] and style_name == table and default == 1
        root = ET.fromstring(str(qml))  # parses (the DOCTYPE included)
        columns = [r[1] for r in _rows(built, f'PRAGMA table_info("{table}")')]
        label = root.find("./labeling/settings/text-style")
        assert label is not None and label.get("fieldName") in columns, table
        assert label.get("fieldName") == next(c for c in LEVEL_STYLES[str(table)].labels if c in columns)
        assert root.get("labelsEnabled") == "1"
        scale = root.find("./labeling/settings/rendering")
        assert scale is not None and int(scale.get("scaleMax", "0")) == LEVEL_STYLES[str(table)].label_scale
        aliases = {a.get("field"): a.get("name") for a in root.iter("alias")}
        assert list(aliases) == [c for c in columns if c != geom]  # every field QGIS shows (fid too), in order
        assert all(aliases[c] == FIELD_ALIASES.get(str(c), "") for c in aliases)
        assert aliases["households"] == "户数"
        kind = root.find("./renderer-v2/symbols/symbol")
        assert kind is not None and kind.get("type") == ("marker" if table == "households" else "fill")
        widths.append(LEVEL_STYLES[str(table)].width_mm)
        sld_root = ET.fromstring(str(sld))
        assert any(e.text == label.get("fieldName") for e in sld_root.iter("{http://www.opengis.net/ogc}PropertyName"))
    colours = {LEVEL_STYLES[lvl].colour for lvl in LEVELS}
    assert len(colours) == len(LEVELS)  # an outline colour of its own per level
    assert widths[:4] == sorted(widths[:4], reverse=True)  # townships widest, grids thinnest of the polygons


def test_field_aliases_in_the_schema_extension(built: Path) -> None:
    ext = _rows(built, "SELECT table_name, extension_name, scope FROM gpkg_extensions "
                       "WHERE extension_name = 'gpkg_schema' ORDER BY table_name")
    assert ext == [("gpkg_data_column_constraints", "gpkg_schema", "read-write"),
                   ("gpkg_data_columns", "gpkg_schema", "read-write")]
    got = {(t, c): (n, ti) for t, c, n, ti in _rows(built, "SELECT table_name, column_name, name, title "
                                                         "FROM gpkg_data_columns")}
    assert got[("villages", "code")] == ("编码", "编码")
    assert got[("grids", "parent")] == ("上级编码", "上级编码")
    assert got[("households", "households")] == ("户数", "户数")
    assert got[("households", "point")] == ("网格点", "网格点")
    assert got[("points", "township")] == ("乡镇", "乡镇")
    for layer in list_layers(built):  # every column with an alias has it, and only those
        columns = [r[1] for r in _rows(built, f'PRAGMA table_info("{layer}")')]
        assert {c for (t, c) in got if t == layer} == {c for c in columns if c in FIELD_ALIASES}


def test_gdal_opens_it_without_warnings(built: Path) -> None:
    """pyogrio turns GDAL's warnings into Python warnings (a 1.4 file under GDAL 3.6 is one such)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for name, _ in pyogrio.list_layers(built):
            pyogrio.read_dataframe(built, layer=str(name), max_features=5)
    assert [str(w.message) for w in record] == []
    assert STYLES_TABLE in [str(n) for n, _ in pyogrio.list_layers(built)]
    assert STYLES_TABLE not in list_layers(built)  # hidden from gridgeo's own readers
    one = read_layer(built, layer="grids")
    assert len(one) > 0
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo is None:
        return  # GDAL's command-line tools are not installed: pyogrio's GDAL has checked it above
    r = subprocess.run([ogrinfo, "-ro", "-al", "-so", str(built)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "ERROR" not in r.stderr, r.stderr
    assert f"Layer name: {STYLES_TABLE}" in r.stdout and "Feature Count: 7" in r.stdout


def test_a_single_layer_file_still_opens_without_layer(tmp_path: Path) -> None:
    """A converted village layer is styled; the style table must not make it a two-layer file."""
    out = tmp_path / "villages.gpkg"
    write_layer(gpd.GeoDataFrame({"code": ["1"], "name": ["东山村"]}, geometry=[box(117, 28, 117.01, 28.01)],
                                 crs=4490), out, layer="villages")
    assert _rows(out, f"SELECT f_table_name FROM {STYLES_TABLE}") == [("villages",)]
    assert list(read_layer(out)["name"]) == ["东山村"]


def test_styles_are_idempotent_and_served(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again.gpkg"
    shutil.copy(built, copy)
    assert add_styles(copy) == list(LEVELS)
    assert _rows(copy, f"SELECT count(*), sum(useAsDefault) FROM {STYLES_TABLE}") == [(7, 7)]
    from gridgeo.service.store import load_county

    county = load_county(copy)  # the service reads every layer: the style table is none of them
    assert STYLES_TABLE not in county.collections and "grids" in county.collections


def test_aliases_are_one_distinct_table() -> None:
    values = list(FIELD_ALIASES.values())
    assert len(values) == len(set(values))  # gpkg_data_columns: a name is unique in its table
    assert chinese_headers(["code", "名称", "name", "other"]) == ["编码", "名称", "name", "other"]


def test_synth_and_the_bundled_sample_are_1_3(built: Path) -> None:
    """The generated inputs too (``gridgeo synth`` writes its own GeoPackage, with layer metadata)."""
    synth = built.parent / "county.gpkg"  # what synth_rules wrote for the build
    sample = Path(__file__).resolve().parents[1] / "boundaries" / "sample_county.gpkg"
    for path in (synth, sample):
        assert _rows(path, "PRAGMA user_version") == [(10300,)], path
        assert _rows(path, "PRAGMA application_id") == [(GPKG_APPLICATION_ID,)], path
    assert pyogrio.read_info(synth, layer="villages")["layer_metadata"]["GRIDGEO_SYNTHETIC"] == "yes"
