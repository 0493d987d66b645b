"""Reading and writing layers: GeoJSON, GeoPackage, Shapefile (also zipped), OSM, CSV and XLSX tables.

Every reader failure becomes a :class:`~gridgeo.errors.FileFormatError` (or a
subclass) with a one-line reason naming the file, so the CLI never shows a
traceback for a bad file. Writers go through a temporary file in the target
directory and ``os.replace`` it into place, so a failed run never leaves a
half-written output behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from gridgeo.data import crs as _crs
from gridgeo.data.schema import normalize
from gridgeo.data.tables import ROW, TABLE_SUFFIXES, points_from_table, read_table, table_sheets
from gridgeo.errors import (
    CRSError,
    FileFormatError,
    InputError,
    LayerNotFoundError,
    OutputError,
    SchemaError,
    UsageError,
    raise_pending,
)

log = logging.getLogger(__name__)

#: which OSM layer (see :data:`gridgeo.data.osm.OSM_LAYERS`) feeds each layer kind
_OSM_LAYER_FOR_KIND = {
    "townships": "admin", "villages": "admin", "villager_groups": "admin", "places": "places",
    "buildings": "buildings", "pois": "pois", "roads": "roads", "water": "water",
}

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb")
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in sorted(OSM_SUFFIXES + VECTOR_SUFFIXES + TABLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suf):
            return suf
    return path.suffix.lower()


def is_osm(path: str | Path) -> bool:
    """True when ``path`` names an OSM XML or PBF file (by its extension)."""
    return _suffix(Path(path)) in OSM_SUFFIXES


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _check_file(path: Path) -> str:
    if not path.exists():
        raise FileFormatError("no such file", path=path)
    if path.is_dir():
        raise FileFormatError("is a directory, not a file", path=path)
    suf = _suffix(path)
    _check_suffix(path, suf)
    if path.stat().st_size == 0:
        raise FileFormatError("file is empty", path=path)
    if suf == ".shp":
        missing = [s for s in (".shx", ".dbf") if not _sidecar(path, s).exists()]
        if missing:
            raise FileFormatError(
                f"shapefile sidecar {' and '.join(missing)} missing (a shapefile needs .shp, .shx, .dbf)",
                path=path,
            )
    if suf == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n.lower() for n in zf.namelist()]
        except zipfile.BadZipFile as exc:
            raise FileFormatError(f"not a valid zip archive ({_one_line(exc)})", path=path) from exc
        shps = [n for n in names if n.endswith(".shp")]
        if not shps and not any(n.endswith((".geojson", ".json", ".gpkg")) for n in names):
            raise FileFormatError("zip archive holds no .shp, .geojson or .gpkg", path=path)
        for shp in shps:
            stem = shp[:-4]
            missing = [s for s in (".shx", ".dbf") if stem + s not in names]
            if missing:
                raise FileFormatError(
                    f"shapefile {shp} in the archive lacks {' and '.join(missing)}", path=path
                )
    return suf


def _check_suffix(path: Path, suf: str) -> None:
    """A format gridgeo reads, or an error saying which it is (and, for old workbooks, what to do)."""
    if suf in (".xls", ".et"):
        raise FileFormatError(f"unknown format {suf}: an old Excel (or WPS) workbook; save it as .xlsx or CSV",
                              path=path)
    if suf not in VECTOR_SUFFIXES + OSM_SUFFIXES + TABLE_SUFFIXES:
        raise FileFormatError(
            f"unknown format {suf or '(no extension)'}; expected one of "
            f"{', '.join(VECTOR_SUFFIXES + OSM_SUFFIXES + TABLE_SUFFIXES)}",
            path=path,
        )


def _ogr_path(path: Path) -> str | Path:
    """What GDAL opens for ``path``: a zip whose Shapefiles all sit in one folder is opened at that folder.

    GDAL looks for Shapefiles only at the top of a zip; archives made by zipping a folder (``villages/v.shp``)
    were "not recognized as being in a supported file format".
    """
    if _suffix(path) != ".zip":
        return path
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    if any("/" not in n and n.lower().endswith((".shp", ".geojson", ".json", ".gpkg")) for n in names):
        return path
    folders = {n.rsplit("/", 1)[0] for n in names if n.lower().endswith(".shp") and "/" in n}
    return f"/vsizip/{path}/{folders.pop()}" if len(folders) == 1 else path


def _sidecar(path: Path, suffix: str) -> Path:
    for cand in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if cand.exists():
            return cand
    return path.with_suffix(suffix)


#: tables GDAL lists as layers that hold no data: QGIS's layer styles (:mod:`gridgeo.data.gpkg_styles`). Hidden,
#: so that a single-layer GeoPackage still opens without ``--layer`` and the service does not serve a style table
HIDDEN_TABLES: frozenset[str] = frozenset({"layer_styles"})


def list_layers(path: str | Path) -> list[str]:
    """Names of the data layers in a vector file (one for GeoJSON/Shapefile; not :data:`HIDDEN_TABLES`)."""
    p = Path(path)
    suf = _check_file(p)
    if suf in OSM_SUFFIXES:
        from gridgeo.data import osm

        return list(osm.OSM_LAYERS)
    if _suffix(p) in TABLE_SUFFIXES:
        return table_sheets(p)
    try:
        names = [str(name) for name, _ in pyogrio.list_layers(_ogr_path(p))]
    except Exception as exc:  # pyogrio raises several unrelated types
        raise FileFormatError(f"cannot open: {_one_line(exc)}", path=p) from exc
    return [n for n in names if n not in HIDDEN_TABLES]


def read_layer(
    path: str | Path,
    *,
    layer: str | None = None,
    kind: str | None = None,
    crs: object | None = None,
    datum: str | None = None,
    columns: Mapping[str, str] | None = None,
    id_col: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one layer into a GeoDataFrame.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile (plain or zipped), FlatGeobuf, OSM XML/PBF, or a table (CSV or
        XLSX, :mod:`gridgeo.data.tables`): points from its coordinate columns (``lon``/``lat``,
        ``经度``/``纬度``, ``x``/``y``, or as ``columns`` maps them), rows without coordinates with no
        geometry (a register placed later by building or address), the file's row numbers in
        :data:`gridgeo.data.tables.ROW`.
    layer
        Layer to read from a multi-layer file. Without it a GeoPackage with
        several layers is read at the layer named like ``kind`` if there is one,
        else it is an error that lists the layers. For OSM files it is one of
        :data:`gridgeo.data.osm.OSM_LAYERS`.
    kind
        Layer kind from :data:`gridgeo.data.schema.SCHEMAS`; when given, canonical
        columns are added (see :func:`gridgeo.data.schema.normalize`).
    crs
        Declared CRS. Sets the CRS of a file that has none; overrides (with a
        warning) a file whose stored CRS is known to be wrong.
    datum
        ``gcj02`` or ``bd09`` to declare lon/lat traced off a Chinese web map;
        converted to WGS84 (EPSG:4326) on reading.
    columns
        Explicit canonical -> source column mapping for ``kind``.
    id_col
        A column that must exist (the feature id); checked here so the error
        names the file.
    encoding
        Text encoding of a Shapefile's attributes (e.g. ``GBK``). Without it a
        Shapefile lacking a ``.cpg`` whose text decodes as Chinese from GB18030
        or UTF-8 but was read as Latin-1 is re-read in that encoding, with a
        warning: Chinese Shapefiles often come without a ``.cpg``.

    Returns
    -------
    GeoDataFrame
        With ``attrs["source"]`` and ``attrs["layer"]`` set, in the file's CRS
        (or WGS84 after a datum conversion).
    """
    p = Path(path)
    suf = _check_file(p)
    if suf in OSM_SUFFIXES:
        from gridgeo.data import osm

        osm_layer = layer or _OSM_LAYER_FOR_KIND.get(kind or "", kind)
        if osm_layer is None:
            raise UsageError(f"{p}: an OSM file needs --layer, one of {', '.join(osm.OSM_LAYERS)}")
        gdf = osm.read_osm(p, osm_layer)
        chosen: str | None = osm_layer
    elif suf in TABLE_SUFFIXES:
        chosen = layer
        gdf = _table_points(p, layer, kind=kind, crs=crs, columns=columns, encoding=encoding)
        crs = None  # declared: the points are made in it
    else:
        chosen = _choose_layer(p, layer, kind)
        if crs is None and suf in (".geojson", ".json"):
            _check_geojson_crs(p)
        gdf = _read_detecting(p, chosen, suf=suf, encoding=encoding)
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
            raise FileFormatError(f"layer {chosen!r} has no geometry column", path=p)
    raise_pending()  # an interrupt the reader may have swallowed (gridgeo.errors.raise_pending)
    if crs is not None:
        declared = _crs.parse_crs(crs)
        if gdf.crs is not None and not gdf.crs.equals(declared):
            log.warning("%s: stored CRS %s overridden by declared %s", p, gdf.crs.to_string(), declared.to_string())
        gdf = gdf.set_crs(declared, allow_override=True)
    if datum is not None and _crs.check_datum(datum) != "wgs84":
        gdf = _crs.datum_to_wgs84(gdf, datum)
    if id_col is not None and len(gdf) == 0:  # a layer with ids to key on but none: say so, not "no column"
        raise InputError("the layer has no features", path=p)
    if id_col is not None and id_col not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise SchemaError(f"id column {id_col!r} not found; columns are {cols}", path=p)
    if kind is not None:
        gdf = normalize(gdf, kind, mapping=dict(columns or {}), path=str(p))
    gdf.attrs["source"] = str(p)
    gdf.attrs["layer"] = chosen
    return gdf


