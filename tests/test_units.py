"""Units: street blocks, household estimates, item assignment, heavy-unit splits, adjacency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import LineString, MultiLineString, MultiPolygon, Point, Polygon, box

from gridgeo.county.assign import _by_overlap, _overlay_lengths, assign_items, shared_lengths, unit_adjacency
from gridgeo.county.split import split_heavy, split_labelled
from gridgeo.county.units import NON_RESIDENTIAL, estimate_households, street_blocks
from gridgeo.errors import CRSError, GeometryError, InputError, UsageError
from gridgeo.partition import Units

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
METRIC = 4548  # CGCS2000 / 3-degree Gauss-Krueger CM 117E, the CRS the sample county was built in

# Gauss-Krueger-sized coordinates: float noise at this magnitude is what breaks naive cutting
X0, Y0 = 39_500_000.0, 3_100_000.0


def sq(x: float, y: float, w: float, h: float | None = None) -> Polygon:
    return box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + (w if h is None else h))


def ln(*pts: tuple[float, float]) -> LineString:
    return LineString([(X0 + x, Y0 + y) for x, y in pts])


def assert_tiles(area: Polygon | MultiPolygon, pieces: np.ndarray) -> None:
    """Pieces are valid Polygons that tile ``area``: same area, same union, no overlaps, shared vertices."""
    assert len(pieces) >= 1
    assert all(shapely.get_type_id(p) == 3 for p in pieces), "pieces must be single Polygons"
    assert shapely.is_valid(pieces).all()
    a = area.area
    assert abs(shapely.area(pieces).sum() - a) <= 1e-6 * a
    u = shapely.union_all(pieces)
    assert shapely.symmetric_difference(u, area).area <= 1e-6 * a
    i, j = shapely.STRtree(pieces).query(pieces, predicate="intersects")
    k = i < j
    overlap = shapely.area(shapely.intersection(pieces[i[k]], pieces[j[k]])).sum() if k.any() else 0.0
    assert overlap <= 1e-6 * a
    assert shapely.coverage_is_valid(pieces), "neighbouring pieces must share their vertices exactly"


def wkb(geoms: np.ndarray) -> list[bytes]:
    return [shapely.to_wkb(g) for g in geoms]


# --------------------------------------------------------------------------------------
# street_blocks
# --------------------------------------------------------------------------------------
def _holed() -> Polygon:
    return Polygon(sq(0, 0, 100).exterior.coords, [sq(40, 40, 20).exterior.coords])


def _bowtie() -> Polygon:  # self-intersecting: invalid as given
    return Polygon([(X0 + 20, Y0 + 20), (X0 + 80, Y0 + 80), (X0 + 80, Y0 + 20), (X0 + 20, Y0 + 80)])


CASES: dict[str, tuple[Polygon | MultiPolygon, list[Any], int]] = {
    # name: (area, barriers, expected face count)
    "no_barriers": (sq(0, 0, 100), [], 1),
    "cross": (sq(0, 0, 100), [ln((50, -10), (50, 110)), ln((-10, 50), (110, 50))], 4),
    "touching_only": (sq(0, 0, 100), [ln((-20, 50), (0, 50)), ln((100, 100), (120, 130))], 1),
    "dangling_inside": (sq(0, 0, 100), [ln((0, 50), (60, 50)), ln((20, 20), (30, 30))], 1),
    "along_boundary": (sq(0, 0, 100), [ln((-10, 0), (110, 0)), ln((100, 20), (100, 70))], 1),
    "duplicates_overlaps": (sq(0, 0, 100), [ln((50, -5), (50, 105)), ln((50, -5), (50, 105)),
                                            ln((50, 20), (50, 60))], 2),
    "hole": (_holed(), [ln((50, -10), (50, 110))], 2),
    "enclaves": (MultiPolygon([sq(0, 0, 100), sq(200, 0, 50)]), [ln((225, -10), (225, 60))], 3),
    "polygon_barrier": (sq(0, 0, 100), [sq(30, 30, 40)], 2),
    "group_polygons": (sq(0, 0, 100), [sq(0, 0, 50, 100), sq(50, 0, 50, 100)], 2),
    "multilinestring": (sq(0, 0, 100), [MultiLineString([[(X0 + 25, Y0 - 1), (X0 + 25, Y0 + 101)],
                                                         [(X0 + 75, Y0 - 1), (X0 + 75, Y0 + 101)]])], 3),
    "invalid_barrier": (sq(0, 0, 100), [_bowtie()], 3),
    "collection_and_points": (sq(0, 0, 100), [shapely.GeometryCollection([Point(X0 + 5, Y0 + 5),
                                                                          ln((50, -1), (50, 101))]),
                                              None, Point(X0 + 1, Y0 + 1)], 2),
    "barrier_far_away": (sq(0, 0, 100), [ln((500, 500), (600, 600))], 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_street_blocks_tile_exactly(name: str) -> None:
    area, barriers, n = CASES[name]
    faces = street_blocks(area, np.array(barriers, dtype=object))
    assert len(faces) == n
    assert_tiles(area, faces)
    again = street_blocks(area, np.array(barriers, dtype=object))
    assert wkb(faces) == wkb(again)
    xy = shapely.get_coordinates(shapely.point_on_surface(faces))
    assert np.all(np.lexsort((xy[:, 0], -xy[:, 1])) == np.arange(len(faces))), "north to south, west to east"


def test_street_blocks_hole_is_not_a_face() -> None:
    faces = street_blocks(_holed(), [ln((50, -10), (50, 110))])
    hole = sq(40, 40, 20)
    assert shapely.area(shapely.intersection(faces, hole)).sum() == pytest.approx(0.0, abs=1e-6)


def test_street_blocks_merges_slivers() -> None:
    area = sq(0, 0, 100)
    bars = [ln((50, -1), (50, 101)), ln((50.002, -1), (50.002, 101))]  # a 0.2 m² sliver between them
    assert len(street_blocks(area, bars, min_area=0)) == 3
    faces = street_blocks(area, bars, min_area=1.0)
    assert len(faces) == 2
    assert_tiles(area, faces)
    assert sorted(np.round(shapely.area(faces), 2)) == [5000.0, 5000.0] or sorted(
        np.round(shapely.area(faces), 1)) == [4999.8, 5000.2]


def test_street_blocks_small_chain_merges_until_big_enough() -> None:
    area = sq(0, 0, 10, 1)  # 10 m² strip cut into ten 1 m² faces
    bars = [ln((x, -1), (x, 2)) for x in range(1, 10)]
    assert len(street_blocks(area, bars, min_area=0)) == 10
    faces = street_blocks(area, bars, min_area=3.0)
    assert_tiles(area, faces)
    assert (shapely.area(faces) >= 3.0 - 1e-9).all()


def test_street_blocks_isolated_sliver_stays() -> None:
    area = MultiPolygon([sq(0, 0, 100), sq(300, 0, 0.5)])  # 0.25 m² enclave, no neighbour
    faces = street_blocks(area, [], min_area=1.0)
    assert len(faces) == 2
    assert_tiles(area, faces)


def test_street_blocks_bad_input() -> None:
    with pytest.raises(GeometryError):
        street_blocks(Polygon(), [])
    with pytest.raises(UsageError):
        street_blocks(sq(0, 0, 10), [], min_area=-1)
    with pytest.raises(UsageError):
        street_blocks(sq(0, 0, 10), ["not a geometry"])


def test_street_blocks_repairs_invalid_area() -> None:
    area = _bowtie()  # repaired into two triangles
    faces = street_blocks(area, [])
    assert len(faces) == 2
    assert shapely.area(faces).sum() == pytest.approx(shapely.make_valid(area).area)


# --------------------------------------------------------------------------------------
# estimate_households
# --------------------------------------------------------------------------------------
def _buildings(**cols: Any) -> gpd.GeoDataFrame:
    geoms = [sq(0, 0, 10), sq(20, 0, 10), sq(40, 0, 4), sq(60, 0, 20, 1), sq(90, 0, 30), sq(130, 0, 10)]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=METRIC)


def test_estimate_households_formula_and_flags() -> None:
    b = _buildings(
        households=[None, "3", np.nan, None, 7, -2],
        levels=[3, None, 2, None, "2;3", None],
        building=["house", None, "yes", "residential", "school", "garage"],
    )
    hh, est = estimate_households(b)
    # 100 m² x 3 / 90 = 3.33 -> 3; "3" given; 16 m² < 20 -> 0; 20 m² x 1 / 90 -> at least 1;
    # a school with a given 7 keeps it; a garage with a bad (negative) count is non-residential -> 0
    assert hh.tolist() == [3, 3, 0, 1, 7, 0]
    assert est.tolist() == [True, False, True, True, False, True]
    assert hh.dtype == np.int64 and est.dtype == np.bool_


def test_estimate_households_levels_columns_and_defaults() -> None:
    b = _buildings(**{"building:levels": ["4", None, None, None, None, None]})
    hh, est = estimate_households(b, default_levels=2, dwelling_m2=50)
    # 100 m² x 4 / 50 = 8; 100 x 2 / 50 = 4; 16 m² -> 0; 20 x 2 / 50 = 0.8 -> 1; 900 x 2 / 50 = 36; 100 -> 4
    assert hh.tolist() == [8, 4, 0, 1, 36, 4]
    assert est.all()


def test_estimate_households_non_residential_and_missing_columns() -> None:
    b = _buildings()
    hh, est = estimate_households(b)
    assert hh.tolist() == [1, 1, 0, 1, 10, 1]  # 900 m² / 90 = 10; rounding half up elsewhere
    assert est.all()
    b["building"] = ["Commercial", "TEMPLE", "apartments", None, "industrial", "dormitory"]
    hh, _ = estimate_households(b)
    assert hh.tolist() == [0, 0, 0, 1, 0, 1]
    hh, _ = estimate_households(b, non_residential=["dormitory"])  # a custom list replaces the default
    assert hh.tolist() == [1, 1, 0, 1, 10, 0]
    assert {"school", "garage", "warehouse"} <= NON_RESIDENTIAL
    assert not {"yes", "house", "residential", "apartments", "village_house"} & NON_RESIDENTIAL


def test_estimate_households_rejects_bad_input() -> None:
    b = _buildings()
    with pytest.raises(UsageError):
        estimate_households(b, dwelling_m2=0)
    with pytest.raises(UsageError):
        estimate_households(b, min_area_m2=-1)
    with pytest.raises(CRSError):
        estimate_households(gpd.GeoDataFrame(geometry=[box(117, 28, 117.001, 28.001)], crs=4490))


# --------------------------------------------------------------------------------------
# assign_items
# --------------------------------------------------------------------------------------
def test_assign_items_straddlers_points_and_misses() -> None:
    units = np.array([sq(0, 0, 50, 100), sq(50, 0, 50, 100), sq(0, 100, 100, 50)], dtype=object)
    items = np.array([
        sq(10, 10, 10),            # inside unit 0
        sq(43, 10, 10),            # 7 m in unit 0, 3 m in unit 1 -> 0
        sq(47, 10, 10),            # 3 m in 0, 7 m in 1 -> 1
        sq(45, 95, 10),            # four-way straddle: 25 m² each in 0 and 1 and 2 ... below:
        Point(X0 + 50, Y0 + 30),   # on the shared edge of 0 and 1 -> 0
        Point(X0 + 75, Y0 + 100),  # on the edge of 1 and 2 -> 1
        Point(X0 + 500, Y0 + 500),  # nowhere
        sq(100, 10, 10),           # touches unit 1 from outside only -> -1
        None,
        sq(95, 30, 10),            # half outside every unit: still unit 1
        Polygon(),
    ], dtype=object)
    got = assign_items(units, items)
    assert got[[0, 1, 2, 4, 5, 6, 7, 8, 9, 10]].tolist() == [0, 0, 1, 0, 1, -1, -1, -1, 1, -1]
    # 5 x 5 in unit 0, 5 x 5 in unit 1, 10 x 5 in unit 2: the largest overlap wins
    assert got[3] == 2
    assert got.dtype == np.int64
    assert (assign_items(units, items) == got).all()
    assert assign_items([], items).tolist() == [-1] * len(items)


def test_assign_items_ties_go_to_lower_index() -> None:
    units = np.array([sq(50, 0, 50), sq(0, 0, 50)], dtype=object)
    assert assign_items(units, [sq(45, 10, 10)]).tolist() == [0]
    assert assign_items(units[::-1], [sq(45, 10, 10)]).tolist() == [0]



def test_assign_items_overlapping_units_covering_one_item_go_to_lower_index() -> None:
    # both units cover the item (an overlap in the input): not "covered once", the overlap rule decides
    units = np.array([sq(0, 0, 100), sq(0, 0, 60)], dtype=object)
    assert assign_items(units, [sq(10, 10, 10)]).tolist() == [0]
    assert assign_items(units[::-1], [sq(10, 10, 10)]).tolist() == [0]


def test_assign_items_covered_shortcut_agrees_with_the_overlap_rule() -> None:
    # items touching, straddling and inside a tiling of 0.1 m-jittered cells, a multipolygon and a holed unit
    rng = np.random.default_rng(7)
    cells = [sq(x * 50, y * 50, 50) for x in range(6) for y in range(6)]
    cells[7] = shapely.difference(cells[7], sq(60, 60, 20))
    cells.append(sq(60, 60, 20))  # the hole's own unit
    cells[0] = MultiPolygon([cells[0], sq(400, 0, 20)])
    units = np.array(cells, dtype=object)
    xy = rng.uniform(-10, 300, size=(400, 2))
    wh = rng.choice([0.1, 5.0, 20.0, 50.0], size=400)
    items = np.array([sq(x, y, w) for (x, y), w in zip(xy, wh, strict=True)]
                     + [sq(50, 0, 50), sq(60, 60, 20), sq(65, 65, 5), sq(400, 0, 20)], dtype=object)
    tree = shapely.STRtree(units)
    polygonal = np.ones(len(items), dtype=bool)
    assert (assign_items(units, items) == _by_overlap(units, tree, items, polygonal)).all()

# --------------------------------------------------------------------------------------
# split_heavy
# --------------------------------------------------------------------------------------
def _grid_town(nx: int = 10, ny: int = 5, size: float = 8.0, pitch: float = 20.0) -> tuple[Polygon, np.ndarray]:
    unit = sq(0, 0, nx * pitch, ny * pitch)
    blds = [sq(i * pitch + 6, j * pitch + 6, size) for j in range(ny) for i in range(nx)]
    return unit, np.array(blds, dtype=object)


def _check_split(units: np.ndarray, items: np.ndarray, w: np.ndarray, new: np.ndarray, parent: np.ndarray, *,
                 iu: np.ndarray, target: float) -> None:
    for u in np.unique(parent):
        assert_tiles(units[u], new[parent == u])
    assert np.all(np.diff(parent) >= 0)
    ok = iu >= 0
    load = np.bincount(iu[ok], w[ok], minlength=len(new))
    count = np.bincount(iu[ok], minlength=len(new))
    split = np.isin(parent, np.flatnonzero(np.bincount(parent) > 1))
    assert np.all((load <= target + 1e-9) | (count <= 1) | ~split)
    poly = ok & (shapely.get_type_id(items) == 3)
    inside = shapely.area(shapely.intersection(items[poly], new[iu[poly]])) / shapely.area(items[poly])
    assert np.all(inside >= 0.999), "a building was cut by a split line"
    pts = ok & (shapely.get_type_id(items) == 0)
    assert shapely.covers(new[iu[pts]], items[pts]).all()


def test_split_heavy_grid_of_buildings() -> None:
    unit, blds = _grid_town()
    w = np.full(len(blds), 2.0)  # 100 households
    other = sq(200, 0, 50, 100)  # an unsplit neighbour sharing the east edge
    units = np.array([unit, other], dtype=object)
    iu = assign_items(units, blds)
    new, parent, niu = split_heavy(units, blds, w, iu, max_weight=40)
    assert (parent == 0).sum() >= 5 and parent[-1] == 1
    assert shapely.equals(new[-1], other)
    _check_split(units, blds, w, new, parent, iu=niu, target=20.0)
    assert shapely.coverage_is_valid(new), "split pieces must match their unsplit neighbours' vertices"
    again = split_heavy(units, blds, w, iu, max_weight=40)
    assert wkb(new) == wkb(again[0]) and (parent == again[1]).all() and (niu == again[2]).all()


def test_split_labelled_gives_each_label_its_own_pieces() -> None:
    # a street block facing two streets (lanes): its buildings labelled by street, north half 0, south half 1
    unit, blds = _grid_town()
    labels = np.asarray([0 if shapely.centroid(b).y > Y0 + 50 else 1 for b in blds], dtype=np.int64)
    other = sq(200, 0, 50, 100)
    units = np.array([unit, other], dtype=object)
    iu = assign_items(units, blds)
    new, parent, niu = split_labelled(units, blds, iu, np.where(iu == 0, labels, 0))
    assert (parent == 0).sum() == 2 and shapely.equals(new[-1], other)
    _check_split(units, blds, np.ones(len(blds)), new, parent, iu=niu, target=float(len(blds)))
    for piece in np.flatnonzero(parent == 0).tolist():  # each piece holds one label's buildings, all of them
        assert len(set(labels[niu == piece])) == 1
    assert len({int(niu[i]) for i in range(len(blds)) if labels[i] == 0}) == 1
    assert shapely.coverage_is_valid(new)
    # one label only: nothing to cut; bad label count refused
    same, p2, _ = split_labelled(units, blds, iu, np.zeros(len(blds), dtype=np.int64))
    assert len(same) == 2 and (p2 == [0, 1]).all()
    with pytest.raises(UsageError, match="as many labels"):
        split_labelled(units, blds, iu, np.zeros(3, dtype=np.int64))


def test_split_heavy_terraced_houses_share_walls() -> None:
    unit = sq(0, 0, 200, 40)
    blds = np.array([sq(i * 10, 15, 10) for i in range(20)], dtype=object)  # touching row houses
    w = np.full(len(blds), 3.0)
    iu = np.zeros(len(blds), dtype=np.int64)
    new, parent, niu = split_heavy([unit], blds, w, iu, max_weight=40, target=10)
    assert len(new) >= 6
    _check_split(np.array([unit], dtype=object), blds, w, new, parent, iu=niu, target=10.0)


def test_split_heavy_tower_and_zero_weight_items() -> None:
    unit, blds = _grid_town(6, 3)
    w = np.zeros(len(blds))
    w[7] = 150.0  # a tower that cannot be split
    w[:3] = 5.0
    iu = np.zeros(len(blds), dtype=np.int64)
    new, parent, niu = split_heavy([unit], blds, w, iu, max_weight=40)
    _check_split(np.array([unit], dtype=object), blds, w, new, parent, iu=niu, target=20.0)
    tower = niu[7]
    assert (niu == tower).sum() == 1, "the tower ends up alone"
    assert len(new) < len(blds), "weightless items are not peeled off one by one"


def test_split_heavy_household_points_and_missing_items() -> None:
    rng = np.random.default_rng(3)
    unit = sq(0, 0, 100, 60)
    xy = rng.uniform([1, 1], [99, 59], size=(120, 2))
    pts = shapely.points(xy + np.array([X0, Y0]))
    items = np.concatenate([pts, np.array([Point(X0 + 500, Y0), None], dtype=object)])
    w = np.ones(len(items))
    iu = assign_items([unit], items)
    assert iu[-2:].tolist() == [-1, -1]
    new, parent, niu = split_heavy([unit], items, w, iu, max_weight=40)
    assert niu[-2:].tolist() == [-1, -1]
    assert len(new) >= 6
    _check_split(np.array([unit], dtype=object), items, w, new, parent, iu=niu, target=20.0)


def test_split_heavy_explodes_multipart_regions() -> None:
    # a U: the cluster of the two arm tops gets Voronoi cells across the notch -> two pieces
    unit = shapely.union_all([sq(0, 0, 40, 100), sq(60, 0, 40, 100), sq(0, 0, 100, 10)])
    blds = np.array([sq(15, 85, 8), sq(75, 85, 8), sq(20, 2, 6), sq(47, 2, 6), sq(74, 2, 6)], dtype=object)
    w = np.array([5.0, 5.0, 12.0, 12.0, 12.0])
    iu = np.zeros(len(blds), dtype=np.int64)
    new, parent, niu = split_heavy([unit], blds, w, iu, max_weight=40)
    _check_split(np.array([unit], dtype=object), blds, w, new, parent, iu=niu, target=20.0)
    assert niu[0] != niu[1], "the arm tops are in different parts"
    assert all(shapely.get_type_id(g) == 3 for g in new)


def test_split_heavy_passes_light_units_through() -> None:
    units = np.array([sq(0, 0, 10), sq(10, 0, 10)], dtype=object)
    items = np.array([sq(2, 2, 3), sq(12, 2, 3)], dtype=object)
    new, parent, niu = split_heavy(units, items, [10, 40], [0, 1], max_weight=40)
    assert new[0] is units[0] and new[1] is units[1]
    assert parent.tolist() == [0, 1] and niu.tolist() == [0, 1]


def test_split_heavy_rejects_bad_input() -> None:
    units = [sq(0, 0, 10)]
    items = [sq(2, 2, 3)]
    with pytest.raises(UsageError):
        split_heavy(units, items, [1, 2], [0], max_weight=4)
    with pytest.raises(InputError):
        split_heavy(units, items, [-1], [0], max_weight=4)
    with pytest.raises(UsageError):
        split_heavy(units, items, [1], [3], max_weight=4)
    with pytest.raises(UsageError):
        split_heavy(units, items, [1], [0], max_weight=0)
    with pytest.raises(UsageError):
        split_heavy(units, items, [1], [0], max_weight=4, target=5)


# --------------------------------------------------------------------------------------
# unit_adjacency
# --------------------------------------------------------------------------------------
def test_unit_adjacency_lattice() -> None:
    cells = np.array([sq(10 * i, 10 * j, 10) for j in range(3) for i in range(3)], dtype=object)
    indptr, indices, lengths = unit_adjacency(cells)
    deg = np.diff(indptr)
    assert deg.tolist() == [2, 3, 2, 3, 4, 3, 2, 3, 2]  # rook: corner contacts are not neighbours
    assert np.allclose(lengths, 10.0)
    for i in range(9):
        row = indices[indptr[i]:indptr[i + 1]]
        assert (np.diff(row) > 0).all() and i not in row
        for j in row:
            assert i in indices[indptr[j]:indptr[j + 1]]
    assert set(indices[indptr[4]:indptr[5]].tolist()) == {1, 3, 5, 7}
    graph = Units.from_arrays(indptr, indices, lengths=lengths)
    assert graph.n == 9 and (graph.lengths == 10.0).all()


def test_unit_adjacency_min_shared_and_float_noise() -> None:
    a = sq(0, 0, 10)
    b = sq(10, 9.7, 10)  # shares 0.3 m with a
    mid = (X0 + 10, Y0 + 5 + 1e-9)  # a vertex a hair off the shared edge, as cutting leaves it
    c = Polygon([(X0 - 10, Y0), (X0, Y0), (X0, Y0 + 10), (X0 - 10, Y0 + 10)])
    a2 = Polygon([(X0, Y0), (X0 + 10, Y0), mid, (X0 + 10, Y0 + 10), (X0, Y0 + 10)])
    d = sq(10, -20, 10, 25)  # shares 5 m with a2 along the noisy edge
    indptr, indices, lengths = unit_adjacency([a2, b, c, d])
    pairs = {(i, int(j)): round(float(L), 6) for i in range(4)
             for j, L in zip(indices[indptr[i]:indptr[i + 1]], lengths[indptr[i]:indptr[i + 1]], strict=True)}
    assert pairs == {(0, 2): 10.0, (2, 0): 10.0, (0, 3): 5.0, (3, 0): 5.0}
    indptr, indices, _ = unit_adjacency([a, b], min_shared=0.2)
    assert indices.tolist() == [1, 0]
    indptr, indices, lengths = unit_adjacency([])
    assert indptr.tolist() == [0] and len(indices) == 0


# --------------------------------------------------------------------------------------
# the sample county
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample() -> dict[str, gpd.GeoDataFrame]:
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} missing")
    vil = gpd.read_file(SAMPLE, layer="villages")
    pick = vil[vil["code"].isin(["369900001001", "369900001002"]) | (vil.index == vil.index[-1])]
    bbox = tuple(pick.total_bounds)
    out = {"villages": pick.to_crs(METRIC)}
    for layer in ("villager_groups", "buildings", "roads"):
        out[layer] = gpd.read_file(SAMPLE, layer=layer, bbox=bbox).to_crs(METRIC)
    return out


def test_sample_county_villages(sample: dict[str, gpd.GeoDataFrame]) -> None:
    vil, grp, bld, rds = sample["villages"], sample["villager_groups"], sample["buildings"], sample["roads"]
    assert len(vil) == 3
    bgeom = np.asarray(bld.geometry.values)
    hh = bld["households"].to_numpy(float)
    roads = np.asarray(rds.geometry.values)
    n_split = 0
    for code, area in zip(vil["code"], vil.geometry.values, strict=True):
        groups = np.asarray(grp.geometry.values[(grp["village"] == code).to_numpy()])
        faces = street_blocks(area, np.concatenate([roads, groups]))
        assert_tiles(area, faces)
        mine = np.flatnonzero((bld["village"] == code).to_numpy())
        items = bgeom[mine]
        iu = assign_items(faces, items)
        assert (iu >= 0).all()
        new, parent, niu = split_heavy(faces, items, hh[mine], iu, max_weight=40)
        n_split += int((np.bincount(parent) > 1).sum())
        assert_tiles(area, new)
        load = np.bincount(niu, hh[mine], minlength=len(new))
        count = np.bincount(niu, minlength=len(new))
        assert np.all((load <= 40) | (count == 1))
        # every building lies in one unit, as far as the barriers left it whole
        in_face = shapely.area(shapely.intersection(items, faces[iu]))
        in_unit = shapely.area(shapely.intersection(items, new[niu]))
        assert np.all(in_unit >= 0.999 * in_face)
        indptr, indices, lengths = unit_adjacency(new)
        assert len(indices) == indptr[-1] and (lengths >= 0.5).all()
        # the matched-segment measure gives the pairs and lengths of one snapped overlay per pair
        a, b, shared = shared_lengths(new)
        ra, rb, rshared = _overlay_lengths(new)
        assert a.tolist() == ra.tolist() and b.tolist() == rb.tolist()
        assert np.allclose(shared, rshared, rtol=1e-13, atol=1e-9)
        graph = Units.from_arrays(indptr, indices, lengths=lengths)
        assert graph.n == len(new)
    assert n_split >= 1, "the sample should exercise split_heavy"


def test_street_blocks_speck_part_dropped() -> None:
    """A part below a square centimetre (left by a repaired ring) is dropped, not made a face of no area."""
    area = MultiPolygon([sq(0, 0, 100), sq(300, 0, 1e-5)])
    faces = street_blocks(area, [], min_area=1.0)
    assert len(faces) == 1
    assert abs(float(np.sum(shapely.area(faces))) - 10_000.0) < 1e-6
