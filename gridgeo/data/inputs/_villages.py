"""Villages of every township: its street faces (:mod:`._faces`) given to place nodes, dissolved.

A village is the union of its faces, so villages tile their township exactly.
A region that comes out in several parts is kept as a MultiPolygon and
logged: it usually means a place node is missing between two of them. A
township without any place node becomes one village of its own name.
Villages are numbered township code + 3 digits in reading order.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from tqdm import tqdm

from gridgeo.errors import InputError

from ._extract import Extract
from ._faces import assign_faces, faces, merge_slivers
from ._kinds import village_kind
from ._tables import VILLAGE_COLUMNS, clean_polygon, col, empty_frame, frame, numbering

log = logging.getLogger(__name__)

_Rows = tuple[list[dict[str, Any]], list[Any]]


class Township(NamedTuple):
    """One row of the townships layer, as the village stage needs it."""

    code: str
    name: Any  # str, or missing for a nameless admin area
    kind: str
    geometry: shapely.Geometry


def villages(
    extract: Extract,
    townships: gpd.GeoDataFrame,
    places: gpd.GeoDataFrame,
    *,
    roads_cut: frozenset[str],
    progress: bool,
) -> gpd.GeoDataFrame:
    """Villages of every township, township by township (``places``: the village-level places)."""
    roads = extract.layers["roads"]
    cutters = roads[roads["highway"].isin(roads_cut)].geometry.values
    cut_tree = shapely.STRtree(cutters)
    place_tree = shapely.STRtree(places.geometry.values)
    frames = []
    taken: set[str] = set()
    iterator = zip(townships["code"], townships["name"], townships["kind"], townships.geometry,
                   strict=True)
    for code, tname, tkind, tgeom in tqdm(
        iterator, total=len(townships), disable=not progress, desc="villages", unit="township"
    ):
        hits = place_tree.query(tgeom, predicate="covers")
        # A place on a shared township border belongs to the first township only.
        mine = places.iloc[np.sort(hits)]
        mine = mine[~mine["osm_id"].isin(taken)]
        taken.update(mine["osm_id"].astype(str))
        lines = cutters[cut_tree.query(tgeom, predicate="intersects")]
        frames.append(township_villages(extract, Township(str(code), tname, tkind, tgeom), mine, lines))
    if len(places) > len(taken):
        log.info(
            "%s: %d village-level place nodes lie outside every township and are not used",
            extract.path, len(places) - len(taken),
        )
    if frames:
        out = pd.concat(frames, ignore_index=True)
        return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")
    return empty_frame(VILLAGE_COLUMNS)


def township_villages(
    extract: Extract, township: Township, places: gpd.GeoDataFrame, lines: NDArray[np.object_]
) -> gpd.GeoDataFrame:
    """The villages of one township, in reading order, with codes."""
    if len(places) == 0:
        rows, geoms = _whole_township(extract, township)
    else:
        rows, geoms = _drawn_villages(extract, township, places, lines)
    if len(rows) > 999:
        raise InputError(
            f"township {township.name} ({township.code}) has {len(rows)} villages; codes allow at most 999",
            path=extract.path,
        )
    return _village_frame(extract, township.code, rows, geoms)


def _whole_township(extract: Extract, township: Township) -> _Rows:
    """A township without place nodes: one village of its own name and shape."""
    kind = "urban" if township.kind == "subdistrict" else "rural"
    log.info("%s: township %s (%s) has no place node; it is one village",
             extract.path, township.name, township.code)
    row = {"name": township.name, "kind": kind, "place": None, "osm_id": None, "population": None}
    return [row], [township.geometry]


def _drawn_villages(
    extract: Extract, township: Township, places: gpd.GeoDataFrame, lines: NDArray[np.object_]
) -> _Rows:
    """One village per distinct place node: the union of the faces it is given."""
    places, pts = _distinct_places(extract, township, places)
    names = [str(n) for n in places["name"]]
    kinds_place = [str(k) for k in places["place"]]
    township_faces = merge_slivers(faces(township.geometry, lines), extract.crs)
    owner_pieces = assign_faces(township_faces, pts, extract.to_metric)
    geoms = []
    for i, pieces in enumerate(owner_pieces):
        geom = clean_polygon(shapely.union_all(pieces))
        n_parts = int(shapely.get_num_geometries(geom))
        if n_parts > 1:
            log.warning(
                "%s: village %s (township %s) comes out in %d parts; kept as a MultiPolygon",
                extract.path, names[i], township.name, n_parts,
            )
        geoms.append(geom)
    rows = [
        {
            "name": names[i],
            "kind": village_kind(names[i], kinds_place[i]),
            "place": kinds_place[i],
            "osm_id": str(places["osm_id"].iloc[i]),
            "population": places["population"].iloc[i],
        }
        for i in range(len(names))
    ]
    log.debug("%s: township %s: %d faces -> %d villages",
              extract.path, township.name, len(township_faces), len(rows))
    return rows, geoms


def _distinct_places(
    extract: Extract, township: Township, places: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, NDArray[np.float64]]:
    """The places and their (lon, lat); of two place nodes on the same spot only the first.

    Two places on one spot cannot both get land.
    """
    pts = np.c_[shapely.get_x(places.geometry.values), shapely.get_y(places.geometry.values)]
    _, first = np.unique(pts, axis=0, return_index=True)
    if len(first) == len(pts):
        return places, pts
    keep = np.sort(first)
    dropped = sorted(set(range(len(pts))) - set(keep.tolist()))
    names = [str(n) for n in places["name"]]
    log.warning(
        "%s: township %s: dropped %d place nodes on the same spot as another: %s",
        extract.path, township.name, len(dropped), ", ".join(names[i] for i in dropped),
    )
    return places.iloc[keep], pts[keep]


def _village_frame(
    extract: Extract, code: str, rows: list[dict[str, Any]], geoms: list[Any]
) -> gpd.GeoDataFrame:
    """The villages layer of one township: rows in reading order, numbered ``code`` + 3 digits."""
    order = numbering(geoms, extract.crs)
    data: dict[str, Any] = {
        "code": col([f"{code}{rank + 1:03d}" for rank in range(len(order))], dtype="string"),
        "name": col([rows[i]["name"] for i in order], dtype="string"),
        "township": col([code] * len(order), dtype="string"),
        "kind": col([rows[i]["kind"] for i in order], dtype="string"),
        "industry": col([None] * len(order), dtype="string"),
        "population": col(
            [None if pd.isna(rows[i]["population"]) else int(rows[i]["population"]) for i in order],
            dtype="Int64",
        ),
        "households": col([None] * len(order), dtype="Int64"),
        "place": col([rows[i]["place"] for i in order], dtype="string"),
        "osm_id": col([rows[i]["osm_id"] for i in order], dtype="string"),
    }
    return frame(data, [geoms[i] for i in order])
