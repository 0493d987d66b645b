"""Household registers (CSV, XLSX): header checks, persons made households, placement, carried through a build.

The registers are generated here in the shape counties keep them: an Excel
workbook with a merged title row over Chinese headers, one row per person
with a household number (户号), the head marked in 与户主关系, colours as
红/橙/黄, dates as Excel dates and as ``2026年11月30日`` text; some rows
placed by lon/lat, some only by their building's code, some by address.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from gridgeo.data.io import read_layer
from gridgeo.data.registers import date_of, member_of, prepare_register, priority_of
from gridgeo.data.tables import ROW, read_table
from gridgeo.errors import CRSError, FileFormatError, SchemaError
from tests.conftest import synth_rules, write_workbook

HEADER = ["户号", "姓名", "与户主关系", "联系电话", "住址", "建筑编码", "风险等级", "类别", "是否党员", "最近走访",
          "经度", "纬度", "性别"]


def _xlsx(path: Path, header: list[str], rows: list[list[Any]], *, title: str | None = "某某镇户籍登记表",
          merge_header: str | None = None) -> Path:
    write_workbook(path, header, rows, title=title, sheet="登记表")
    if merge_header is not None:  # a two-row header: a group cell merged over its first two columns
        wb = openpyxl.load_workbook(path)
        ws = wb.active
        at = 2 if title is not None else 1
        ws.insert_rows(at)
        for j, h in enumerate([merge_header, None, *header[2:]], start=1):
            ws.cell(row=at, column=j, value=h)
        ws.merge_cells(start_row=at, start_column=1, end_row=at, end_column=2)
        wb.save(path)
    return path


# ------------------------------------------------------------------------------ a county and its register
@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated county whose buildings carry codes, and a person register placed on them."""
    d = tmp_path_factory.mktemp("register")
    rules = synth_rules(d, seed=5, townships=2, villages=6, households=1500)
    gpkg = d / "county.gpkg"
    b = read_layer(gpkg, layer="buildings")
    b["code"] = [f"B{i:05d}" for i in range(len(b))]
    b.to_file(gpkg, layer="buildings", driver="GPKG")
    pts = b.geometry.to_crs(4326).representative_point()
    rows, expect = _person_rows(b, pts)
    _xlsx(d / "register.xlsx", HEADER, rows)
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text + 'households = {path = "register.xlsx", layer = "登记表"}\n', encoding="utf-8")
    return {"dir": d, "rules": rules, "expect": expect, "buildings": b}


def _person_rows(b: gpd.GeoDataFrame, pts: gpd.GeoSeries) -> tuple[list[list[Any]], dict[str, Any]]:
    """Persons of 40 households: even ones by lon/lat, odd ones by building code; and the rows that fail."""
    rng = np.random.default_rng(0)
    rows: list[list[Any]] = []
    colours = ["红", "橙", "黄", "绿", None]
    for h in range(40):
        key = f"3699000{h:04d}"
        bi = int(h * 7 % len(b))
        lon, lat = (float(pts.iloc[bi].x), float(pts.iloc[bi].y)) if h % 2 == 0 else (None, None)
        bcode = None if h % 2 == 0 else f"B{bi:05d}"
        size = 1 + h % 4
        for k in range(size):
            rel = "户主" if k == 1 or (size == 1) else ("配偶" if k == 0 else "子女")
            rows.append([key, f"户{h}人{k}", rel, f"1380000{h:04d}" if k == 1 or size == 1 else None,
                         f"幸福路{h}号", bcode, colours[h % 5] if k == 0 else None,
                         "低保户" if h % 3 == 0 and k == 0 else ("留守儿童" if h % 3 == 0 and k == 2 else None),
                         "是" if h % 6 == 0 and k == 0 else "否",
                         dt.datetime(2026, 11, 1 + h % 20) if h % 4 == 0 else "2026年11月30日",
                         lon, lat, "男" if rng.random() < 0.5 else "女"])
    rows.append(["36990009998", "无名", "户主", None, None, "B99999", "红", None, None, None, None, None, "男"])
    rows.append(["36990009999", "远方", "户主", None, None, None, "红", None, None, None, 100.0, 40.0, "男"])
    rows.append([None, "无户号", "户主", None, None, None, None, None, None, None, None, None, "女"])
    rows.append(rows[2][:])  # the same person twice
    return rows, {"households": 42, "persons": len(rows)}


@pytest.fixture(scope="module")
def built(county: dict[str, Any]) -> Any:
    from gridgeo.county.build import build_county
    from gridgeo.county.rules import load_county_rules

    return build_county(load_county_rules(county["rules"]), workers=1)


