"""blocks: villages -> dissolved, named blocks; Taipei; infeasible inputs; locks and re-draws; CLI."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pyogrio
import pytest
import shapely

from gridgeo.cli import main
from gridgeo.county.blocks import make_blocks, read_assignment, synthetic_households
from gridgeo.data import crs as _crs
from gridgeo.data.adjacency import build_adjacency
from gridgeo.data.io import read_layer
from gridgeo.errors import InputError

# ------------------------------------------------------------------------------ small squares
ORIGIN = (117.2, 28.25)
CELL = 0.01  # about 1 km


def squares(art: str, groups: str | None = None, kinds: str | None = None) -> gpd.GeoDataFrame:
    """Square villages drawn as ASCII art (row 0 is the northernmost); ``.`` = 1,000 households,
    a digit = that many thousand."""

    def cells(a: str) -> dict[tuple[int, int], str]:
        lines = a.strip("\n").splitlines()
        indent = min(len(ln) - len(ln.lstrip()) for ln in lines if ln.strip())
        return {(r, c): ch for r, ln in enumerate(lines) for c, ch in enumerate(ln[indent:]) if ch != " "}

    w = cells(art)
    g = cells(groups) if groups else {}
    k = cells(kinds) if kinds else {}
    rows = []
    for (r, c), ch in sorted(w.items()):
        x0, y0 = ORIGIN[0] + c * CELL, ORIGIN[1] - r * CELL
        rows.append({"code": f"V{r}{c:02d}", "township": g.get((r, c), "T1"),
                     "kind": {"u": "urban", "r": "rural"}.get(k.get((r, c), "r")),
                     "households": 1000 if ch == "." else 1000 * int(ch),
                     "geometry": shapely.box(x0, y0 - CELL, x0 + CELL, y0)})
    return gpd.GeoDataFrame(rows, crs="EPSG:4326")


def _list(value: object) -> list[str]:
    """A list column as read back: GeoJSON keeps real arrays (GDAL writes JSON text as JSON), GPKG JSON text."""
    if isinstance(value, str):
        return [str(x) for x in json.loads(value)]
    return [str(x) for x in value]  # type: ignore[attr-defined]


def _graph(gdf: gpd.GeoDataFrame, id_col: str) -> nx.Graph:
    return build_adjacency(gdf, id_col=id_col)


def _check_blocks(villages: gpd.GeoDataFrame, blocks: gpd.GeoDataFrame, *, id_col: str, group_col: str | None,
                  size_col: str, lo: float, hi: float) -> None:
    """Independently: every village in exactly one block, blocks contiguous, in one group, within bounds."""
    G = _graph(villages, id_col)
    seen: list[str] = []
    size = dict(zip(villages[id_col].astype(str), villages[size_col], strict=True))
    group = dict(zip(villages[id_col].astype(str), villages[group_col], strict=True)) if group_col else {}
    for _, b in blocks.iterrows():
        members = [str(m) for m in b["members"]]
        seen += members
        assert nx.is_connected(G.subgraph(members)), b["block_id"]
        if group_col:
            assert {group[m] for m in members} == {b["group"]}
        total = sum(size[m] for m in members)
        assert total == pytest.approx(b["size"]) and lo <= total <= hi, (b["block_id"], total)
        assert b["n_units"] == len(members)
    assert sorted(seen) == sorted(villages[id_col].astype(str))


def test_small_county_blocks_named_and_ordered() -> None:
    """Two townships of 4 x 4 villages each; four blocks of 3,000-5,000 households in each."""
    art = "\n".join(["........"] * 4)
    groups = "\n".join(["AAAABBBB"] * 4)
    v = squares(art, groups)
    out = make_blocks(v, id_col="code", group_col="township", size_col="households", min_size=3000,
                      max_size=5000, count=4, seed=0)
    assert out.feasible and out.report["feasible"] and out.report["violations"] == []
    b = out.blocks
    assert len(b) == 8 and set(b["group"]) == {"A", "B"}
    assert sorted(b["block_id"]) == [f"{g}0{i}" for g in "AB" for i in range(1, 5)]
    _check_blocks(v, b, id_col="code", group_col="township", size_col="households", lo=3000, hi=5000)
    # reading order: by bands one block high from the north, west to east within a band
    metric = _crs.metric_crs(b)
    m = b.to_crs(metric)
    for g in "AB":
        sub = m[m["group"] == g]
        h = math.sqrt(float(np.median(sub.area)))
        key = [(math.floor(-c.y / h), c.x) for c in sub.centroid]
        assert list(sub["block_id"]) == [bid for _, bid in sorted(zip(key, sub["block_id"], strict=True))]
    assert all(0 < pp <= 1 for pp in b["polsby_popper"])
    assert set(out.report["rules"]) == {"contiguity", "min_size", "max_size", "group", "count"}
    assert all(r["ok"] for r in out.report["rules"].values())


def test_kind_is_kept_apart_and_reported() -> None:
    """An urban strip on the west, rural on the east: two blocks, each of one kind."""
    v = squares("\n".join(["......"] * 4), kinds="\n".join(["uuurrr"] * 4))
    out = make_blocks(v, id_col="code", size_col="households", min_size=10_000, max_size=14_000, count=2,
                      similar=["kind"], seed=0)
    assert out.feasible
    assert out.report["heterogeneity"]["kind"] == {"type": "categorical", "mixed_blocks": 0, "minority_units": 0,
                                                   "minority_share": 0.0}
    assert sorted(out.blocks["kind"]) == ["rural", "urban"]
    assert list(out.blocks["block_id"]) == ["B01", "B02"]  # no group: B + sequence, west to east


def test_infeasible_unit_above_max_named_and_still_written(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """One village of 9,000 households against a maximum of 5,000."""
    v = squares("""
        ....
        .9..
        ....
    """)
    src = tmp_path / "v.geojson"
    pyogrio.write_dataframe(v, src)
    out = tmp_path / "b.geojson"
    rep = tmp_path / "r.json"
    code = main(["blocks", str(src), "--id", "code", "--size-col", "households", "--min", "2000", "--max", "5000",
                 "-o", str(out), "--report", str(rep), "-q"])
    assert code == 3
    err = capsys.readouterr().err
    assert "V101" in err and "max_size" in err
    doc = json.loads(rep.read_text())
    assert doc["feasible"] is False and doc["failed_rules"] == ["max_size"]
    (viol,) = doc["violations"]
    assert viol["cause"] == "unit_above_max" and viol["units"] == ["V101"] and viol["block"]
    written = pyogrio.read_dataframe(out)
    broken = written[written["violations"].map(lambda x: len(_list(x)) > 0)]
    assert len(broken) == 1 and _list(broken.iloc[0]["members"]) == ["V101"]
    assert _list(broken.iloc[0]["violations"]) == ["max_size"]


def test_unusable_input_refused(tmp_path: Path) -> None:
    v = squares("...")
    v.loc[1, "geometry"] = shapely.box(ORIGIN[0], ORIGIN[1] - CELL, ORIGIN[0] + 1.5 * CELL, ORIGIN[1])  # overlaps
    with pytest.raises(InputError, match="overlap"):
        make_blocks(v, id_col="code", count=1)
    src = tmp_path / "bad.geojson"
    pyogrio.write_dataframe(v, src)
    assert main(["blocks", str(src), "--id", "code", "--count", "1", "-o", str(tmp_path / "o.geojson"), "-q"]) == 1


def test_lock_and_previous_files_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = squares("\n".join(["......"] * 6))
    src = tmp_path / "v.geojson"
    pyogrio.write_dataframe(v, src)
    first = tmp_path / "first.geojson"
    args = ["blocks", str(src), "--id", "code", "--size-col", "households", "--min", "7000", "--max", "11000",
            "--count", "4", "-q"]
    assert main([*args, "-o", str(first)]) == 0
    # the same layer, one village's households updated: re-drawn from the first blocks
    v2 = v.copy()
    v2.loc[v2["code"] == "V000", "households"] = 1600
    src2 = tmp_path / "v2.geojson"
    pyogrio.write_dataframe(v2, src2)
    second, rep = tmp_path / "second.geojson", tmp_path / "r.json"
    assert main([*args[:1], str(src2), *args[2:], "--previous", str(first), "-o", str(second),
                 "--report", str(rep)]) == 0
    doc = json.loads(rep.read_text())
    assert doc["feasible"] and doc["moved"] is not None and doc["moved"] <= 3
    a = {r.block_id: sorted(_list(r.members)) for r in pyogrio.read_dataframe(first).itertuples()}
    b = {r.block_id: sorted(_list(r.members)) for r in pyogrio.read_dataframe(second).itertuples()}
    assert set(a) == set(b)  # ids are stable
    assert sum(a[k] != b[k] for k in a) <= 2
    # lock one block from the first run (a JSON mapping); it is kept exactly
    keep = next(iter(sorted(a)))
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps({m: keep for m in a[keep]}))
    third = tmp_path / "third.geojson"
    assert main([*args, "--lock", str(lock), "--seed", "5", "-o", str(third)]) == 0
    c = {r.block_id: sorted(_list(r.members)) for r in pyogrio.read_dataframe(third).itertuples()}
    assert c[keep] == a[keep]
    out = capsys.readouterr().out
    assert "4 blocks from 36 villages" in out


def test_read_assignment_formats(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"V1": "B01", "V2": "B02"}')
    (tmp_path / "a.csv").write_text("code,block_id\nV1,B01\nV2,B02\n")
    assert read_assignment(tmp_path / "a.json") == read_assignment(tmp_path / "a.csv", id_col="code") == \
        {"V1": "B01", "V2": "B02"}


def test_rules_file_fills_in_options(tmp_path: Path) -> None:
    v = squares("\n".join(["....."] * 4))
    src = tmp_path / "v.geojson"
    pyogrio.write_dataframe(v, src)
    rules = tmp_path / "r.toml"
    rules.write_text('id = "code"\nsize_col = "households"\nmin = 4000\nmax = 6000\nseed = 2\n')
    out = tmp_path / "o.gpkg"
    assert main(["blocks", str(src), "--rules", str(rules), "-o", str(out), "-q"]) == 0
    b = pyogrio.read_dataframe(out)
    assert len(b) == 5 and b["size"].between(4000, 6000).all()  # free count (max-p): floor(20,000 / 4,000) = 5


# ------------------------------------------------------------------------------ Taipei
@pytest.fixture(scope="module")
def taipei_villages(taipei: Path) -> gpd.GeoDataFrame:
    g = read_layer(taipei, id_col="CPTVID")
    g["households"] = synthetic_households(g.to_crs(_crs.metric_crs(g)).area, seed=7)
    return g


@pytest.mark.shared
def test_taipei_districts_bounds_free_count(taipei_villages: gpd.GeoDataFrame) -> None:
    lo, hi = 8000, 14000
    out = make_blocks(taipei_villages, id_col="CPTVID", group_col="TNAME", size_col="households", min_size=lo,
                      max_size=hi, seed=0)
    assert out.feasible, out.report["violations"][:3]
    _check_blocks(taipei_villages, out.blocks, id_col="CPTVID", group_col="TNAME", size_col="households", lo=lo,
                  hi=hi)
    # max-p: at least 95 % of the ceiling sum(floor(W_district / min))
    ceiling = int(sum(w // lo for w in taipei_villages.groupby("TNAME")["households"].sum()))
    assert len(out.blocks) >= 0.95 * ceiling
    ids = list(out.blocks["block_id"])
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r".+區\d\d", i) for i in ids)
    assert out.report["compactness"]["mean_polsby_popper"] > 0.25
    assert out.report["compactness"]["measured_in"] == "EPSG:4550"


@pytest.mark.shared
def test_taipei_fixed_count_deterministic(taipei_villages: gpd.GeoDataFrame) -> None:
    kw = dict(id_col="CPTVID", group_col="TNAME", size_col="households", count=5, min_size=5000, max_size=25000)
    a = make_blocks(taipei_villages, seed=3, **kw)
    b = make_blocks(taipei_villages, seed=3, **kw)
    assert a.feasible and len(a.blocks) == 60
    assert list(a.blocks["members"]) == list(b.blocks["members"])


@pytest.mark.shared
def test_taipei_infeasible_minimum_names_causes(taipei_villages: gpd.GeoDataFrame) -> None:
    """A maximum below the largest village and a count no district can fill: both explained."""
    biggest = taipei_villages.loc[taipei_villages["households"].idxmax(), "CPTVID"]
    out = make_blocks(taipei_villages, id_col="CPTVID", group_col="TNAME", size_col="households", count=20,
                      min_size=3000, max_size=int(taipei_villages["households"].max()) - 1, seed=0)
    assert not out.feasible
    causes = {v["cause"] for v in out.report["violations"]}
    assert {"unit_above_max", "group_too_small"} <= causes
    above = [v for v in out.report["violations"] if v["cause"] == "unit_above_max"]
    assert [str(biggest)] in [v["units"] for v in above]
