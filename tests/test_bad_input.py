"""Issue 11's bad inputs through the command line: exit 1 (2 for usage), one line naming the file, the
feature or row and the problem (with the fix where there is one), and no output or temp file left behind."""

from __future__ import annotations

import json
import os
import shutil
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box

from gridgeo.cli import main
from tests.catalogue import _layer, clean, gk_declared_4490, gk_read_as_lonlat, missing_ids, points

COMMANDS = ("check", "adjacency", "blocks")


def _write(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".crs. was not provided")
        pyogrio.write_dataframe(gdf, path)
    return path


def _run(command: str, path: Path, tmp: Path, *extra: str) -> int:
    out = ["-o", str(tmp / "out.geojson")] if command == "blocks" else []
    return main([command, str(path), *extra, *out, "-q"])


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("gridgeo: error: ") and "Traceback" not in err[0] and "internal error" not in err[0]
    return err[0]


def _nothing_left(tmp: Path) -> None:
    assert not (tmp / "out.geojson").exists()
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("command", COMMANDS)
def test_null_and_blank_ids_are_missing_id(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(missing_ids().gdf, tmp_path / "ids.geojson")
    assert _run(command, path, tmp_path, "--id", "code") == 1
    line = _one_error_line(capsys)
    assert str(path) in line and "feature row 1: missing_id" in line and "2 rows (1, 2)" in line
    _nothing_left(tmp_path)


def test_build_with_a_blank_village_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridgeo.synth import synth_county, write_county

    county = tmp_path / "county.gpkg"
    write_county(synth_county(seed=3, townships=1, villages=3, households=300), county)
    villages = pyogrio.read_dataframe(county, layer="villages")
    villages["code"] = villages["code"].astype(object)
    villages.loc[1, "code"] = ""
    pyogrio.write_dataframe(villages, county, layer="villages")
    rules = tmp_path / "rules.toml"
    rules.write_text("[county]\nseed = 1\n", encoding="utf-8")
    out = tmp_path / "out.gpkg"
    assert main(["build", str(rules), "-o", str(out), "--input", str(county), "-q"]) == 1
    line = _one_error_line(capsys)
    assert str(county) in line and "missing_id" in line and "row (1)" in line
    assert not out.exists() and not list(tmp_path.glob(".out.gpkg*"))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", [gk_read_as_lonlat, gk_declared_4490])
def test_metres_read_as_lonlat_say_declare_the_crs(case, command: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    c = case()
    path = _write(c.gdf, tmp_path / "gk.geojson")
    extra = ["--crs", c.declared_crs] if c.declared_crs else []
    assert _run(command, path, tmp_path, "--id", "code", *extra) == 1
    line = _one_error_line(capsys)
    assert str(path) in line and "feature A: out_of_area" in line
    assert "coordinates look projected (metres), not lon/lat; declare the CRS with --crs EPSG:45" in line
    if c.declared_crs:  # the zone number in front of the easting names the zone
        assert "EPSG:4527" in line
    _nothing_left(tmp_path)


def test_geopackage_without_srs_says_declare_the_crs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gdf = _layer({"A": box(500_000, 3_100_000, 500_100, 3_100_100)}, crs=None)
    path = _write(gdf, tmp_path / "nosrs.gpkg")
    assert main(["check", str(path), "--id", "code", "-q"]) == 1
    line = _one_error_line(capsys)
    assert str(path) in line and "no_crs" in line and "declare the CRS with --crs EPSG:45" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_points_are_not_village_boundaries(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(points().gdf, tmp_path / "points.geojson")
    assert _run(command, path, tmp_path, "--id", "code") == 1
    line = _one_error_line(capsys)
    assert str(path) in line and "feature A is a Point; village boundaries must be polygons" in line
    _nothing_left(tmp_path)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("ids", [[], ["--id", "code"]])
def test_empty_feature_collection(command: str, ids: list[str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "none.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    assert _run(command, path, tmp_path, *ids) == 1
    assert _one_error_line(capsys) == f"gridgeo: error: {path}: the layer has no features"
    _nothing_left(tmp_path)


def test_unknown_epsg_in_geojson_crs_member(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(clean().gdf.to_json())
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}},
           "features": doc["features"]}
    path = tmp_path / "crs.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["check", str(path), "--id", "code", "-q"]) == 1
    line = _one_error_line(capsys)
    assert str(path) in line and "EPSG:999999" in line and "not a known CRS" in line and "--crs" in line
    # declaring the CRS is the way out
    assert main(["check", str(path), "--id", "code", "--crs", "EPSG:4326", "-q"]) == 0


def test_gbk_geojson_is_decoded_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Decided: decode (GB18030) and warn, as for Shapefiles, rather than refuse."""
    gdf = clean().gdf.assign(name=["东村", "西村", "南村", "北村", "中村"])
    path = tmp_path / "gbk.geojson"
    path.write_bytes(gdf.to_json(ensure_ascii=False).encode("gbk"))
    out = tmp_path / "fixed.gpkg"
    with caplog.at_level("WARNING"):
        assert main(["check", str(path), "--id", "code", "-o", str(out)]) == 0
    err = caplog.text
    assert f"{path} is not UTF-8 (it looks like GBK/GB18030)" in err and "re-save it as UTF-8" in err
    assert pyogrio.read_dataframe(out)["name"].tolist() == ["东村", "西村", "南村", "北村", "中村"]


def test_bytes_neither_utf8_nor_gb18030(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.geojson"
    path.write_bytes(clean().gdf.to_json().encode()[:-2] + b'\x81"}')
    assert main(["check", str(path), "-q"]) == 1
    assert str(path) in _one_error_line(capsys)


def _gbk_zip(tmp: Path, gdf: gpd.GeoDataFrame) -> Path:
    shp_dir = tmp / "shp"
    shp_dir.mkdir()
    pyogrio.write_dataframe(gdf, shp_dir / "v.shp", encoding="GBK")
    (shp_dir / "v.cpg").unlink()
    path = tmp / "v.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for side in shp_dir.iterdir():
            zf.write(side, side.name)
    shutil.rmtree(shp_dir)
    return path


def test_zipped_gbk_shapefile_without_cpg(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Values and field names both: a 户数 column over ASCII values was mojibake with no warning."""
    from gridgeo.data.io import read_layer

    gdf = clean().gdf.assign(户数=[10, 20, 30, 40, 50], 名称=["a", "b", "c", "d", "e"])
    path = _gbk_zip(tmp_path, gdf)
    with caplog.at_level("WARNING"):
        got = read_layer(path, kind="villages")
    assert {"户数", "名称"} <= set(got.columns) and got["households"].tolist() == [10, 20, 30, 40, 50]
    assert any("looks like GB18030 read as Latin-1" in r.getMessage() for r in caplog.records)


def test_zipped_gbk_shapefile_names_through_check(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gdf = clean().gdf.assign(name=["东村", "西村", "南村", "北村", "中村"])
    path = _gbk_zip(tmp_path, gdf)
    out = tmp_path / "fixed.gpkg"
    with caplog.at_level("WARNING"):
        assert main(["check", str(path), "--id", "code", "-o", str(out), "-q"]) == 0
    assert "re-read as GB18030" in caplog.text
    assert pyogrio.read_dataframe(out)["name"].tolist() == ["东村", "西村", "南村", "北村", "中村"]


def test_zipped_folder_of_a_shapefile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A zip made by zipping the folder (villages/v.shp) was "not recognized as being in a supported format"."""
    shp_dir = tmp_path / "villages"
    shp_dir.mkdir()
    pyogrio.write_dataframe(clean().gdf, shp_dir / "v.shp")
    path = tmp_path / "villages.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for side in shp_dir.iterdir():
            zf.write(side, f"villages/{side.name}")
    assert main(["check", str(path), "--id", "code", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["features"] == 5


def test_unwritable_output_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(clean().gdf, tmp_path / "clean.geojson")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root writes anyway: make the temp file refuse as a read-only mount would
        import tempfile

        def refuse(*args: object, **kw: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = ro / "fixed.gpkg"
    try:
        assert main(["check", str(path), "--id", "code", "-o", str(out), "-q"]) == 1
        line = _one_error_line(capsys)
    finally:
        ro.chmod(0o755)
    assert line == f"gridgeo: error: cannot write {out}: permission denied (directory {ro} is not writable)"
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize(("date", "days"), [("0001-01-01", "2"), ("9999-12-31", "2"), ("2999-12-31", "2"),
                                            ("1899-12-31", "1")])
def test_patrol_dates_outside_the_range(date: str, days: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "route.geojson"
    argv = ["patrol", str(tmp_path / "county.gpkg"), "--grid", "1", "--date", date, "--days", days, "-o", str(out)]
    assert main(argv) == 2
    unit = "day" if days == "1" else "days"
    assert _one_error_line(capsys) == (f"gridgeo: error: date {date} + {days} {unit} is outside the supported range "
                                       "1900-01-01..2999-12-31")
    assert not out.exists()


# --------------------------------------------------------------------------------------
# Build warnings: legal but almost certainly not meant, in the log and in the build report
# --------------------------------------------------------------------------------------
def _small_county(tmp: Path, *, drop: tuple[str, ...] = (), negative: int = 0) -> Path:
    from gridgeo.synth import synth_county, write_county

    layers = {k: v for k, v in synth_county(seed=3, townships=1, villages=3, households=300).items() if k not in drop}
    if negative:
        b = layers["buildings"].copy()
        b.loc[b.index[:negative], "households"] = -3
        layers["buildings"] = b
    path = tmp / "county.gpkg"
    write_county(layers, path)
    return path


def _build(tmp: Path, county: Path, caplog: pytest.LogCaptureFixture) -> dict[str, object]:
    rules = tmp / "rules.toml"
    rules.write_text("[county]\nseed = 1\n", encoding="utf-8")
    report = tmp / "report.json"
    with caplog.at_level("WARNING"):
        code = main(["build", str(rules), "-o", str(tmp / "out.gpkg"), "--input", str(county), "--workers", "1",
                     "--report", str(report)])
    assert code == 0
    return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_negative_household_counts_are_repaired_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    report = _build(tmp_path, _small_county(tmp_path, negative=2), caplog)
    (line,) = [w for w in report["warnings"] if "negative" in w]  # type: ignore[union-attr]
    assert "2 rows with a negative household count, re-estimated from the footprint: rows 0 (0), 1 (1)" in line
    assert line in caplog.text


@pytest.mark.parametrize(("drop", "needle"), [(("buildings",), "no buildings or household points"),
                                              (("roads",), "no roads")])
def test_county_without_buildings_or_roads_warns(drop: tuple[str, ...], needle: str, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    report = _build(tmp_path, _small_county(tmp_path, drop=drop), caplog)
    assert [w for w in report["warnings"] if needle in w]  # type: ignore[union-attr]
    assert needle in caplog.text


def test_clean_build_report_has_no_warnings_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    report = _build(tmp_path, _small_county(tmp_path), caplog)
    assert "warnings" not in report
