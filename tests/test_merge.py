"""``gridgeo merge`` (多网合一) on two departmental layers generated from the bundled sample, with its crosswalk.

The county: two townships of the sample (one mostly urban, one rural), built once for the module with drawn
grids. Department A (党建) is the built grids and exclusive grids with neighbouring grids merged pairwise;
department B (民政) is the villager groups, each grown or shrunk by 6 m: stacked, the two overlap and leave
gaps, as two offices' layers do. The merge is run with grid bounds tighter than the build's, so most villages
are cut into several grids and the boundaries the merge keeps are a real choice.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridgeo.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
TOWNSHIPS = ("369900007", "369900016")
METRIC = "EPSG:4548"
BOUNDS = {"rural": (30.0, 100.0), "urban": (60.0, 200.0)}
RULES = ("[county]\nseed = 0\n[bounds.rural]\ngrid = [30, 100]\npoint = [10, 40]\n"
         "[bounds.urban]\ngrid = [60, 200]\npoint = [20, 120]\n")


def _subset(out: Path) -> Path:
    """The sample's layers for :data:`TOWNSHIPS` only (what a build of those townships reads)."""
    vil = pyogrio.read_dataframe(SAMPLE, layer="villages")
    vil = vil[vil["township"].isin(TOWNSHIPS)]
    codes = set(vil["code"])
    area = shapely.union_all(vil.geometry.values)
    towns = pyogrio.read_dataframe(SAMPLE, layer="townships")
    layers = {"townships": towns[towns["code"].isin(TOWNSHIPS)], "villages": vil}
    for name in ("villager_groups", "buildings", "pois"):
        g = pyogrio.read_dataframe(SAMPLE, layer=name)
        layers[name] = g[g["village"].isin(codes)]
    for name in ("roads", "water"):
        g = pyogrio.read_dataframe(SAMPLE, layer=name)
        layers[name] = g[g.intersects(area)]
    for name, g in layers.items():
        pyogrio.write_dataframe(g, out, layer=name, driver="GPKG", append=out.exists())
    return out


