"""A rebuild over a county with a store is a version with its change list; ``/versions`` shows them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyogrio
import pytest

from gridgeo.cli.build import _carry_store
from gridgeo.data.io import write_layers
from gridgeo.store import Versions, open_store

from .access_county import Served, make_people_county, make_register_county, serve_copy


def _layers(path: Path) -> dict:
    return {str(n): pyogrio.read_dataframe(path, layer=n) for n, _g in pyogrio.list_layers(path)
            if not str(n).startswith(("gg_", "gpkg_", "layer_styles"))}


def _recode(layers: dict, old: str, new: str) -> int:
    """Give grid ``old`` the code ``new`` (its points and households follow); how many households moved."""
    layers["grids"].loc[layers["grids"]["code"] == old, "code"] = new
    layers["points"].loc[layers["points"]["parent"] == old, "parent"] = new
    hh = layers["households"]
    moved = int((hh["grid"] == old).sum())
    hh.loc[hh["grid"] == old, "grid"] = new
    return moved


@pytest.fixture
def rebuilt(tmp_path: Path) -> tuple[Path, dict[str, str], str, str, int]:
    county = make_register_county(tmp_path / "county.gpkg")
    store = open_store(county)
    tokens = {r: store.add_user(r, role=r)[1] for r in ("admin", "gis", "viewer")}
    store.close()
    layers = _layers(county)
    old = str(layers["households"]["grid"].value_counts().index[0])
    new = old[:-2] + "99"
    moved = _recode(layers, old, new)
    write_layers(layers, county, finish=_carry_store(county, rules="rules.toml", message="村界调整：网格重新编号"))
    return county, tokens, old, new, moved


def test_rebuild_is_a_version_with_its_change_list(rebuilt: tuple[Path, dict[str, str], str, str, int]) -> None:
    county, _, old, new, moved = rebuilt
    store = open_store(county)
    try:
        versions = Versions(store)
        first, second = versions.list()
        assert (first["id"], first["author"], first["previous"], first["summary"]) == (1, "unknown", None, {})
        assert "before versions were kept" in first["message"] and versions.get(1)["changes"] is None
        assert (second["previous"], second["message"], second["kind"]) == (1, "村界调整：网格重新编号", "build")
        assert second["author"].startswith("cli:")
        assert second["summary"]["levels"]["grids"] == {"retired": 1, "created": 1, "reshaped": 0,
                                                         "kept": second["summary"]["levels"]["grids"]["kept"]}
        assert second["summary"]["households_moved"]["grid"]["rows"] == moved
        changes = versions.get(2)["changes"]
        assert changes["levels"]["grids"]["retired"] == [old] and changes["levels"]["grids"]["created"] == [new]
        assert changes["old"] == changes["new"] == "county.gpkg"  # base names only
        assert [r["target"] for r in store.audit_rows(action="version.")] == ["versions/1", "versions/2"]
        assert len(store.users()) == 3  # the store came along
    finally:
        store.close()
    # a rebuild that changes nothing is a version too, with an empty change list
    write_layers(_layers(county), county, finish=_carry_store(county, rules="rules.toml"))
    store = open_store(county)
    try:
        third = Versions(store).list()[-1]
        assert (third["id"], third["previous"], third["message"]) == (3, 2, "gridgeo build rules.toml")
        assert third["summary"]["levels"]["grids"]["retired"] == 0 and third["summary"]["households_moved"] == {}
    finally:
        store.close()


def test_versions_over_http(rebuilt: tuple[Path, dict[str, str], str, str, int]) -> None:
    from gridgeo.service import create_app

    county, tokens, old, new, _ = rebuilt
    c = create_app({"COUNTY": str(county), "STORE": str(county), "TESTING": True}).test_client()
    auth = {r: {"Authorization": f"Bearer {t}"} for r, t in tokens.items()}
    resp = c.get("/versions", headers=auth["gis"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    doc = resp.get_json()
    assert [v["id"] for v in doc["versions"]] == [1, 2] and "changes" not in doc["versions"][1]
    assert doc["versions"][1]["links"][1]["href"].endswith("/versions/1")
    one = c.get("/versions/2", headers=auth["admin"]).get_json()
    assert one["changes"]["levels"]["grids"]["retired"] == [old]
    diff = c.get("/versions/1/diff/2", headers=auth["gis"])
    assert diff.status_code == 200 and diff.get_json()["changes"]["levels"]["grids"]["created"] == [new]
    for path, status in (("/versions/2/diff/1", 409), ("/versions/9", 404), ("/versions/x", 400),
                         ("/versions/0", 400), ("/versions/1/diff/9", 404)):
        resp = c.get(path, headers=auth["gis"])
        assert resp.status_code == status and resp.mimetype == "application/problem+json", path
    assert c.get("/versions", headers=auth["viewer"]).status_code == 403
    assert c.get("/versions").status_code == 401
    assert str(county.parent) not in c.get("/versions/2", headers=auth["gis"]).get_data(as_text=True)


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("versions") / "county.gpkg")


def test_versions_on_both_backends(people_county: Path, store_target: str, tmp_path: Path) -> None:
    s: Served = serve_copy(people_county, store_target, tmp_path)
    changes = {"levels": {"grids": {"retired": ["G1"], "created": ["G9"], "reshaped": [], "kept": 4,
                                    "rules": {"before": {}, "after": {}}}},
               "households": {"moved": {"grid": {"rows": 2, "households": 2, "pairs": []}}}, "people": {}}
    versions = Versions(s.store)  # type: ignore[arg-type]
    versions.add(kind="load", author="cli:gis@host", message="loaded", changes=None)
    versions.add(kind="build", author="cli:gis@host", message="G1 renumbered", changes=changes)
    doc = s.client.get("/versions", headers=s.auth("gis")).get_json()
    assert [(v["id"], v["kind"], v["previous"]) for v in doc["versions"]] == [(1, "load", None), (2, "build", 1)]
    grids = {"retired": 1, "created": 1, "reshaped": 0, "kept": 4}
    assert doc["versions"][1]["summary"] == {"levels": {"grids": grids},
                                             "households_moved": {"grid": {"rows": 2, "households": 2}}}
    assert s.client.get("/versions/1/diff/2", headers=s.auth("admin")).get_json()["changes"] == changes
    assert s.client.get("/versions", headers=s.auth("worker")).status_code == 403
    shutil.rmtree(tmp_path, ignore_errors=True)
