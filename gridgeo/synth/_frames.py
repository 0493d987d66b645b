"""The county as GeoDataFrames: every layer in CGCS2000 lon/lat (EPSG:4490), rows in code order.

Why a stage of its own: everything before it works in the metric Gauss-Krüger zone on parallel
arrays; here the per-level records become the layers :data:`gridgeo.synth.LAYERS` names. The
three tiling layers transform each distinct vertex once (:func:`~gridgeo.synth._arrays.map_unique`),
so edges shared in the metric CRS stay shared after reprojection. The only draw is each village's
population per household, after the households are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from gridgeo._geom import containing
from gridgeo.synth._arrays import map_unique, polygons_from_rects
from gridgeo.synth._buildings import Buildings
from gridgeo.synth._constants import GEOGRAPHIC_EPSG, TOWNSHIP_KINDS, Array, GArray, IArray
from gridgeo.synth._lines import Lines
from gridgeo.synth._names import Codes, PlaceNames, chinese_number
from gridgeo.synth._pois import Points
from gridgeo.synth._tiling import Tiling

_CRS = f"EPSG:{GEOGRAPHIC_EPSG}"

ToGeo = Callable[[Array], Array]


@dataclass(frozen=True)
class Labels:
    """What the units are called and do: codes, names and each village's industry."""

    codes: Codes
    names: PlaceNames
    industry: NDArray[np.object_]


@dataclass(frozen=True)
class Features:
    """What stands on the land (metric CRS)."""

    buildings: Buildings
    roads: Lines
    water: Lines
    pois: Points


@dataclass(frozen=True)
class _Counts:
    """Households and population per unit (generation order)."""

    township_households: IArray
    township_population: IArray
    village_households: IArray
    village_population: IArray
    group_households: IArray


def _group_of_buildings(tiling: Tiling, bld: Buildings) -> IArray:
    """The group of every building: where it was placed; fallback buildings are located."""
    g_poly, g_village = tiling.groups.poly, tiling.groups.village
    nv = len(tiling.villages.poly)
    g_of_b = bld.group.copy()
    need = g_of_b < 0
    if need.any():
        pts: GArray = np.asarray(shapely.points(bld.centre[need]), dtype=object)
        gi = containing(g_poly, pts, boundary=False)
        found = np.where((gi >= 0) & (g_village[gi] == bld.village[need]), gi, -1)
        # a centre exactly on a group boundary: take any group of the right village
        miss = found < 0
        if miss.any():
            first_g = np.full(nv, -1, dtype=np.int64)
            first_g[g_village[::-1]] = np.arange(len(g_village))[::-1]
            found[miss] = first_g[bld.village[need][miss]]
        g_of_b[need] = found
    return g_of_b


def _counts(rng: np.random.Generator, tiling: Tiling, bld: Buildings) -> _Counts:
    """Households from the buildings; population 2.5-3.5 per household, drawn per village."""
    nv, t = len(tiling.villages.poly), len(tiling.townships.poly)
    v_town = tiling.villages.town
    hh_v = np.bincount(bld.village, bld.households, minlength=nv).astype(np.int64)
    pop_v = np.round(hh_v * rng.uniform(2.5, 3.5, nv)).astype(np.int64)
    hh_t = np.bincount(v_town, hh_v, minlength=t).astype(np.int64)
    pop_t = np.bincount(v_town, pop_v, minlength=t).astype(np.int64)
    g_of_b = _group_of_buildings(tiling, bld)
    hh_g = np.bincount(g_of_b, bld.households, minlength=len(tiling.groups.poly)).astype(np.int64)
    return _Counts(
        township_households=hh_t, township_population=pop_t, village_households=hh_v, village_population=pop_v,
        group_households=hh_g,
    )


def _tiles_to_geo(tiling: Tiling, to_geo: ToGeo) -> tuple[GArray, GArray, GArray]:
    """Township, village and group polygons in lon/lat, each distinct vertex transformed once."""
    t_poly, v_poly, g_poly = tiling.townships.poly, tiling.villages.poly, tiling.groups.poly
    nv, t = len(v_poly), len(t_poly)
    tiles = np.r_[t_poly, v_poly, g_poly]
    coords = shapely.get_coordinates(tiles)
    tiles = shapely.set_coordinates(tiles.copy(), map_unique(coords, to_geo))
    return tiles[:t], tiles[t : t + nv], tiles[t + nv :]


def _township_frame(tiling: Tiling, labels: Labels, counts: _Counts, geom: GArray) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": labels.codes.township,
            "name": labels.names.township,
            "kind": np.array(TOWNSHIP_KINDS, dtype=object)[tiling.townships.kind],
            "households": counts.township_households,
            "population": counts.township_population,
        },
        geometry=geom,
        crs=_CRS,
    )


