"""Townships: complete admin areas of the wanted levels, else the extract's extent as one township.

The extent is the ``<bounds>`` box of the file header (OSM XML from the API
has it; PBF files often do not), else the convex hull of all points and areas
(all data when there are only lines) buffered by :data:`HULL_BUFFER_M`.
Townships are numbered ``county_code`` + 3 digits in reading order.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import osmium
import osmium.io
import shapely

from gridgeo.data.osm import _format_of
from gridgeo.errors import FileFormatError, InputError

from ._extract import Extract, extent_series
from ._kinds import township_kind
from ._tables import TOWNSHIP_COLUMNS, clean_polygon, col, frame, numbering

log = logging.getLogger(__name__)

#: Buffer (metres) around the convex hull of all data when the extract has
#: neither admin boundaries nor a header bounds box, so that features on the
#: hull still fall inside the township.
HULL_BUFFER_M = 50.0

_Rows = tuple[list[dict[str, Any]], list[Any]]


def townships(
    extract: Extract,
    places: gpd.GeoDataFrame,
    *,
    levels: list[int],
    county_code: str,
    county_name: str | None,
) -> gpd.GeoDataFrame:
    """Townships in reading order with codes and kinds (``places``: the village-level places)."""
    rows, geoms = _admin_rows(extract, levels) or _extent_rows(extract, levels, county_name)
    if len(rows) > 999:
        raise InputError(f"{len(rows)} townships; codes allow at most 999 per county", path=extract.path)
    geoms = [clean_polygon(g) for g in geoms]
    for row, geom in zip(rows, geoms, strict=True):
        inside = places[places.geometry.within(geom)] if len(places) else places
        row["kind"] = township_kind(row["name"], inside)
    order = numbering(geoms, extract.crs)
    for rank, i in enumerate(order):
        rows[i]["code"] = f"{county_code}{rank + 1:03d}"
    data: dict[str, Any] = {
        name: col([rows[i][name] for i in order], dtype=dtype) for name, dtype in TOWNSHIP_COLUMNS
    }
    return frame(data, [geoms[i] for i in order])


def _admin_rows(extract: Extract, levels: list[int]) -> _Rows | None:
    """Rows and geometries of the complete admin areas of ``levels``; None when there are none."""
    admin = extract.layers["admin"]
    chosen = admin[admin["admin_level"].isin(levels)]
    chosen = chosen[chosen.geometry.geom_type.isin(("Polygon", "MultiPolygon"))]
    if not len(chosen):
        return None
    rows: list[dict[str, Any]] = [
        {"name": n if isinstance(n, str) else None, "admin_level": int(lv), "osm_id": str(i)}
        for n, lv, i in zip(chosen["name"], chosen["admin_level"], chosen["osm_id"], strict=True)
    ]
    log.info(
        "%s: %d townships from admin_level %s boundaries",
        extract.path, len(rows), "/".join(map(str, levels)),
    )
    return rows, list(chosen.geometry)


def _extent_rows(extract: Extract, levels: list[int], county_name: str | None) -> _Rows:
    """The one township of an extract without admin boundaries: its extent, named after the county."""
    geom, source = _extent(extract)
    name = county_name or _stem(extract.path)
    log.warning(
        "%s: no admin boundary (admin_level %s), using the extract's bounds (%s) as township %s",
        extract.path, "/".join(map(str, levels)), source, name,
    )
    return [{"name": name, "admin_level": None, "osm_id": None}], [geom]


def _extent(extract: Extract) -> tuple[shapely.Geometry, str]:
    """The extract's extent: the header's bounds box, else the buffered hull of all data."""
    box = header_bounds(extract.path)
    if box is not None:
        return shapely.box(*box), "header bounds box"
    # Ways crossing the box come whole, and long roads and rivers reach far out:
    # the extent of points and areas is closer to what was asked for.
    series = extent_series(extract.all_data, extract.path)
    not_lines = series[~series.geom_type.isin(("LineString", "MultiLineString"))]
    series = not_lines if len(not_lines) else series
    hull = shapely.convex_hull(shapely.union_all(series.to_crs(extract.crs).values))
    buffered = gpd.GeoSeries([hull.buffer(HULL_BUFFER_M)], crs=extract.crs).to_crs("EPSG:4326")
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


def _stem(path: Path) -> str:
    """The file name without its OSM suffix (``.osm.pbf``, ``.osm.bz2``, ...)."""
    name = path.name
    for suffix in (".osm.pbf", ".osm.bz2", ".osm.gz", ".pbf", ".osm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
