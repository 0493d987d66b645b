"""``gridgeo audit``: a hand-drawn grid layer measured against a county.

A small generated county is built once; its grids (with the exclusive grids they tile the villages with)
are the clean layer, then edited by hand with shapely: a hole cut into one grid (a gap), a neighbour
grown into another grid over a household (an overlap and a household in two grids), a grid moved away
(outside, and a gap where it was), a bow-tie (invalid), a grid in two pieces (multi-part). Every expected
value is computed here from the edited geometries, not read back from the audit.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.affinity import translate

from gridgeo.cli.main import main
from gridgeo.county.audit import AuditReport, StartFrom, audit_file
from gridgeo.county.build import build_county
from gridgeo.county.rules import CountyRules, LevelBounds
from gridgeo.data import crs as _crs
from gridgeo.data.io import write_layer, write_layers
from gridgeo.synth import synth_county, write_county


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The input county, its build, and the built grids + exclusive grids as one layer (the clean layer)."""
    d = tmp_path_factory.mktemp("audit")
    src = d / "county.gpkg"
    write_county(synth_county(seed=3, townships=1, villages=3, households=1200), src)
    res = build_county(CountyRules(county=src, use_groups=False), workers=1)
    built = d / "built.gpkg"
    write_layers(res.layers, built)
    cols = ["code", "parent", "kind", "geometry"]
    grids = pd.concat([res.layers["grids"][cols], res.layers["exclusive"][cols]], ignore_index=True)
    clean = d / "grids.gpkg"
    write_layer(gpd.GeoDataFrame(grids, geometry="geometry", crs=res.layers["grids"].crs), clean, layer="grids")
    return {"input": src, "built": built, "clean": clean, "dir": d}


def _metric(path: Path, layer: str) -> gpd.GeoDataFrame:
    g = gpd.read_file(path, layer=layer)
    return g.to_crs(_crs.metric_crs(g))


def _write(g: gpd.GeoDataFrame, path: Path) -> Path:
    write_layer(g, path, layer="grids")
    return path


def _households(county: dict[str, Path], crs: Any) -> gpd.GeoDataFrame:
    return gpd.read_file(county["built"], layer="households").to_crs(crs)


def _neighbours(g: gpd.GeoDataFrame) -> tuple[int, int]:
    """Two plain grids of one village sharing the longest boundary."""
    best: tuple[float, int, int] = (0.0, -1, -1)
    plain = g.index[g["kind"] != "exclusive"]
    for i in plain:
        for j in plain:
            if i < j and g.at[i, "parent"] == g.at[j, "parent"]:
                shared = shapely.length(shapely.intersection(g.geometry[i].boundary, g.geometry[j].boundary))
                best = max(best, (float(shared), int(i), int(j)))
    assert best[1] >= 0, "the test county has no two neighbouring grids"
    return best[1], best[2]


def test_clean_layer_audits_clean(county: dict[str, Path]) -> None:
    rep = audit_file(county["clean"], county["built"])
    t = rep.totals()
    assert rep.clean, rep.broken()
    assert t["gaps"]["count"] == t["overlaps"]["count"] == t["outside"]["count"] == 0
    assert t["households"]["in_no_unit"] == t["households"]["in_several"] == 0
    assert t["households"]["in_units"] == t["households"]["total"] > 0
    built = gpd.read_file(county["built"], layer="grids")
    hh = {u["code"]: u["households"] for u in rep.units}
    assert all(hh[c] == n for c, n in zip(built["code"], built["households"], strict=True))


