"""A block (片区) redrawn over Part 4: villages moved between the blocks of their township (service/edit_geometry.py),
on both backends, the layers in memory and read page by page."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
import shapely.geometry

from gridgeo.store import Versions

from .access_county import Served, make_people_county, serve_editable

#: the two blocks: B01 holds the village that touches only 008, B02 the other two (008 touches both)
SPLIT = {"369900001009": "369900001B01", "369900001008": "369900001B02", "369900001010": "369900001B02"}


@pytest.fixture(scope="module")
def block_county(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The people county with its township in two blocks, and a rules file whose blocks hold 300 or more."""
    d = tmp_path_factory.mktemp("blocks")
    path = make_people_county(d / "county.gpkg")
    vil = pyogrio.read_dataframe(path, layer="villages")
    vil["block"] = vil["code"].map(SPLIT)
    blocks = pyogrio.read_dataframe(path, layer="blocks")
    rows = []
    for code in sorted(set(SPLIT.values())):
        mine = vil[vil["block"] == code]
        rows.append({**blocks.iloc[0].drop("geometry").to_dict(), "code": code, "name": f"块{code[-2:]}",
                     "households": int(mine["households"].sum()),
                     "geometry": shapely.coverage_union_all(mine.geometry.values)})
    pyogrio.write_dataframe(vil, path, layer="villages", driver="GPKG")
    pyogrio.write_dataframe(gpd.GeoDataFrame(rows, crs=blocks.crs), path, layer="blocks", driver="GPKG")
    rules = d / "rules.toml"
    rules.write_text("[blocks]\nmin = 300\n", encoding="utf-8")
    return path, rules


@pytest.fixture(params=[{}, {"LAZY_AT": 0}], ids=["memory", "lazy"])
def served(request: pytest.FixtureRequest, block_county: tuple[Path, Path], store_target: str,
           tmp_path: Path) -> Served:
    source, rules = block_county
    return serve_editable(source, store_target, tmp_path, RULES=str(rules), **request.param)


def _features(s: Served, layer: str) -> dict[str, dict]:
    return {str(f["id"]): f for f in s.client.get(f"/collections/{layer}/items?limit=1000").get_json()["features"]}


def _patch(s: Served, block: str, geom: object, *, preview: bool = False):  # type: ignore[no-untyped-def]
    q = "?preview=true" if preview else ""
    return s.client.patch(f"/collections/blocks/items/{block}{q}", json={"geometry": shapely.geometry.mapping(geom)},
                          headers={**s.auth("admin"), "If-Match": "*"})


def test_a_block_redrawn_moves_a_whole_village_and_is_rolled_back(served: Served) -> None:
    s = served
    blocks, villages = _features(s, "blocks"), _features(s, "villages")
    moved = "369900001008"
    v = {c: shapely.geometry.shape(f["geometry"]) for c, f in villages.items()}
    outline = shapely.union(shapely.geometry.shape(blocks["369900001B01"]["geometry"]), v[moved])
    shown = _patch(s, "369900001B01", outline, preview=True).get_json()
    assert shown["applied"] is False and shown["rules"]["ok"], shown
    assert shown["moves"] == [{"code": moved, "from": "369900001B02", "to": "369900001B01"}]
    resp = _patch(s, "369900001B01", outline)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    changes = resp.get_json()["changes"]
    assert [(m["code"], m["from"], m["to"]) for m in changes["levels"]["villages"]["moved"]] == [
        (moved, "369900001B02", "369900001B01")]
    assert sorted(changes["levels"]["blocks"]["reshaped"]) == ["369900001B01", "369900001B02"]
    blocks2, villages2 = _features(s, "blocks"), _features(s, "villages")
    assert villages2[moved]["properties"]["block"] == "369900001B01"
    for b, mine in (("369900001B01", ["369900001008", "369900001009"]), ("369900001B02", ["369900001010"])):
        shape = shapely.geometry.shape(blocks2[b]["geometry"])
        union = shapely.union_all([v[c] for c in mine])
        assert shape.is_valid and shapely.symmetric_difference(shape, union).area < 1e-6 * union.area, b
        assert blocks2[b]["properties"]["households"] == sum(villages[c]["properties"]["households"] for c in mine)
    lon, lat = shapely.point_on_surface(v[moved]).coords[0]
    assert s.client.get(f"/locate?lon={lon}&lat={lat}").get_json()["properties"]["block"]["code"] == "369900001B01"
    version = Versions(s.store).list()[-1]  # type: ignore[arg-type]
    assert version["kind"] == "edit" and version["summary"]["levels"]["blocks"]["reshaped"] == 2
    back = s.client.post(f"/versions/{version['previous']}/restore", headers=s.auth("admin"))
    assert back.status_code == 201, back.get_data(as_text=True)
    assert _features(s, "villages")[moved]["properties"]["block"] == "369900001B02"
    assert s.client.get(f"/locate?lon={lon}&lat={lat}").get_json()["properties"]["block"]["code"] == "369900001B02"


def test_a_block_left_without_villages_or_below_its_bounds_is_409(served: Served) -> None:
    s = served
    blocks, villages = _features(s, "blocks"), _features(s, "villages")
    v = {c: shapely.geometry.shape(f["geometry"]) for c, f in villages.items()}
    everything = shapely.union_all(list(v.values()))
    resp = _patch(s, "369900001B01", everything)  # takes both villages of B02
    assert resp.status_code == 409 and "empty: block 369900001B02 would have no village left" in \
        resp.get_json()["detail"], resp.get_data(as_text=True)
    assert _features(s, "villages")["369900001008"]["properties"]["block"] == "369900001B02"  # nothing changed
    # B02 letting 010 go: it touches no other block to join
    shrunk = shapely.difference(shapely.geometry.shape(blocks["369900001B02"]["geometry"]), v["369900001010"])
    small = _patch(s, "369900001B02", shrunk, preview=True).get_json()
    assert small["rules"]["broken"] == ["orphan: village 369900001010 leaves block 369900001B02 and touches no "
                                        "other block of township 369900001 to join"], small
