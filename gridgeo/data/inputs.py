"""A county's input layers from an OpenStreetMap extract (``gridgeo build`` on real data).

A build needs the layers a synthetic county GeoPackage has (:mod:`gridgeo.synth`):
townships tiled exactly by villages, buildings, roads, water and points of
interest. OpenStreetMap has most of them, but in China it almost never has
village (村/社区) boundaries: it has township polygons (``admin_level=8``) at
best and, for villages and communities, only labelled ``place=*`` nodes.
:func:`county_from_osm` turns one extract into those layers and draws the
missing village boundaries along streets.

How village polygons are drawn
------------------------------
Village and community boundaries in towns follow streets, so each township is
cut into *faces* by the roads whose ``highway`` class is in ``village_roads``:
the township boundary and the road lines clipped to the township are noded
(one union) and polygonized. The faces tile the township exactly (they are
made of the same noded linework), dangling road ends do not cut anything.

Each face then goes to one place node: a face holding a place node goes to
it (a face holding several is split between them by their Voronoi cells), any
other face to the place node nearest its representative point, measured in
the metric CRS of :func:`gridgeo.data.crs.metric_crs`. A village is the union of
its faces, so villages tile their township exactly too. A region that comes
out in several parts is kept as a MultiPolygon and logged: it usually means a
place node is missing between two of them. A township without any place node
becomes one village of its own name.

Townships
---------
Complete ``boundary=administrative`` areas whose ``admin_level`` is in
``admin_levels`` (8 = 乡镇/街道 in China). When the extract has none, the
extent of the extract serves as the one township: the ``<bounds>`` box of the
file header (OSM XML from the API has it; PBF files often do not), else the
convex hull of all points and areas (all data when there are only lines)
buffered by :data:`HULL_BUFFER_M`.

Codes are hierarchical and numbered in reading order (west to east, north to
south, in bands about one item high, as :mod:`gridgeo.county.blocks` and
:mod:`gridgeo.synth` number theirs): township = ``county_code`` + 3 digits,
village = township code + 3 digits, i.e. 12 digits like the statistical
division codes of villages.

Salvaged relations
------------------
OSM API downloads include relations whose member ways lie partly outside the
box; libosmium then refuses to assemble them and :mod:`gridgeo.data.osm` counts them
as skipped. For POI areas (a named residential compound drawn as a
multipolygon, a school campus) losing the whole site is worse than losing a
missing piece, so relations with a POI category that :mod:`gridgeo.data.osm` could
not assemble are rebuilt from the member ways that *are* present, when those
close into rings; the rest stay skipped and are logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmium
import osmium.filter
import osmium.geom
import osmium.io
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from tqdm import tqdm

from gridgeo.data.crs import metric_crs
from gridgeo.data.osm import _as_int, _format_of, _name, _poi_category, read_osm_layers
from gridgeo.errors import FileFormatError, InputError, UsageError

__all__ = [
    "HULL_BUFFER_M",
    "INPUT_LAYERS",
    "SLIVER_M2",
    "VILLAGE_PLACES",
    "VILLAGE_ROADS",
    "county_from_osm",
    "header_bounds",
]

log = logging.getLogger(__name__)

#: The layers :func:`county_from_osm` returns, in this order.
INPUT_LAYERS: tuple[str, ...] = ("townships", "villages", "buildings", "roads", "water", "pois")

#: Road classes whose lines separate villages by default: the public street
#: network down to residential streets. Service roads, tracks, footways and
#: paths run *inside* compounds and villages, so they do not cut them.
VILLAGE_ROADS: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
)

#: ``place=*`` values that label a village or community (村/社区). Larger
#: places (city, town = 街道/镇 seats) and ``locality`` (often a building or a
#: field name) do not.
VILLAGE_PLACES: tuple[str, ...] = (
    "quarter",
    "neighbourhood",
    "suburb",
    "village",
    "hamlet",
    "isolated_dwelling",
)
_URBAN_PLACES = frozenset({"quarter", "neighbourhood", "suburb"})
_URBAN_SUFFIXES = ("社区", "居委会", "居民委员会")
_RURAL_SUFFIXES = ("村", "村委会", "村民委员会", "嘎查")

#: Buffer (metres) around the convex hull of all data when the extract has
#: neither admin boundaries nor a header bounds box, so that features on the
#: hull still fall inside the township.
HULL_BUFFER_M = 50.0

#: Street faces smaller than this (m²) are slivers between nearly coincident
#: lines (a road along the township border); they join a neighbouring face.
SLIVER_M2 = 50.0

_TOWNSHIP_COLUMNS = (("code", "string"), ("name", "string"), ("kind", "string"),
                     ("admin_level", "Int64"), ("osm_id", "string"))
_VILLAGE_COLUMNS = (("code", "string"), ("name", "string"), ("township", "string"),
                    ("kind", "string"), ("industry", "string"), ("population", "Int64"),
                    ("households", "Int64"), ("place", "string"), ("osm_id", "string"))


# --------------------------------------------------------------------------- public API


def county_from_osm(
    path: str | Path,
    *,
    county_code: str = "000000",
    county_name: str | None = None,
    admin_levels: Sequence[int] = (8,),
    village_roads: Sequence[str] = VILLAGE_ROADS,
    progress: bool = False,
) -> dict[str, gpd.GeoDataFrame]:
    """Build a county's input layers (townships, villages, ...) from one OSM extract.

    Parameters
    ----------
    path
        An OSM XML (``.osm``, ``.osm.bz2``, ``.osm.gz``) or PBF file.
    county_code
        Six-digit county code; township codes are this plus three digits.
    county_name
        Name of the single township used when the extract has no admin
        boundary; defaults to the file name without its OSM suffix.
    admin_levels
        ``admin_level`` values whose complete boundaries are townships.
    village_roads
        ``highway`` classes whose lines cut townships into village faces.
    progress
        Show a progress bar over townships (long for a whole county).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        :data:`INPUT_LAYERS`, all EPSG:4326 with valid geometries:

        - ``townships``: ``code``, ``name``, ``kind`` (subdistrict/town/township),
          ``admin_level``, ``osm_id``; the geometry is the union of its villages,
          i.e. the admin boundary with the road crossings as extra vertices, so
          that townships and villages keep tiling after reprojection;
        - ``villages``: ``code``, ``name``, ``township`` (code), ``kind``
          (urban/rural), ``industry`` (null), ``population`` (the place node's
          tag or null), ``households`` (sum of tagged building households or
          null), ``place``, ``osm_id`` (of the place node, null for a
          township-wide village);
        - ``buildings``: as :func:`gridgeo.data.osm.read_osm` gives them, whole (not
          clipped), with ``village`` = code of the village holding the
          building's representative point (null outside every village);
        - ``roads``, ``water``: as :func:`gridgeo.data.osm.read_osm` gives them;
        - ``pois``: as :func:`gridgeo.data.osm.read_osm` gives them plus salvaged
          relations (see the module docstring) and ``village``.

    Raises
    ------
    UsageError
        ``county_code`` is not six digits, or ``admin_levels`` is empty.
    FileFormatError
        The file is missing, not an OSM file, truncated or malformed.
    InputError
        More than 999 townships, or more than 999 villages in one township
        (codes have three digits per level).
    """
    if not (isinstance(county_code, str) and len(county_code) == 6 and county_code.isdigit()):
        raise UsageError(f"county_code must be six digits, not {county_code!r}", path=path)
    levels = sorted({int(level) for level in admin_levels})
    if not levels:
        raise UsageError("admin_levels must name at least one admin_level", path=path)
    roads_cut = frozenset(village_roads)
    p = Path(path)
    osm = read_osm_layers(p, ["admin", "places", "buildings", "pois", "roads", "water"])
    fmt = _format_of(p)
    assert fmt is not None  # read_osm_layers raised otherwise
    populations, salvaged = _supplement(p, fmt, set(osm["pois"]["osm_id"].astype(str)))

    buildings = osm["buildings"]
    roads = osm["roads"]
    water = osm["water"]
    pois = osm["pois"]
    if len(salvaged):
        pois = pd.concat([pois, salvaged], ignore_index=True)
        pois = pois.iloc[_osm_order(pois["osm_id"])].reset_index(drop=True)

    all_data = [osm["admin"], osm["places"], buildings, pois, roads, water]
    crs = metric_crs(_extent_series(all_data, p))
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    places = osm["places"]
    places = places[places["place"].isin(VILLAGE_PLACES)]
    unnamed = int(places["name"].isna().sum())
    if unnamed:
        log.info("%s: ignored %d village-level place nodes without a name", p, unnamed)
    places = places[places["name"].notna()].reset_index(drop=True)
    places["population"] = _col(
        [populations.get(i) for i in places["osm_id"].astype(str)], dtype="Int64"
    )

    townships = _townships(
        p, osm["admin"], levels, places, all_data, crs,
        county_code=county_code, county_name=county_name,
    )
    villages = _villages(p, townships, places, roads, roads_cut, to_metric, crs, progress)
    # The township takes the noded boundary of its villages (the same shape with
    # the road crossings as extra vertices): only then do townships and villages
    # still tile exactly after reprojection, where lines straight in degrees bend.
    if len(villages):
        outline = villages.geometry.groupby(villages["township"].to_numpy()).agg(
            lambda g: _clean_polygon(shapely.union_all(g.to_numpy()))
        )
        townships = townships.set_geometry(
            gpd.GeoSeries(
                [outline.get(c, g) for c, g in zip(townships["code"], townships.geometry, strict=True)],
                index=townships.index, crs="EPSG:4326",
            )
        )

    villages["households"] = _col([pd.NA] * len(villages), dtype="Int64")
    buildings = buildings.copy()
    buildings["village"] = _village_of(buildings.geometry, villages)
    tagged = buildings[buildings["households"].notna() & buildings["village"].notna()]
    if len(tagged):
        sums = tagged.groupby("village")["households"].sum()
        hh = villages["code"].astype(str).map(sums.to_dict())
        villages["households"] = _col(
            [None if pd.isna(v) else int(v) for v in hh], dtype="Int64"
        )
    pois = pois.copy()
    pois["village"] = _village_of(pois.geometry, villages)

    outside = int(buildings["village"].isna().sum())
    log.info(
        "%s: %d townships, %d villages (%d urban, %d rural), %d buildings (%d outside every "
        "village), %d roads, %d water, %d pois",
        p, len(townships), len(villages), int((villages["kind"] == "urban").sum()),
        int((villages["kind"] == "rural").sum()), len(buildings), outside, len(roads),
        len(water), len(pois),
    )
    return {
        "townships": townships,
        "villages": villages,
        "buildings": buildings,
        "roads": roads,
        "water": water,
        "pois": pois,
    }


# --------------------------------------------------------------------------- townships


def _townships(
    path: Path,
    admin: gpd.GeoDataFrame,
    levels: list[int],
    places: gpd.GeoDataFrame,
    all_data: list[gpd.GeoDataFrame],
    crs: pyproj.CRS,
    *,
    county_code: str,
    county_name: str | None,
) -> gpd.GeoDataFrame:
    """Townships: complete admin areas of the wanted levels, else the extract's extent."""
    chosen = admin[admin["admin_level"].isin(levels)]
    chosen = chosen[chosen.geometry.geom_type.isin(("Polygon", "MultiPolygon"))]
    if len(chosen):
        rows: list[dict[str, Any]] = [
            {"name": n if isinstance(n, str) else None, "admin_level": int(lv), "osm_id": str(i)}
            for n, lv, i in zip(chosen["name"], chosen["admin_level"], chosen["osm_id"], strict=True)
        ]
        geoms = list(chosen.geometry)
        log.info(
            "%s: %d townships from admin_level %s boundaries",
            path, len(rows), "/".join(map(str, levels)),
        )
    else:
        geom, source = _extent(path, all_data, crs)
        name = county_name or _stem(path)
        log.warning(
            "%s: no admin boundary (admin_level %s), using the extract's bounds (%s) as township %s",
            path, "/".join(map(str, levels)), source, name,
        )
        rows = [{"name": name, "admin_level": None, "osm_id": None}]
        geoms = [geom]
    if len(rows) > 999:
        raise InputError(f"{len(rows)} townships; codes allow at most 999 per county", path=path)

    geoms = [_clean_polygon(g) for g in geoms]
    series = gpd.GeoSeries(geoms, crs="EPSG:4326")
    for row, geom in zip(rows, geoms, strict=True):
        inside = places[places.geometry.within(geom)] if len(places) else places
        row["kind"] = _township_kind(row["name"], inside)
    order = _reading_order(series.to_crs(crs))
    codes = [""] * len(rows)
    for rank, i in enumerate(order):
        codes[i] = f"{county_code}{rank + 1:03d}"
    for row, code in zip(rows, codes, strict=True):
        row["code"] = code
    data: dict[str, Any] = {
        name: _col([rows[i][name] for i in order], dtype=dtype) for name, dtype in _TOWNSHIP_COLUMNS
    }
    return gpd.GeoDataFrame(
        data, geometry=gpd.GeoSeries([geoms[i] for i in order], crs="EPSG:4326"), crs="EPSG:4326"
    )


