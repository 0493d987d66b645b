"""A rebuild over a county file keeps its store: users, visits, statuses and the audit trail, renumbered."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyogrio
import pytest

from gridgeo.data.io import write_layers
from gridgeo.errors import StoreError
from gridgeo.store import Placed, Visit, open_store
from gridgeo.store.carry import carry_store, has_store

from .access_county import make_register_county

_county = make_register_county


def _layers(path: Path, *, reverse: bool) -> dict:
    out = {}
    for name, _g in pyogrio.list_layers(path):
        if str(name).startswith(("gg_", "gpkg_", "layer_styles")):
            continue
        df = pyogrio.read_dataframe(path, layer=name)
        out[name] = df.iloc[::-1].reset_index(drop=True) if reverse and name == "households" else df
    return out


def _visit(hid: str, note: str | None = None) -> Visit:
    return Visit(Placed(hid, {"grid": "G"}, ("G",)), "2026-11-30T08:00:00Z", "2026-11-30", "visited", note)


@pytest.fixture
def county(tmp_path: Path) -> Path:
    return _county(tmp_path / "county.gpkg")


def test_rebuild_keeps_store_and_renumbers_households(county: Path) -> None:
    n = len(pyogrio.read_dataframe(county, layer="households", read_geometry=False))
    store = open_store(county)
    _user, token = store.add_user("w", role="worker", scope="G")
    store.add_visits([_visit("1", "first"), _visit(str(n), "last")], actor="w")
    store.close()
    layers = _layers(county, reverse=True)  # the rebuild numbers every household the other way round
    write_layers(layers, county, finish=lambda tmp: carry_store(county, tmp))
    assert has_store(county)
    store = open_store(county, create=False)
    assert store.authenticate(token) is not None
    by_note = {v["note"]: v["household"] for v in store.visits()}
    assert by_note == {"first": str(n), "last": "1"}  # each visit still names the household it was made at
    hh = pyogrio.read_dataframe(county, layer="households", read_geometry=False)
    assert hh["source_id"].iloc[n - 1] == "R00000"  # the household visited as 1 is now n
    actions = [r["action"] for r in store.audit_rows(limit=1000)]
    assert actions[-1] == "store.carry" and "user.add" in actions
    with pytest.raises(StoreError, match="append-only"), store.transaction() as cur:  # the guard came along
        cur.execute("DELETE FROM gg_audit")
    store.close()
    assert "gg_visits" in {str(n) for n, _g in pyogrio.list_layers(county)}  # still a registered table


def test_orphaned_references_are_counted(county: Path, tmp_path: Path) -> None:
    store = open_store(county)
    store.add_visits([_visit("1"), _visit("2")], actor="cli")
    store.close()
    layers = _layers(county, reverse=False)
    layers["households"] = layers["households"].iloc[1:].reset_index(drop=True)  # household 1 left the register
    new = tmp_path / "new.gpkg"
    write_layers(layers, new)
    got = carry_store(county, new)
    assert got.orphaned == 1 and got.renumbered == 1 and got.rows["gg_visits"] == 2


def test_no_store_nothing_carried_and_no_double_carry(county: Path, tmp_path: Path) -> None:
    assert not has_store(county)
    assert not has_store(tmp_path / "missing.gpkg")
    store = open_store(county)
    store.add_user("a", role="admin")
    store.close()
    new = tmp_path / "new.gpkg"
    write_layers(_layers(county, reverse=False), new)
    carry_store(county, new)
    with pytest.raises(StoreError, match="already has store tables"):
        carry_store(county, new)


def test_failed_carry_leaves_old_file(county: Path) -> None:
    store = open_store(county)
    store.add_user("a", role="admin")
    store.close()
    before = county.read_bytes()

    def fail(tmp: Path) -> None:
        carry_store(county, tmp)
        raise StoreError("disk full")

    with pytest.raises(StoreError, match="disk full"):
        write_layers(_layers(county, reverse=False), county, finish=fail)
    assert county.read_bytes() == before
    with sqlite3.connect(county) as conn:
        assert conn.execute("SELECT count(*) FROM gg_users").fetchone()[0] == 1


def test_build_cli_carries_only_a_store(county: Path) -> None:
    from gridgeo.cli.build import _carry_store

    assert _carry_store(county) is None  # a county nobody added a user to: nothing to carry
    store = open_store(county)
    store.add_user("a", role="admin")
    store.close()
    assert callable(_carry_store(county))
