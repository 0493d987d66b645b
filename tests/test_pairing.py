"""Pairing members with households (``gridgeo.people.Pairing``, ``gridgeo pair``; issue 12 item 4).

A small generated county is built once (module fixture) for the end-to-end tests; the rules are checked
on households drawn directly, where the right answer can be counted by hand, and the assignment's
optimality against networkx's min-cost flow on the same distances.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridgeo.cli.main import main
from gridgeo.errors import InputError, SchemaError, UsageError
from gridgeo.people import Pairing, PairingOptions, county_grids, read_table
from tests.conftest import synth_rules

CRS = "EPSG:4547"  # CGCS2000 / 3-degree Gauss-Kruger CM 114E: metres


def households(per_grid: dict[str, int], *, seed: int = 0, spread: float = 300.0) -> gpd.GeoDataFrame:
    """Households drawn around a centre per grid (grids 2 km apart), one household per row."""
    rng = np.random.default_rng(seed)
    rows, pts = [], []
    for k, (grid, n) in enumerate(per_grid.items()):
        cx, cy = 500_000 + 2000.0 * k, 3_300_000.0
        for _ in range(n):
            rows.append({"source_id": f"H{len(rows):04d}", "households": 1, "grid": grid, "village": grid[:-2]})
            pts.append((cx + rng.normal(0, spread), cy + rng.normal(0, spread)))
    return gpd.GeoDataFrame(rows, geometry=shapely.points(np.array(pts)), crs=CRS)


def members(per_grid: dict[str, int], hh: gpd.GeoDataFrame, *, seed: int = 0, **cols: object) -> pd.DataFrame:
    """``n`` members per grid, each living in a random household of the grid."""
    rng = np.random.default_rng(seed)
    rows = []
    for grid, n in per_grid.items():
        ids = hh.loc[hh["grid"] == grid, "source_id"].to_numpy()
        for _ in range(n):
            rows.append({"person_id": f"P{len(rows):03d}", "role": "党员", "grid": grid,
                         "home": ids[rng.integers(len(ids))] if len(ids) else None, **cols})
    return pd.DataFrame(rows)


def by_grid(res: object, hh: gpd.GeoDataFrame) -> pd.DataFrame:
    pairs = res.pairs.merge(hh[["source_id", "grid"]], on="source_id")  # type: ignore[attr-defined]
    return pairs.merge(res.loads[["person_id", "scope"]], on="person_id")  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------- rules
def test_every_household_paired_when_capacity_suffices() -> None:
    hh = households({"A01": 40, "A02": 25, "B01": 60})
    res = Pairing(hh, members({"A01": 4, "A02": 2, "B01": 5}, hh), options=PairingOptions(capacity=20)).solve()
    assert res.summary["paired"] == 125 and res.summary["unpaired"] == 0 and len(res.unpaired) == 0
    assert sorted(res.pairs["source_id"]) == sorted(hh["source_id"])
    both = by_grid(res, hh)
    assert (both["grid"] == both["scope"]).all()  # scope: a member pairs only in their own grid


def test_capacities_respected_and_shortfall_reported() -> None:
    hh = households({"A01": 30})
    mem = members({"A01": 3}, hh)
    mem["capacity"] = ["4", "", "7"]  # a blank capacity takes the default
    res = Pairing(hh, mem, options=PairingOptions(capacity=5)).solve()
    loads = res.loads.set_index("person_id")["households"]
    assert loads.tolist() == [4, 5, 7]
    assert res.unpaired["reason"].eq("capacity").all() and res.unpaired["households"].sum() == 30 - 16
    assert res.summary["unpaired_by_reason"]["capacity"] == 14


def test_loads_balanced_unless_capacities_say_so() -> None:
    hh = households({"A01": 100}, spread=500)
    mem = members({"A01": 4}, hh)
    res = Pairing(hh, mem).solve()
    load = res.loads["households"]
    assert load.sum() == 100 and load.max() <= 25 + 7 and load.min() >= 25 - 7  # L=25, slack 0.25 -> 7
    mem["capacity"] = pd.array([3, None, None, None], dtype="Int64")
    res = Pairing(hh, mem).solve()
    load = res.loads["households"].tolist()
    assert load[0] == 3 and sum(load) == 100  # the others share the rest: fair share 33 each
    assert max(load[1:]) <= 33 + 9 and min(load[1:]) >= 33 - 9
    free = Pairing(hh, mem, options=PairingOptions(slack=None)).solve()  # no balance: shorter walks
    assert free.summary["total_distance_m"] <= res.summary["total_distance_m"] + 1e-6


def test_village_scope_pairs_across_the_village_grid_scope_does_not() -> None:
    hh = households({"V0101": 30, "V0102": 30})  # one village V01 of two grids
    mem = members({"V0101": 3, "V0102": 0}, hh)
    grid = Pairing(hh, mem).solve()
    assert set(grid.unpaired["reason"]) == {"no_member"} and grid.unpaired["households"].sum() == 30
    village = Pairing(hh, mem, options=PairingOptions(scope="village")).solve()
    assert village.summary["paired"] == 60 and set(village.loads["scope"]) == {"V01"}


@pytest.mark.parametrize("caps", [[6, 12, 9, 15, 10], [3, None, 4, None, 2], [1, 2, 40, 2, 1]])
def test_exact_against_min_cost_flow(caps: list[int | None]) -> None:
    """The total distance equals networkx's min-cost flow optimum on the same distances and capacities
    (capped members only; members without a capacity beside capped ones; one member taking nearly all)."""
    hh = households({"A01": 45}, seed=3, spread=600)
    mem = members({"A01": 5}, hh, seed=3)
    mem["capacity"] = pd.array(caps, dtype="Int64")
    p = Pairing(hh, mem, options=PairingOptions(slack=None))
    res = p.solve()
    d = np.hypot(*(p.hh.xy[:, None, :] - p.mem.xy[None, :, :]).transpose(2, 0, 1))
    g = nx.DiGraph()
    g.add_node("s", demand=-45)
    g.add_node("t", demand=45)
    for i in range(45):
        g.add_edge("s", ("h", i), capacity=1, weight=0)
        for j in range(5):
            g.add_edge(("h", i), ("m", j), capacity=1, weight=round(d[i, j] * 1000))
    for j, c in enumerate(caps):
        g.add_edge(("m", j), "t", weight=0, **({} if c is None else {"capacity": c}))
    best = nx.cost_of_flow(g, nx.min_cost_flow(g)) / 1000
    assert res.summary["paired"] == 45
    assert float((res.pairs["distance_m"] * res.pairs["households"]).sum()) == pytest.approx(best, abs=0.2)


def test_rows_with_several_households_are_split_by_capacity() -> None:
    hh = households({"A01": 3})
    hh["households"] = [5, 1, 2]
    mem = members({"A01": 2}, hh)
    mem["capacity"] = [4, 4]
    res = Pairing(hh, mem, options=PairingOptions(slack=None)).solve()
    assert res.pairs["households"].sum() == 8 and res.loads["households"].tolist() == [4, 4]
    assert res.pairs.groupby("source_id")["households"].sum().to_dict() == {"H0000": 5, "H0001": 1, "H0002": 2}


def test_existing_pairs_kept_and_dropped_with_reasons() -> None:
    hh = households({"A01": 40, "A02": 40})
    mem = members({"A01": 4, "A02": 4}, hh)
    first = Pairing(hh, mem).solve()
    old = first.pairs[["source_id", "person_id"]].copy()
    gone = mem["person_id"].iloc[0]
    moved = mem["person_id"].iloc[1]
    mem2 = mem[mem["person_id"] != gone].copy()
    mem2.loc[mem2["person_id"] == moved, ["grid", "home"]] = ["A02", hh["source_id"].iloc[50]]
    res = Pairing(hh, mem2, pairs=old, options=PairingOptions(scope="grid")).solve(seed=1)
    still = old[~old["person_id"].isin([gone, moved])]
    kept = res.pairs[res.pairs["kept"]]
    assert set(zip(kept["source_id"], kept["person_id"], strict=True)) == set(
        zip(still["source_id"], still["person_id"], strict=True))
    reasons = res.dropped.groupby("reason").size().to_dict()
    assert reasons == {"member gone": int((old["person_id"] == gone).sum()),
                       "member no longer pairs in the household's grid": int((old["person_id"] == moved).sum())}
    assert res.summary["paired"] == 80 and res.summary["kept"] == len(still)


def test_existing_pairs_beyond_capacity_are_reported() -> None:
    hh = households({"A01": 10})
    mem = members({"A01": 2}, hh)
    mem["capacity"] = [3, 10]
    old = pd.DataFrame({"source_id": hh["source_id"][:6], "person_id": "P000"})
    res = Pairing(hh, mem, pairs=old, options=PairingOptions(slack=None)).solve()
    assert res.loads["kept"].tolist() == [3, 0] and res.summary["paired"] == 10
    assert res.dropped["reason"].tolist() == ["member full (own capacity)"] * 3


def test_unpaired_reasons() -> None:
    hh = households({"A01": 20, "A02": 10})
    hh.loc[0, "grid"] = None
    mem = members({"A01": 1}, hh)
    res = Pairing(hh, mem, options=PairingOptions(capacity=15, max_distance_m=500)).solve()
    r = res.summary["unpaired_by_reason"]
    assert r["no_unit"] == 1 and r["no_member"] == 10
    far = res.unpaired[res.unpaired["reason"] == "unreachable"]["source_id"]
    p = Pairing(hh, mem)
    home = p.mem.xy[0]
    d = np.hypot(*(p.hh.xy - home).T)
    expect = {s for s, g, dd in zip(hh["source_id"], hh["grid"], d, strict=True) if g == "A01" and dd > 500}
    assert set(far) == expect and len(expect) > 0
    assert r["capacity"] == max(19 - len(expect) - 15, 0)
    assert res.summary["unpaired"] == sum(r.values())


def test_same_seed_same_output_and_every_seed_optimal() -> None:
    hh = households({"A01": 50, "A02": 30}, seed=5)
    hh.geometry = shapely.set_precision(hh.geometry.values, 100.0)  # many equal distances: ties
    mem = members({"A01": 5, "A02": 3}, hh, seed=5)
    a, b = Pairing(hh, mem).solve(seed=7), Pairing(hh, mem).solve(seed=7)
    assert a.pairs.equals(b.pairs) and a.loads.equals(b.loads) and a.unpaired.equals(b.unpaired)
    c = Pairing(hh, mem).solve(seed=8)
    assert c.summary["total_distance_m"] == pytest.approx(a.summary["total_distance_m"], abs=0.5)


def test_options_checked() -> None:
    with pytest.raises(UsageError, match="scope"):
        PairingOptions(scope="township")
    with pytest.raises(UsageError, match="capacity"):
        PairingOptions(capacity=-1)
    with pytest.raises(UsageError, match="slack"):
        PairingOptions(slack=math.nan)


# --------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def small(tmp_path: Path) -> tuple[gpd.GeoDataFrame, Path]:
    hh = households({"A01": 10, "A02": 10})
    path = tmp_path / "members.csv"
    members({"A01": 2, "A02": 2}, hh).to_csv(path, index=False)
    return hh, path


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


def test_unknown_grid_named_with_file_and_row(small: tuple[gpd.GeoDataFrame, Path]) -> None:
    hh, path = small
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",A02,", ",A09,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"{path}: row 4 \(person_id P002\): grid 'A09' is not a grid"):
        Pairing(hh, read_table(path))


def test_duplicate_person_id(small: tuple[gpd.GeoDataFrame, Path]) -> None:
    hh, path = small
    _edit(path, "P003", "P001")
    with pytest.raises(InputError, match=rf"{path}: row 5: duplicate person_id 'P001' \(also row 3\)"):
        Pairing(hh, read_table(path))


def test_missing_columns(small: tuple[gpd.GeoDataFrame, Path]) -> None:
    hh, path = small
    _edit(path, "person_id", "pid")
    with pytest.raises(SchemaError, match=rf"{path}: member roster lacks column 'person_id'"):
        Pairing(hh, read_table(path))
    bad = hh.drop(columns="source_id")
    bad.attrs["source"] = "county.gpkg"
    with pytest.raises(SchemaError, match="county.gpkg: households layer lacks column 'source_id'"):
        Pairing(bad, pd.DataFrame({"person_id": ["P1"], "grid": ["A01"]}))


def test_bad_capacity_and_home(small: tuple[gpd.GeoDataFrame, Path]) -> None:
    hh, path = small
    frame = read_table(path)
    frame["capacity"] = ["3", "x", None, None]
    with pytest.raises(SchemaError, match=rf"{path}: row 3 \(person_id P001\): capacity 'x'"):
        Pairing(hh, frame)
    frame = read_table(path)
    frame.loc[2, "home"] = "H9999"
    with pytest.raises(InputError, match=r"row 4 \(person_id P002\): home household 'H9999'"):
        Pairing(hh, frame)


def test_pairs_table_missing_column(small: tuple[gpd.GeoDataFrame, Path], tmp_path: Path) -> None:
    hh, path = small
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("source_id,member\nH0000,P000\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=rf"{pairs}: pairs table lacks column 'person_id'"):
        Pairing(hh, read_table(path), pairs=read_table(pairs))


# --------------------------------------------------------------------------------------------- a built county
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gridgeo.county.build import build_county
    from gridgeo.county.rules import load_county_rules
    from gridgeo.data.io import write_layers

    d = tmp_path_factory.mktemp("pairing")
    res = build_county(load_county_rules(synth_rules(d, seed=3, townships=2, villages=5, households=2500)),
                       workers=1)
    out = d / "built.gpkg"
    write_layers(res.layers, out)
    return out


def _roster(county: Path, path: Path, per_grid: int = 3) -> pd.DataFrame:
    hh = pyogrio.read_dataframe(county, layer="households")
    rows = []
    for layer in ("grids", "exclusive"):
        for code in pyogrio.read_dataframe(county, layer=layer, columns=["code"])["code"]:
            ids = hh.loc[hh["grid"] == code, "source_id"].astype(str).tolist()
            for k in range(per_grid if ids else 1):
                rows.append({"person_id": f"{code}-{k}", "name": f"张{k}", "role": "党员", "grid": code,
                             "home": ids[(7 * k) % len(ids)] if ids else ""})
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return frame


def test_cli_pairs_a_built_county(built: Path, tmp_path: Path) -> None:
    roster = tmp_path / "members.csv"
    _roster(built, roster)
    out, report = tmp_path / "pairs.gpkg", tmp_path / "pair_report.json"
    assert main(["pair", str(built), "--members", str(roster), "-o", str(out), "--report", str(report)]) == 0
    layers = dict(pyogrio.list_layers(out))
    assert set(layers) == {"pairs", "loads", "unpaired", "dropped_pairs"}
    s = json.loads(report.read_text(encoding="utf-8"))
    hh = pyogrio.read_dataframe(built, layer="households")
    assert s["households"] == int(hh["households"].sum()) == s["paired"] + s["unpaired"]
    assert s["unpaired_by_reason"]["no_member"] == 0  # every grid and exclusive grid has a member
    pairs = pyogrio.read_dataframe(out, layer="pairs")
    both = pairs.merge(hh[["source_id", "grid"]].astype({"source_id": str}), on="source_id").merge(
        pyogrio.read_dataframe(out, layer="loads")[["person_id", "scope"]], on="person_id")
    assert (both["grid"] == both["scope"]).all()
    assert "张" not in report.read_text(encoding="utf-8")  # names stay out of the report


def test_network_distances_are_walks(built: Path, tmp_path: Path) -> None:
    from gridgeo.data.io import read_layer
    from gridgeo.patrol.network import load_network

    net = load_network(built, mode="walk")
    hh = read_layer(built, layer="households")
    roster = _roster(built, tmp_path / "m.csv")
    grids = county_grids(built)
    walk = Pairing(hh, roster, network=net, grids=grids).solve()
    straight = Pairing(hh, roster, grids=grids, options=PairingOptions(max_distance_m=None)).solve()
    assert walk.summary["distance"] == "network"
    assert walk.summary["paired"] + walk.summary["unpaired"] == straight.summary["households"]
    # a walk is never shorter than the straight line between the same two points
    p = Pairing(hh, roster, network=net, grids=grids)
    hrow = p.hh.index()
    mrow = {v: i for i, v in enumerate(p.mem.ids)}
    sample = walk.pairs.head(200)
    h = np.array([hrow[s] for s in sample["source_id"]])
    m = np.array([mrow[s] for s in sample["person_id"]])
    crow = np.hypot(*(p.hh.xy[h] - p.mem.xy[m]).T)
    assert (sample["distance_m"].to_numpy() >= crow - 0.2).all()
    # and equals the network's own stop-to-stop path (both ends split on their streets) plus the door walks
    k = int(np.argmax(sample["distance_m"].to_numpy()))
    snap = net.snap(np.vstack([p.hh.xy[h[k]], p.mem.xy[m[k]]]))
    path = net.stop_paths(snap).distance[0, 1] + snap.distance.sum()
    assert sample["distance_m"].iloc[k] == pytest.approx(path, abs=0.2)


def test_cli_bad_roster_names_file_and_row(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "members.csv"
    frame = _roster(built, roster)
    frame.loc[4, "grid"] = "999999999999"
    frame.to_csv(roster, index=False)
    out = tmp_path / "pairs.gpkg"
    out.write_bytes(b"old")
    assert main(["pair", str(built), "--members", str(roster), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{roster}: row 6 (person_id {frame['person_id'][4]}): grid '999999999999' is not a grid" in err
    assert out.read_bytes() == b"old"  # nothing written


def test_csv_output(built: Path, tmp_path: Path) -> None:
    roster = tmp_path / "members.csv"
    _roster(built, roster, per_grid=1)
    first = tmp_path / "first"
    assert main(["pair", str(built), "--members", str(roster), "-o", str(first), "--scope", "village"]) == 0
    pairs = pd.read_csv(first / "pairs.csv", dtype=str, encoding="utf-8-sig")
    again = tmp_path / "again"
    assert main(["pair", str(built), "--members", str(roster), "--pairs", str(first / "pairs.csv"), "-o",
                 str(again), "--scope", "village"]) == 0
    kept = pd.read_csv(again / "pairs.csv", encoding="utf-8-sig")
    assert kept["kept"].all() and int(kept["households"].sum()) == int(pairs["households"].astype(int).sum())


# --------------------------------------------------------------------------------------------- large scopes
def test_large_scope_sparse_equals_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    """A village-sized scope goes the sparse, certified way; the dense assignment finds the same total."""
    import gridgeo.people._pair_solve as solve

    hh = households({"V0101": 700}, seed=9, spread=900)
    mem = members({"V0101": 35}, hh, seed=9)
    mem.loc[:3, "capacity"] = 6
    calls: list[int] = []
    real = solve.sparse_assign

    def spy(*a: object, **kw: object) -> object:
        out = real(*a, **kw)  # type: ignore[arg-type]
        calls.append(out is not None)
        return out

    monkeypatch.setattr(solve, "sparse_assign", spy)
    sparse = Pairing(hh, mem).solve()
    assert calls and calls[-1]  # the sparse solution was certified
    monkeypatch.setattr(solve, "DENSE_MAX", 10**12)
    dense = Pairing(hh, mem).solve()
    assert sparse.summary["total_distance_m"] == pytest.approx(dense.summary["total_distance_m"], abs=0.5)
    assert sparse.summary["paired"] == dense.summary["paired"] == 700


def test_certificate_rejects_a_worse_assignment() -> None:
    """The negative-cycle check tells the optimum from an assignment one swap away from it."""
    from gridgeo.people._pair_sparse import certified

    sub = np.array([[1.0, 10.0], [10.0, 1.0], [2.0, 3.0]])
    slot_m = np.array([0, 0, 1, 1])
    owed = np.zeros(4, dtype=bool)
    assert certified(sub, np.array([0, 1, 0]), slot_m, owed, 100.0)
    assert not certified(sub, np.array([1, 0, 0]), slot_m, owed, 100.0)  # households 0 and 1 crossed
    owed[[0, 2]] = True  # each member owes one: leaving member 1 empty is not optimal
    assert not certified(sub, np.array([0, 0, 0]), np.array([0, 0, 0, 1, 1]), np.array([1, 0, 0, 1, 0], bool),
                         100.0)


def test_cycle_cancelling_reaches_the_dense_optimum_from_a_poor_start() -> None:
    """From any feasible start the cancelling ends at the dense assignment's total, owed slots filled."""
    from scipy.optimize import linear_sum_assignment

    from gridgeo.people._pair_sparse import _cancel_cycles, certified

    rng = np.random.default_rng(4)
    sub = rng.uniform(0, 1000, (60, 6))
    slot_m = np.repeat(np.arange(6), 12)
    owed = np.tile(np.r_[np.ones(8, bool), np.zeros(4, bool)], 6)
    bonus = 1001.0 * 61
    start = np.repeat(np.arange(5), 12)  # member 5 empty: its owed slots unfilled
    assert not certified(sub, start, slot_m, owed, bonus)
    best = _cancel_cycles(sub, start, slot_m, owed, bonus)
    assert best is not None and certified(sub, best, slot_m, owed, bonus)
    load = np.bincount(best, minlength=6)
    assert (load >= 8).all() and (load <= 12).all()
    r, c = linear_sum_assignment(sub[:, slot_m] - bonus * owed[None, :])
    assert sub[np.arange(60), best].sum() == pytest.approx(sub[r, slot_m[c]].sum(), abs=1e-6)