def _township_kind(name: str | None, places: gpd.GeoDataFrame) -> str:
    """街道 -> subdistrict, 镇 -> town, 乡 -> township; otherwise by its places.

    A nameless extent (or an odd name) is a subdistrict when most of its
    village-level places are urban communities, a rural township otherwise.
    """
    if name:
        if name.endswith("街道"):
            return "subdistrict"
        if name.endswith("镇"):
            return "town"
        if name.endswith("乡"):
            return "township"
    kinds = [_village_kind(n, pl) for n, pl in zip(places["name"], places["place"], strict=True)]
    urban = sum(k == "urban" for k in kinds)
    return "subdistrict" if kinds and urban * 2 > len(kinds) else "township"


def _extent(
    path: Path, all_data: list[gpd.GeoDataFrame], crs: pyproj.CRS
) -> tuple[shapely.Geometry, str]:
    """The extract's extent: the header's bounds box, else the buffered hull of all data."""
    box = header_bounds(path)
    if box is not None:
        return shapely.box(*box), "header bounds box"
    # Ways crossing the box come whole, and long roads and rivers reach far out:
    # the extent of points and areas is closer to what was asked for.
    series = _extent_series(all_data, path)
    not_lines = series[~series.geom_type.isin(("LineString", "MultiLineString"))]
    series = not_lines if len(not_lines) else series
    hull = shapely.convex_hull(shapely.union_all(series.to_crs(crs).values))
    buffered = gpd.GeoSeries([hull.buffer(HULL_BUFFER_M)], crs=crs).to_crs("EPSG:4326")
    return buffered.iloc[0], f"convex hull of all points and areas + {HULL_BUFFER_M:g} m"


