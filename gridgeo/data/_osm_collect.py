"""From the stream of OSM objects to rows per layer: what the tags mean for gridgeo.

:class:`Collector` is fed every tagged node, way, relation and assembled area
pyosmium yields (:mod:`gridgeo.data.osm` drives it) and keeps one row and one
WKB geometry per layer; the functions read names, counts, POI categories and
water types from tags (the Chinese name first; counts only where they parse).
May import :mod:`gridgeo.errors` only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import osmium
import osmium.geom

#: waterway values that describe an area, not a line (old riverbank mapping etc.).
_AREA_WATERWAYS = frozenset({"riverbank", "dock", "boatyard"})

#: amenity / healthcare values -> POI category. The categories are the special
#: sites the grid rules carve out as exclusive grids (专属网格) or must reach.
_AMENITY_CATEGORY: dict[str, str] = {
    "school": "school",
    "university": "school",
    "college": "school",
    "kindergarten": "kindergarten",
    "hospital": "hospital",
    "clinic": "clinic",
    "doctors": "clinic",
    "townhall": "townhall",
    "police": "police",
}
_HEALTHCARE_CATEGORY: dict[str, str] = {
    "hospital": "hospital",
    "clinic": "clinic",
    "doctor": "clinic",
    "doctors": "clinic",
}
_MINE_MAN_MADE = frozenset({"mineshaft", "adit"})

def osm_name(tags: Mapping[str, str]) -> str | None:
    """Prefer the Chinese name: ``name`` is sometimes pinyin or English in China."""
    return tags.get("name:zh") or tags.get("name:zh-Hans") or tags.get("name") or None


def as_int(value: str | None) -> int | None:
    """Parse counts like ``6``, ``6.0`` or `` 6 ``; anything else (``3;4``, ``5-6``) is unknown."""
    if value is None:
        return None
    try:
        number = float(value.strip().replace(",", "."))
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return round(number)


def poi_category(tags: Mapping[str, str], *, area: bool) -> str | None:
    """Map tags to the POI category the grid rules know, or None.

    ``amenity`` wins over ``healthcare`` over the landuse-based categories, so a
    school drawn on residential land is a school. A named ``landuse=residential``
    is a gated compound (小区) in Chinese cities; unnamed ones are mostly blocks of
    ordinary housing. ``place=neighbourhood`` counts only as an area: as a node it
    is just a label (often a former village name) and stays in ``places``.
    """
    category = _AMENITY_CATEGORY.get(tags.get("amenity", ""))
    if category is None:
        category = _HEALTHCARE_CATEGORY.get(tags.get("healthcare", ""))
    if category is None and (
        tags.get("landuse") == "quarry" or tags.get("man_made") in _MINE_MAN_MADE
    ):
        category = "mine"
    if category is None and tags.get("landuse") == "residential" and osm_name(tags):
        category = "gated_compound"
    if category is None and area and tags.get("place") == "neighbourhood":
        category = "gated_compound"
    return category


def building_row(osm_id: str, name: str | None, tags: Mapping[str, str]) -> dict[str, Any]:
    """One buildings row; ``households`` only where OSM counts flats (rare in China)."""
    households = as_int(tags.get("building:flats"))
    if households is None:
        households = as_int(tags.get("addr:flats"))
    return {
        "osm_id": osm_id,
        "building": tags["building"],
        "levels": as_int(tags.get("building:levels")),
        "households": households,
        "village": None,
        "name": name,
    }


def water_type(tags: Mapping[str, str]) -> str | None:
    """The water type of an area, or None when the area is not water."""
    if "water" in tags and tags["water"] != "no":
        return tags["water"]
    if tags.get("landuse") == "reservoir":
        return "reservoir"
    if tags.get("waterway") in _AREA_WATERWAYS:
        return "river" if tags["waterway"] == "riverbank" else tags["waterway"]
    if tags.get("natural") == "water":
        return "water"
    return None


def poi_row(osm_id: str, category: str | None, name: str | None, tags: Mapping[str, str]) -> dict[str, Any]:
    """One pois row: the category and the raw tags it was read from."""
    return {
        "osm_id": osm_id,
        "category": category,
        "name": name,
        "amenity": tags.get("amenity"),
        "healthcare": tags.get("healthcare"),
        "landuse": tags.get("landuse"),
        "man_made": tags.get("man_made"),
        "place": tags.get("place"),
    }


def road_row(osm_id: str, name: str | None, tags: Mapping[str, str]) -> dict[str, Any]:
    """One roads row: the raw tags routing and the village cuts read."""
    return {
        "osm_id": osm_id,
        "highway": tags["highway"],
        "name": name,
        "footway": tags.get("footway"),
        "service": tags.get("service"),
        "oneway": tags.get("oneway"),
        "access": tags.get("access"),
        # levels: a bridge, a tunnel or another layer crosses the roads below without a junction (patrol noding)
        "bridge": tags.get("bridge"),
        "tunnel": tags.get("tunnel"),
        "layer": tags.get("layer"),
    }


class Collector:
    """Turns the stream of OSM objects into rows and WKB per layer.

    It also remembers which relations and closed ways *should* have become
    areas, so that the ones libosmium could not assemble (missing members,
    broken rings) are counted instead of silently lost.
    """

    def __init__(self, layers: frozenset[str]) -> None:
        self.layers = layers
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in layers}
        self.wkb: dict[str, list[str]] = {name: [] for name in layers}
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.area_candidates: dict[str, list[str]] = {}
        self.assembled: set[str] = set()
        self.factory = osmium.geom.WKBFactory()

    def _add(self, layer: str, wkb: str, row: dict[str, Any]) -> None:
        self.rows[layer].append(row)
        self.wkb[layer].append(wkb)

    def area_layers(self, tags: Mapping[str, str]) -> list[str]:
        """The wanted layers an area with these tags belongs to."""
        out = []
        if "admin" in self.layers and tags.get("boundary") == "administrative":
            out.append("admin")
        if "buildings" in self.layers and tags.get("building", "no") != "no":
            out.append("buildings")
        if "pois" in self.layers and poi_category(tags, area=True):
            out.append("pois")
        if "landuse" in self.layers and "landuse" in tags:
            out.append("landuse")
        if "water" in self.layers and water_type(tags) is not None:
            out.append("water")
        return out

    def node(self, obj: osmium.osm.Node) -> None:
        tags = dict(obj.tags)
        want_place = "places" in self.layers and "place" in tags
        want_building = "buildings" in self.layers and tags.get("building", "no") != "no"
        category = poi_category(tags, area=False) if "pois" in self.layers else None
        layers = [
            layer
            for layer, wanted in (
                ("places", want_place),
                ("buildings", want_building),
                ("pois", category),
            )
            if wanted
        ]
        if not layers:
            return
        osm_id = f"n{obj.id}"
        try:
            wkb = self.factory.create_point(obj)
        except (osmium.InvalidLocationError, RuntimeError):
            for layer in layers:
                self.skipped[(layer, "nodes without a valid location")] += 1
            return
        name = osm_name(tags)
        if want_place:
            self._add("places", wkb, {"osm_id": osm_id, "place": tags["place"], "name": name})
        if want_building:
            # A building mapped as a node has no footprint but may still be
            # where households live; the buildings schema allows points.
            self._add("buildings", wkb, building_row(osm_id, name, tags))
        if category:
            self._add("pois", wkb, poi_row(osm_id, category, name, tags))

    def way(self, obj: osmium.osm.Way) -> None:
        tags = dict(obj.tags)
        osm_id = f"w{obj.id}"
        closed = obj.is_closed()
        self._note_area_way(osm_id, tags, closed)
        line_layers = self._line_layers(tags, closed)
        if not line_layers:
            return
        try:
            wkb = self.factory.create_linestring(obj)
        except (osmium.InvalidLocationError, RuntimeError):
            for layer in line_layers:
                self.skipped[(layer, "ways with missing nodes or fewer than two points")] += 1
            return
        name = osm_name(tags)
        if "roads" in line_layers:
            self._add("roads", wkb, road_row(osm_id, name, tags))
        if "water" in line_layers:
            self._add("water", wkb, {"osm_id": osm_id, "waterway": tags.get("waterway"), "name": name})

    def _note_area_way(self, osm_id: str, tags: Mapping[str, str], closed: bool) -> None:
        """Remember a closed way that should become an area; count open ways tagged as areas."""
        if closed and tags.get("area") != "no":
            wanted_areas = self.area_layers(tags)
            if wanted_areas:
                self.area_candidates[osm_id] = wanted_areas
        elif not closed:
            # An open way cannot be an area. Open boundary ways are normal (pieces
            # of admin relations), and so are open natural=water ways (relation
            # members); open buildings or landuse are broken data worth counting.
            for layer in self.area_layers(tags):
                if layer in ("buildings", "landuse", "pois"):
                    self.skipped[(layer, "ways tagged as areas but not closed")] += 1

    def _line_layers(self, tags: Mapping[str, str], closed: bool) -> list[str]:
        """The wanted layers a way with these tags is a line of (roads, waterways)."""
        line_layers = []
        if (
            "roads" in self.layers
            and "highway" in tags
            and not (closed and tags.get("area") == "yes")
        ):
            line_layers.append("roads")
        waterway = tags.get("waterway")
        if "water" in self.layers and waterway and waterway not in _AREA_WATERWAYS:
            line_layers.append("water")
        return line_layers

    def relation(self, obj: osmium.osm.Relation) -> None:
        tags = dict(obj.tags)
        if tags.get("type") in ("multipolygon", "boundary"):
            wanted_areas = self.area_layers(tags)
            if wanted_areas:
                self.area_candidates[f"r{obj.id}"] = wanted_areas

    def area(self, obj: osmium.osm.Area) -> None:
        tags = dict(obj.tags)
        osm_id = ("w" if obj.from_way() else "r") + str(obj.orig_id())
        self.assembled.add(osm_id)
        layers = self.area_layers(tags)
        if not layers:
            return
        try:
            wkb = self.factory.create_multipolygon(obj)
        except (osmium.InvalidLocationError, RuntimeError):
            for layer in layers:
                self.skipped[(layer, "areas whose rings could not be built")] += 1
            return
        name = osm_name(tags)
        for layer in layers:
            if layer == "admin":
                code = tags.get("ref") or tags.get("ISO3166-2") or tags.get("gb") or osm_id
                row = {
                    "osm_id": osm_id,
                    "code": code,
                    "name": name,
                    "admin_level": as_int(tags.get("admin_level")),
                }
            elif layer == "buildings":
                row = building_row(osm_id, name, tags)
            elif layer == "pois":
                category = poi_category(tags, area=True)
                assert category is not None
                row = poi_row(osm_id, category, name, tags)
            elif layer == "landuse":
                row = {"osm_id": osm_id, "landuse": tags["landuse"], "name": name}
            else:  # water
                row = {"osm_id": osm_id, "waterway": water_type(tags), "name": name}
            self._add(layer, wkb, row)

    def finish_skips(self) -> None:
        """Count the would-be areas libosmium never produced."""
        for osm_id, layers in self.area_candidates.items():
            if osm_id in self.assembled:
                continue
            reason = (
                "relations not assembled (members missing from the extract or rings not closed)"
                if osm_id.startswith("r")
                else "closed ways not assembled (missing nodes or degenerate ring)"
            )
            for layer in layers:
                self.skipped[(layer, reason)] += 1