def _pairwise(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Department A: each grid merged with its first unmerged neighbour in the same village (code order)."""
    rows = []
    for _, grp in grids.groupby("parent", sort=True):
        left = list(grp.sort_values("code").index)
        while left:
            i = left.pop(0)
            gi = grids.geometry[i]
            j = next((j for j in left if shapely.intersection(gi, grids.geometry[j]).length > 1.0), None)
            if j is not None:
                left.remove(j)
                gi = shapely.union(gi, grids.geometry[j])
            rows.append({"code": f"A{len(rows) + 1:03d}", "geometry": gi})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=grids.crs)


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The built county, the two departments (A in EPSG:4490, B in a metric CRS) and the rules."""
    d = tmp_path_factory.mktemp("merge")
    src = _subset(d / "county.gpkg")
    (d / "build.toml").write_text(f'[county]\nseed = 0\n[inputs]\ncounty = "{src.as_posix()}"\n'
                                  "[grids]\nuse_groups = false\n", encoding="utf-8")
    built = d / "built.gpkg"
    assert main(["build", str(d / "build.toml"), "-o", str(built), "--workers", "1", "--no-progress", "-q"]) == 0
    g = pyogrio.read_dataframe(built, layer="grids")
    e = pyogrio.read_dataframe(built, layer="exclusive")
    both = gpd.GeoDataFrame(pd.concat([g[["code", "parent", "geometry"]], e[["code", "parent", "geometry"]]],
                                      ignore_index=True), geometry="geometry", crs=g.crs).to_crs(METRIC)
    _pairwise(both).to_crs(4490).to_file(d / "a.gpkg", layer="party", driver="GPKG")
    groups = pyogrio.read_dataframe(src, layer="villager_groups").to_crs(METRIC)
    rng = np.random.default_rng(1)
    grown = [geom.buffer(float(rng.choice([-6.0, 6.0]))) for geom in groups.geometry]
    gpd.GeoDataFrame({"code": ["B" + str(c) for c in groups["code"]]}, geometry=grown, crs=METRIC).to_file(
        d / "b.gpkg", layer="civil", driver="GPKG")
    (d / "rules.toml").write_text(RULES, encoding="utf-8")
    return {"dir": d, "built": built, "a": d / "a.gpkg", "b": d / "b.gpkg", "rules": d / "rules.toml"}


def _merge(county: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["merge", f"{county['a']}:party", f"{county['b']}:civil", "--name", "党建", "--name", "民政",
                 "--county", str(county["built"]), "--rules", str(county["rules"]), "-o", str(out),
                 "--report", str(out.with_suffix(".json")), "--workers", "2", *extra])


@pytest.fixture(scope="module")
def merged(county: dict[str, Path]) -> Path:
    out = county["dir"] / "merged.gpkg"
    assert _merge(county, out) == 0
    return out


def _metric(path: Path, layer: str) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(path, layer=layer).to_crs(METRIC)


def test_stacked_departments_overlap_and_leave_gaps(county: dict[str, Path]) -> None:
    """What the merge reconciles: `gridgeo check` finds overlaps in the two layers stacked, gaps in B's own."""
    from gridgeo.data.check import check_layer

    a = pyogrio.read_dataframe(county["a"]).to_crs(METRIC)
    b = pyogrio.read_dataframe(county["b"])
    stacked = gpd.GeoDataFrame(pd.concat([a, b], ignore_index=True), geometry="geometry", crs=METRIC)
    kinds = check_layer(stacked, id_col="code").report.by_kind()
    assert kinds.get("overlap", 0) > 50, kinds
    own = check_layer(b, id_col="code").report.by_kind()
    assert own.get("gap", 0) + own.get("enclave", 0) > 5 and own.get("overlap", 0) > 50, own


def test_merged_grids_tile_every_village(merged: Path) -> None:
    """No gap or overlap inside a village above 1 m² plus what the output's 1e-7° rounding may move along its
    edge (``ROUNDING_M`` x perimeter); valid polygons, one clean coverage."""
    from gridgeo.county.coverage import ROUNDING_M

    grids = _metric(merged, "grids")
    villages = pyogrio.read_dataframe(merged.parent / "built.gpkg", layer="villages").to_crs(METRIC)
    assert shapely.is_valid(grids.geometry.values).all()
    assert shapely.coverage_is_valid(grids.geometry.values)
    for code, v in zip(villages["code"], villages.geometry, strict=True):
        mine = grids[grids["parent"] == code].geometry.values
        assert len(mine) >= 1, code
        tol = 1.0 + ROUNDING_M * v.length
        assert abs(float(shapely.area(mine).sum()) - v.area) <= tol, code
        assert shapely.symmetric_difference(shapely.union_all(mine), v).area <= tol, code
    assert len(grids) > len(villages) + 10  # most villages are cut: the test is not one grid per village


def test_every_household_in_one_merged_grid_and_bounds_held(merged: Path) -> None:
    """Each household point lies in exactly one merged grid; the grids' households add up; bounds held."""
    grids = _metric(merged, "grids")
    hh = _metric(merged.parent / "built.gpkg", "households")
    pi, gi = shapely.STRtree(grids.geometry.values).query(hh.geometry.values, predicate="within")
    count = np.bincount(pi, minlength=len(hh))
    on_edge = np.flatnonzero(count == 0)
    # a point exactly on a shared edge is within neither; it must then touch one of them
    for i in on_edge.tolist():
        assert shapely.distance(hh.geometry.values[i], shapely.union_all(grids.geometry.values)) < 0.05
    assert (count <= 1).all()
    got = np.bincount(gi, weights=hh["households"].to_numpy()[pi], minlength=len(grids))
    edge_hh = int(hh["households"].to_numpy()[on_edge].sum())
    assert abs(int(got.sum()) + edge_hh - int(hh["households"].sum())) == 0
    assert int(grids["households"].sum()) == int(hh["households"].sum())
    # the households table: every household point once, in the grid that holds it
    table = pyogrio.read_dataframe(merged, layer="households")
    assert len(table) == len(hh) and table["source_id"].is_unique and table["grid"].notna().all()
    by_id = dict(zip(table["source_id"], table["grid"], strict=True))
    held = {int(p): str(grids["code"].iloc[g]) for p, g in zip(pi.tolist(), gi.tolist(), strict=True)}
    ids = hh["source_id"].astype(str).tolist()
    assert all(by_id[ids[p]] == code for p, code in held.items())
    per_grid = table.groupby("grid")["households"].sum()
    assert per_grid.reindex(grids["code"]).fillna(0).astype(int).tolist() == grids["households"].astype(int).tolist()
    inside = [BOUNDS[k][0] <= h <= BOUNDS[k][1] for k, h in zip(grids["kind"], grids["households"], strict=True)]
    assert np.mean(inside) >= 0.9, np.mean(inside)
    assert grids["within_bounds"].astype(bool).tolist() == inside


def test_crosswalk_shares_sum_to_one(merged: Path) -> None:
    """Per departmental grid the area and household shares sum to 1; per new grid, its area is accounted for."""
    cw = pyogrio.read_dataframe(merged, layer="crosswalk")
    assert set(cw["department"]) == {"党建", "民政"}
    covered = cw[cw["dept_grid"].notna()]
    area = covered.groupby(["department", "dept_grid"])["share_area_of_dept"].sum()
    assert np.allclose(area.to_numpy(), 1.0, atol=1e-4)
    hh = covered.groupby(["department", "dept_grid"]).agg(h=("households", "sum"), s=("share_households_of_dept",
                                                                                       "sum"))
    assert np.allclose(hh[hh["h"] > 0]["s"].to_numpy(), 1.0, atol=1e-4)
    a = pyogrio.read_dataframe(merged.parent / "a.gpkg")
    assert set(covered[covered["department"] == "党建"]["dept_grid"]) == set(a["code"])
    # the other way: each new grid is wholly accounted for by each department (gaps as empty rows, overlaps twice)
    per_grid = cw.groupby(["department", "grid"])["share_area_of_grid"].sum()
    assert (per_grid.to_numpy() >= 1.0 - 1e-4).all()
    party = per_grid.loc["党建"].to_numpy()  # department A tiles the villages: exactly 1
    assert np.allclose(party, 1.0, atol=1e-3)
    grids = pyogrio.read_dataframe(merged, layer="grids")
    assert set(cw["grid"]) == set(grids["code"])


def test_gaps_and_overlaps_are_reported(merged: Path) -> None:
    """Department B's gaps and overlaps are in the report and the merge_problems layer; A (a tiling) has none."""
    rep = json.loads(merged.with_suffix(".json").read_text(encoding="utf-8"))
    b, a = rep["departments"]["民政"], rep["departments"]["党建"]
    assert b["gaps"] > 5 and b["overlaps"] > 50 and b["gap_m2"] > 0 and b["overlap_m2"] > 0
    assert a["gaps"] == 0 and a["overlaps"] == 0
    probs = _metric(merged, "merge_problems")
    assert set(probs["department"]) == {"民政"}
    assert (probs["kind"] == "gap").sum() == b["gaps"]
    assert abs(probs[probs["kind"] == "overlap"].area.sum() - b["overlap_m2"]) < 1.0 + 0.01 * b["overlap_m2"]


def test_merged_boundaries_follow_departmental_boundaries(merged: Path, county: dict[str, Path]) -> None:
    """Most merged-grid boundary inside the villages lies on a departmental boundary (within 0.5 m)."""
    grids = _metric(merged, "grids")
    villages = _metric(merged, "villages")
    inner = shapely.difference(shapely.union_all(shapely.boundary(grids.geometry.values)),
                               shapely.buffer(shapely.union_all(shapely.boundary(villages.geometry.values)), 0.5))
    dept = np.concatenate([pyogrio.read_dataframe(county[k]).to_crs(METRIC).geometry.values for k in ("a", "b")])
    on = shapely.intersection(inner, shapely.buffer(shapely.union_all(shapely.boundary(dept)), 0.5))
    assert inner.length > 1000.0
    share = on.length / inner.length
    assert share >= 0.9, share
    rep = json.loads(merged.with_suffix(".json").read_text(encoding="utf-8"))
    assert rep["mean_follows"] > 0.6


def test_same_input_and_seed_same_output(merged: Path, county: dict[str, Path]) -> None:
    """Run again in this process (``merged`` ran in two worker processes): the same layers, value for value."""
    again = county["dir"] / "again.gpkg"
    assert _merge(county, again, "--workers", "1") == 0
    for layer in ("grids", "crosswalk", "households"):
        x, y = pyogrio.read_dataframe(merged, layer=layer), pyogrio.read_dataframe(again, layer=layer)
        if "geometry" in x:
            assert shapely.equals_exact(x.geometry.values, y.geometry.values, tolerance=0).all()
            x, y = x.drop(columns="geometry"), y.drop(columns="geometry")
        pd.testing.assert_frame_equal(x, y)


def test_check_passes_on_the_result(merged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(merged), "--layer", "grids", "--id", "code", "--parent", "parent", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["usable"] and not {"overlap", "gap", "invalid"} & set(doc["summary"]), doc["summary"]


def test_invalid_polygon_repaired_and_reported(county: dict[str, Path], tmp_path: Path) -> None:
    """A bow-tie grid in a department is made valid, named in the report, and the merge still tiles."""
    a = pyogrio.read_dataframe(county["a"], layer="party").to_crs(METRIC)
    x0, y0, x1, y1 = a.geometry.values[0].bounds
    bow = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    a.loc[0, "geometry"] = bow  # a self-intersecting ring
    a.to_file(tmp_path / "a_bad.gpkg", layer="party", driver="GPKG")
    out = tmp_path / "m.gpkg"
    assert main(["merge", f"{tmp_path / 'a_bad.gpkg'}:party", f"{county['b']}:civil", "--county",
                 str(county["built"]), "--rules", str(county["rules"]), "-o", str(out), "--report",
                 str(tmp_path / "m.json")]) == 0
    rep = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert rep["departments"]["party"]["repaired"] and rep["departments"]["party"]["repaired"][0].startswith("A001")


@pytest.mark.parametrize("case", ["missing_layer", "points", "no_crs", "one_layer", "elsewhere", "dup_ids",
                                  "id_count", "no_id_col"])
def test_bad_input_clear_error_no_output(case: str, county: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each bad input: one line naming the file and the problem, exit non-zero, no output file."""
    bad = tmp_path / "bad.gpkg"
    a = pyogrio.read_dataframe(county["a"], layer="party")
    expect = {"missing_layer": "no layer 'nosuch'", "points": "not a grid layer", "no_crs": "no CRS",
              "one_layer": "two or more", "elsewhere": "meets the villages", "dup_ids": "used twice",
              "id_count": "3 id column(s) for 2 layer(s)", "no_id_col": "id column 'nosuch' not found"}[case]
    first = f"{bad}:dept"
    if case == "missing_layer":
        first = f"{county['a']}:nosuch"
    elif case == "points":
        pts = a.to_crs(METRIC).geometry.centroid
        gpd.GeoDataFrame(a[["code"]], geometry=pts, crs=METRIC).to_file(bad, layer="dept")
    elif case == "no_crs":
        with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: that is the point
            warnings.simplefilter("ignore", UserWarning)
            pyogrio.write_dataframe(gpd.GeoDataFrame(a[["code"]], geometry=list(a.geometry)), bad, layer="dept")
        assert pyogrio.read_info(bad, layer="dept")["crs"] is None
    elif case == "elsewhere":
        gpd.GeoDataFrame(a[["code"]], geometry=a.geometry.translate(5.0, 0.0), crs=a.crs).to_file(bad, layer="dept")
    elif case in ("id_count", "no_id_col"):
        a.to_file(bad, layer="dept")
    elif case == "dup_ids":
        a2 = a.copy()
        a2.loc[1, "code"] = a2.loc[0, "code"]
        a2.to_file(bad, layer="dept")
    out = tmp_path / "out.gpkg"
    layers = [first] if case == "one_layer" else [first, f"{county['b']}:civil"]
    if case == "one_layer":
        layers = [f"{county['a']}:party"]
    ids = {"id_count": ["--id", "code", "--id", "code", "--id", "code"],
           "no_id_col": ["--id", "nosuch", "--id", "code"]}
    rc = main(["merge", *layers, "--county", str(county["built"]), "-o", str(out), *ids.get(case, [])])
    err = capsys.readouterr().err
    assert rc != 0
    assert expect in err, err
    if case not in ("one_layer", "id_count"):
        assert (str(bad) if case != "missing_layer" else str(county["a"])) in err, err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.gpkg*"))


def test_department_covering_some_villages_only(county: dict[str, Path], tmp_path: Path) -> None:
    """A department that reaches only one township: the merge still tiles; the villages it misses are named."""
    b = pyogrio.read_dataframe(county["b"], layer="civil")
    mine = b[b["code"].str.startswith("B" + TOWNSHIPS[0])]
    assert 0 < len(mine) < len(b)
    mine.to_file(tmp_path / "part.gpkg", layer="civil", driver="GPKG")
    out = tmp_path / "m.gpkg"
    assert main(["merge", f"{county['a']}:party", f"{tmp_path / 'part.gpkg'}:civil", "--county", str(county["built"]),
                 "--rules", str(county["rules"]), "-o", str(out), "--report", str(tmp_path / "m.json")]) == 0
    rep = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    missed = rep["departments"]["civil"]["villages_not_covered"]
    villages = pyogrio.read_dataframe(county["built"], layer="villages")
    other = sorted(str(c) for c in villages["code"] if not str(c).startswith(TOWNSHIPS[0]))
    assert missed == other
    probs = pyogrio.read_dataframe(out, layer="merge_problems")
    assert set(other) <= set(probs[(probs["kind"] == "gap") & (probs["department"] == "civil")]["village"])
    grids = pyogrio.read_dataframe(out, layer="grids")
    assert set(grids["parent"]) == set(villages["code"].astype(str))


def test_layer_spec(tmp_path: Path) -> None:
    """``FILE:LAYER`` splits at the last colon; an existing file whose name has a colon is a file."""
    from gridgeo.county._merge_inputs import LayerSpec, parse_spec
    from gridgeo.errors import UsageError

    assert parse_spec("a.gpkg:grids") == LayerSpec(Path("a.gpkg"), "grids")
    assert parse_spec("a.geojson") == LayerSpec(Path("a.geojson"))
    odd = tmp_path / "x:y.geojson"
    odd.write_text("{}", encoding="utf-8")
    assert parse_spec(str(odd)) == LayerSpec(odd)
    with pytest.raises(UsageError, match="FILE:LAYER"):
        parse_spec("a.gpkg:")
