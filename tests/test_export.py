"""``gridgeo export``: a built county's layers (and a geometry-less people roster) as XLSX sheets or CSV files.

A small generated county is built with ``gridgeo build`` and given a ``people`` table (no geometry, Chinese
names, phone numbers that must stay text) the way issue 12's roster adds one; the exports are read back
with openpyxl and pandas and compared with the layers read by GDAL.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely

from gridgeo.cli import main
from gridgeo.data.aliases import FIELD_ALIASES, LAYER_TITLES, chinese_headers
from gridgeo.data.io import list_layers
from tests.conftest import built_synth

PEOPLE = pd.DataFrame({
    "person_id": ["P001", "P002", "P002"],
    "name": ["张伟", "李娜", "李娜"],
    "role": ["格长", "网格员", "点长"],
    "phone": ["013800138000", "+86 139 0000 0001", "+86 139 0000 0001"],
    "level": ["grid", "grid", "point"],
    "unit": ["", "", ""],
    "note": ["=1+1", "多员合一", None],
})


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("export")
    out = built_synth(d, name="county.gpkg", seed=4, townships=2, villages=4, households=1500)
    grids = pyogrio.read_dataframe(out, layer="grids", columns=["code"])
    people = PEOPLE.copy()
    people["unit"] = [grids["code"].iloc[0], grids["code"].iloc[0], grids["code"].iloc[1] + "001"]
    pyogrio.write_dataframe(people, out, layer="people", driver="GPKG", append=True)
    return out


def _layers(path: Path) -> dict[str, pd.DataFrame]:
    return {name: pyogrio.read_dataframe(path, layer=name) for name in list_layers(path)}


def test_xlsx_one_sheet_per_layer(county: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(county), "-o", str(tmp_path / "out")]) == 0
    target = tmp_path / "out" / "county.xlsx"
    assert capsys.readouterr().out.strip() == f"wrote {target}"
    layers = _layers(county)
    assert "people" in layers and "layer_styles" not in layers
    wb = openpyxl.load_workbook(target, read_only=True)
    assert wb.sheetnames == list(layers)
    for name, df in layers.items():
        rows = list(wb[name].iter_rows(values_only=True))
        header, body = list(rows[0]), rows[1:]
        has_geom = isinstance(df, gpd.GeoDataFrame)
        plain = [c for c in df.columns if not has_geom or c != df.geometry.name]
        assert header == plain + (["lon", "lat"] if has_geom else []), name
        assert len(body) == len(df), name  # one row per feature
        if "code" in plain:  # codes stay text: a 14-digit code as a number would lose its digits in Excel
            assert [r[header.index("code")] for r in body] == list(df["code"]), name
    people = list(wb["people"].iter_rows(values_only=True))
    assert people[1][:4] == ("P001", "张伟", "格长", "013800138000")  # leading zero kept, Chinese round-trips
    assert people[1][-1] == "=1+1"  # stored as text, not as a formula
    cell = next(wb["people"].iter_rows(min_row=2, max_row=2))[-1]
    assert cell.data_type == "s"


def test_lonlat_is_a_point_inside_each_unit(county: Path, tmp_path: Path) -> None:
    assert main(["export", str(county), "-o", str(tmp_path), "--layers", "villages,grids,households"]) == 0
    wb = openpyxl.load_workbook(tmp_path / "county.xlsx", read_only=True)
    assert wb.sheetnames == ["villages", "grids", "households"]
    for name in wb.sheetnames:
        gdf = pyogrio.read_dataframe(county, layer=name)
        rows = list(wb[name].iter_rows(values_only=True))
        i, j = rows[0].index("lon"), rows[0].index("lat")
        pts = shapely.points([r[i] for r in rows[1:]], [r[j] for r in rows[1:]])
        assert gdf.crs.to_epsg() == 4490
        # inside its polygon (a polygon's centroid need not be), to the 1e-7 degree the values are rounded to
        assert shapely.dwithin(gdf.geometry.values, pts, 2e-7).all(), name


def test_csv_with_chinese_headers(county: Path, tmp_path: Path) -> None:
    assert main(["export", str(county), "-o", str(tmp_path), "--format", "csv", "--chinese-headers",
                 "--layers", "grids,households,people"]) == 0
    for name in ("grids", "households", "people"):
        path = tmp_path / f"county_{name}.csv"
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM Excel on Chinese Windows needs
        got = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        df = pyogrio.read_dataframe(county, layer=name)
        plain = [c for c in df.columns if not isinstance(df, gpd.GeoDataFrame) or c != df.geometry.name]
        extra = ["lon", "lat"] if isinstance(df, gpd.GeoDataFrame) else []
        assert list(got.columns) == chinese_headers(plain + extra)
        assert len(got) == len(df)
    grids = pd.read_csv(tmp_path / "county_grids.csv", encoding="utf-8-sig", dtype=str)
    assert {"编码", "名称", "上级编码", "户数", "乡镇", "经度", "纬度"} <= set(grids.columns)
    households = pd.read_csv(tmp_path / "county_households.csv", encoding="utf-8-sig", dtype=str)
    assert {FIELD_ALIASES[c] for c in ("point", "grid", "village", "township")} <= set(households.columns)
    people = pd.read_csv(tmp_path / "county_people.csv", encoding="utf-8-sig", dtype=str)
    assert list(people["名称"]) == ["张伟", "李娜", "李娜"]
    assert list(people["联系电话"])[:2] == ["013800138000", "+86 139 0000 0001"]
    assert list(people["职务"]) == ["格长", "网格员", "点长"]


def test_chinese_sheet_names(county: Path, tmp_path: Path) -> None:
    assert main(["export", str(county), "-o", str(tmp_path), "--chinese-headers", "--layers", "villages,people"]) == 0
    wb = openpyxl.load_workbook(tmp_path / "county.xlsx", read_only=True)
    assert wb.sheetnames == [LAYER_TITLES["villages"], LAYER_TITLES["people"]]
    header = next(wb[LAYER_TITLES["villages"]].iter_rows(values_only=True))
    assert header[:3] == ("编码", "名称", "上级编码") and header[-2:] == ("经度", "纬度")


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("gridgeo: error: ")
    return line


def test_bad_inputs(county: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["export", str(county), "-o", str(out), "--layers", "grids,streets"]) == 1
    line = _one_error_line(capsys)
    assert str(county) in line and "'streets'" in line and "layers are townships, blocks" in line
    fake = tmp_path / "notes.gpkg"
    fake.write_text("not a database", encoding="utf-8")
    assert main(["export", str(fake), "-o", str(out)]) == 1
    assert str(fake) in (line := _one_error_line(capsys)) and "not a GeoPackage" in line
    geojson = tmp_path / "v.geojson"
    gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326).to_file(geojson)
    assert main(["export", str(geojson), "-o", str(out)]) == 1
    assert str(geojson) in (line := _one_error_line(capsys)) and "not a GeoPackage" in line
    plain = tmp_path / "plain.gpkg"  # an SQLite database, but no GeoPackage (no GPKG application_id)
    con = sqlite3.connect(plain)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.commit()
    con.close()
    assert main(["export", str(plain), "-o", str(out)]) == 1
    assert str(plain) in (line := _one_error_line(capsys)) and "not a GeoPackage" in line
    assert main(["export", str(tmp_path / "missing.gpkg"), "-o", str(out)]) == 1
    assert "missing.gpkg: no such file" in _one_error_line(capsys)
    assert main(["export", str(county), "-o", str(out), "--format", "ods"]) == 2
    assert "invalid choice" in _one_error_line(capsys)
    assert main(["export", str(county), "-o", str(out), "--layers", ","]) == 2
    assert "names no layer" in _one_error_line(capsys)
    assert not out.exists()


def test_output_not_writable_leaves_nothing(county: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert main(["export", str(county), "-o", str(blocker)]) == 1
    assert str(blocker) in (line := _one_error_line(capsys)) and "not a directory" in line
    if os.geteuid() == 0:
        return  # root writes anywhere: the permission case cannot happen
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["export", str(county), "-o", str(ro), "--format", "csv"]) == 1
        line = _one_error_line(capsys)
        assert "permission denied" in line and str(ro) in line
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_csv_all_or_nothing(county: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """A failure on the third CSV leaves none of the first two behind (and no temporary file)."""
    from gridgeo.data import export as tables

    real = tables._write_csv
    calls: list[Path] = []

    def failing(df: pd.DataFrame, path: Path, *, chinese: bool) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(df, path, chinese=chinese)

    monkeypatch.setattr(tables, "_write_csv", failing)
    out = tmp_path / "csv"
    assert main(["export", str(county), "-o", str(out), "--format", "csv"]) == 1
    capsys.readouterr()
    assert len(calls) == 3 and list(out.iterdir()) == []


def test_odd_values_and_the_sheet_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Dates with a zone become ISO text, control characters are removed (and said), missing values stay empty;
    a layer longer than a sheet is refused naming it, and nothing is written."""
    path = tmp_path / "odd.gpkg"
    gdf = gpd.GeoDataFrame({
        "code": ["1", "2"], "note": ["a\x01b", None],
        "visited": pd.to_datetime(["2026-05-01T08:00:00Z", None], utc=True),
        "households": pd.array([3, None], dtype="Int64"),
    }, geometry=[shapely.Point(117.2, 28.2), None], crs=4490)
    pyogrio.write_dataframe(gdf, path, layer="households", driver="GPKG")
    assert main(["export", str(path), "-o", str(tmp_path)]) == 0
    rows = list(openpyxl.load_workbook(tmp_path / "odd.xlsx", read_only=True)["households"].iter_rows(values_only=True))
    assert rows[0] == ("code", "note", "visited", "households", "lon", "lat")
    assert rows[1][:4] == ("1", "ab", "2026-05-01T08:00:00+00:00", 3)
    assert rows[1][4:] == pytest.approx((117.2, 28.2))
    assert rows[2][0] == "2" and all(v is None for v in rows[2][1:])  # empty cells (read-only mode trims them)
    assert "control characters removed from 1 values" in caplog.text
    from gridgeo.data import export as tables

    monkeypatch.setattr(tables, "SHEET_ROWS", 1)
    out = tmp_path / "limit"
    assert main(["export", str(path), "-o", str(out)]) == 2
    assert not out.exists()
