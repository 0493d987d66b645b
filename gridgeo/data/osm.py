"""Read OpenStreetMap extracts (OSM XML and PBF) into gridgeo's input layers.

Counties rarely hand over building footprints, schools or road classes, but
OpenStreetMap often has them. This module turns one ``.osm``/``.osm.bz2``/
``.osm.gz``/``.osm.pbf`` file into GeoDataFrames shaped like the layer kinds of
:mod:`gridgeo.data.schema`, so later steps (exclusive grids, street-block units,
patrol networks) need not know where the data came from.

One reader, pyosmium, serves both formats. It assembles areas itself (closed
ways and multipolygon/boundary relations), which is the hard part of OSM:
admin boundaries and large residential compounds are relations whose ring
pieces are separate ways. Extracts cut from the planet (OSM API downloads,
bounding-box clips) routinely contain relations whose member ways are missing;
those cannot be assembled, so they are skipped and *counted* in the log rather
than failing the whole read or producing half polygons.

Layers (all EPSG:4326, one row per OSM object, ``osm_id`` like ``n123``,
``w456``, ``r789``; ``name`` prefers ``name:zh``)
------------------------------------------------------------------------------
``admin``      boundary=administrative areas: ``code``, ``name``, ``admin_level``.
               In China level 6 = county, 8 = township/subdistrict (街道),
               9/10 = village/community (村/社区).
``places``     place=* nodes: ``place``, ``name``.
``buildings``  building=* areas (and the rare building node, as a point):
               ``building``, ``levels`` (building:levels), ``households``
               (building:flats or addr:flats), ``village`` (always null here; a
               spatial join fills it later), ``name``.
``pois``       nodes and areas mapped to a ``category`` (school, kindergarten,
               hospital, clinic, mine, gated_compound, townhall, police), with the
               raw ``amenity``, ``healthcare``, ``landuse``, ``man_made``, ``place``.
``landuse``    landuse=* areas: ``landuse``, ``name``.
``roads``      highway=* ways as lines: ``highway``, ``name``, ``footway``,
               ``service``, ``oneway``, ``access`` (raw tags). Every highway class is
               kept (also ``construction``); callers choose the classes they need.
``water``      waterway=* ways as lines and water areas as polygons: ``waterway``
               (the waterway value, or the water type such as ``river``/``pond``/
               ``reservoir`` for areas; ``water`` when the area does not say), ``name``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmium
import osmium.filter
import osmium.geom
import osmium.io
import pandas as pd
import shapely

from gridgeo._geom import polygonal
from gridgeo.errors import FileFormatError, UsageError

log = logging.getLogger(__name__)

__all__ = ["OSM_LAYERS", "clear_osm_cache", "is_osm_path", "read_osm", "read_osm_layers"]

#: The layers :func:`read_osm` can return, in the order they are reported.
OSM_LAYERS: tuple[str, ...] = ("admin", "places", "buildings", "pois", "landuse", "roads", "water")

#: File name suffix -> libosmium format string. Longest suffixes first, so that
#: ``x.osm.pbf`` is not taken for plain ``.pbf`` handling by accident (both are PBF).
_FORMATS: tuple[tuple[str, str], ...] = (
    (".osm.pbf", "pbf"),
    (".osm.bz2", "osm.bz2"),
    (".osm.gz", "osm.gz"),
    (".pbf", "pbf"),
    (".osm", "osm"),
)

#: Output columns per layer (name, pandas dtype), geometry excluded. The
#: canonical columns of the matching :data:`gridgeo.data.schema.SCHEMAS` kind are all
#: present, so :func:`gridgeo.data.schema.normalize` is a no-op on these frames.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "admin": (
        ("osm_id", "string"),
        ("code", "string"),
        ("name", "string"),
        ("admin_level", "Int64"),
    ),
    "places": (("osm_id", "string"), ("place", "string"), ("name", "string")),
    "buildings": (
        ("osm_id", "string"),
        ("building", "string"),
        ("levels", "Int64"),
        ("households", "Int64"),
        ("village", "string"),
        ("name", "string"),
    ),
    "pois": (
        ("osm_id", "string"),
        ("category", "string"),
        ("name", "string"),
        ("amenity", "string"),
        ("healthcare", "string"),
        ("landuse", "string"),
        ("man_made", "string"),
        ("place", "string"),
    ),
    "landuse": (("osm_id", "string"), ("landuse", "string"), ("name", "string")),
    "roads": (
        ("osm_id", "string"),
        ("highway", "string"),
        ("name", "string"),
        ("footway", "string"),
        ("service", "string"),
        ("oneway", "string"),
        ("access", "string"),
    ),
    "water": (("osm_id", "string"), ("waterway", "string"), ("name", "string")),
}

#: Tag keys an object needs for a layer; used to let libosmium drop every other
#: object before it reaches Python (the bulk of a file is untagged nodes).
_LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "admin": ("boundary",),
    "places": ("place",),
    "buildings": ("building",),
    "pois": ("amenity", "healthcare", "landuse", "man_made", "place"),
    "landuse": ("landuse",),
    "roads": ("highway",),
    "water": ("waterway", "natural", "water", "landuse"),
}

#: Layers whose geometries are polygons (areas); ``pois`` and ``water`` mix.
_AREA_LAYERS = frozenset({"admin", "buildings", "pois", "landuse", "water"})

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

#: Files up to this size are parsed for all layers at once, whatever was asked:
#: the parse dominates the cost, and the CLI and tests read several layers of the
#: same small file one after another. Larger files parse only what is asked.
_EAGER_BYTES = 64 * 1024 * 1024

_CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, int, int], dict[str, gpd.GeoDataFrame]] = OrderedDict()
_cache_lock = threading.Lock()

_TYPE_ORDER = {"n": 0, "w": 1, "r": 2}


# --------------------------------------------------------------------------- public API


def is_osm_path(path: str | Path) -> bool:
    """Tell whether ``path`` names an OSM file, by its suffix alone.

    The CLI and :mod:`gridgeo.data.io` use this to route a path to :func:`read_osm`
    before any I/O, so it never opens the file.

    Parameters
    ----------
    path
        Any file name.

    Returns
    -------
    bool
        True for ``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf`` and ``.pbf``
        (case-insensitive).
    """
    return _format_of(path) is not None


def read_osm(path: str | Path, layer: str) -> gpd.GeoDataFrame:
    """Read one layer of an OSM file.

    Parameters
    ----------
    path
        An OSM XML (``.osm``, ``.osm.bz2``, ``.osm.gz``) or PBF (``.osm.pbf``,
        ``.pbf``) file.
    layer
        One of :data:`OSM_LAYERS`.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per OSM object, columns as described in the module
        docstring. An extract without such objects gives an empty frame with the
        same columns, because "no admin boundaries here" is an answer, not an error.

    Raises
    ------
    UsageError
        ``layer`` is not one of :data:`OSM_LAYERS`.
    FileFormatError
        The file is missing, has an unknown suffix, or is truncated or malformed.
    """
    return read_osm_layers(path, [layer])[layer]


def read_osm_layers(
    path: str | Path, layers: Sequence[str] | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Read several layers of an OSM file in a single parse.

    Parsing dominates the cost and areas need two passes over the file, so
    asking for all layers at once is much cheaper than one call per layer.
    Results are cached in-process per (resolved path, mtime, size); callers get
    copies and may modify them freely.

    Parameters
    ----------
    path
        An OSM XML or PBF file (see :func:`read_osm`).
    layers
        Layer names from :data:`OSM_LAYERS`; ``None`` means all of them.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        The requested layers, in the order asked.

    Raises
    ------
    UsageError
        A layer name is unknown.
    FileFormatError
        The file is missing, has an unknown suffix, or is truncated or malformed.
    """
    if isinstance(layers, str):
        raise UsageError(f"layers must be a list of layer names, not {layers!r}", path=path)
    wanted = list(OSM_LAYERS if layers is None else layers)
    unknown = [name for name in wanted if name not in OSM_LAYERS]
    if unknown:
        raise UsageError(
            f"unknown OSM layer {', '.join(map(repr, unknown))}; one of {', '.join(OSM_LAYERS)}",
            path=path,
        )
    p = Path(path)
    fmt = _format_of(p)
    if fmt is None:
        raise FileFormatError(
            "not an OSM file: expected a .osm, .osm.bz2, .osm.gz, .osm.pbf or .pbf suffix", path=p
        )
    try:
        stat = p.stat()
    except FileNotFoundError:
        raise FileFormatError("no such file", path=p) from None
    except OSError as exc:
        raise FileFormatError(f"cannot open: {exc.strerror or exc}", path=p) from exc
    if not p.is_file():
        raise FileFormatError("not a regular file", path=p)

    key = (str(p.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
            missing = [name for name in wanted if name not in entry]
        else:
            missing = list(wanted)
    if missing:
        to_parse = list(OSM_LAYERS) if stat.st_size <= _EAGER_BYTES else missing
        parsed = _parse(p, fmt, frozenset(to_parse))
        with _cache_lock:
            entry = _cache.setdefault(key, {})
            entry.update(parsed)
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    else:
        log.debug("%s: layers %s from cache", p, ", ".join(wanted))
    assert entry is not None
    return {name: entry[name].copy() for name in wanted}


def clear_osm_cache() -> None:
    """Forget every cached parse (tests and long-running services that rewrite files in place)."""
    with _cache_lock:
        _cache.clear()


# --------------------------------------------------------------------------- parsing


def _format_of(path: str | Path) -> str | None:
    name = Path(path).name.lower()
    for suffix, fmt in _FORMATS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    return None


def _name(tags: Mapping[str, str]) -> str | None:
    """Prefer the Chinese name: ``name`` is sometimes pinyin or English in China."""
    return tags.get("name:zh") or tags.get("name:zh-Hans") or tags.get("name") or None


def _as_int(value: str | None) -> int | None:
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


def _poi_category(tags: Mapping[str, str], *, area: bool) -> str | None:
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
    if category is None and tags.get("landuse") == "residential" and _name(tags):
        category = "gated_compound"
    if category is None and area and tags.get("place") == "neighbourhood":
        category = "gated_compound"
    return category


def _building_row(osm_id: str, name: str | None, tags: Mapping[str, str]) -> dict[str, Any]:
    """One buildings row; ``households`` only where OSM counts flats (rare in China)."""
    households = _as_int(tags.get("building:flats"))
    if households is None:
        households = _as_int(tags.get("addr:flats"))
    return {
        "osm_id": osm_id,
        "building": tags["building"],
        "levels": _as_int(tags.get("building:levels")),
        "households": households,
        "village": None,
        "name": name,
    }


def _water_type(tags: Mapping[str, str]) -> str | None:
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


def _road_row(osm_id: str, name: str | None, tags: Mapping[str, str]) -> dict[str, Any]:
    return {
        "osm_id": osm_id,
        "highway": tags["highway"],
        "name": name,
        "footway": tags.get("footway"),
        "service": tags.get("service"),
        "oneway": tags.get("oneway"),
        "access": tags.get("access"),
    }


class _Collector:
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
        if "pois" in self.layers and _poi_category(tags, area=True):
            out.append("pois")
        if "landuse" in self.layers and "landuse" in tags:
            out.append("landuse")
        if "water" in self.layers and _water_type(tags) is not None:
            out.append("water")
        return out

    def node(self, obj: osmium.osm.Node) -> None:
        tags = dict(obj.tags)
        want_place = "places" in self.layers and "place" in tags
        want_building = "buildings" in self.layers and tags.get("building", "no") != "no"
        category = _poi_category(tags, area=False) if "pois" in self.layers else None
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
        name = _name(tags)
        if want_place:
            self._add("places", wkb, {"osm_id": osm_id, "place": tags["place"], "name": name})
        if want_building:
            # A building mapped as a node has no footprint but may still be
            # where households live; the buildings schema allows points.
            self._add("buildings", wkb, _building_row(osm_id, name, tags))
        if category:
            self._add("pois", wkb, self._poi_row(osm_id, category, name, tags))

    @staticmethod
    def _poi_row(
        osm_id: str, category: str, name: str | None, tags: Mapping[str, str]
    ) -> dict[str, Any]:
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
        name = _name(tags)
        if "roads" in line_layers:
            self._add("roads", wkb, _road_row(osm_id, name, tags))
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
        name = _name(tags)
        for layer in layers:
            if layer == "admin":
                code = tags.get("ref") or tags.get("ISO3166-2") or tags.get("gb") or osm_id
                row = {
                    "osm_id": osm_id,
                    "code": code,
                    "name": name,
                    "admin_level": _as_int(tags.get("admin_level")),
                }
            elif layer == "buildings":
                row = _building_row(osm_id, name, tags)
            elif layer == "pois":
                category = _poi_category(tags, area=True)
                assert category is not None
                row = self._poi_row(osm_id, category, name, tags)
            elif layer == "landuse":
                row = {"osm_id": osm_id, "landuse": tags["landuse"], "name": name}
            else:  # water
                row = {"osm_id": osm_id, "waterway": _water_type(tags), "name": name}
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


def _objects(path: Path, fmt: str, layers: frozenset[str]) -> Iterator[Any]:
    """Yield the tagged objects the layers need, as pyosmium streams them."""
    keys = sorted({key for layer in layers for key in _LAYER_KEYS[layer]})
    key_filter = osmium.filter.KeyFilter(*keys)
    processor = osmium.FileProcessor(osmium.io.File(str(path), fmt)).with_locations()
    if layers & _AREA_LAYERS:
        processor = processor.with_areas(osmium.filter.KeyFilter(*keys))
    processor = processor.with_filter(key_filter)
    return iter(processor)


def _parse(path: Path, fmt: str, layers: frozenset[str]) -> dict[str, gpd.GeoDataFrame]:
    """Parse ``path`` once and build every layer in ``layers``.

    Only pulling the next object from pyosmium is guarded: osmium and expat
    report truncated or malformed input as a bare ``RuntimeError`` (``bzip2
    error``, ``XML parsing error``, ``PBF error``), which is turned into a
    :class:`FileFormatError` naming the file. Errors in our own handling are
    bugs and propagate unchanged.
    """
    started = time.perf_counter()
    collector = _Collector(layers)
    what = "PBF" if fmt == "pbf" else "OSM XML"
    try:
        objects = _objects(path, fmt, layers)
    except (RuntimeError, ValueError, OSError) as exc:
        raise FileFormatError(f"cannot open as {what}: {_one_line(exc)}", path=path) from exc
    n_objects = 0
    while True:
        try:
            obj = next(objects)
        except StopIteration:
            break
        except (RuntimeError, ValueError, OSError, osmium.InvalidLocationError) as exc:
            raise FileFormatError(
                f"cannot read as {what} (truncated or malformed?): {_one_line(exc)}", path=path
            ) from exc
        n_objects += 1
        kind = obj.type_str()
        if kind == "n":
            collector.node(obj)
        elif kind == "w":
            collector.way(obj)
        elif kind == "a":
            collector.area(obj)
        elif kind == "r":
            collector.relation(obj)
    collector.finish_skips()

    frames = {
        layer: _frame(layer, collector, path) for layer in sorted(layers, key=OSM_LAYERS.index)
    }
    elapsed = time.perf_counter() - started
    log.info(
        "%s: read %s in %.2f s (%d tagged objects)",
        path,
        ", ".join(f"{len(frames[layer])} {layer}" for layer in frames),
        elapsed,
        n_objects,
    )
    for (layer, reason), count in sorted(collector.skipped.items()):
        level = logging.WARNING if layer == "admin" else logging.INFO
        log.log(level, "%s: %s: skipped %d %s", path, layer, count, reason)
    return frames


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _frame(layer: str, collector: _Collector, path: Path) -> gpd.GeoDataFrame:
    """Build one layer: typed columns, valid non-empty geometries, stable order."""
    columns = _COLUMNS[layer]
    rows = collector.rows[layer]
    geoms = np.asarray(shapely.from_wkb(collector.wkb[layer]) if rows else [], dtype=object)

    if len(geoms):
        is_poly = np.isin(shapely.get_type_id(geoms), (3, 6))
        invalid = ~shapely.is_valid(geoms)
        n_invalid = int(invalid.sum())
        if n_invalid:
            fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
            fixed_poly = is_poly[invalid]
            # A polygon that repairs to nothing of positive area becomes None
            # (polygonal); it is dropped below with the empty geometries.
            fixed = np.array(
                [
                    polygonal(g) if was_poly else g
                    for g, was_poly in zip(fixed, fixed_poly, strict=True)
                ],
                dtype=object,
            )
            geoms[invalid] = fixed
            log.info(
                "%s: %s: repaired %d invalid geometries with make_valid", path, layer, n_invalid
            )
        # osmium writes every area as a MultiPolygon; most are one ring, and a
        # plain Polygon is what the rest of gridgeo (and GeoJSON readers) expect.
        single = (
            is_poly & (shapely.get_type_id(geoms) == 6) & (shapely.get_num_geometries(geoms) == 1)
        )
        if single.any():
            geoms[single] = shapely.get_geometry(geoms[single], 0)
        empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        n_empty = int(empty.sum())
        if n_empty:
            log.info("%s: %s: dropped %d empty geometries", path, layer, n_empty)
            keep = ~empty
            geoms = geoms[keep]
            rows = [row for row, k in zip(rows, keep, strict=True) if k]

    data: dict[str, Any] = {}
    for name, dtype in columns:
        data[name] = pd.array([row[name] for row in rows], dtype=dtype)  # type: ignore[call-overload]
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")
    if len(frame):
        ids = frame["osm_id"].astype(str)
        order = sorted(
            range(len(frame)), key=lambda i: (_TYPE_ORDER[ids.iat[i][0]], int(ids.iat[i][1:]))
        )
        frame = frame.iloc[order].reset_index(drop=True)
    return frame