def header_bounds(path: str | Path) -> tuple[float, float, float, float] | None:
    """The ``<bounds>`` box of an OSM file's header as (west, south, east, north), or None.

    OSM XML from the API and most planet clips carry one; many PBF writers do
    not. Only the header is read, not the data.

    Raises
    ------
    FileFormatError
        The file cannot be opened as OSM.
    """
    p = Path(path)
    fmt = _format_of(p)
    if fmt is None:
        raise FileFormatError("not an OSM file", path=p)
    try:
        reader = osmium.io.Reader(osmium.io.File(str(p), fmt), osmium.osm.osm_entity_bits.NOTHING)
    except (RuntimeError, ValueError, OSError) as exc:
        raise FileFormatError(f"cannot read the OSM header: {exc}", path=p) from exc
    try:
        box = reader.header().box()
    finally:
        reader.close()
    if not box.valid():
        return None
    bl, tr = box.bottom_left, box.top_right
    bounds = (bl.lon, bl.lat, tr.lon, tr.lat)
    if not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
        return None
    return bounds


# --------------------------------------------------------------------------- villages


def _villages(
    path: Path,
    townships: gpd.GeoDataFrame,
    places: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    roads_cut: frozenset[str],
    to_metric: pyproj.Transformer,
    crs: pyproj.CRS,
    progress: bool,
) -> gpd.GeoDataFrame:
    """Villages of every township: street faces given to place nodes, dissolved."""
    cutters = roads[roads["highway"].isin(roads_cut)].geometry.values
    cut_tree = shapely.STRtree(cutters)
    place_geoms = places.geometry.values
    place_tree = shapely.STRtree(place_geoms)
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
        frames.append(
            _township_villages(path, str(code), tname, tkind, tgeom, mine, lines, to_metric, crs)
        )
    if len(places) > len(taken):
        log.info(
            "%s: %d village-level place nodes lie outside every township and are not used",
            path, len(places) - len(taken),
        )
    if frames:
        out = pd.concat(frames, ignore_index=True)
        return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")
    data = {name: _col([], dtype=dtype) for name, dtype in _VILLAGE_COLUMNS}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def _township_villages(
    path: Path,
    code: str,
    tname: str | None,
    tkind: str,
    township: shapely.Geometry,
    places: gpd.GeoDataFrame,
    lines: NDArray[np.object_],
    to_metric: pyproj.Transformer,
    crs: pyproj.CRS,
) -> gpd.GeoDataFrame:
    """The villages of one township, in reading order, with codes."""
    names = [str(n) for n in places["name"]]
    kinds_place = [str(k) for k in places["place"]]
    if len(places) == 0:
        kind = "urban" if tkind == "subdistrict" else "rural"
        log.info("%s: township %s (%s) has no place node; it is one village", path, tname, code)
        rows: list[dict[str, Any]] = [{"name": tname, "kind": kind, "place": None, "osm_id": None, "population": None}]
        geoms = [township]
    else:
        pts = np.c_[shapely.get_x(places.geometry.values), shapely.get_y(places.geometry.values)]
        # Two place nodes on the same spot cannot both get land; keep the first.
        _, first = np.unique(pts, axis=0, return_index=True)
        if len(first) < len(pts):
            keep = np.sort(first)
            dropped = sorted(set(range(len(pts))) - set(keep.tolist()))
            log.warning(
                "%s: township %s: dropped %d place nodes on the same spot as another: %s",
                path, tname, len(dropped), ", ".join(names[i] for i in dropped),
            )
            places = places.iloc[keep]
            pts, names = pts[keep], [names[i] for i in keep]
            kinds_place = [kinds_place[i] for i in keep]
        faces = _merge_slivers(_faces(township, lines), crs)
        owner_pieces = _assign_faces(faces, pts, to_metric)
        geoms = []
        for i, pieces in enumerate(owner_pieces):
            geom = _clean_polygon(shapely.union_all(pieces))
            n_parts = int(shapely.get_num_geometries(geom))
            if n_parts > 1:
                log.warning(
                    "%s: village %s (township %s) comes out in %d parts; kept as a MultiPolygon",
                    path, names[i], tname, n_parts,
                )
            geoms.append(geom)
        rows = [
            {
                "name": names[i],
                "kind": _village_kind(names[i], kinds_place[i]),
                "place": kinds_place[i],
                "osm_id": str(places["osm_id"].iloc[i]),
                "population": places["population"].iloc[i],
            }
            for i in range(len(names))
        ]
        log.debug("%s: township %s: %d faces -> %d villages", path, tname, len(faces), len(rows))
    if len(rows) > 999:
        raise InputError(
            f"township {tname} ({code}) has {len(rows)} villages; codes allow at most 999",
            path=path,
        )
    order = _reading_order(gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs))
    data: dict[str, Any] = {
        "code": _col([f"{code}{rank + 1:03d}" for rank in range(len(order))], dtype="string"),
        "name": _col([rows[i]["name"] for i in order], dtype="string"),
        "township": _col([code] * len(order), dtype="string"),
        "kind": _col([rows[i]["kind"] for i in order], dtype="string"),
        "industry": _col([None] * len(order), dtype="string"),
        "population": _col(
            [None if pd.isna(rows[i]["population"]) else int(rows[i]["population"]) for i in order],
            dtype="Int64",
        ),
        "households": _col([None] * len(order), dtype="Int64"),
        "place": _col([rows[i]["place"] for i in order], dtype="string"),
        "osm_id": _col([rows[i]["osm_id"] for i in order], dtype="string"),
    }
    return gpd.GeoDataFrame(
        data, geometry=gpd.GeoSeries([geoms[i] for i in order], crs="EPSG:4326"), crs="EPSG:4326"
    )