def test_households_layer_carries_the_register(built: Any) -> None:
    hh = built.layers["households"]
    assert {"name", "phone", "address", "building", "size", "priority", "special", "party_member",
            "last_visit"} <= set(hh.columns)
    assert "性别" not in hh.columns  # differs within a household: a person's, not a household's
    assert "id_number" not in hh.columns and ROW not in hh.columns
    h2 = hh[hh["source_id"] == "36990000002"].iloc[0]
    assert h2["name"] == "户2人1"  # the head (户主), not the first person listed
    assert h2["size"] == 3 and h2["priority"] == "yellow" and h2["phone"] == "13800000002"
    h0 = hh[hh["source_id"] == "36990000000"].iloc[0]
    assert h0["priority"] == "red" and h0["party_member"] == "是" and h0["special"] == "低保户"
    assert h0["last_visit"] == "2026-11-01"
    h3 = hh[hh["source_id"] == "36990000003"].iloc[0]
    assert h3["priority"] is None or pd.isna(h3["priority"])  # 绿: not marked
    assert h3["special"] == "低保户、留守儿童" and h3["last_visit"] == "2026-11-30"
    placed = hh[hh["source_id"].str.startswith("369900000")]
    assert placed["grid"].notna().all() and len(placed) == 40


def test_register_report_lists_every_row_left_out(built: Any, county: dict[str, Any]) -> None:
    reg = built.report["register"]
    assert reg["persons"] == county["expect"]["persons"]
    reasons = {u["id"]: u["reason"] for u in reg["unplaced"]}
    assert "matches no building" in reasons["36990009998"]
    assert reasons["36990009999"] == "outside every village"
    assert any(u["id"] is None and "no household key" in u["reason"] for u in reg["unplaced"])
    assert any("duplicate person" in u["reason"] for u in reg["unplaced"])
    assert all(isinstance(u["row"], int) and u["row"] >= 3 for u in reg["unplaced"])  # title + header above
    assert "性别" in reg["dropped"]
    table = built.layers["register_unplaced"]
    assert table.astype(object).where(table.notna(), None).to_dict("records") == reg["unplaced"]
    assert any("register" in w or "row" in w for w in built.report["warnings"])


def test_building_placed_rows_sit_on_their_building(built: Any, county: dict[str, Any]) -> None:
    hh = built.layers["households"]
    b = county["buildings"].to_crs(hh.crs)
    row = hh[hh["source_id"] == "36990000001"].iloc[0]
    target = b[b["code"] == row["building"]].geometry.iloc[0]
    assert target.buffer(1e-6).contains(row.geometry)


def test_patrol_uses_the_register(built: Any, tmp_path: Path) -> None:
    from gridgeo.data.io import write_layers
    from gridgeo.patrol.county import County

    out = tmp_path / "built.gpkg"
    write_layers(built.layers, out)
    c = County(out, seed=0)
    hh = built.layers["households"]
    grid = str(hh[hh["source_id"] == "36990000000"]["grid"].iloc[0])
    stops = c.grid_stops(grid, dt.date(2026, 12, 2))
    assert stops.synthetic_priorities is False
    named = {s.id: s for s in stops.stops if s.kind == "household"}
    assert named["36990000000"].name == "户0人0" and named["36990000000"].priority == "red"
    assert named["36990000000"].last_visit == dt.date(2026, 11, 1)


# ------------------------------------------------------------------------------ tables
def test_csv_in_gbk_with_projected_coordinates(tmp_path: Path) -> None:
    p = tmp_path / "hh.csv"
    p.write_bytes("户号,户主姓名,X坐标,Y坐标,颜色\n1,张三,39500000,3120000,红\n2,李四,39500100,3120050,黄\n"
                  .encode("gb18030"))
    with pytest.raises(CRSError, match="projected coordinates.*declare"):
        read_layer(p, kind="households")
    gdf = read_layer(p, kind="households", crs="EPSG:4527")
    assert gdf.crs.to_epsg() == 4527 and list(gdf["name"]) == ["张三", "李四"]
    assert gdf.geometry.iloc[0].equals(shapely.Point(39500000, 3120000)) and list(gdf[ROW]) == [2, 3]


def test_column_mapping_and_datum(tmp_path: Path) -> None:
    p = tmp_path / "hh.csv"
    p.write_text("编号,户主,东,北\nA,王五,116.40,39.90\n", encoding="utf-8")
    gdf = read_layer(p, kind="households", columns={"id": "编号", "x": "东", "y": "北"}, datum="gcj02")
    assert gdf["id"].iloc[0] == "A" and gdf["name"].iloc[0] == "王五"
    assert gdf.crs.to_epsg() == 4326 and 0 < abs(gdf.geometry.iloc[0].x - 116.40) < 0.01  # shifted back


