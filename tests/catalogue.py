"""A catalogue of awkward boundary layers, each with what a check must find.

Units are built in metres around (117.2E, 28.25N) and converted to lon/lat, so
every case is a small, real-looking layer. ``Case.expect`` lists the
(kind, severity) pairs the check must report; ``edges`` the neighbour pairs
adjacency must find (``None`` when adjacency must refuse the layer).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

LON0, LAT0 = 117.2, 28.25
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def ll(geom: shapely.Geometry) -> shapely.Geometry:
    """Metres (local) -> lon/lat degrees."""
    return shapely.transform(geom, lambda c: c / [M_PER_DEG_LON, M_PER_DEG_LAT] + [LON0, LAT0])


@dataclass
class Case:
    name: str
    gdf: gpd.GeoDataFrame
    expect: set[tuple[str, str]]
    usable: bool = True
    edges: set[frozenset[str]] | None = field(default_factory=set)
    formats: tuple[str, ...] = ("geojson", "gpkg", "shpzip")
    datum: str | None = None
    declared_crs: str | None = None
    repaired: set[str] = field(default_factory=set)


def _layer(geoms: dict[str, shapely.Geometry | None], crs: str | None = "EPSG:4326") -> gpd.GeoDataFrame:
    ids = list(geoms)
    return gpd.GeoDataFrame(
        {"code": ids, "parent": ["T1"] * len(ids)},
        geometry=[None if g is None else (ll(g) if crs is not None and crs.endswith("4326") else g)
                  for g in geoms.values()],
        crs=crs,
    )


def e(*pairs: str) -> set[frozenset[str]]:
    return {frozenset(p) for p in pairs}


def clean() -> Case:
    # A B C in a row, D touches C only at a corner (no edge), E below A-B
    g = {"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100), "C": box(200, 0, 300, 100),
         "D": box(300, 100, 400, 200), "E": box(0, -100, 200, 0)}
    return Case("clean", _layer(g), set(), edges=e("AB", "BC", "AE", "BE"))


def bow_tie() -> Case:
    tie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100), (0, 0)])
    g = {"A": tie, "B": box(100, 0, 200, 100)}
    return Case("bow_tie", _layer(g), {("invalid", "repaired"), ("multipart", "info")}, edges=e("AB"),
                repaired={"A"})


def hole_enclave() -> Case:
    outer = Polygon([(0, 0), (300, 0), (300, 300), (0, 300)], [[(100, 100), (200, 100), (200, 200), (100, 200)]])
    g = {"A": outer, "B": box(100, 100, 200, 200), "C": box(300, 0, 400, 300)}
    return Case("hole_enclave", _layer(g), {("enclave", "info")}, edges=e("AB", "AC"))


def hole_gap() -> Case:
    outer = Polygon([(0, 0), (300, 0), (300, 300), (0, 300)], [[(100, 100), (200, 100), (200, 200), (100, 200)]])
    g = {"A": outer, "C": box(300, 0, 400, 300)}
    return Case("hole_gap", _layer(g), {("gap", "warning")}, edges=e("AC"))


def multipart() -> Case:
    g = {"A": MultiPolygon([box(0, 0, 100, 100), box(400, 0, 500, 100)]), "B": box(100, 0, 200, 100),
         "C": box(500, 0, 600, 100)}
    return Case("multipart", _layer(g), {("multipart", "info")}, edges=e("AB", "AC"))


def sliver_gap() -> Case:
    # A and B 0.3 m apart, closed above by D and below by C: an enclosed sliver gap
    g = {"A": box(0, 0, 100, 100), "B": box(100.3, 0, 200, 100),
         "C": box(0, -100, 200, 0), "D": box(0, 100, 200, 200)}
    return Case("sliver_gap", _layer(g), {("sliver_gap", "warning")}, edges=e("AB", "AC", "BC", "AD", "BD"))


def overlap() -> Case:
    g = {"A": box(0, 0, 120, 100), "B": box(100, 0, 200, 100)}  # a 20 m wide overlap
    return Case("overlap", _layer(g), {("overlap", "error")}, usable=False, edges=e("AB"))


def sliver_overlap() -> Case:
    g = {"A": box(0, 0, 100.4, 100), "B": box(100, 0, 200, 100)}  # 0.4 m wide
    return Case("sliver_overlap", _layer(g), {("sliver_overlap", "warning")}, edges=e("AB"))


def swapped_axes() -> Case:
    gdf = _layer({"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100)})
    gdf.loc[0, "geometry"] = shapely.transform(gdf.geometry.iloc[0], lambda c: c[:, ::-1])
    return Case("swapped_axes", gdf, {("swapped_axes", "repaired")}, edges=e("AB"), repaired={"A"})


def empty() -> Case:
    g = {"A": box(0, 0, 100, 100), "B": None, "C": box(100, 0, 200, 100)}
    return Case("empty", _layer(g), {("empty", "error")}, usable=False, edges=None)


def no_crs_lonlat() -> Case:
    gdf = _layer({"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100)})
    gdf = gdf.set_crs(None, allow_override=True)
    return Case("no_crs_lonlat", gdf, {("no_crs", "warning")}, edges=e("AB"), formats=("gpkg", "shpzip"))


def no_crs_projected() -> Case:
    g = {"A": box(500_000, 3_100_000, 500_100, 3_100_100), "B": box(500_100, 3_100_000, 500_200, 3_100_100)}
    return Case("no_crs_projected", _layer(g, crs=None), {("no_crs", "error")}, usable=False, edges=None,
                formats=("gpkg", "shpzip"))


def declared_gk() -> Case:
    # the same projected layer with its CRS declared on reading: clean
    g = {"A": box(500_000, 3_100_000, 500_100, 3_100_100), "B": box(500_100, 3_100_000, 500_200, 3_100_100)}
    return Case("declared_gk", _layer(g, crs=None), set(), edges=e("AB"), formats=("gpkg", "shpzip"),
                declared_crs="EPSG:4548")


def gcj02_input() -> Case:
    from gridgeo.data.crs import wgs84_to_gcj02

    gdf = _layer({"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100)})
    gdf.geometry = shapely.transform(gdf.geometry.values, lambda c: __import__("numpy").column_stack(
        wgs84_to_gcj02(c[:, 0], c[:, 1])))
    return Case("gcj02_input", gdf, set(), edges=e("AB"), datum="gcj02")


def duplicate_ids() -> Case:
    gdf = _layer({"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100)})
    gdf.loc[1, "code"] = "A"
    return Case("duplicate_ids", gdf, {("duplicate_id", "error")}, usable=False, edges=None)


def out_of_area() -> Case:
    # CGCS2000 declared, but the coordinates are in Europe
    gdf = gpd.GeoDataFrame({"code": ["A", "B"], "parent": ["T1", "T1"]},
                           geometry=[box(10, 50, 10.001, 50.001), box(10.001, 50, 10.002, 50.001)], crs="EPSG:4490")
    return Case("out_of_area", gdf, {("out_of_area", "error")}, usable=False, edges=e("AB"))


def missing_ids() -> Case:
    # issue 11: a null and a blank id (TypeError in sorting the ids before)
    gdf = _layer({"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100), "C": box(200, 0, 300, 100)})
    gdf["code"] = gdf["code"].astype(object)
    gdf.loc[1, "code"] = None
    gdf.loc[2, "code"] = ""
    return Case("missing_ids", gdf, {("missing_id", "error")}, usable=False, edges=None)


def points() -> Case:
    # issue 11: village "boundaries" that are points (one block per point before)
    gdf = _layer({"A": shapely.Point(50, 50), "B": shapely.Point(150, 50)})
    return Case("points", gdf, {("wrong_type", "error")}, usable=False, edges=None)


def lines_among_polygons() -> Case:
    gdf = _layer({"A": box(0, 0, 100, 100), "B": shapely.LineString([(100, 0), (200, 100)])})
    return Case("lines_among_polygons", gdf, {("wrong_type", "error")}, usable=False, edges=None,
                formats=("geojson", "gpkg"))


def gk_read_as_lonlat() -> Case:
    # issue 11: Gauss-Krüger metres in a GeoJSON without a crs member (GDAL says EPSG:4326)
    g = {"A": box(500_000, 3_100_000, 500_100, 3_100_100), "B": box(500_100, 3_100_000, 500_200, 3_100_100)}
    return Case("gk_read_as_lonlat", _layer(g, crs=None), {("out_of_area", "error")}, usable=False, edges=None,
                formats=("geojson",))


def gk_declared_4490() -> Case:
    # issue 11: the same metres declared as CGCS2000 lon/lat (GEOSException "Shell empty" before)
    g = {"A": box(39_500_000, 3_100_000, 39_500_100, 3_100_100), "B": box(39_500_100, 3_100_000, 39_500_200, 3_100_100)}
    return Case("gk_declared_4490", _layer(g, crs=None), {("out_of_area", "error")}, usable=False, edges=None,
                formats=("geojson", "gpkg"), declared_crs="EPSG:4490")


CASES: list[Callable[[], Case]] = [
    clean, bow_tie, hole_enclave, hole_gap, multipart, sliver_gap, overlap, sliver_overlap,
    swapped_axes, empty, no_crs_lonlat, no_crs_projected, declared_gk, gcj02_input, duplicate_ids, out_of_area,
    missing_ids, points, lines_among_polygons, gk_read_as_lonlat, gk_declared_4490,
]
