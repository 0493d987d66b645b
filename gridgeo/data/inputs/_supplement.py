"""What :mod:`gridgeo.data.osm` does not give: place populations and salvaged POI relations.

OSM API downloads include relations whose member ways lie partly outside the
box; libosmium then refuses to assemble them. For POI areas losing the whole
site is worse than losing a missing piece, so such relations are rebuilt from
the member ways that *are* present, when those close into rings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import osmium
import osmium.filter
import osmium.geom
import osmium.io
import shapely

from gridgeo.data._osm_collect import as_int, osm_name, poi_category, poi_row
from gridgeo.data.osm import _COLUMNS
from gridgeo.errors import FileFormatError

from ._tables import clean_polygon, col, empty_frame, frame

log = logging.getLogger(__name__)

#: relation id -> (tags, [(member way id, role)]) of the POI relations not assembled
_Wanted = dict[int, tuple[dict[str, str], list[tuple[int, str]]]]


def supplement(path: Path, fmt: str, have_pois: set[str]) -> tuple[dict[str, int], gpd.GeoDataFrame]:
    """Place populations (by node id) and the salvaged POI relations (a ``pois``-like frame).

    One pass over nodes and relations finds ``population`` tags on place
    nodes and the POI multipolygons that were not assembled; a second pass,
    only when there are such relations, fetches their member ways that are
    present, and rings that close are kept.
    """
    populations, wanted = _scan(path, fmt, have_pois)
    if not wanted:
        return populations, _empty_pois()
    lines = _member_lines(path, fmt, wanted)
    return populations, _salvage(path, wanted, lines)


def _scan(path: Path, fmt: str, have_pois: set[str]) -> tuple[dict[str, int], _Wanted]:
    """The first pass: populations of place nodes, POI relations missing from ``have_pois``."""
    populations: dict[str, int] = {}
    wanted: _Wanted = {}
    entities = osmium.osm.NODE | osmium.osm.RELATION
    try:
        processor = osmium.FileProcessor(osmium.io.File(str(path), fmt), entities).with_filter(
            osmium.filter.KeyFilter("population", "type")
        )
        for raw in processor:
            obj: Any = raw
            if obj.is_node():
                if "place" in obj.tags:
                    value = as_int(obj.tags.get("population"))
                    if value is not None:
                        populations[f"n{obj.id}"] = value
                continue
            tags = dict(obj.tags)
            if tags.get("type") != "multipolygon" or f"r{obj.id}" in have_pois:
                continue
            if poi_category(tags, area=True) is None:
                continue
            wanted[obj.id] = (tags, [(m.ref, m.role) for m in obj.members if m.type == "w"])
    except (RuntimeError, ValueError, OSError) as exc:
        raise FileFormatError(f"cannot read as OSM: {exc}", path=path) from exc
    return populations, wanted


def _member_lines(path: Path, fmt: str, wanted: _Wanted) -> dict[int, Any]:
    """The second pass: the member ways of ``wanted`` present in the file, as lines by way id."""
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
    return lines


def _salvage(path: Path, wanted: _Wanted, lines: dict[int, Any]) -> gpd.GeoDataFrame:
    """The relations whose present member ways close into rings, as POI rows (by relation id)."""
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    for rel_id in sorted(wanted):
        tags, members = wanted[rel_id]
        found = sum(1 for ref, _ in members if ref in lines)
        geom = _rebuild(members, lines)
        if geom is None:
            log.info(
                "%s: pois: relation r%d (%s) stays skipped: %d of %d member ways present, no ring",
                path, rel_id, osm_name(tags), found, len(members),
            )
            continue
        if geom.is_empty:
            continue
        category = poi_category(tags, area=True)
        rows.append(poi_row(f"r{rel_id}", category, osm_name(tags), tags))
        geoms.append(geom)
        log.info(
            "%s: pois: salvaged relation r%d (%s, %s) from %d of %d member ways",
            path, rel_id, osm_name(tags), category, found, len(members),
        )
    if not rows:
        return _empty_pois()
    return frame({c: col([r[c] for r in rows], dtype=dtype) for c, dtype in _COLUMNS["pois"]}, geoms)


def _rebuild(members: list[tuple[int, str]], lines: dict[int, Any]) -> Any:
    """Outer rings of the present members minus their inner rings; None when no outer ring closes.

    The result may be empty (holes covering the whole area); the caller drops it silently.
    """
    present = [lines[ref] for ref, role in members if ref in lines and role != "inner"]
    inner = [lines[ref] for ref, role in members if ref in lines and role == "inner"]
    outer = shapely.polygonize(present) if present else shapely.GeometryCollection()
    polys = [g for g in shapely.get_parts(outer) if g.area > 0]
    if not polys:
        return None
    geom: Any = shapely.union_all(polys)
    holes = [g for g in shapely.get_parts(shapely.polygonize(inner)) if g.area > 0] if inner else []
    if holes:
        geom = shapely.difference(geom, shapely.union_all(holes))
    return clean_polygon(geom)


def _empty_pois() -> gpd.GeoDataFrame:
    """No salvaged relations: the columns of :mod:`gridgeo.data.osm`'s ``pois`` layer."""
    return empty_frame(_COLUMNS["pois"])