def test_xlsx_merged_header_is_refused(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "bad.xlsx", HEADER, [["1", "张三", "户主", *([None] * 10)]], merge_header="基本信息")
    with pytest.raises(FileFormatError, match=r"bad.xlsx \(sheet 登记表\).*header row 2 has no name.*B2"):
        read_table(p)


def test_duplicate_header_and_bad_coordinate(tmp_path: Path) -> None:
    p = tmp_path / "dup.csv"
    p.write_text("户号,电话,电话\n1,2,3\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="columns B and C are both named '电话'"):
        read_table(p)
    q = tmp_path / "xy.csv"
    q.write_text("户号,经度,纬度\n1,116.4,39.9\n2,东经,39.9\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"xy.csv: row 3: column '经度' is '东经', not a number"):
        read_layer(q, kind="households")


def test_missing_key_columns_are_named(tmp_path: Path) -> None:
    """A register with nothing to place its rows by is refused; one whose rows lack values reports each row."""
    from gridgeo.data.registers import place_on_buildings

    p = tmp_path / "hh.csv"
    p.write_text("姓名,电话\n张三,1\n李四,2\n", encoding="utf-8")
    reg = prepare_register(read_layer(p, kind="households"), source=str(p))
    with pytest.raises(SchemaError, match=r"hh.csv: a household register needs coordinates.*columns are"):
        place_on_buildings(reg, None)
    p.write_text("姓名,地址\n张三,\n李四,幸福路1号\n", encoding="utf-8")
    reg = prepare_register(read_layer(p, kind="households"), source=str(p))
    place_on_buildings(reg, None)
    assert len(reg.frame) == 0
    assert [s.row for s in reg.skipped] == [2, 3]
    assert all("no coordinates" in s.reason for s in reg.skipped)


@pytest.mark.parametrize(("value", "want"), [
    ("红", "red"), ("红色", "red"), ("橙色预警", "orange"), ("Yellow", "yellow"), ("绿", None), ("", None),
    (None, None), ("紫", False)])
def test_priority_values(value: object, want: object) -> None:
    assert priority_of(value) == want


@pytest.mark.parametrize(("value", "want"), [
    (dt.datetime(2026, 11, 3, 8, 0), "2026-11-03"), ("2026/11/3", "2026-11-03"), ("2026年11月3日", "2026-11-03"),
    (46329, "2026-11-03"), ("2026-02-30", False), ("昨天", False), (None, None)])
def test_date_values(value: object, want: object) -> None:
    assert date_of(value) == want


@pytest.mark.parametrize(("value", "want"),
                         [("是", "是"), ("中共党员", "是"), ("群众", "否"), (1, "是"), ("x?", False)])
def test_member_values(value: object, want: object) -> None:
    assert member_of(value) == want


# ------------------------------------------------------------------------------ villages-only builds
def test_taipei_villages_only(taipei: Path, tmp_path: Path) -> None:
    """Taipei's 里 alone: township codes from the village codes, every 里 urban, the estimate said loudly."""
    from gridgeo.county.build import build_county
    from gridgeo.county.report import format_report
    from gridgeo.county.rules import load_county_rules

    rules = tmp_path / "rules.toml"
    rules.write_text(f'[inputs]\nvillages = "{taipei.as_posix()}"\n', encoding="utf-8")
    res = build_county(load_county_rules(rules), workers=1)
    towns, vil = res.layers["townships"], res.layers["villages"]
    assert len(towns) == 12 and set(towns["code"].str.len()) == {7}
    assert towns.set_index("name").loc["北投區", "code"] == "6301200"
    assert (vil["parent"] == vil["code"].str[:7]).all()
    assert (vil["kind"] == "urban").all()
    assert any("every level below the village" in e for e in res.report["estimates"])
    assert "every level below the village" in format_report(res.report)


def test_villages_only_spreads_village_households(tmp_path: Path) -> None:
    """A villages layer with household counts: grids and points sized on them, totals kept exactly."""
    from gridgeo.county.build import build_county
    from gridgeo.county.rules import load_county_rules

    rules_path = synth_rules(tmp_path, seed=7, townships=2, villages=5, households=2000)
    v = read_layer(tmp_path / "county.gpkg", layer="villages")
    v.to_file(tmp_path / "villages.gpkg", layer="villages", driver="GPKG")
    rules_path.write_text('[inputs]\nvillages = "villages.gpkg"\n', encoding="utf-8")
    res = build_county(load_county_rules(rules_path), workers=1)
    grids, vil = res.layers["grids"], res.layers["villages"]
    assert dict(zip(vil["code"], vil["households"], strict=True)) == dict(zip(v["code"], v["households"],
                                                                               strict=True))
    assert grids.groupby("parent")["households"].sum().to_dict() == dict(zip(v["code"], v["households"],
                                                                              strict=True))
    assert res.report["bounds"]["grids"]["within_bounds"] > 0.5
    assert res.report["households"]["estimated"] == int(v["households"].sum())


def test_township_codes_need_the_scheme() -> None:
    from gridgeo.county.sources import township_codes

    codes = pd.Series(["361001101001", "361001101002", "361001102001"])
    assert township_codes(codes, None).tolist() == ["361001101", "361001101", "361001102"]
    assert township_codes(codes, pd.Series(["甲镇", "乙镇", "乙镇"])) is None  # the names disagree with the codes
    assert township_codes(pd.Series(["A1", "A2"]), None) is None


# ------------------------------------------------------------------------------ [inputs] options
def test_inputs_options_read_and_checked(tmp_path: Path) -> None:
    from gridgeo.county.rules import load_county_rules
    from gridgeo.errors import UsageError

    p = tmp_path / "rules.toml"
    p.write_text('[inputs]\nhouseholds = {path = "hh.csv", crs = "EPSG:4527", encoding = "GBK", '
                 'columns = {name = "户主", x = "东", y = "北"}}\n', encoding="utf-8")
    spec = load_county_rules(p).inputs["households"]
    assert spec.read_options() == {"crs": "EPSG:4527", "encoding": "GBK",
                                   "columns": {"name": "户主", "x": "东", "y": "北"}}
    for body, match in [('{path = "a.csv", sheet = "x"}', "unknown key 'sheet'"),
                        ('{path = "a.csv", datum = "wgs1984"}', "datum must be"),
                        ('{path = "a.csv", columns = {nmae = "户主"}}', "unknown name 'nmae'"),
                        ('{layer = "x"}', "needs path")]:
        p.write_text(f"[inputs]\nhouseholds = {body}\n", encoding="utf-8")
        with pytest.raises(UsageError, match=match):
            load_county_rules(p)


def test_build_cli_refuses_a_merged_header(tmp_path: Path) -> None:
    """Through the command line: exit 1, one line naming the workbook, the sheet and the cell; nothing written."""
    import subprocess
    import sys

    _xlsx(tmp_path / "hh.xlsx", HEADER, [["1", "张三", "户主", *([None] * 10)]], merge_header="基本信息")
    rules = synth_rules(tmp_path, seed=1, townships=1, villages=2, households=300)
    rules.write_text(rules.read_text(encoding="utf-8") + 'households = "hh.xlsx"\n', encoding="utf-8")
    out = tmp_path / "out.gpkg"
    run = subprocess.run([sys.executable, "-m", "gridgeo.cli", "build", str(rules), "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and not out.exists()
    last = run.stderr.strip().splitlines()[-1]
    assert "hh.xlsx (sheet 登记表)" in last and "header row 2 has no name" in last


def test_placed_by_normalised_address(tmp_path: Path) -> None:
    """Rows with only an address find their building however the address is spaced or written (full-width
    digits); an address two buildings share is reported, not guessed."""
    from gridgeo.data.registers import place_on_buildings

    b = gpd.GeoDataFrame({"address": ["幸福路 12 号", "幸福路14号", "和平街3号", "和平街3号"]},
                         geometry=[shapely.box(i * 10, 0, i * 10 + 8, 8) for i in range(4)], crs="EPSG:4527")
    p = tmp_path / "hh.csv"
    p.write_text("户号,户主姓名,地址\nA,甲,幸福路１２号\nB,乙,幸福路14 号\nC,丙,和平街3号\nD,丁,无名路1号\n",
                 encoding="utf-8")
    reg = prepare_register(read_layer(p, kind="households", crs="EPSG:4527"), source=str(p))
    place_on_buildings(reg, b)
    assert reg.frame["id"].tolist() == ["A", "B"]
    assert b.geometry.iloc[0].contains(reg.frame.geometry.iloc[0])
    assert b.geometry.iloc[1].contains(reg.frame.geometry.iloc[1])
    why = {s.id: s.reason for s in reg.skipped}
    assert "matches 2 buildings" in why["C"] and "matches no building" in why["D"]
    assert [s.row for s in reg.skipped] == [4, 5]


def test_visit_window_under_its_chinese_name(tmp_path: Path) -> None:
    """走访时段 is the households' visit_window (patrol keeps visits inside it) and is carried."""
    p = tmp_path / "hh.csv"
    p.write_text("户号,户主姓名,经度,纬度,走访时段\nA,甲,117.1,28.2,18:00-21:00\n", encoding="utf-8")
    reg = prepare_register(read_layer(p, kind="households"), source=str(p))
    assert reg.frame["visit_window"].iloc[0] == "18:00-21:00" and "visit_window" in reg.carried
