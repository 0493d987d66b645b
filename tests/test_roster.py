"""People on every level: a roster resolved onto a build, carried through a rebuild, served by /locate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gridgeo.county.build import build_county
from gridgeo.county.rules import load_county_rules
from gridgeo.data.io import read_layer, write_layers
from tests.conftest import synth_rules, write_workbook

HEADER = ["姓名", "职务", "联系电话", "单位编码", "网格名称", "所属村(社区)", "层级", "备注"]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated county built once, and a roster naming people on every level of that build."""
    d = tmp_path_factory.mktemp("people")
    rules = synth_rules(d, seed=5, townships=2, villages=6, households=1500)
    base = build_county(load_county_rules(rules), workers=1).layers
    t, b, v, g, p, x = (base[k] for k in ("townships", "blocks", "villages", "grids", "points", "exclusive"))
    village = v.iloc[0]
    town_name = t.set_index("code").loc[village["parent"], "name"]
    busy = g.groupby("parent").size().idxmax()  # the village with the most grids: the one to change
    its_grids = g[g["parent"] == busy]["code"].tolist()
    bld = base["households"]["source_id"].iloc[0]
    rows = [
        ["乡镇干部甲", "包村干部", "13900000001", t["code"].iloc[0], None, None, "乡镇", None],
        ["块长甲", "块长", "13900000002", b["code"].iloc[0], None, None, None, None],
        ["村书记甲", "村党支部书记", "13900000003", None, village["name"], town_name, "村", None],
        ["格长甲", "网格长", "13900000004", "、".join(its_grids[:2]), None, None, None, "一员多用"],
        ["网格员甲", "专职网格员", "13900000005", its_grids[-1], None, None, None, None],
        ["网格员乙", "网格辅助员", "13900000006", its_grids[-1], None, None, None, "多员合一"],
        ["点长甲", "网格点长", "13900000007", p[p["parent"] == its_grids[-1]]["code"].iloc[0], None, None, None,
         None],
        ["专属网格长甲", "专属网格长", "13900000008", x["code"].iloc[0], None, None, None, None],
        ["楼栋长甲", "楼栋长", "13900000009", bld, None, None, None, None],
        ["查无此格", "网格员", "13900000010", "369900999999" + "01", None, None, None, None],
    ]
    its_points = p[p["village"] == busy]["code"].tolist()
    rows += [[f"点长{i}", "网格点长", f"137{i:08d}", code, None, None, None, None] for i, code in enumerate(its_points)]
    roster = write_workbook(d / "名册.xlsx", HEADER, rows, title="某某镇网格化管理人员名册")
    rules.write_text(rules.read_text(encoding="utf-8") + 'people = "名册.xlsx"\n', encoding="utf-8")
    res = build_county(load_county_rules(rules), workers=1)
    out = d / "first.gpkg"
    write_layers(res.layers, out)
    return {"dir": d, "rules": rules, "res": res, "out": out, "busy": busy, "grids": its_grids, "roster": roster,
            "exclusive": x["code"].iloc[0], "points": its_points}


def test_people_on_every_level(first: dict[str, Any]) -> None:
    people = first["res"].layers["people"]
    assert set(people["level"]) == {"townships", "blocks", "villages", "grids", "points", "exclusive",
                                    "buildings"}
    leader = people[people["name"] == "格长甲"]
    assert leader["unit"].tolist() == first["grids"][:2] and leader["person_id"].nunique() == 1
    assert set(people[people["unit"] == first["grids"][-1]]["name"]) == {"网格员甲", "网格员乙"}
    village = people[people["name"] == "村书记甲"].iloc[0]
    assert village["level"] == "villages" and village["unit"] == first["res"].layers["villages"]["code"].iloc[0]
    assert people["备注"].notna().sum() == 3 and people["roster_row"].min() == 3  # title + header above
    skipped = first["res"].report["people"]["skipped"]
    assert [(s["row"], s["name"]) for s in skipped] == [(12, "查无此格")] and "no unit" in skipped[0]["reason"]
    assert set(people[people["role"] == "网格点长"]["unit"]) >= set(first["points"])


def test_people_table_is_written_without_geometry(first: dict[str, Any]) -> None:
    import pyogrio

    assert dict(pyogrio.list_layers(first["out"]))["people"] is None
    t = pyogrio.read_dataframe(first["out"], layer="people", read_geometry=False)
    assert len(t) == len(first["res"].layers["people"]) and "phone" in t.columns