def _table_points(p: Path, sheet: str | None, *, kind: str | None, crs: object | None,
                  columns: Mapping[str, str] | None, encoding: str | None) -> gpd.GeoDataFrame:
    """A CSV or XLSX table as points from its coordinate columns (households may have none: placed later)."""
    gdf = points_from_table(read_table(p, sheet=sheet, encoding=encoding), where=str(p), crs=crs, mapping=columns)
    if kind not in ("households", "people") and (len(gdf) == 0 or gdf.geometry.isna().all()):
        cols = [c for c in gdf.columns if c not in (gdf.geometry.name, ROW)]
        raise FileFormatError(f"a table with no coordinate columns (lon/lat, 经度/纬度, x/y) cannot give "
                              f"{kind or 'a layer'}; columns are {cols}", path=p)
    return gdf


#: the (old, pre-RFC 7946) named ``crs`` member of a GeoJSON file, as GDAL and QGIS write it before the features
_GEOJSON_CRS = re.compile(rb'"crs"\s*:\s*\{\s*"type"\s*:\s*"name"\s*,\s*"properties"\s*:\s*\{\s*"name"\s*:\s*"([^"]+)"')


def _check_geojson_crs(path: Path) -> None:
    """Refuse a GeoJSON ``crs`` member naming a CRS nobody knows.

    GDAL reads an unknown code (``EPSG:999999``) as EPSG:4326 without a word, which would measure and
    partition the layer in the wrong place; the member sits at the top of the file, so the head suffices.
    """
    with path.open("rb") as fh:
        head = fh.read(65536)
    m = _GEOJSON_CRS.search(head)
    if m is None:
        return
    name = m.group(1).decode("utf-8", "replace")
    try:
        pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError:
        code = re.sub(r"^urn:ogc:def:crs:", "", name).replace("::", ":")
        raise CRSError(f"the crs member names {code}, which is not a known CRS; declare the real one with --crs",
                       path=path) from None