def test_gap_overlap_and_household_in_two_grids(county: dict[str, Path]) -> None:
    g = _metric(county["clean"], "grids")
    a, b = _neighbours(g)
    hh = _households(county, g.crs)
    # an overlap: b grown into a around a's household nearest to b
    in_a = hh[hh["grid"] == g.at[a, "code"]]
    near = in_a.geometry.distance(g.geometry[b]).idxmin()
    p = hh.geometry[near]
    reach = float(p.distance(g.geometry[b])) + 15.0
    grown = shapely.intersection(shapely.box(p.x - reach, p.y - reach, p.x + reach, p.y + reach), g.geometry[a])
    new_b = shapely.union(g.geometry[b], grown)
    # a gap: a square cut out of another grid, away from both
    c = next(i for i in g.index if i not in (a, b) and g.at[i, "kind"] != "exclusive")
    q = shapely.point_on_surface(g.geometry[c])
    hole = shapely.box(q.x - 12, q.y - 12, q.x + 12, q.y + 12)
    assert shapely.within(hole, g.geometry[c])
    edited = g.copy()
    edited.loc[b, "geometry"] = new_b
    edited.loc[c, "geometry"] = shapely.difference(g.geometry[c], hole)
    rep = audit_file(_write(edited, county["dir"] / "edited.gpkg"), county["built"])
    assert not rep.clean

    overlap = float(shapely.area(shapely.intersection(g.geometry[a], new_b)))
    (o,) = rep.overlaps
    assert sorted(o["units"]) == sorted([g.at[a, "code"], g.at[b, "code"]])
    assert o["area_m2"] == pytest.approx(overlap, rel=1e-6)
    expect_two = {str(s) for s, pt in zip(hh["source_id"], hh.geometry, strict=True)
                  if shapely.within(pt, g.geometry[a]) and shapely.within(pt, new_b)}
    got_two = {h["id"] for h in rep.households["in_several"]}
    assert str(hh.at[near, "source_id"]) in got_two and got_two == expect_two
    assert all(sorted(h["units"]) == sorted([g.at[a, "code"], g.at[b, "code"]]) for h in rep.households["in_several"])

    (gap,) = rep.gaps
    assert gap["parent"] == g.at[c, "parent"] and g.at[c, "code"] in gap["bordering"]
    assert gap["area_m2"] == pytest.approx(24 * 24, rel=1e-6)
    lon, lat = gap["location"]
    assert shapely.within(shapely.Point(lon, lat), gpd.GeoSeries([hole], crs=g.crs).to_crs(4326).iloc[0])
    in_hole = {str(s) for s, pt in zip(hh["source_id"], hh.geometry, strict=True) if shapely.within(pt, hole)}
    assert {h["id"] for h in rep.households["in_no_unit"]} == in_hole
    assert rep.broken()["overlaps"] == 1 and rep.broken()["gaps"] == 1
    assert rep.broken().get("households_in_several", 0) == len(expect_two) >= 1


def test_outside_multipart_and_invalid(county: dict[str, Path]) -> None:
    g = _metric(county["clean"], "grids")
    plain = list(g.index[g["kind"] != "exclusive"])
    moved, split, bad = plain[0], plain[1], plain[2]
    edited = g.copy()
    edited.loc[moved, "geometry"] = translate(g.geometry[moved], xoff=50_000)
    far = translate(shapely.box(0, 0, 30, 30), *shapely.get_coordinates(shapely.point_on_surface(g.geometry[split]))[0])
    edited.loc[split, "geometry"] = shapely.MultiPolygon([g.geometry[split], translate(far, xoff=80_000)])
    x0, y0, x1, y1 = g.geometry[bad].bounds
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    edited.loc[bad, "geometry"] = bowtie
    rep = audit_file(_write(edited, county["dir"] / "outside.gpkg"), county["built"])
    by = {u["code"]: u for u in rep.units}
    out = {o["unit"]: o for o in rep.outside}
    assert out[g.at[moved, "code"]]["area_m2"] == pytest.approx(g.geometry[moved].area, rel=1e-6)
    assert out[g.at[split, "code"]]["area_m2"] == pytest.approx(900.0, rel=1e-6)
    assert by[g.at[split, "code"]]["parts"] == 2
    # the bow-tie, repaired, is two triangles: multi-part too
    assert {c for c, u in by.items() if u["parts"] > 1} == {g.at[split, "code"], g.at[bad, "code"]}
    assert by[g.at[bad, "code"]]["invalid"] is not None and rep.broken()["invalid"] == 1
    gap_area = sum(x["area_m2"] for x in rep.gaps if x["parent"] == g.at[moved, "parent"])
    assert gap_area >= g.geometry[moved].area * 0.99