def _faces(township: shapely.Geometry, lines: NDArray[np.object_]) -> NDArray[np.object_]:
    """The faces the road ``lines`` cut ``township`` into; they tile it exactly.

    Faces in holes of the township (enclaves) also come out of polygonize and
    are dropped: their interior is outside the township.
    """
    clipped = shapely.intersection(lines, township) if len(lines) else np.array([], dtype=object)
    parts = shapely.get_parts(np.asarray(clipped, dtype=object))
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]  # LineString, LinearRing
    noded = shapely.union_all(np.concatenate([[shapely.boundary(township)], parts]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return np.array([township], dtype=object)
    inside = shapely.contains(township, shapely.point_on_surface(faces))
    faces = faces[inside & (shapely.area(faces) > 0)]
    return faces if len(faces) else np.array([township], dtype=object)


def _merge_slivers(faces: NDArray[np.object_], crs: pyproj.CRS) -> NDArray[np.object_]:
    """Merge faces under :data:`SLIVER_M2` into the neighbour sharing the longest edge.

    Roads drawn along a township border, or two carriageways a few metres
    apart, leave slivers between them; given to their nearest place they would
    only make villages multi-part. A sliver whose neighbours are all slivers
    stays as it is. Merging unions faces along shared noded edges, so the
    faces still tile the township exactly.
    """
    if len(faces) < 2:
        return faces
    area = gpd.GeoSeries(faces, crs="EPSG:4326").to_crs(crs).area.to_numpy()
    small = area < SLIVER_M2
    if not small.any():
        return faces
    tree = shapely.STRtree(faces)
    target = np.arange(len(faces))
    for i in np.flatnonzero(small):
        best, best_len = -1, 0.0
        for j in np.sort(tree.query(faces[i], predicate="intersects")):
            if j == i or small[j]:
                continue
            shared = shapely.length(
                shapely.intersection(shapely.boundary(faces[i]), shapely.boundary(faces[j]))
            )
            if shared > best_len:
                best, best_len = int(j), float(shared)
        if best >= 0:
            target[i] = best
    groups: dict[int, list[int]] = {}
    for k, tgt in enumerate(target.tolist()):
        groups.setdefault(int(tgt), []).append(k)
    merged = [
        faces[members[0]] if len(members) == 1 else _clean_polygon(shapely.union_all(faces[members]))
        for _, members in sorted(groups.items())
    ]
    log.debug("merged %d sliver faces into their neighbours", len(faces) - len(merged))
    return np.array(merged, dtype=object)


def _assign_faces(
    faces: NDArray[np.object_], pts: NDArray[np.float64], to_metric: pyproj.Transformer
) -> list[list[shapely.Geometry]]:
    """Pieces of land per place: faces holding places, then the rest by nearest place.

    A face holding one place goes to it; a face holding several is split by
    their Voronoi cells so that each keeps land; every other face goes to the
    place nearest its representative point (metric distance, lowest place
    index on ties, so the result never depends on iteration order).
    """
    n = len(pts)
    pieces: list[list[shapely.Geometry]] = [[] for _ in range(n)]
    tree = shapely.STRtree(faces)
    points: NDArray[np.object_] = np.asarray(shapely.points(pts), dtype=object)
    place_idx, face_idx = tree.query(points, predicate="intersects")
    face_of = np.full(n, -1, dtype=np.int64)
    for pl, fa in zip(place_idx, face_idx, strict=True):
        if face_of[pl] < 0 or fa < face_of[pl]:
            face_of[pl] = fa
    claimed: dict[int, list[int]] = {}
    for pl in range(n):
        if face_of[pl] >= 0:
            claimed.setdefault(int(face_of[pl]), []).append(pl)
    for fa, owners in claimed.items():
        face = faces[fa]
        if len(owners) == 1:
            pieces[owners[0]].append(face)
            continue
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(pts[owners]), extend_to=face)
        )
        for cell in cells:
            held = [o for o in owners if shapely.intersects(cell, points[o])]
            if not held:
                continue
            piece = shapely.intersection(cell, face)
            if not piece.is_empty:
                pieces[min(held)].append(piece)
    rest = np.array([fa for fa in range(len(faces)) if fa not in claimed], dtype=np.int64)
    if len(rest):
        rep = shapely.point_on_surface(faces[rest])
        rx, ry = to_metric.transform(shapely.get_x(rep), shapely.get_y(rep))
        px, py = to_metric.transform(pts[:, 0], pts[:, 1])
        d2 = (np.asarray(rx)[:, None] - np.asarray(px)[None, :]) ** 2 + (
            np.asarray(ry)[:, None] - np.asarray(py)[None, :]
        ) ** 2
        nearest = np.argmin(d2, axis=1)  # first minimum on ties
        for fa, pl in zip(rest, nearest, strict=True):
            pieces[int(pl)].append(faces[fa])
    # A place outside every face (only if it sits in an enclave hole) takes the
    # face nearest it, so that no village is empty.
    for pl in range(n):
        if not pieces[pl]:
            d = shapely.distance(faces, points[pl])
            pieces[pl].append(faces[int(np.argmin(d))])
    return pieces