def _read_detecting(path: Path, layer: str | None, *, suf: str, encoding: str | None) -> gpd.GeoDataFrame:
    """Read a vector layer; a Shapefile's text read as Latin-1 that is really Chinese is re-read (warned)."""
    with _gdal_errors(path):
        gdf = _read_vector(path, layer, suf=suf, encoding=encoding)
        if encoding is None and suf in (".shp", ".zip"):
            guessed = _guess_encoding(gdf)
            if guessed is not None:
                log.warning("%s: text looks like %s read as Latin-1 (no .cpg file?); re-read as %s "
                            "(say --encoding to choose)", path, guessed, guessed)
                gdf = pyogrio.read_dataframe(_ogr_path(path), layer=layer, encoding=guessed)
    return gdf


def _read_vector(path: Path, layer: str | None, *, suf: str, encoding: str | None) -> gpd.GeoDataFrame:
    """pyogrio's read, except that a GeoJSON in GBK/GB18030 (not UTF-8, as RFC 7946 requires) is decoded.

    Chinese GIS desktops still save GeoJSON in the system code page; GDAL then fails on the first
    Chinese byte ("Illegal escape sequence"). Such a file is decoded as GB18030 and read, with a warning.
    """
    try:
        return pyogrio.read_dataframe(_ogr_path(path), layer=layer, encoding=encoding)
    except Exception:
        if suf not in (".geojson", ".json") or encoding is not None:
            raise
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise  # UTF-8 after all: the failure is something else
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise FileFormatError("is not UTF-8 (nor GBK/GB18030); GeoJSON must be UTF-8 (RFC 7946): re-save it "
                                  "as UTF-8", path=path) from None
        log.warning("%s is not UTF-8 (it looks like GBK/GB18030); read as GB18030. GeoJSON must be UTF-8 "
                    "(RFC 7946): re-save it as UTF-8", path)
        return pyogrio.read_dataframe(text.encode("utf-8"))  # one layer, named after no file