def _village_frame(tiling: Tiling, labels: Labels, counts: _Counts, geom: GArray) -> gpd.GeoDataFrame:
    codes, v_urban = labels.codes, tiling.villages.urban
    return gpd.GeoDataFrame(
        {
            "code": codes.village,
            "name": labels.names.village,
            "township": codes.township[tiling.villages.town],
            "kind": np.where(v_urban, "urban", "rural").astype(object),
            "industry": labels.industry,
            "population": counts.village_population,
            "households": counts.village_households,
        },
        geometry=geom,
        crs=_CRS,
    )


def _group_frame(tiling: Tiling, labels: Labels, counts: _Counts, geom: GArray) -> gpd.GeoDataFrame:
    codes, g_village = labels.codes, tiling.groups.village
    label = np.where(tiling.villages.urban[g_village], "居民小组", "村民小组")
    return gpd.GeoDataFrame(
        {
            "code": codes.group,
            "name": np.array(
                [f"第{chinese_number(int(n))}{lb}" for n, lb in zip(codes.group_number, label, strict=True)],
                dtype=object,
            ),
            "village": codes.village[g_village],
            "households": counts.group_households,
        },
        geometry=geom,
        crs=_CRS,
    )


def _building_frame(bld: Buildings, v_code: NDArray[np.object_], to_geo: ToGeo) -> gpd.GeoDataFrame:
    """Buildings in village-code order; no shared vertices, so transformed straight, in chunks."""
    nv = len(v_code)
    n_b = len(bld.corners)
    bgeo = np.empty(n_b, dtype=object)
    for lo in range(0, n_b, 500_000):
        part = bld.corners[lo : lo + 500_000]
        bgeo[lo : lo + len(part)] = polygons_from_rects(to_geo(part.reshape(-1, 2)).reshape(-1, 5, 2))
    v_rank = np.empty(nv, dtype=np.int64)
    v_rank[np.argsort(v_code, kind="stable")] = np.arange(nv)
    border = np.lexsort((np.arange(len(bld.village)), v_rank[bld.village]))
    return gpd.GeoDataFrame(
        {
            "households": bld.households[border],
            "levels": bld.levels[border],
            "village": v_code[bld.village[border]],
        },
        geometry=bgeo[border],
        crs=_CRS,
    )


def _lines_frame(lines: Lines, cols: Sequence[str], to_geo: ToGeo) -> gpd.GeoDataFrame:
    c = shapely.get_coordinates(lines.geometry)
    g = shapely.set_coordinates(lines.geometry.copy(), to_geo(c)) if len(c) else lines.geometry
    return gpd.GeoDataFrame({k: lines.attrs[k] for k in cols}, geometry=g, crs=_CRS)


def _poi_frame(pois: Points, v_code: NDArray[np.object_], to_geo: ToGeo) -> gpd.GeoDataFrame:
    pxy, pattrs = pois.xy, pois.attrs
    pgeo = shapely.points(to_geo(pxy)) if len(pxy) else np.empty(0, dtype=object)
    return gpd.GeoDataFrame(
        {
            "category": pattrs["category"],
            "name": pattrs["name"],
            "village": v_code[pattrs["village"].astype(np.int64)],
        },
        geometry=pgeo,
        crs=_CRS,
    )


def _text_as_strings(frames: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """Object columns become pandas' ``string`` dtype (what GDAL reads back)."""
    for name, gdf in frames.items():
        for col in gdf.columns:
            if gdf[col].dtype == object and col != gdf.geometry.name:
                gdf[col] = gdf[col].astype("string")
        frames[name] = gdf
    return frames


def assemble(
    rng: np.random.Generator, tiling: Tiling, labels: Labels, features: Features, *, epsg: int
) -> dict[str, gpd.GeoDataFrame]:
    """GeoDataFrames in EPSG:4490, rows sorted by code; ``epsg`` is the metric CRS drawn in."""
    tr = Transformer.from_crs(epsg, GEOGRAPHIC_EPSG, always_xy=True)

    def to_geo(p: Array) -> Array:
        x, y = tr.transform(p[:, 0], p[:, 1])
        return np.c_[x, y]

    t_geo, v_geo, g_geo = _tiles_to_geo(tiling, to_geo)
    counts = _counts(rng, tiling, features.buildings)
    township = _township_frame(tiling, labels, counts, t_geo)
    village = _village_frame(tiling, labels, counts, v_geo)
    group = _group_frame(tiling, labels, counts, g_geo)
    v_code = labels.codes.village
    frames = {
        "townships": township.sort_values("code", kind="stable").reset_index(drop=True),
        "villages": village.sort_values("code", kind="stable").reset_index(drop=True),
        "villager_groups": group.sort_values("code", kind="stable").reset_index(drop=True),
        "buildings": _building_frame(features.buildings, v_code, to_geo),
        "roads": _lines_frame(features.roads, ("highway", "name"), to_geo),
        "water": _lines_frame(features.water, ("waterway", "name"), to_geo),
        "pois": _poi_frame(features.pois, v_code, to_geo),
    }
    return _text_as_strings(frames)