def _village_kind(name: object, place: object) -> str:
    """urban for 社区/居委会 or quarter/neighbourhood/suburb; rural for 村 or smaller places.

    The name wins over the tag: mappers often tag a 村 inside a town as
    ``place=neighbourhood``, while the name is what the county uses.
    """
    if isinstance(name, str):
        if name.endswith(_URBAN_SUFFIXES):
            return "urban"
        if name.endswith(_RURAL_SUFFIXES):
            return "rural"
    return "urban" if place in _URBAN_PLACES else "rural"


# --------------------------------------------------------------------------- helpers


def _village_of(geoms: gpd.GeoSeries, villages: gpd.GeoDataFrame) -> Any:
    """Code of the village holding each geometry's representative point (null outside)."""
    out: list[str | None] = [None] * len(geoms)
    if len(geoms) and len(villages):
        reps = shapely.point_on_surface(geoms.values)
        tree = shapely.STRtree(villages.geometry.values)
        g_idx, v_idx = tree.query(reps, predicate="intersects")
        best: dict[int, int] = {}
        for g, v in zip(g_idx, v_idx, strict=True):
            if g not in best or v < best[g]:
                best[int(g)] = int(v)
        codes = villages["code"].astype(str).tolist()
        for g, v in best.items():
            out[g] = codes[v]
    return _col(out, dtype="string")