_GB_PAIRS = re.compile(r"(?:[\x00-\x7f]|[\xa1-\xfe][\xa1-\xfe])*")


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _guess_encoding(gdf: gpd.GeoDataFrame, sample: int = 200) -> str | None:
    """The encoding Latin-1-looking text really is in (UTF-8 or GB18030), or None.

    Column names count as text too: a layer whose only Chinese is in its field names (``户数``, ``名称``
    over ASCII values) would otherwise keep mojibake columns that no schema alias matches.
    """
    texts: list[str] = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    for col in gdf.columns:
        if col == gdf.geometry.name or (gdf[col].dtype.kind not in "OSU" and str(gdf[col].dtype) != "string"):
            continue
        texts.extend(str(v) for v in gdf[col].dropna().head(sample) if isinstance(v, str))
    suspicious = [t for t in texts if any("\x80" <= ch <= "\xff" for ch in t) and all(ord(ch) < 256 for ch in t)]
    if not suspicious:
        return None
    for enc in ("utf-8", "gb18030"):
        # GB2312 Chinese is pairs of bytes in A1-FE; a lone accented Latin-1 letter
        # (Zürich) followed by ASCII is not, even though GB18030 would decode it
        if enc == "gb18030" and not all(_GB_PAIRS.fullmatch(t) for t in suspicious):
            continue
        try:
            decoded = [t.encode("latin-1").decode(enc) for t in suspicious]
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if sum(_has_cjk(d) for d in decoded) >= max(1, len(decoded) // 2):
            return "UTF-8" if enc == "utf-8" else "GB18030"
    return None


def _choose_layer(path: Path, layer: str | None, kind: str | None) -> str | None:
    names = list_layers(path)
    if layer is not None:
        if layer not in names:
            raise LayerNotFoundError(f"no layer {layer!r}; layers are {', '.join(names)}", path=path)
        return layer
    if len(names) <= 1:
        return names[0] if names else None
    if kind is not None and kind in names:
        return kind
    raise UsageError(f"{path}: has {len(names)} layers ({', '.join(names)}); choose one with --layer")


@contextmanager
def _gdal_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (FileFormatError, CRSError):
        raise
    except Exception as exc:
        raise FileFormatError(f"cannot read: {_one_line(exc)}", path=path) from exc


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
#: what marks a temporary file of :func:`atomic_path`: ``.NAME.gridgeo-tmp-PID-XXXXXXXX.SUFFIX``
TMP_MARK = ".gridgeo-tmp-"
_TMP_SIDECARS = ("", "-journal", "-wal", "-shm")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success.

    On any exception (``KeyboardInterrupt`` and the CLI's SIGTERM included)
    the temporary file is removed and ``path`` is untouched. A process killed
    outright (SIGKILL, power loss) cannot remove its own: the temporary name
    carries the writer's PID (``.county.gpkg.gridgeo-tmp-1234-ab12cd34.gpkg``),
    and the next write to the same target removes such files whose PID is no
    longer running (:func:`remove_stale_temps`), so a killed run leaves at
    most one stale temporary file until the next run.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{TMP_MARK}{os.getpid()}-", suffix=target.suffix,
                                   dir=target.parent)
    except PermissionError as exc:  # name the output and the directory, never the hidden temp file
        raise OutputError(f"cannot write {target}: permission denied (directory {_unwritable(target.parent)} "
                          "is not writable)") from exc
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or _one_line(exc)}") from exc
    os.close(fd)
    os.unlink(tmp)  # GDAL wants to create the file itself
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        raise_pending()  # never move an interrupted run's output into place
        os.replace(tmp_path, target)
    finally:
        _remove_temp(tmp_path)