def test_balance_never_leaves_a_household_unpaired() -> None:
    """A hamlet only one member can reach: past the balanced share, up to that member's own capacity."""
    near = households({"A01": 30}, seed=1, spread=100)
    far = households({"A01": 10}, seed=2, spread=100)
    far.geometry = far.geometry.translate(3000, 0)
    far["source_id"] = [f"F{i}" for i in range(10)]
    hh = gpd.GeoDataFrame(pd.concat([near, far], ignore_index=True), crs=CRS)
    mem = pd.DataFrame({"person_id": ["P0", "P1"], "grid": "A01", "home": ["H0000", "F0"]})
    res = Pairing(hh, mem, options=PairingOptions(max_distance_m=1000)).solve()
    assert res.summary["paired"] == 40 and res.summary["paired_beyond_balance"] == 5  # fair 20 + 5 slack, then 5
    assert res.loads["households"].tolist() == [30, 10]
    mem["capacity"] = [27, None]
    res = Pairing(hh, mem, options=PairingOptions(max_distance_m=1000)).solve()
    assert res.loads["households"].tolist() == [27, 10]
    assert res.unpaired["reason"].tolist() == ["capacity"] * 3 and res.summary["paired_beyond_balance"] == 2


# --------------------------------------------------------------------------------------------- rosters as kept
def test_xlsx_roster_with_chinese_headers(built: Path, tmp_path: Path) -> None:
    """A workbook as a township keeps it: a title row, Chinese headers; the rows named as Excel shows them."""
    import openpyxl

    frame = _roster(built, tmp_path / "unused.csv", per_grid=2)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["党员联户名册"])
    ws.append(["人员编号", "姓名", "职务", "网格编码", "住户户号", "联户数"])
    for r in frame.itertuples(index=False):
        ws.append([r.person_id, r.name, r.role, r.grid, r.home or None, 40])
    path = tmp_path / "名册.xlsx"
    wb.save(path)
    hh = pyogrio.read_dataframe(built, layer="households")
    res = Pairing(hh, read_table(path), grids=county_grids(built)).solve()
    assert set(res.loads["person_id"]) == set(frame["person_id"])
    assert (res.loads["capacity"] == 40).all()
    ws.cell(row=5, column=1, value=frame["person_id"].iloc[0])  # the third member repeats the first's id
    wb.save(path)
    with pytest.raises(InputError, match=rf"名册.xlsx: row 5: duplicate person_id '{frame['person_id'].iloc[0]}' "
                                         r"\(also row 3\)"):
        Pairing(hh, read_table(path), grids=county_grids(built))