def _reading_order(metric: gpd.GeoSeries) -> list[int]:
    """Indices in reading order: bands from the north, west to east within a band.

    The band height is the square root of the median area (about one item
    high), so a few metres of northing never swap two items of one row.
    """
    if len(metric) == 0:
        return []
    cx = shapely.get_x(shapely.centroid(metric.values))
    cy = shapely.get_y(shapely.centroid(metric.values))
    h = max(math.sqrt(float(np.median(shapely.area(metric.values)))), 1.0)
    band = np.floor(-cy / h)
    return [int(i) for i in np.lexsort((cx, band))]


def _clean_polygon(geom: shapely.Geometry) -> shapely.Geometry:
    """A valid Polygon or MultiPolygon (single parts unwrapped) from a polygonal geometry."""
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _extent_series(frames: list[gpd.GeoDataFrame], path: Path) -> gpd.GeoSeries:
    geoms = [g for f in frames for g in f.geometry.values if g is not None and not g.is_empty]
    if not geoms:
        raise InputError("the extract holds no usable features", path=path)
    return gpd.GeoSeries(geoms, crs="EPSG:4326")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".osm.pbf", ".osm.bz2", ".osm.gz", ".pbf", ".osm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _col(values: Any, dtype: str) -> Any:
    """``pd.array`` with a dtype given as a string (its type stubs only know literals)."""
    return pd.array(list(values), dtype=dtype)  # type: ignore[call-overload]