def _remove_temp(tmp: Path) -> None:
    """Remove a temporary file and the SQLite sidecars GDAL may have left beside it."""
    for side in _TMP_SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            Path(str(tmp) + side).unlink()


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` for ``target`` whose writer is no longer running.

    Why: a writer killed by SIGKILL cannot clean up after itself. A file whose
    PID is alive (another run writing the same target now, or, rarely, an
    unrelated process that reused the PID) is left alone; the PID is checked
    on this machine only, so on a directory shared between machines a
    temporary file of a run on another machine may be taken as stale.

    Returns
    -------
    list of Path
        The files removed (each logged).
    """
    t = Path(target)
    prefix = f".{t.name}{TMP_MARK}"
    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(t.parent) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        m = re.match(r"(\d+)-", name[len(prefix):])
        if m is None or _pid_alive(int(m.group(1))):
            continue
        base = next((name[:-len(side)] for side in _TMP_SIDECARS[1:] if name.endswith(side)), name)
        stale = t.parent / base
        if stale in removed:
            continue
        try:
            _remove_temp(stale)
        except OSError as exc:  # e.g. a directory we may not write: the write itself will say so
            log.warning("cannot remove %s, a temporary file of an earlier run: %s", stale, _one_line(exc))
            continue
        log.warning("removed %s: temporary file of an earlier run (PID %s) that did not finish", stale,
                    m.group(1))
        removed.append(stale)
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (unsure counts as running: the file is kept)."""
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def _unwritable(directory: Path) -> Path:
    """The directory that refused: ``directory`` itself, or its nearest existing ancestor when it is missing."""
    here = directory
    while not here.exists() and here.parent != here:
        here = here.parent
    return here


def rfc7946(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return ``gdf`` in EPSG:4326 with counter-clockwise exterior rings (RFC 7946)."""
    if gdf.crs is None:
        raise CRSError("cannot write GeoJSON: layer has no CRS")
    out = gdf.to_crs(_crs.WGS84) if not gdf.crs.equals(_crs.WGS84) else gdf.copy()
    out.geometry = gpd.GeoSeries(
        shapely.orient_polygons(out.geometry.values, exterior_cw=False), index=out.index, crs=_crs.WGS84
    )
    return out


#: the GeoPackage version written: GDAL 3.6 and QGIS 3.22 (Debian 12, Ubuntu LTS) warn on every open of a 1.4 file
#: (GDAL 3.12's default) that it "may only be partially supported"; gridgeo uses nothing 1.4 added
GPKG_VERSION = "1.3"


def write_layers(layers: Mapping[str, gpd.GeoDataFrame], path: str | Path, *,
                 finish: Callable[[Path], object] | None = None) -> None:
    """Write layers to one file atomically.

    A ``.gpkg`` takes every layer, as GeoPackage :data:`GPKG_VERSION`, with the
    QGIS styles of the levels and the Chinese field aliases
    (:func:`gridgeo.data.gpkg_styles.add_styles`, written into the temporary
    file before it is moved into place); a ``.geojson`` exactly one, written as
    RFC 7946 (EPSG:4326, counter-clockwise exteriors, no ``crs`` member).
    ``finish``: called with the temporary file once every layer is in it, before it is moved into place
    (the build carries the old file's store into it); what it raises leaves ``path`` untouched.
    """
    target = Path(path)
    suf = target.suffix.lower()
    if suf not in {".gpkg", ".geojson", ".json"}:
        raise UsageError(f"{target}: output must be .gpkg or .geojson")
    if suf != ".gpkg" and len(layers) != 1:
        raise UsageError(f"{target}: GeoJSON holds one layer; got {len(layers)}")
    with atomic_path(target) as tmp:
        for name, gdf in layers.items():
            if suf == ".gpkg":
                first = not tmp.exists()  # the version is the dataset's, set when GDAL creates the file
                pyogrio.write_dataframe(_plain(gdf), tmp, layer=name, driver="GPKG", append=not first,
                                        dataset_options={"VERSION": GPKG_VERSION} if first else None)
            else:
                pyogrio.write_dataframe(
                    _plain(rfc7946(gdf)), tmp, driver="GeoJSON", layer_options={"RFC7946": "YES"}
                )
            raise_pending()  # stop at the layer, not after every layer (the writer may swallow it too)
        if suf == ".gpkg" and tmp.exists():
            from gridgeo.data.gpkg_styles import add_styles

            add_styles(tmp)
            raise_pending()
        if finish is not None and tmp.exists():
            finish(tmp)
            raise_pending()


def write_layer(gdf: gpd.GeoDataFrame, path: str | Path, *, layer: str = "layer") -> None:
    """Write one layer atomically (see :func:`write_layers`)."""
    write_layers({layer: gdf}, path)


def _plain(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop what OGR cannot store (list columns become JSON text); a plain DataFrame is a table without geometry."""
    import json

    out = gdf.copy()
    geom = out.geometry.name if isinstance(out, gpd.GeoDataFrame) else None
    for col in out.columns:
        if col == geom:
            continue
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, list | tuple | dict)).any():
            out[col] = out[col].map(lambda v: json.dumps(v, ensure_ascii=False) if v is not None else None)
    return out


def same_crs(a: pyproj.CRS | None, b: pyproj.CRS | None) -> bool:
    """CRS equality that treats two missing CRSs as equal."""
    if a is None or b is None:
        return a is b
    return bool(a.equals(b))


def finite_bounds(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Per-feature bounds, NaN for null/empty geometries."""
    return np.asarray(shapely.bounds(gdf.geometry.values), dtype=float)


def feature_ids(gdf: gpd.GeoDataFrame | pd.DataFrame) -> tuple[np.ndarray, bool]:
    """Each row's feature id as served (``/collections/X/items/ID``) and whether they are row numbers.

    The id is ``code`` when the layer has a unique, non-null one (codes are hierarchical and stable, so
    links survive a rebuild), else such an ``id`` column; otherwise the row number from 1, which is the
    GeoPackage's own fid of a freshly written file. One rule for the service and for patrol planning, so
    that a visit logged against a household's id finds the same household in the planner.
    """
    for col in ("code", "id"):
        if col in gdf.columns and gdf[col].notna().all():
            codes = gdf[col].astype(str)
            if codes.is_unique:
                return codes.to_numpy(dtype=object), False
            log.warning("%s is not unique; not used as the feature id", col)
    return np.arange(1, len(gdf) + 1, dtype=np.int64), True
