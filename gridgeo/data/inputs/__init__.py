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

Modules
-------
One stage per private module, called in order by :func:`county_from_osm`:
``_extract`` reads the extract (:class:`~._extract.Extract`: layers, place
populations, metric CRS), with ``_supplement`` for populations and salvaged
relations; ``_townships`` draws and numbers the townships; ``_villages``
draws the villages of each township from the street faces of ``_faces``;
``_kinds`` names kinds (urban/rural, subdistrict/town/township); ``_tables``
holds the typed columns, clean polygons and the numbering they share. The
last stages (outlines, joins) are here. May import :mod:`gridgeo.errors`,
:mod:`gridgeo._geom` and the other modules of :mod:`gridgeo.data`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo._geom import containing
from gridgeo.errors import UsageError

from ._extract import Extract, read_extract
from ._faces import SLIVER_M2
from ._kinds import VILLAGE_PLACES
from ._tables import clean_polygon, col
from ._townships import HULL_BUFFER_M, header_bounds, townships
from ._villages import villages

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
    levels = _levels(path, county_code, admin_levels)
    extract = read_extract(Path(path))
    places = _village_places(extract)
    towns = townships(extract, places, levels=levels, county_code=county_code, county_name=county_name)
    drawn = villages(extract, towns, places, roads_cut=frozenset(village_roads), progress=progress)
    layers = _joined(extract, _outlined(towns, drawn), drawn)
    _log_summary(extract.path, layers)
    return layers


# --------------------------------------------------------------------------- stages


def _levels(path: str | Path, county_code: str, admin_levels: Sequence[int]) -> list[int]:
    """The admin levels, sorted; refuses a county code that is not six digits."""
    if not (isinstance(county_code, str) and len(county_code) == 6 and county_code.isdigit()):
        raise UsageError(f"county_code must be six digits, not {county_code!r}", path=path)
    levels = sorted({int(level) for level in admin_levels})
    if not levels:
        raise UsageError("admin_levels must name at least one admin_level", path=path)
    return levels


def _village_places(extract: Extract) -> gpd.GeoDataFrame:
    """The named village-level place nodes, with their ``population`` tag (or null)."""
    places = extract.layers["places"]
    places = places[places["place"].isin(VILLAGE_PLACES)]
    unnamed = int(places["name"].isna().sum())
    if unnamed:
        log.info("%s: ignored %d village-level place nodes without a name", extract.path, unnamed)
    places = places[places["name"].notna()].reset_index(drop=True)
    places["population"] = col(
        [extract.populations.get(i) for i in places["osm_id"].astype(str)], dtype="Int64"
    )
    return places


def _outlined(towns: gpd.GeoDataFrame, drawn: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Townships with the noded boundary of their villages as geometry.

    The same shape with the road crossings as extra vertices: only then do
    townships and villages still tile exactly after reprojection, where lines
    straight in degrees bend.
    """
    if not len(drawn):
        return towns
    outline = drawn.geometry.groupby(drawn["township"].to_numpy()).agg(
        lambda g: clean_polygon(shapely.union_all(g.to_numpy()))
    )
    return towns.set_geometry(
        gpd.GeoSeries(
            [outline.get(c, g) for c, g in zip(towns["code"], towns.geometry, strict=True)],
            index=towns.index, crs="EPSG:4326",
        )
    )


def _joined(
    extract: Extract, towns: gpd.GeoDataFrame, drawn: gpd.GeoDataFrame
) -> dict[str, gpd.GeoDataFrame]:
    """The six layers: buildings and POIs get their village, villages the households tagged on buildings."""
    drawn["households"] = col([pd.NA] * len(drawn), dtype="Int64")
    buildings = extract.layers["buildings"].copy()
    buildings["village"] = _village_of(buildings.geometry, drawn)
    tagged = buildings[buildings["households"].notna() & buildings["village"].notna()]
    if len(tagged):
        sums = tagged.groupby("village")["households"].sum()
        hh = drawn["code"].astype(str).map(sums.to_dict())
        drawn["households"] = col([None if pd.isna(v) else int(v) for v in hh], dtype="Int64")
    pois = extract.layers["pois"].copy()
    pois["village"] = _village_of(pois.geometry, drawn)
    return {
        "townships": towns,
        "villages": drawn,
        "buildings": buildings,
        "roads": extract.layers["roads"],
        "water": extract.layers["water"],
        "pois": pois,
    }


def _village_of(geoms: gpd.GeoSeries, drawn: gpd.GeoDataFrame) -> Any:
    """Code of the village holding each geometry's representative point (null outside)."""
    polygons = np.asarray(drawn.geometry.values, dtype=object)
    held = containing(polygons, shapely.point_on_surface(geoms.values), boundary=True)
    codes = drawn["code"].astype(str).tolist()
    return col([codes[v] if v >= 0 else None for v in held.tolist()], dtype="string")


def _log_summary(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    kinds = layers["villages"]["kind"]
    log.info(
        "%s: %d townships, %d villages (%d urban, %d rural), %d buildings (%d outside every "
        "village), %d roads, %d water, %d pois",
        path, len(layers["townships"]), len(kinds), int((kinds == "urban").sum()),
        int((kinds == "rural").sum()), len(layers["buildings"]),
        int(layers["buildings"]["village"].isna().sum()), len(layers["roads"]),
        len(layers["water"]), len(layers["pois"]),
    )