def test_parent_taken_by_area_zipped_shapefile_chinese_column(county: dict[str, Path]) -> None:
    g = gpd.read_file(county["clean"], layer="grids")
    truth = dict(zip(g["code"], g["parent"], strict=True))
    hand = g.rename(columns={"code": "编码"}).drop(columns=["parent"])  # a Shapefile name holds 10 bytes
    path = county["dir"] / "hand.shp"
    hand.to_file(path, encoding="utf-8")
    zipped = county["dir"] / "hand.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for side in path.parent.glob("hand.*"):
            if side.suffix != ".zip":
                zf.write(side, side.name)
    rep = audit_file(zipped, county["built"])
    assert rep.code_column == "编码" and rep.parent_column is None
    assert {u["code"]: u["parent"] for u in rep.units} == truth
    assert all(u["parent_from"] == "area" for u in rep.units)
    assert any("most of their area" in n for n in rep.notes)


def test_geojson_with_chinese_code_and_parent_columns(county: dict[str, Path]) -> None:
    g = gpd.read_file(county["clean"], layer="grids")
    wrong = g["parent"].copy()
    wrong.iloc[0] = "999999999999"  # a village the county does not have: taken by area, and a rule broken
    hand = g.assign(所属村=wrong).rename(columns={"code": "网格编码"}).drop(columns=["parent"])
    rep = audit_file(_write(hand, county["dir"] / "hand.geojson"), county["built"])
    assert (rep.code_column, rep.parent_column) == ("网格编码", "所属村")
    first = rep.units[0]
    assert first["parent_from"] == "unknown" and first["parent"] == g["parent"].iloc[0]
    assert all(u["parent_from"] == "column" for u in rep.units[1:])
    assert rep.broken() == {"unknown_parent": 1}


def test_sizes_against_rules_bounds(county: dict[str, Path]) -> None:
    base = audit_file(county["clean"], county["built"])
    plain = [u for u in base.units if not u["exclusive"]]
    lo = min(u["households"] for u in plain) + 1
    hi = max(u["households"] for u in plain) - 1
    rules = CountyRules(bounds={k: LevelBounds(grid=(lo, hi), point=(0, 1e9)) for k in ("rural", "urban")})
    rep = audit_file(county["clean"], county["built"], rules=rules)
    size = {u["code"]: u["size"] for u in rep.units if not u["exclusive"]}
    for u in plain:
        want = "below" if u["households"] < lo else "above" if u["households"] > hi else "inside"
        assert size[u["code"]] == want
    assert rep.broken()["below_bounds"] >= 1 and rep.broken()["above_bounds"] >= 1


def test_input_county_flags_split_buildings(county: dict[str, Path]) -> None:
    rep = audit_file(county["clean"], county["input"])
    assert rep.households["footprints"] and rep.households["source"] == "building"
    b = _metric(county["input"], "buildings")
    grids = _metric(county["clean"], "grids").set_index("code").geometry
    for s in rep.households["split_buildings"]:
        fp = b.geometry.iloc[int(s["id"])]
        assert len(s["units"]) >= 2
        for code in s["units"]:
            assert shapely.area(shapely.intersection(fp, grids[code])) >= 0.01 * fp.area
    assert rep.totals()["households"]["total"] == int(gpd.read_file(county["built"], layer="villages")[
        "households"].sum())


def test_points_level_against_built_grids(county: dict[str, Path]) -> None:
    rep = audit_file(county["built"], county["built"], level="points")
    assert rep.level == "points" and rep.layer == "points" and rep.clean, rep.broken()
    pts = gpd.read_file(county["built"], layer="points")
    assert {u["code"]: u["parent"] for u in rep.units} == dict(zip(pts["code"], pts["parent"], strict=True))