def test_members_from_the_built_people_table(built: Path, tmp_path: Path) -> None:
    """A build's people table (gridgeo.people.roster) gives the members: its 党员 and 代表 on grids."""
    import shutil

    from gridgeo.data.io import write_layers

    county = tmp_path / "county.gpkg"
    shutil.copy(built, county)
    grids = pyogrio.read_dataframe(built, layer="grids", columns=["code"])["code"].tolist()
    people = pd.DataFrame({"person_id": [f"P{i}" for i in range(len(grids) + 1)],
                           "name": [f"李{i}" for i in range(len(grids) + 1)],
                           "role": ["党员"] * len(grids) + ["网格员"], "level": ["grids"] * (len(grids) + 1),
                           "unit": [*grids, grids[0]], "roster_row": range(2, len(grids) + 3)})
    layers = {k: pyogrio.read_dataframe(built, layer=k) for k in ("grids", "households")}
    write_layers({**layers, "people": people}, county)
    members_frame = read_table(county)
    assert list(members_frame["person_id"]) == [f"P{i}" for i in range(len(grids))]  # the 网格员 is no member
    hh = pyogrio.read_dataframe(county, layer="households")
    res = Pairing(hh, members_frame, grids=county_grids(county)).solve()
    assert len(res.pairs) and set(res.loads["person_id"]) == set(members_frame["person_id"])
    write_layers({**layers, "people": people.assign(role="网格员")}, county)
    with pytest.raises(InputError, match="no pairing members"):
        read_table(county)
