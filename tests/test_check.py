"""check: the catalogue through reading (three formats), checking and adjacency; Taipei."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from gridgeo.data.adjacency import build_adjacency
from gridgeo.data.check import check_file, check_layer
from gridgeo.errors import GridgeoError
from tests.catalogue import CASES, Case

PARAMS = [(f, fmt) for f in CASES for fmt in f().formats]


@pytest.fixture(autouse=True)
def _quiet_no_crs_writes():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".crs. was not provided")
        yield


def write(case: Case, fmt: str, tmp: Path) -> Path:
    gdf = case.gdf
    if fmt == "geojson":
        path = tmp / f"{case.name}.geojson"
        pyogrio.write_dataframe(gdf, path, driver="GeoJSON")
    elif fmt == "gpkg":
        path = tmp / f"{case.name}.gpkg"
        pyogrio.write_dataframe(gdf, path, layer="villages", driver="GPKG")
    else:
        shp = tmp / f"{case.name}.shp"
        pyogrio.write_dataframe(gdf, shp, driver="ESRI Shapefile")
        path = tmp / f"{case.name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for side in tmp.glob(f"{case.name}.*"):
                if side.suffix != ".zip":
                    zf.write(side, side.name)
    return path


@pytest.mark.parametrize(("factory", "fmt"), PARAMS, ids=[f"{f.__name__}-{fmt}" for f, fmt in PARAMS])
def test_catalogue_read_check_adjacency(factory, fmt: str, tmp_path: Path) -> None:
    case = factory()
    path = write(case, fmt, tmp_path)
    result = check_file(str(path), id_col="code", parent_col="parent", crs=case.declared_crs, datum=case.datum)
    report = result.report
    found = {(p.kind, p.severity) for p in report.problems}
    assert found == case.expect, report.table()
    assert report.usable is case.usable
    assert set(report.repaired) == case.repaired
    assert report.features == len(case.gdf)
    if not report.usable:
        return
    assert result.gdf.geometry.is_valid.all()
    if case.edges is None:
        with pytest.raises(GridgeoError):
            build_adjacency(result.gdf, id_col="code")
        return
    G = build_adjacency(result.gdf, id_col="code")
    assert {frozenset(e) for e in G.edges} == case.edges
    isolated = {n for n in G.nodes if G.degree(n) == 0}
    assert set(G.graph["islands"]) == isolated


def test_gcj02_round_trip_is_sub_centimetre(tmp_path: Path) -> None:
    from tests.catalogue import clean, gcj02_input

    case = gcj02_input()
    path = write(case, "gpkg", tmp_path)
    got = check_file(str(path), id_col="code", datum="gcj02").gdf
    want = clean().gdf.set_index("code").loc[["A", "B"]]
    metric = "EPSG:4548"
    a = np.concatenate([shapely.get_coordinates(g) for g in got.to_crs(metric).geometry])
    b = np.concatenate([shapely.get_coordinates(g) for g in want.to_crs(metric).geometry])
    assert np.abs(a - b).max() < 0.01


def test_overlap_reports_location_and_area() -> None:
    from tests.catalogue import overlap

    rep = check_layer(overlap().gdf, id_col="code").report
    (p,) = [p for p in rep.problems if p.kind == "overlap"]
    assert p.id == "A" and p.other == "B"
    assert p.area_m2 == pytest.approx(2000, rel=0.02)
    lon, lat = p.location
    assert 117.2 < lon < 117.203 and 28.25 < lat < 28.252


def test_overlap_of_neighbours_sharing_an_edge_is_not_a_sliver() -> None:
    """Regression: the shared edge (a line in the intersection) once counted in the width, making a wide
    overlap between neighbours a "sliver" warning; it is an error, measured on its area alone."""
    x, y = 500_000, 3_100_000  # inside EPSG:4549 (CGCS2000 GK, central meridian 120E)
    a = shapely.box(x, y, x + 100, y + 1000)
    b = shapely.union(shapely.box(x + 100, y, x + 200, y + 1000), shapely.box(x + 90, y, x + 100, y + 10))  # 10x10 m
    gdf = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[a, b], crs="EPSG:4549")
    rep = check_layer(gdf, id_col="code").report
    (p,) = [p for p in rep.problems if "overlap" in p.kind]
    assert p.kind == "overlap" and p.severity == "error" and p.area_m2 == pytest.approx(100)


def test_gap_names_parent() -> None:
    from tests.catalogue import sliver_gap

    rep = check_layer(sliver_gap().gdf, id_col="code", parent_col="parent").report
    (p,) = [p for p in rep.problems if p.kind == "sliver_gap"]
    assert "inside parent T1" in p.message
    assert p.area_m2 == pytest.approx(30, rel=0.05)


def test_area_tolerance_hides_small_gap() -> None:
    from tests.catalogue import sliver_gap

    rep = check_layer(sliver_gap().gdf, id_col="code", area_tol=50).report
    assert not rep.problems


def test_missing_id_column_is_schema_error() -> None:
    from tests.catalogue import clean

    with pytest.raises(GridgeoError, match="column 'nope' not found"):
        check_layer(clean().gdf, id_col="nope")


@pytest.mark.shared
def test_taipei_two_repaired(taipei: Path) -> None:
    result = check_file(str(taipei), id_col="CPTVID", parent_col="TNAME")
    rep = result.report
    assert rep.features == 456
    assert sorted(rep.repaired) == ["6301000001", "6301000039"]
    assert rep.usable
    assert rep.crs == "EPSG:4326" and rep.metric_crs == "EPSG:4550"
    assert result.gdf.geometry.is_valid.all()
    # the districts (townships) tile without real gaps or overlaps: only slivers
    assert {p.kind for p in rep.problems} <= {"invalid", "sliver_part", "sliver_gap", "sliver_overlap"}
    # the repaired layer keeps the area (make_valid must not drop real land)
    before = gpd.read_file(taipei).to_crs(3826)
    after = result.gdf.to_crs(3826)
    assert after.area.sum() == pytest.approx(shapely.make_valid(before.geometry.values).area.sum() if False
                                             else before.area.sum(), rel=1e-4)


@pytest.mark.shared
def test_taipei_adjacency(taipei: Path) -> None:
    result = check_file(str(taipei), id_col="CPTVID")
    G = build_adjacency(result.gdf, id_col="CPTVID")
    assert G.number_of_nodes() == 456
    assert G.graph["islands"] == []
    assert len(G.graph["components"]) == 1
    # districts are contiguous, so neighbours mostly share a district; every village has one
    assert min(dict(G.degree).values()) >= 1
    lengths = np.array([d["length"] for *_, d in G.edges(data=True)])
    assert (lengths >= 5).all()
    # a strictly exact graph (no snapping) misses pairs that the snapped one bridges
    exact = build_adjacency(result.gdf, id_col="CPTVID", snap=0)
    assert exact.number_of_edges() < G.number_of_edges()


@pytest.mark.parametrize("name", ["sliver_gap", "sliver_overlap"])
def test_repair_slivers_makes_the_layer_tile(name: str) -> None:
    import tests.catalogue as cat

    case = getattr(cat, name)()
    first = check_layer(case.gdf, id_col="code", repair_slivers=True)
    kinds = {(p.kind, p.severity) for p in first.report.problems}
    assert (name, "repaired") in kinds
    assert first.report.repaired
    again = check_layer(first.gdf, id_col="code").report
    assert not [p for p in again.problems if p.kind in {"sliver_gap", "sliver_overlap", "gap", "overlap"}]
    # the total area is the union's: nothing lost, nothing counted twice
    m = first.gdf.to_crs("EPSG:4548")
    assert m.area.sum() == pytest.approx(shapely.union_all(m.geometry.values).area, abs=0.5)


def test_repair_slivers_leaves_real_overlaps() -> None:
    from tests.catalogue import overlap

    rep = check_layer(overlap().gdf, id_col="code", repair_slivers=True).report
    assert not rep.usable and not rep.repaired
