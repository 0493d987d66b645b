"""``gridgeo diff``: the change list between two builds, on real builds of the sample and on hand edits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyogrio
import pytest

from gridgeo.cli.main import main
from gridgeo.county.diff import diff_counties
from gridgeo.errors import InputError

from .service_county import make_county

ROOT = Path(__file__).resolve().parents[1]
#: the village whose grid-point bounds the second build overrides
VILLAGE = "369900001001"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample built twice: as shipped, and with one village's point bounds overridden."""
    d = tmp_path_factory.mktemp("diff")
    text = (ROOT / "boundaries" / "sample_rules.toml").read_text(encoding="utf-8")
    text = re.sub(r'^county = "sample_county.gpkg"', f'county = "{ROOT / "boundaries" / "sample_county.gpkg"}"',
                  text, flags=re.M)
    rules = d / "one_village.toml"
    rules.write_text(text + f'\n[bounds.village."{VILLAGE}"]\npoint = [5, 30]\n', encoding="utf-8")
    a, b = d / "a.gpkg", d / "b.gpkg"
    assert main(["build", str(ROOT / "boundaries" / "sample_rules.toml"), "-o", str(a), "-q", "--no-progress"]) == 0
    assert main(["build", str(rules), "-o", str(b), "-q", "--no-progress"]) == 0
    return a, b


def _moved_points(a: Path, b: Path) -> pd.DataFrame:
    """Households whose point differs, found independently of the module (a plain merge on the key)."""
    key = ["source", "source_id"]
    ha = pyogrio.read_dataframe(a, layer="households", read_geometry=False)
    hb = pyogrio.read_dataframe(b, layer="households", read_geometry=False)
    m = ha.merge(hb, on=key, suffixes=("_a", "_b"))
    return m[m["point_a"] != m["point_b"]]


def test_one_village_changed(builds: tuple[Path, Path]) -> None:
    a, b = builds
    res = diff_counties(a, b)
    changed = {n: lv for n, lv in res.levels.items() if lv.retired or lv.created or lv.reshaped}
    assert set(changed) == {"points"}, {n: (len(v.retired), len(v.created)) for n, v in changed.items()}
    pts = changed["points"]
    codes = pts.retired + pts.created + [r["code"] for r in pts.reshaped]
    assert codes and all(c.startswith(VILLAGE) for c in codes)
    ca = set(pyogrio.read_dataframe(a, layer="points", columns=["code"], read_geometry=False)["code"])
    cb = set(pyogrio.read_dataframe(b, layer="points", columns=["code"], read_geometry=False)["code"])
    assert sorted(ca - cb) == pts.retired and sorted(cb - ca) == pts.created
    moved = _moved_points(a, b)
    got = res.households["moved"]
    assert set(got) == {"point"} and got["point"]["rows"] == len(moved) > 0
    assert got["point"]["households"] == int(moved["households_b"].sum())
    assert (moved["village_a"] == VILLAGE).all() and (moved["village_b"] == VILLAGE).all()
    assert sum(p["rows"] for p in got["point"]["pairs"]) == len(moved)
    assert res.households["only_old"] == res.households["only_new"] == 0
    assert res.levels["points"].rules_after["units"] == len(cb)


def test_same_build_no_change_and_cli_json(builds: tuple[Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    a, b = builds
    same = diff_counties(a, a)
    assert all(not (lv.retired or lv.created or lv.reshaped) for lv in same.levels.values())
    assert same.households["moved"] == {}
    out = tmp_path / "d.json"
    assert main(["diff", str(a), str(b), "--json", str(out)]) == 0
    assert "moved at point" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(diff_counties(a, b).as_dict()))


def test_hand_edit_retires_a_grid_and_names_its_people(tmp_path: Path) -> None:
    a = make_county(tmp_path / "a.gpkg")
    grids = pyogrio.read_dataframe(a, layer="grids")
    keep, gone = grids["code"].iloc[0], grids["code"].iloc[1]
    people = pd.DataFrame({"person_id": ["P1", "P2"], "role": ["网格员", "网格员"], "unit": [keep, gone]})
    pyogrio.write_dataframe(people, a, layer="people", driver="GPKG", append=True)
    b = tmp_path / "b.gpkg"
    for name, _g in pyogrio.list_layers(a):
        df = pyogrio.read_dataframe(a, layer=name)
        if name == "grids":  # grid `gone` joins `keep`
            merged = df.loc[df["code"].isin([keep, gone])].union_all()
            df = df[df["code"] != gone].copy()
            df.loc[df["code"] == keep, "geometry"] = merged
        pyogrio.write_dataframe(df, b, layer=name, driver="GPKG", append=b.exists())
    res = diff_counties(a, b)
    assert res.levels["grids"].retired == [gone] and res.levels["grids"].created == []
    assert [r["code"] for r in res.levels["grids"].reshaped] == [keep]
    r = res.levels["grids"].reshaped[0]
    assert r["area_after_m2"] > r["area_before_m2"] and r["changed_m2"] > 0
    assert res.people["on_retired"] == [{"person_id": "P2", "role": "网格员", "unit": gone}]
    assert res.people["moved"] == []
    # the small county's households carry no register key: matched by row, and none moved village
    assert res.households["matched_by"] == "row" and res.households["moved"] == {}


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage", encoding="utf-8")
    good = make_county(tmp_path / "a.gpkg")
    with pytest.raises(InputError, match="bad.gpkg"):
        diff_counties(good, bad)
