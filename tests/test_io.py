"""io: formats, layer choice, malformed files, atomic RFC 7946 writing, schema mapping."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely.geometry import Polygon, box

from gridgeo.data.io import list_layers, read_layer, write_layer, write_layers
from gridgeo.errors import FileFormatError, LayerNotFoundError, SchemaError, UsageError


@pytest.fixture
def villages() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"XZQDM": ["360681001001", "360681001002"], "MC": ["东山村", "西山村"], "HU": [120, 80]},
        geometry=[box(117.2, 28.2, 117.21, 28.21), box(117.21, 28.2, 117.22, 28.21)],
        crs="EPSG:4490",
    )


def test_geojson_and_kind_mapping(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    path = tmp_path / "v.geojson"
    pyogrio.write_dataframe(villages, path)
    gdf = read_layer(path, kind="villages")
    assert list(gdf["code"]) == ["360681001001", "360681001002"]
    assert list(gdf["name"]) == ["东山村", "西山村"]
    assert list(gdf["households"]) == [120, 80]
    assert gdf.attrs["source"] == str(path)


def test_gpkg_layer_choice(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    path = tmp_path / "county.gpkg"
    pyogrio.write_dataframe(villages, path, layer="villages")
    pyogrio.write_dataframe(villages.iloc[:1], path, layer="townships", append=False)
    assert sorted(list_layers(path)) == ["townships", "villages"]
    assert len(read_layer(path, layer="townships")) == 1
    assert len(read_layer(path, kind="villages")) == 2  # picks the layer named like the kind
    with pytest.raises(UsageError, match="choose one with --layer"):
        read_layer(path)
    with pytest.raises(LayerNotFoundError, match="no layer 'roads'; layers are"):
        read_layer(path, layer="roads")


def test_crs_4490_is_lon_lat(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    path = tmp_path / "v.gpkg"
    pyogrio.write_dataframe(villages, path)
    gdf = read_layer(path)
    assert gdf.crs.to_epsg() == 4490
    minx, miny, *_ = gdf.total_bounds
    assert 117 < minx < 118 and 28 < miny < 29  # x is longitude whatever the EPSG axis order


def test_zipped_shapefile(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    pyogrio.write_dataframe(villages, tmp_path / "v.shp", encoding="UTF-8")
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as zf:
        for f in tmp_path.glob("v.*"):
            if f.suffix != ".zip":
                zf.write(f, f.name)
    gdf = read_layer(tmp_path / "v.zip", kind="villages")
    assert len(gdf) == 2 and gdf.crs.to_epsg() == 4490
    assert list(gdf["name"]) == ["东山村", "西山村"]


def test_declared_crs_and_override(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    path = tmp_path / "v.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        pyogrio.write_dataframe(villages.set_crs(None, allow_override=True), path)
    assert read_layer(path).crs is None
    assert read_layer(path, crs="EPSG:4490").crs.to_epsg() == 4490


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        (
            "trunc.geojson",
            '{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type"',
            "cannot (open|read)",
        ),
        ("empty.geojson", "", "file is empty"),
        ("x.csv", "a,b\n1,2\n", "no coordinate columns"),
        ("x.xls", "a,b\n1,2\n", "old Excel.*save it as .xlsx"),
        ("x.dbf", "a,b\n1,2\n", "unknown format"),
        ("bad.zip", "not a zip", "not a valid zip"),
        ("garbage.gpkg", "SQLite format 3\x00 but not really", "cannot"),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, content: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FileFormatError, match=match) as info:
        read_layer(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="no such file"):
        read_layer(tmp_path / "nope.geojson")


@pytest.mark.parametrize("sidecar", [".shx", ".dbf"])
def test_shapefile_missing_sidecar(tmp_path: Path, villages: gpd.GeoDataFrame, sidecar: str) -> None:
    pyogrio.write_dataframe(villages, tmp_path / "v.shp")
    (tmp_path / f"v{sidecar}").unlink()
    with pytest.raises(FileFormatError, match=f"sidecar {sidecar}"):
        read_layer(tmp_path / "v.shp")


def test_zip_without_shapefile_parts(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    pyogrio.write_dataframe(villages, tmp_path / "v.shp")
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as zf:
        zf.write(tmp_path / "v.shp", "v.shp")
    with pytest.raises(FileFormatError, match="lacks .shx and .dbf"):
        read_layer(tmp_path / "v.zip")


def test_missing_required_column(tmp_path: Path, villages: gpd.GeoDataFrame) -> None:
    path = tmp_path / "r.geojson"
    pyogrio.write_dataframe(villages[["MC", "geometry"]], path)
    with pytest.raises(SchemaError, match="roads layer needs a 'highway' column"):
        read_layer(path, kind="roads")
    with pytest.raises(SchemaError, match="id column 'code' not found"):
        read_layer(path, id_col="code")


def test_geojson_output_is_rfc7946(tmp_path: Path) -> None:
    cw = Polygon([(500000, 3100000), (500000, 3100100), (500100, 3100100), (500100, 3100000)])
    assert not cw.exterior.is_ccw
    gdf = gpd.GeoDataFrame({"code": ["A"]}, geometry=[cw], crs="EPSG:4548")
    out = tmp_path / "out.geojson"
    write_layer(gdf, out)
    doc = json.loads(out.read_text())
    assert "crs" not in doc
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    assert shapely.LinearRing(ring).is_ccw
    assert all(116 < x < 118 and 27 < y < 29 for x, y in ring)


def test_write_is_atomic(tmp_path: Path, villages: gpd.GeoDataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "county.gpkg"
    out.write_text("previous content")
    real = pyogrio.write_dataframe
    calls = []

    def failing(*args, **kwargs):  # the second layer fails half-way through the file
        calls.append(kwargs.get("layer"))
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    with pytest.raises(OSError, match="disk full"):
        write_layers({"villages": villages, "townships": villages}, out)
    assert out.read_text() == "previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["county.gpkg"]
    monkeypatch.setattr(pyogrio, "write_dataframe", real)
    write_layers({"villages": villages}, out)
    assert list_layers(out) == ["villages"]


@pytest.mark.shared
@pytest.mark.parametrize("ext", ["osm.bz2", "osm.pbf"])
def test_osm_through_read_layer(osm_dir: Path, ext: str) -> None:
    path = osm_dir / f"guixi_jiangxi.{ext}"
    admin = read_layer(path, kind="townships")
    assert list(admin["name"]) == ["东门街道"]
    schools = read_layer(path, layer="pois")
    assert (schools["category"] == "school").sum() == 4
    with pytest.raises(UsageError, match="needs --layer"):
        read_layer(path)


def test_village_kind_from_column_or_name(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"code": ["1", "2", "3", "4", "5"], "name": ["河西社区", "东山村", "新城居委会", "石桥", "某地"],
         "type": [None, None, None, "农村", "城市"]},
        geometry=[box(i, 0, i + 1, 1) for i in range(5)], crs="EPSG:4326",
    )
    path = tmp_path / "v.geojson"
    pyogrio.write_dataframe(gdf, path)
    got = read_layer(path, kind="villages")
    assert list(got["kind"]) == ["urban", "rural", "urban", "rural", "urban"]


@pytest.mark.parametrize("enc", ["GBK", "UTF-8"])
def test_shapefile_without_cpg_chinese_text(tmp_path: Path, villages: gpd.GeoDataFrame, enc: str) -> None:
    pyogrio.write_dataframe(villages, tmp_path / "v.shp", encoding=enc)
    (tmp_path / "v.cpg").unlink()  # as ArcGIS exports often arrive
    got = read_layer(tmp_path / "v.shp", kind="villages")
    assert list(got["name"]) == ["东山村", "西山村"]
    assert list(read_layer(tmp_path / "v.shp", encoding=enc)["MC"]) == ["东山村", "西山村"]


def test_latin1_text_is_left_alone(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"name": ["Zürich", "Málaga"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
                           crs="EPSG:4326")
    pyogrio.write_dataframe(gdf, tmp_path / "l.shp", encoding="ISO-8859-1")
    (tmp_path / "l.cpg").unlink(missing_ok=True)
    assert list(read_layer(tmp_path / "l.shp")["name"]) == ["Zürich", "Málaga"]


def test_unwritable_output_is_an_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a bug and not the input's fault: its own class, exit 1, and 503 (not 500) over HTTP."""
    import tempfile

    from gridgeo.data.io import atomic_path
    from gridgeo.errors import OutputError, exit_code, http_status

    def refuse(*args: object, **kw: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="permission denied") as err, atomic_path(tmp_path / "x.gpkg"):
        pass
    assert exit_code(err.value) == 1 and http_status(err.value) == 503