def _osm_order(ids: pd.Series) -> list[int]:
    """Row order of :mod:`gridgeo.data.osm`: nodes, ways, relations, each by id."""
    rank = {"n": 0, "w": 1, "r": 2}
    keys = [(rank[s[0]], int(s[1:])) for s in ids.astype(str)]
    return sorted(range(len(keys)), key=keys.__getitem__)


# --------------------------------------------------------------------------- extra pass


def _supplement(
    path: Path, fmt: str, have_pois: set[str]
) -> tuple[dict[str, int], gpd.GeoDataFrame]:
    """What :mod:`gridgeo.data.osm` does not give: place populations and salvaged POI relations.

    One pass over nodes and relations finds ``population`` tags on place
    nodes and the POI multipolygons that were not assembled; a second pass,
    only when there are such relations, fetches their member ways that are
    present, and rings that close are kept.
    """
    populations: dict[str, int] = {}
    wanted: dict[int, tuple[dict[str, str], list[tuple[int, str]]]] = {}
    entities = osmium.osm.NODE | osmium.osm.RELATION
    try:
        processor = osmium.FileProcessor(osmium.io.File(str(path), fmt), entities).with_filter(
            osmium.filter.KeyFilter("population", "type")
        )
        for raw in processor:
            obj: Any = raw
            if obj.is_node():
                if "place" in obj.tags:
                    value = _as_int(obj.tags.get("population"))
                    if value is not None:
                        populations[f"n{obj.id}"] = value
                continue
            tags = dict(obj.tags)
            if tags.get("type") != "multipolygon" or f"r{obj.id}" in have_pois:
                continue
            if _poi_category(tags, area=True) is None:
                continue
            members = [(m.ref, m.role) for m in obj.members if m.type == "w"]
            wanted[obj.id] = (tags, members)
    except (RuntimeError, ValueError, OSError) as exc:
        raise FileFormatError(f"cannot read as OSM: {exc}", path=path) from exc
    if not wanted:
        return populations, _empty_pois()

    way_ids = {ref for _, members in wanted.values() for ref, _ in members}
    lines: dict[int, Any] = {}
    factory = osmium.geom.WKBFactory()
    try:
        id_filter = osmium.filter.IdFilter(way_ids)
        id_filter.enable_for(osmium.osm.WAY)
        processor = (
            osmium.FileProcessor(osmium.io.File(str(path), fmt), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(id_filter)
        )
        for way in processor:
            try:
                lines[way.id] = shapely.from_wkb(factory.create_linestring(way))  # type: ignore[arg-type]
            except (osmium.InvalidLocationError, RuntimeError):
                continue
    except (RuntimeError, ValueError, OSError) as exc:
        raise FileFormatError(f"cannot read as OSM: {exc}", path=path) from exc

    rows, geoms = [], []
    for rel_id in sorted(wanted):
        tags, members = wanted[rel_id]
        present = [lines[ref] for ref, role in members if ref in lines and role != "inner"]
        inner = [lines[ref] for ref, role in members if ref in lines and role == "inner"]
        outer = shapely.polygonize(present) if present else shapely.GeometryCollection()
        polys = [g for g in shapely.get_parts(outer) if g.area > 0]
        if not polys:
            log.info(
                "%s: pois: relation r%d (%s) stays skipped: %d of %d member ways present, no ring",
                path, rel_id, _name(tags), len(present) + len(inner), len(members),
            )
            continue
        geom: Any = shapely.union_all(polys)
        holes = [g for g in shapely.get_parts(shapely.polygonize(inner)) if g.area > 0] if inner else []
        if holes:
            geom = shapely.difference(geom, shapely.union_all(holes))
        geom = _clean_polygon(geom)
        if geom.is_empty:
            continue
        category = _poi_category(tags, area=True)
        rows.append({
            "osm_id": f"r{rel_id}", "category": category, "name": _name(tags),
            "amenity": tags.get("amenity"), "healthcare": tags.get("healthcare"),
            "landuse": tags.get("landuse"), "man_made": tags.get("man_made"),
            "place": tags.get("place"),
        })
        geoms.append(geom)
        log.info(
            "%s: pois: salvaged relation r%d (%s, %s) from %d of %d member ways",
            path, rel_id, _name(tags), category, len(present) + len(inner), len(members),
        )
    frame = _empty_pois()
    if rows:
        data = {c: _col([r[c] for r in rows], dtype="string") for c in frame.columns
                if c != "geometry"}
        frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
                                 crs="EPSG:4326")
    return populations, frame


def _empty_pois() -> gpd.GeoDataFrame:
    cols = ("osm_id", "category", "name", "amenity", "healthcare", "landuse", "man_made", "place")
    data = {c: _col([], dtype="string") for c in cols}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
