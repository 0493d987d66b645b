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

This module reads files (formats, the parse cache, typed frames);
:mod:`gridgeo.data._osm_collect` holds what the tags mean (the rows of each layer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
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
from gridgeo.data._osm_collect import Collector
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
        ("bridge", "string"),
        ("tunnel", "string"),
        ("layer", "string"),
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
    collector = Collector(layers)
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


def _frame(layer: str, collector: Collector, path: Path) -> gpd.GeoDataFrame:
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