def test_cli_report_and_exit_codes(county: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = county["dir"] / "audit.json"
    assert main(["audit", str(county["clean"]), "--county", str(county["built"]), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.strip().endswith("clean")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["clean"] and data["totals"]["units"] == len(data["units"])
    g = _metric(county["clean"], "grids")
    g.loc[0, "geometry"] = translate(g.geometry[0], xoff=40_000)
    broken = _write(g, county["dir"] / "broken.geojson")
    assert main(["audit", str(broken), "--county", str(county["built"]), "--report", str(report)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "breaks rules" in err[0] and "outside" in err[0]
    assert not json.loads(report.read_text(encoding="utf-8"))["clean"]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["{d}/nothere.gpkg", "--county", "{built}"], 1, "no such file"),
    (["{clean}", "--county", "{d}/nothere.gpkg"], 1, "no such file"),
    (["{clean}", "--county", "{built}", "--layer", "nope"], 1, "no layer 'nope'"),
    (["{input}", "--county", "{built}", "--layer", "roads"], 1, "no code column"),
    (["{clean}", "--county", "{built}", "--code", "nope"], 1, "column 'nope' not found"),
    (["{clean}", "--county", "{input}", "--level", "points"], 1, "needs a built county"),
    (["{clean}", "--county", "{built}", "--level", "blocks"], 2, "invalid choice"),
    (["{dup}", "--county", "{built}"], 1, "duplicate_id"),
])
def test_bad_input_one_line(county: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str],
                            code: int, words: str) -> None:
    g = gpd.read_file(county["clean"], layer="grids")
    g.loc[1, "code"] = g.loc[0, "code"]
    dup = county["dir"] / "dup.geojson"
    g.to_file(dup)
    names = {k: str(v) for k, v in county.items()} | {"d": str(county["dir"]), "dup": str(dup)}
    report = county["dir"] / "bad.json"
    report.unlink(missing_ok=True)
    assert main(["audit", *[a.format(**names) for a in args], "--report", str(report)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gridgeo: error:") and words in err[0]
    if words == "duplicate_id":  # read but not usable: the report says why, as `gridgeo check --json` does
        data = json.loads(report.read_text(encoding="utf-8"))
        assert not data["usable"] and not data["clean"] and data["check"]["summary"]["duplicate_id"] == 1
    else:
        assert not report.exists()


def test_report_roundtrips_json(county: dict[str, Path]) -> None:
    rep: AuditReport = audit_file(county["clean"], county["built"])
    d = json.loads(json.dumps(rep.to_dict(), default=str))
    assert d["metric_crs"].startswith("EPSG:45") and np.isclose(d["totals"]["gaps"]["area_m2"], 0.0)


# --------------------------------------------------------------------------------------
# a build started from hand-drawn grids (gridgeo build --start-from)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A county with several grids per village, and "hand-drawn" grids: its seed-0 grids, shrunk by 3 m
    (gaps between them, as by hand), with codes of no county form and no parent column."""
    d = tmp_path_factory.mktemp("start")
    src = d / "county.gpkg"
    write_county(synth_county(seed=3, townships=1, villages=3, households=3000), src)
    first = build_county(CountyRules(county=src, use_groups=False, seed=0), workers=1)
    g = first.layers["grids"]
    m = _crs.metric_crs(g)
    hand = gpd.GeoDataFrame({"网格编码": [f"H{i}" for i in range(len(g))]},
                            geometry=g.to_crs(m).geometry.buffer(-3), crs=m)
    path = d / "hand.geojson"
    write_layer(hand, path, layer="hand")
    return {"county": src, "hand": path, "dir": d, "metric": m, "first": first}


def _kept(res: Any, hand: gpd.GeoDataFrame, metric: Any) -> float:
    """Share of the households inside a hand-drawn grid whose new grid is the one continuing it (most overlap)."""
    from gridgeo._geom import containing

    hh = res.layers["households"].to_crs(metric)
    hg = np.asarray(hand.to_crs(metric).geometry.values, dtype=object)
    continues = {code: int(np.argmax(shapely.area(shapely.intersection(hg, geom))))
                 for code, geom in zip(res.layers["grids"]["code"], res.layers["grids"].to_crs(metric).geometry,
                                       strict=True)}
    where = containing(hg, np.asarray(hh.geometry.values, dtype=object))
    w = hh["households"].to_numpy(dtype=float)
    same = np.asarray([continues.get(c, -2) == i for c, i in zip(hh["grid"], where, strict=True)])
    return float(w[(where >= 0) & same].sum() / w[where >= 0].sum())


def test_redraw_from_hand_drawn_grids_keeps_households_in_them(drawn: dict[str, Any]) -> None:
    hand = gpd.read_file(drawn["hand"])
    start = build_county(CountyRules(county=drawn["county"], seed=7), workers=1, start_from=StartFrom(drawn["hand"]))
    fresh = build_county(CountyRules(county=drawn["county"], seed=7, use_groups=False), workers=1)
    assert start.report["start_from"]["grids"] == len(hand) and start.report["start_from"]["villages"] == 3
    assert start.report["start_from"]["parents_from_area"] == len(hand)  # no parent column: taken by area
    kept, baseline = _kept(start, hand, drawn["metric"]), _kept(fresh, hand, drawn["metric"])
    assert kept >= 0.9 and kept > baseline, (kept, baseline)


def test_redraw_follows_a_hand_moved_boundary(drawn: dict[str, Any]) -> None:
    """One hand-drawn grid takes a piece of its neighbour: the redraw follows the hand, not the old build."""
    hand = gpd.read_file(drawn["hand"]).to_crs(drawn["metric"])
    a, b = _neighbours(hand.assign(parent=[_village_of(drawn, g) for g in hand.geometry], kind="grid"))
    piece = shapely.intersection(hand.geometry[b], shapely.buffer(hand.geometry[a], 60))
    hand.loc[a, "geometry"] = shapely.union(hand.geometry[a], piece)
    hand.loc[b, "geometry"] = shapely.difference(hand.geometry[b], piece)
    path = _write(hand, drawn["dir"] / "moved.gpkg")
    start = build_county(CountyRules(county=drawn["county"], seed=7), workers=1, start_from=StartFrom(path))
    assert _kept(start, hand, drawn["metric"]) >= 0.8
    assert _kept(start, hand, drawn["metric"]) > _kept(drawn["first"], hand, drawn["metric"])


def _village_of(drawn: dict[str, Any], geom: Any) -> str:
    vil = drawn["first"].layers["villages"].to_crs(drawn["metric"])
    return str(vil["code"].iloc[int(np.argmax(shapely.area(shapely.intersection(vil.geometry.values, geom))))])


def test_hand_drawn_codes_of_county_form_are_kept(drawn: dict[str, Any]) -> None:
    first = drawn["first"].layers["grids"]
    path = _write(first[["code", "parent", "geometry"]], drawn["dir"] / "coded.gpkg")
    start = build_county(CountyRules(county=drawn["county"], seed=7), workers=1, start_from=StartFrom(path))
    assert set(start.layers["grids"]["code"]) == set(first["code"])


def test_build_cli_start_from(drawn: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rules = drawn["dir"] / "rules.toml"
    rules.write_text(f'[county]\nseed = 7\n[inputs]\ncounty = "{Path(drawn["county"]).as_posix()}"\n', encoding="utf-8")
    out = drawn["dir"] / "out.gpkg"
    assert main(["build", str(rules), "-o", str(out), "--workers", "1", "--start-from", str(drawn["hand"]),
                 "--no-progress"]) == 0
    assert out.exists()
    capsys.readouterr()
    assert main(["build", str(rules), "-o", str(out), "--start-from", str(drawn["hand"]), "--previous",
                 str(out)]) == 2
    assert "exclude each other" in capsys.readouterr().err
    bad = drawn["dir"] / "nocode.geojson"
    gpd.read_file(drawn["hand"]).rename(columns={"网格编码": "名字"}).to_file(bad)
    assert main(["build", str(rules), "-o", str(drawn["dir"] / "x.gpkg"), "--workers", "1", "--start-from",
                 str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no code column" in err[0] and "--start-code" in err[0]
    assert not (drawn["dir"] / "x.gpkg").exists()
