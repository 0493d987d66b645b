"""Areas (片区) above townships: drawn by the partition engine or given by a table, served and located."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely

from gridgeo.county.build import build_county
from gridgeo.county.rules import load_county_rules
from gridgeo.data.io import write_layers
from gridgeo.errors import InputError, UsageError
from tests.conftest import synth_rules


def _rules(d: Path, body: str) -> Path:
    rules = synth_rules(d, seed=2, townships=4, villages=12, households=3000)
    rules.write_text(rules.read_text(encoding="utf-8") + body, encoding="utf-8")
    return rules


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("areas")
    return build_county(load_county_rules(_rules(d, "[areas]\ncount = 2\n")), workers=1), d


def test_areas_drawn_from_whole_townships(drawn: Any) -> None:
    res, _ = drawn
    areas, towns = res.layers["areas"], res.layers["townships"]
    assert next(iter(res.layers)) == "areas" and len(areas) == 2
    assert set(towns["area"]) == set(areas["code"]) and all(c.startswith("369900A") for c in areas["code"])
    assert areas["n_townships"].sum() == len(towns)
    assert areas["households"].sum() == towns["households"].sum()
    for code, geom in zip(areas["code"], areas.geometry, strict=True):  # each area is its townships' union
        mine = shapely.union_all(towns[towns["area"] == code].geometry.values)
        assert shapely.symmetric_difference(geom, mine).area < 1e-12
    assert shapely.coverage_is_valid(areas.geometry.values)
    assert res.report["areas"]["areas"] == 2 and res.report["coverage"]["levels"]["areas"]["invalid"] == 0


def test_areas_served_and_located(drawn: Any) -> None:
    from service import create_app

    res, d = drawn
    out = d / "built.gpkg"
    write_layers(res.layers, out)
    client = create_app({"COUNTY": str(out), "TESTING": True}).test_client()
    items = client.get("/collections/areas/items").get_json()
    assert len(items["features"]) == 2
    pt = res.layers["villages"].geometry.iloc[0].representative_point()
    props = client.get(f"/locate?lon={pt.x}&lat={pt.y}").get_json()["properties"]
    town = res.layers["townships"].set_index("code").loc[props["township"]["code"]]
    assert props["area"]["code"] == town["area"]


def test_areas_from_a_table(tmp_path: Path) -> None:
    from gridgeo.county.sources import load_inputs

    rules = _rules(tmp_path, "")
    towns = load_inputs(load_county_rules(rules))["townships"]
    codes = towns["code"].astype(str).tolist()
    table = tmp_path / "片区.csv"
    rows = [f"{c},{'东片' if i % 2 else '西片'},{'A9' if i % 2 else 'A8'}" for i, c in enumerate(codes)]
    table.write_text("乡镇编码,片区,片区编码\n" + "\n".join(rows) + "\n", encoding="utf-8")
    rules.write_text(rules.read_text(encoding="utf-8") + '[areas]\ntable = "片区.csv"\n', encoding="utf-8")
    res = build_county(load_county_rules(rules), workers=1)
    areas = res.layers["areas"].set_index("name")
    assert set(areas.index) == {"东片", "西片"} and areas.loc["东片", "code"] == "A9"
    table.write_text("乡镇编码,片区\n" + rows[0].rsplit(",", 1)[0] + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"片区.csv: .* township\(s\) in no area"):
        build_county(load_county_rules(rules), workers=1)


def test_areas_rules_checked(tmp_path: Path) -> None:
    p = tmp_path / "rules.toml"
    for body, match in [("[areas]\nmin = 5\n", "needs count"),
                        ("[areas]\ncount = 2\nmin = 9\nmax = 3\n", "min is above"),
                        ("[areas]\ncount = 2\nsize = 3\n", "unknown key 'size'")]:
        p.write_text(body, encoding="utf-8")
        with pytest.raises(UsageError, match=match):
            load_county_rules(p)


def test_roster_people_on_an_area(drawn: Any) -> None:
    import pandas as pd

    from gridgeo.data.tables import ROW
    from gridgeo.people.roster import resolve_roster

    res, _ = drawn
    code = str(res.layers["areas"]["code"].iloc[0])
    df = pd.DataFrame({"name": ["片区长甲"], "role": ["片区长"], "unit": [code], ROW: [2]})
    df.attrs["found"] = {"name": "name", "role": "role", "unit": "unit"}
    out = resolve_roster(df, res.layers, source="r.csv")
    assert out.table[["level", "unit"]].values.tolist() == [["areas", code]]