def test_rebuild_carries_people_and_reports_the_vanished(first: dict[str, Any]) -> None:
    """One village loses most of its buildings and a school goes: its people follow or are reported."""
    d = first["dir"]
    gpkg = d / "county.gpkg"
    b = read_layer(gpkg, layer="buildings")
    inside = b["village"].astype(str) == first["busy"]
    keep = ~inside | (inside.cumsum() % 20 == 0)
    b[keep.to_numpy()].to_file(gpkg, layer="buildings", driver="GPKG")
    pois = read_layer(first["out"], layer="exclusive")
    gone = pois[pois["code"] == first["exclusive"]]["source_id"].iloc[0]
    p = read_layer(gpkg, layer="pois")
    p = p[[f"poi{i}" != gone and str(n) != pois[pois["code"] == first["exclusive"]]["name"].iloc[0]
           for i, n in enumerate(p["name"])]]
    p.to_file(gpkg, layer="pois", driver="GPKG")
    res = build_county(load_county_rules(first["rules"]), previous=first["out"], workers=1)
    points = set(res.layers["points"]["code"])
    retired = [c for c in first["points"] if c not in points]
    assert retired, "the changed village kept every point code: the test changed too little"
    rep = res.report["people"]
    moved = {m["from"]: m["to"] for m in rep["moved"]}
    gone = {s["unit"] for s in rep["skipped"] if "gone" in s["reason"]}
    assert set(retired) == (set(moved) | gone) & set(retired)  # each retired point's leader: moved or reported
    assert moved and all(t in points for t in moved.values())
    people = res.layers["people"]
    assert not set(people["unit"]) & set(retired)
    assert any(s["name"] == "专属网格长甲" and "gone" in s["reason"] for s in rep["skipped"])


def test_people_layer_of_a_previous_build_is_carried(first: dict[str, Any], tmp_path: Path) -> None:
    """A rebuild whose rules no longer name the roster keeps the people of the previous build."""
    rules = tmp_path / "rules.toml"
    county = first["dir"] / "county.gpkg"
    rules.write_text(f'[county]\nseed = 0\n[inputs]\ncounty = "{county.as_posix()}"\n', encoding="utf-8")
    res = build_county(load_county_rules(rules), previous=first["out"], workers=1)
    assert len(res.layers["people"]) and res.report["people"]["source"].endswith("(layer people)")


def test_locate_returns_the_people(first: dict[str, Any]) -> None:
    from service import create_app

    res = first["res"]
    grid = res.layers["grids"]
    row = grid[grid["code"] == first["grids"][-1]].iloc[0]
    pt = row.geometry.representative_point()
    client = create_app({"COUNTY": str(first["out"]), "TESTING": True}).test_client()
    body = client.get(f"/locate?lon={pt.x}&lat={pt.y}").get_json()
    props = body["features"][0]["properties"] if "features" in body else body["properties"]
    names = {p["name"] for p in props["grid"]["people"]}
    assert names == {"网格员甲", "网格员乙"} and props["grid"]["people"][0]["phone"].startswith("139")
    assert {p["role"] for p in props["township"].get("people", [])} <= {"包村干部"}


def test_service_withholds_register_columns(first: dict[str, Any], tmp_path: Path) -> None:
    """A built households layer with names and phones: the service serves the assignment only."""
    from service import create_app

    hh = read_layer(first["out"], layer="households")
    hh["name"], hh["phone"], hh["priority"] = "张三", "13800000000", "red"
    layers = {k: read_layer(first["out"], layer=k) for k in ("villages", "grids", "points")}
    out = tmp_path / "private.gpkg"
    write_layers({**layers, "households": hh}, out)
    client = create_app({"COUNTY": str(out), "TESTING": True}).test_client()
    feats = client.get("/collections/households/items?limit=5").get_json()["features"]
    assert feats and not {"name", "phone", "priority"} & set(feats[0]["properties"])
    assert "grid" in feats[0]["properties"]


def test_roster_by_name_needs_a_level(tmp_path: Path, first: dict[str, Any]) -> None:
    from gridgeo.people.roster import read_roster, resolve_roster

    p = tmp_path / "r.csv"
    p.write_text("姓名,所在网格,所属村\n王五,第一网格,某村\n", encoding="utf-8")
    df, src = read_roster(p)
    out = resolve_roster(df, first["res"].layers, source=src)
    assert out.table.empty and "needs a level" in out.skipped[0]["reason"] and out.skipped[0]["row"] == 2
    assert isinstance(df, pd.DataFrame)
